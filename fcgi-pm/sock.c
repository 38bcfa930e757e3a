/*
 * sock.c - the pools' listening sockets: parse, create, inspect, remove.
 *
 * The master creates every socket itself (never libfcgi's FCGX_OpenSocket,
 * which unlinks a live socket and exits on error): CLOEXEC, a unix socket's
 * file is unlinked only when no one answers on it, and its owner and mode
 * are set while the master is still root.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define DEFAULT_BACKLOG	511	/* php-fpm's */

static int
parse_port(const char *s, unsigned *port)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/*
 * Parse a `listen` value into *A: "/path.sock" (unix), "host:port",
 * "1.2.3.4:port", "[::1]:port", ":port", "*:port" or "port" (every IPv4
 * address).  Pure: no lookup, no socket.  Returns 0, or -1 with a message
 * in ERR (ERRLEN bytes).
 */
int
sock_parse(const char *s, struct listen_addr *a, char *err, size_t errlen)
{
	const char *colon, *port;
	size_t hlen;

	memset(a, 0, sizeof(*a));
	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "empty address");
		return -1;
	}
	if (strncmp(s, "unix:", 5) == 0)
		s += 5;
	if (*s == '/') {
		if (strlen(s) >= sizeof(a->path)) {
			snprintf(err, errlen, "socket path %s is longer than %zu bytes",
			    s, sizeof(a->path) - 1);
			return -1;
		}
		a->family = AF_UNIX;
		memcpy(a->path, s, strlen(s) + 1);
		return 0;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');
		struct in6_addr in6;

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "%s: expected [IPv6 address]:port", s);
			return -1;
		}
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(a->host)) {
			snprintf(err, errlen, "%s: bad IPv6 address", s);
			return -1;
		}
		memcpy(a->host, s + 1, hlen);
		a->host[hlen] = '\0';
		if (inet_pton(AF_INET6, a->host, &in6) != 1) {
			snprintf(err, errlen, "%s: %s is not an IPv6 address", s, a->host);
			return -1;
		}
		a->family = AF_INET6;
		port = close + 2;
	} else if ((colon = strrchr(s, ':')) == NULL) {
		a->family = AF_INET;		/* "9000": every address, like php-fpm */
		port = s;
	} else {
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL) {
			snprintf(err, errlen, "%s: write an IPv6 address as [addr]:port", s);
			return -1;
		}
		if (hlen >= sizeof(a->host)) {
			snprintf(err, errlen, "%s: host name too long", s);
			return -1;
		}
		if (!(hlen == 0 || (hlen == 1 && *s == '*'))) {
			struct in_addr in4;

			memcpy(a->host, s, hlen);
			a->host[hlen] = '\0';
			a->family = inet_pton(AF_INET, a->host, &in4) == 1 ?
			    AF_INET : AF_UNSPEC;
		} else
			a->family = AF_INET;
		port = colon + 1;
	}
	if (parse_port(port, &a->port) == -1) {
		snprintf(err, errlen, "%s: port must be a number from 1 to 65535 "
		    "(or give an absolute path for a unix socket)", s);
		return -1;
	}
	return 0;
}

/* Format A as the user wrote it, for log lines.  Returns BUF. */
const char *
sock_name(const struct listen_addr *a, char *buf, size_t len)
{
	if (a->family == AF_UNIX)
		snprintf(buf, len, "%s", a->path);
	else if (a->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a->host, a->port);
	else
		snprintf(buf, len, "%s:%u", *a->host ? a->host : "*", a->port);
	return buf;
}

/* Is someone listening on the unix socket PATH?  See fcgi-pm.h. */
int
sock_unix_in_use(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	/* EAGAIN: a full listen queue is still a live listener */
	r = r == 0 || errno == EAGAIN ? 1 : errno == ECONNREFUSED ? 0 : -1;
	close(fd);
	return r;
}

