/*
 * ctl.c - `fcgi-pm status|reload|restart|stop|reopen-logs`: the client of
 * the status socket.
 *
 * It finds the socket the way the daemon does (status_socket in the
 * configuration given with -c), sends one command line, and prints the
 * answer: the body on stdout, an error on stderr.  Exit status: 0 done,
 * 1 the daemon refused or failed, 3 the daemon is not running, 4 permission
 * denied (the LSB init-script codes), 64 bad usage.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define CTL_TIMEOUT_MS		60000	/* a reload of many pools answers well within */
#define CTL_EXIT_FAILED		1
#define CTL_EXIT_NOT_RUNNING	3
#define CTL_EXIT_DENIED		4
#define CTL_EXIT_USAGE		64

static int
ctl_connect(const struct conf *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = c->status_socket;
	int fd;

	if (path == NULL) {
		fprintf(stderr, "fcgi-pm: %s sets no status_socket: the commands need it; "
		    "set status_socket and restart fcgi-pm\n", c->file ? c->file : "the configuration");
		return -CTL_EXIT_FAILED;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "fcgi-pm: status_socket %s: path too long\n", path);
		return -CTL_EXIT_FAILED;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "fcgi-pm: socket: %s\n", strerror(errno));
		return -CTL_EXIT_FAILED;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;

		close(fd);
		if (e == ENOENT || e == ECONNREFUSED) {
			fprintf(stderr, "fcgi-pm: not running (nothing answers on status_socket "
			    "%s)\n", path);
			return -CTL_EXIT_NOT_RUNNING;
		}
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "fcgi-pm: permission denied on status_socket %s: run "
			    "as root, or see status_owner, status_group, status_mode and "
			    "status_allow_users\n", path);
			return -CTL_EXIT_DENIED;
		}
		fprintf(stderr, "fcgi-pm: status_socket %s: %s\n", path, strerror(e));
		return -CTL_EXIT_FAILED;
	}
	return fd;
}

/*
 * Send LINE to the daemon of C and print its answer.  Returns the exit
 * status.
 */
static int
ctl_send(const struct conf *c, const char *line)
{
	struct buf in = { 0 };
	struct timespec t0, t1;
	char chunk[8192], *body;
	int fd, rc;
	size_t len = strlen(line);

	if ((fd = ctl_connect(c)) < 0)
		return -fd;
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "fcgi-pm: status_socket %s: %s\n", c->status_socket,
		    strerror(errno));
		close(fd);
		return CTL_EXIT_FAILED;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long waited;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= CTL_TIMEOUT_MS || poll(&pfd, 1, (int)(CTL_TIMEOUT_MS - waited)) == 0) {
			fprintf(stderr, "fcgi-pm: no answer on %s within %ds\n", c->status_socket,
			    CTL_TIMEOUT_MS / 1000);
			close(fd);
			buf_free(&in);
			return CTL_EXIT_FAILED;
		}
		if ((n = read(fd, chunk, sizeof(chunk))) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_add(&in, chunk, (size_t)n) == -1) {
			fprintf(stderr, "fcgi-pm: out of memory\n");
			close(fd);
			buf_free(&in);
			return CTL_EXIT_FAILED;
		}
	}
	close(fd);
	if (in.len == 0) {
		fprintf(stderr, "fcgi-pm: the daemon closed the connection without an answer\n");
		return CTL_EXIT_FAILED;
	}
	body = in.data + strcspn(in.data, "\n");
	if (*body == '\n')
		*body++ = '\0';
	if (strcmp(in.data, "OK") == 0) {
		fwrite(body, 1, strlen(body), stdout);
		rc = 0;
	} else {
		const char *msg = strncmp(in.data, "ERR ", 4) == 0 ? in.data + 4 : in.data;

		fprintf(stderr, "fcgi-pm: %s\n", msg);
		if (*body != '\0')
			fputs(body, stderr);
		rc = strncmp(msg, "permission denied", 17) == 0 ? CTL_EXIT_DENIED :
		    CTL_EXIT_FAILED;
	}
	buf_free(&in);
	return rc;
}

static int
ctl_usage(const char *text)
{
	fprintf(stderr, "usage: fcgi-pm [-c file] %s\n", text);
	return CTL_EXIT_USAGE;
}

