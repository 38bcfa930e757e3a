/*
 * activate.c - listening sockets passed in by systemd (socket activation).
 *
 * sd_listen_fds(3) without libsystemd: when $LISTEN_PID is our pid,
 * $LISTEN_FDS sockets start at fd 3, optionally named by $LISTEN_FDNAMES
 * (colon-separated).  A pool whose `listen` address is one of them (by
 * getsockname, not by name) adopts it instead of binding its own; the
 * socket unit then owns the file, its owner and mode (SocketUser=,
 * SocketMode=), so fcgi-pm never unlinks it.  The fds stay open here for
 * the master's life: a pool removed by a reload hands its fd back, and a
 * pool added later can take it again.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define LISTEN_FDS_START	3	/* SD_LISTEN_FDS_START */
#define LISTEN_FDS_MAX		1024

struct inherited {
	int fd;
	char name[64];			/* from LISTEN_FDNAMES, "" if none */
	bool taken;			/* adopted by a pool */
};

static struct inherited *fds;
static int nfds;

/*
 * Take over the sockets systemd passed: check $LISTEN_PID and $LISTEN_FDS,
 * set CLOEXEC on each fd (workers get their pool's socket as fd 0, never
 * these), remember LISTEN_FDNAMES, and remove the three variables from the
 * environment.  Returns the number of sockets (0 without socket
 * activation), or -1 after logging why.
 */
int
activate_init(void)
{
	const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end;
	long pid, n;
	int rc = -1;

	if (pid_s == NULL || n_s == NULL) {
		rc = 0;
		goto out;
	}
	errno = 0;
	pid = strtol(pid_s, &end, 10);
	if (errno != 0 || *end != '\0' || pid <= 0) {
		log_warning(NULL, 0, "LISTEN_PID=%s is not a pid; ignoring LISTEN_FDS", pid_s);
		rc = 0;
		goto out;
	}
	if (pid != (long)getpid()) {
		rc = 0;			/* meant for another process: not ours */
		goto out;
	}
	errno = 0;
	n = strtol(n_s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0 || n > LISTEN_FDS_MAX) {
		log_error(NULL, 0, "LISTEN_FDS=%s is not a number of sockets", n_s);
		goto out;
	}
	if (n > 0 && (fds = calloc((size_t)n, sizeof(*fds))) == NULL) {
		log_error(NULL, 0, "socket activation: out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int fd = LISTEN_FDS_START + i;
		int flags = fcntl(fd, F_GETFD);

		if (flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) {
			log_error(NULL, 0, "socket activation: LISTEN_FDS=%ld but fd %d: %s",
			    n, fd, strerror(errno));
			free(fds);
			fds = NULL;
			goto out;
		}
		fds[i].fd = fd;
		if (names != NULL) {
			size_t len = strcspn(names, ":");

			snprintf(fds[i].name, sizeof(fds[i].name), "%.*s", (int)len, names);
			names = names[len] == ':' ? names + len + 1 : NULL;
		}
	}
	nfds = (int)n;
	rc = nfds;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

/* Does the inet address SA (of a listening socket) equal host HOST, port PORT? */
static bool
inet_matches(const struct sockaddr *sa, const struct listen_addr *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[8];
	bool match = false;

	if (*a->host == '\0') {
		/* "9000": every address; systemd's ListenStream=9000 is [::]:9000 */
		if (sa->sa_family == AF_INET)
			return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
		return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_any,
		    sizeof(in6addr_any)) == 0;
	}
	snprintf(port, sizeof(port), "%u", a->port);
	hints.ai_family = a->family;
	if (getaddrinfo(a->host, port, &hints, &res) != 0)
		return false;
	for (struct addrinfo *ai = res; ai != NULL && !match; ai = ai->ai_next) {
		if (ai->ai_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET)
			match = ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
			    ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr;
		else
			match = memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
			    &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			    sizeof(struct in6_addr)) == 0;
	}
	freeaddrinfo(res);
	return match;
}

/* Is FD a listening stream socket bound to A? */
static bool
fd_matches(int fd, const struct listen_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), il = sizeof(int);
	int type = 0, listening = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) == -1 || type != SOCK_STREAM)
		return false;
	il = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &il) == -1 || !listening)
		return false;
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return false;
	switch (ss.ss_family) {
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
		size_t plen = sl > offsetof(struct sockaddr_un, sun_path) ?
		    sl - offsetof(struct sockaddr_un, sun_path) : 0;

		/* a path socket's name is NUL-terminated; an abstract one starts with NUL */
		if (a->family != AF_UNIX || plen == 0 || sun->sun_path[0] == '\0')
			return false;
		return strnlen(sun->sun_path, plen) == strlen(a->path) &&
		    strncmp(sun->sun_path, a->path, plen) == 0;
	}
	case AF_INET:
	case AF_INET6:
		if (a->family == AF_UNIX)
			return false;
		if (ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port) != a->port)
			return false;
		return inet_matches((struct sockaddr *)&ss, a);
	default:
		return false;
	}
}

/*
 * The inherited socket listening on A, for pool POOL: returns its fd and
 * marks it taken, or -1 when none matches (the pool binds its own).  The
 * fd stays owned here: give it back with activate_release(), never close it.
 */
int
activate_take(const struct listen_addr *a, const char *pool)
{
	char addr[300];

	for (int i = 0; i < nfds; i++) {
		if (fds[i].taken || !fd_matches(fds[i].fd, a))
			continue;
		fds[i].taken = true;
		log_notice(pool, 0, "listen %s: using the socket systemd passed (fd %d%s%s)",
		    sock_name(a, addr, sizeof(addr)), fds[i].fd, *fds[i].name ? ", " : "",
		    fds[i].name);
		return fds[i].fd;
	}
	return -1;
}

/* Give back FD, taken with activate_take(), for another pool to adopt. */
void
activate_release(int fd)
{
	for (int i = 0; i < nfds; i++) {
		if (fds[i].fd == fd)
			fds[i].taken = false;
	}
}

/* Log each inherited socket no pool adopted: a socket unit out of step with the pools. */
void
activate_report_unused(void)
{
	for (int i = 0; i < nfds; i++) {
		if (!fds[i].taken)
			log_warning(NULL, 0, "socket activation: fd %d%s%s%s matches no "
			    "pool's listen address; kept open, unused", fds[i].fd,
			    *fds[i].name ? " (" : "", fds[i].name, *fds[i].name ? ")" : "");
	}
}