static int
open_unix(struct listen_sock *ls, const struct pool_conf *pc)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = ls->addr.path;
	struct stat st;
	mode_t old;
	int fd, r;

	if ((r = sock_unix_in_use(path)) == 1) {
		log_error(pc->name, 0, "listen %s: another process is listening on it; "
		    "stop it or choose another listen path", path);
		return -1;
	}
	if (r == -1) {
		log_error(pc->name, 0, "listen %s: %s", path, errno == EEXIST ?
		    "exists and is not a socket; refusing to remove it" : strerror(errno));
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_error(pc->name, 0, "listen %s: cannot remove the stale socket: %s",
		    path, strerror(errno));
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_error(pc->name, 0, "listen %s: socket: %s", path, strerror(errno));
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* nobody may connect before the mode is right */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r == -1) {
		log_error(pc->name, 0, "listen %s: bind: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	ls->fd = fd;
	if (stat(path, &st) == 0) {
		ls->dev = st.st_dev;
		ls->ino = st.st_ino;
	}
	if (pc->listen_owner != NULL || pc->listen_group != NULL) {
		uid_t uid = (uid_t)-1;
		gid_t gid = (gid_t)-1;
		struct passwd *pw;
		struct group *gr;

		if (pc->listen_owner != NULL) {
			if ((pw = getpwnam(pc->listen_owner)) == NULL) {
				log_error(pc->name, 0, "listen_owner %s: no such user",
				    pc->listen_owner);
				return -1;
			}
			uid = pw->pw_uid;
		}
		if (pc->listen_group != NULL) {
			if ((gr = getgrnam(pc->listen_group)) == NULL) {
				log_error(pc->name, 0, "listen_group %s: no such group",
				    pc->listen_group);
				return -1;
			}
			gid = gr->gr_gid;
		}
		if (chown(path, uid, gid) == -1) {
			log_error(pc->name, 0, "listen %s: cannot give it to listen_owner %s "
			    "listen_group %s: %s (only root can)", path,
			    pc->listen_owner ? pc->listen_owner : "-",
			    pc->listen_group ? pc->listen_group : "-", strerror(errno));
			return -1;
		}
	}
	if (chmod(path, pc->listen_mode > 0 ? (mode_t)pc->listen_mode : 0660) == -1) {
		log_error(pc->name, 0, "listen %s: chmod listen_mode %04o: %s", path,
		    (unsigned)pc->listen_mode, strerror(errno));
		return -1;
	}
	return 0;
}

static int
open_tcp(struct listen_sock *ls, const struct pool_conf *pc)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[8], name[300];
	int fd, r, one = 1;

	sock_name(&ls->addr, name, sizeof(name));
	snprintf(port, sizeof(port), "%u", ls->addr.port);
	hints.ai_family = ls->addr.family;
	if ((r = getaddrinfo(*ls->addr.host ? ls->addr.host : NULL, port, &hints, &res)) != 0) {
		log_error(pc->name, 0, "listen %s: %s", name, gai_strerror(r));
		return -1;
	}
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_error(pc->name, 0, "listen %s: socket: %s", name, strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	/* a restart must not wait for TIME_WAIT connections of the last run */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	r = bind(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (r == -1) {
		log_error(pc->name, 0, "listen %s: bind: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	ls->fd = fd;
	return 0;
}

/*
 * Create the listening socket of pool PC into *LS: parse pc->listen,
 * bind (a unix socket gets listen_owner, listen_group and listen_mode) and
 * listen with listen_backlog; or adopt the socket systemd passed for that
 * address, as it is.  Returns 0, or -1 after logging why (*LS is then
 * closed).
 */
int
sock_open(struct listen_sock *ls, const struct pool_conf *pc)
{
	char err[512], name[300];
	int backlog = pc->listen_backlog > 0 ? pc->listen_backlog : DEFAULT_BACKLOG;

	memset(ls, 0, sizeof(*ls));
	ls->fd = -1;
	if (sock_parse(pc->listen, &ls->addr, err, sizeof(err)) == -1) {
		log_error(pc->name, 0, "listen: %s", err);
		return -1;
	}
	/* socket activation: the socket unit made it, with its owner and mode */
	if ((ls->fd = activate_take(&ls->addr, pc->name)) != -1) {
		ls->activated = true;
		return 0;
	}
	if ((ls->addr.family == AF_UNIX ? open_unix(ls, pc) : open_tcp(ls, pc)) == -1)
		goto fail;
	if (listen(ls->fd, backlog) == -1) {
		log_error(pc->name, 0, "listen %s: listen(%d): %s",
		    sock_name(&ls->addr, name, sizeof(name)), backlog, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	sock_close(ls);
	return -1;
}

/*
 * Close LS and, for a unix socket, remove its file if it is still the one
 * we bound (a newer instance may have replaced it).  A socket systemd
 * passed is handed back to activate.c, never closed or removed: the
 * socket unit owns it, and a restarted master gets it again.
 */
void
sock_close(struct listen_sock *ls)
{
	struct stat st;

	if (ls->fd == -1)
		return;
	if (ls->activated) {
		activate_release(ls->fd);
		ls->fd = -1;
		return;
	}
	if (ls->addr.family == AF_UNIX && stat(ls->addr.path, &st) == 0 &&
	    st.st_dev == ls->dev && st.st_ino == ls->ino)
		unlink(ls->addr.path);
	close(ls->fd);
	ls->fd = -1;
}

static int
unix_queue(int fd, unsigned *len, unsigned *max)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	union {
		char buf[8192];
		struct nlmsghdr align;
	} u;
	struct stat st;
	ssize_t n;
	int nl;

	if (fstat(fd, &st) == -1)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = 1 << TCP_LISTEN;
	msg.req.udiag_ino = (unsigned)st.st_ino;	/* a socket's inode names it */
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0U;	/* no cookie check */
	if ((nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) == -1)
		return -1;
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (n = recv(nl, u.buf, sizeof(u.buf), 0)) == -1) {
		close(nl);
		return -1;
	}
	close(nl);
	for (struct nlmsghdr *h = &u.align; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *m;
		struct rtattr *a;
		int alen;

		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
			return -1;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		m = NLMSG_DATA(h);
		alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			if (a->rta_type == UNIX_DIAG_RQLEN) {
				struct unix_diag_rqlen *q = RTA_DATA(a);

				*len = q->udiag_rqueue;
				*max = q->udiag_wqueue;
				return 0;
			}
		}
	}
	errno = ENOENT;
	return -1;
}

/*
 * The listen queue of LS now: *LEN connections waiting to be accepted,
 * *MAX the backlog the kernel applies.  Needs no privilege.  0 or -1
 * (errno set).
 */
int
sock_queue(const struct listen_sock *ls, unsigned *len, unsigned *max)
{
	struct tcp_info ti;
	socklen_t sl = sizeof(ti);

	if (ls->fd == -1) {
		errno = EBADF;
		return -1;
	}
	if (ls->addr.family == AF_UNIX)
		return unix_queue(ls->fd, len, max);
	if (getsockopt(ls->fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) == -1)
		return -1;
	if (ti.tcpi_state != TCP_LISTEN) {
		errno = EINVAL;
		return -1;
	}
	/* on a listener: unacked = accept queue length, sacked = backlog */
	*len = ti.tcpi_unacked;
	*max = ti.tcpi_sacked;
	return 0;
}