/* Parse the options of a command: LONGOPTS; the rest is at most one POOL. */
static int
ctl_getopt(int argc, char **argv, const struct option *longopts, int *flags,
    const char **pool)
{
	int ch;

	optind = 0;		/* GNU getopt: start over (main parsed its own options) */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == '?')
			return -1;
		*flags |= ch;
	}
	if (optind < argc && pool != NULL)
		*pool = argv[optind++];
	return optind < argc ? -1 : 0;
}

enum { F_FULL = 1, F_JSON = 2, F_PROM = 4, F_OM = 8, F_GRACEFUL = 16 };

/* fcgi-pm status [POOL] [--full] [--json|--prometheus|--openmetrics] */
int
ctl_status(const struct conf *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "full", no_argument, NULL, F_FULL },
		{ "json", no_argument, NULL, F_JSON },
		{ "prometheus", no_argument, NULL, F_PROM },
		{ "openmetrics", no_argument, NULL, F_OM },
		{ NULL, 0, NULL, 0 },
	};
	const char *pool = NULL, *fmt = "";
	int flags = 0;
	char line[512];

	if (ctl_getopt(argc, argv, longopts, &flags, &pool) == -1 ||
	    __builtin_popcount((unsigned)flags & (F_JSON | F_PROM | F_OM)) > 1)
		return ctl_usage("status [POOL] [--full] [--json|--prometheus|--openmetrics]");
	if (flags & F_JSON)
		fmt = " json";
	else if (flags & F_PROM)
		fmt = " prometheus";
	else if (flags & F_OM)
		fmt = " openmetrics";
	snprintf(line, sizeof(line), "status%s%s%s%s", flags & F_FULL ? " full" : "", fmt,
	    pool ? " pool=" : "", pool ? pool : "");
	return ctl_send(c, line);
}

static int
ctl_pool_command(const struct conf *c, int argc, char **argv, const char *cmd)
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	const char *pool = NULL;
	int flags = 0;
	char line[512];

	if (ctl_getopt(argc, argv, longopts, &flags, &pool) == -1) {
		snprintf(line, sizeof(line), "%s [POOL]", cmd);
		return ctl_usage(line);
	}
	snprintf(line, sizeof(line), "%s%s%s", cmd, pool ? " pool=" : "", pool ? pool : "");
	return ctl_send(c, line);
}

/* fcgi-pm reload [POOL]: re-read the configuration, apply the difference. */
int
ctl_reload(const struct conf *c, int argc, char **argv)
{
	return ctl_pool_command(c, argc, argv, "reload");
}

/* fcgi-pm restart [POOL]: replace every worker, new ones ready first. */
int
ctl_restart(const struct conf *c, int argc, char **argv)
{
	return ctl_pool_command(c, argc, argv, "restart");
}

/* fcgi-pm stop [--graceful] */
int
ctl_stop(const struct conf *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "graceful", no_argument, NULL, F_GRACEFUL },
		{ NULL, 0, NULL, 0 },
	};
	int flags = 0;

	if (ctl_getopt(argc, argv, longopts, &flags, NULL) == -1)
		return ctl_usage("stop [--graceful]");
	return ctl_send(c, flags & F_GRACEFUL ? "stop graceful" : "stop");
}

/* fcgi-pm reopen-logs */
int
ctl_reopen_logs(const struct conf *c, int argc, char **argv)
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	int flags = 0;

	if (ctl_getopt(argc, argv, longopts, &flags, NULL) == -1)
		return ctl_usage("reopen-logs");
	return ctl_send(c, "reopen-logs");
}

/*
 * The configuration FILE does not load (a site file being edited, say):
 * find status_socket in the main file by its line, `status_socket = "PATH"`,
 * so that status, stop and reload still reach the daemon (which keeps its
 * running configuration and says what is wrong on reload).  Fills *C with
 * FILE (borrowed) and the path (the caller frees c->status_socket).  Returns 0, or -1 if there is no such line.
 */
int
ctl_conf_fallback(const char *file, struct conf *c)
{
	char line[4096];
	FILE *f;

	memset(c, 0, sizeof(*c));
	if ((f = fopen(file, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *end;

		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "status_socket", 13) != 0)
			continue;
		p += 13;
		while (isspace((unsigned char)*p))
			p++;
		if (*p++ != '=')
			continue;
		while (isspace((unsigned char)*p))
			p++;
		if (*p++ != '"' || (end = strchr(p, '"')) == NULL)
			continue;
		*end = '\0';
		free(c->status_socket);
		c->status_socket = strdup(p);
	}
	fclose(f);
	c->file = (char *)file;
	return c->status_socket != NULL ? 0 : -1;
}
