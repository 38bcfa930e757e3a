/*
 * control.c - the status socket: status pages and control commands, served
 * by the master inside its event loop.
 *
 * One unix socket (status_socket, status_owner/status_group/status_mode,
 * default 0600: root only).  Every connection is non-blocking and lives
 * at most CONTROL_TIMEOUT_MS: the loop never waits for a client, and a
 * saturated pool never delays its status (php-fpm answers its status page
 * from a pool worker, so it times out exactly when the pool is full).
 *
 * Two protocols on one socket, told apart by the first line:
 *   - plain HTTP/1.0 GET for a web server's proxy_pass (read only):
 *     /status, /status?full, /status?json&full, /status?pool=NAME,
 *     /metrics (Prometheus text, OpenMetrics if the client asks), /ping
 *   - a line for `fcgi-pm COMMAND` (ctl.c): "status [full] [json|
 *     prometheus|openmetrics] [pool=NAME]", "reload [pool=NAME]",
 *     "restart [pool=NAME]", "stop [graceful]", "reopen-logs", "ping";
 *     the answer is "OK" or "ERR message" on the first line, then the body.
 *
 * Who may connect is checked with SO_PEERCRED: root, the master's own
 * user and status_owner may do everything; the users of
 * status_allow_users (e.g. the web server's) may read status only.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/epoll.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define CONTROL_TIMEOUT_MS	5000	/* a client has this long to ask and read */
#define CONTROL_MAX_REQUEST	8192	/* request line and headers */
#define CONTROL_MAX_CONNS	64	/* more at once are refused */

enum access { ACCESS_NONE, ACCESS_READ, ACCESS_ALL };

struct conn {
	int fd;
	enum access access;
	uid_t uid;
	uint64_t deadline_ms;
	size_t inlen;
	char in[CONTROL_MAX_REQUEST + 1];
	struct buf out;
	size_t off;			/* bytes of out already written */
	bool writing;
	int after;			/* an action to run once the answer is out */
	bool graceful;
	struct conn *next;
};

enum { AFTER_NONE, AFTER_STOP };

static int listen_fd = -1;
static char *sock_path;
static dev_t sock_dev;
static ino_t sock_ino;
static uid_t owner_uid = (uid_t)-1;
static uid_t *read_uids;		/* status_allow_users */
static size_t nread_uids;
static const struct control_ops *ops;
static struct conn *conns;
static int nconns;
static bool paused;			/* out of fds: accepting again at the next tick */

static void conn_close(struct conn *c);
static void on_conn(int fd, uint32_t events, void *arg);

/* ------------------------------------------------------------------ socket */

static int
resolve_users(const struct conf *c)
{
	size_t n = 0;

	for (char **u = c->status_allow_users; u != NULL && *u != NULL; u++)
		n++;
	if (n > 0 && (read_uids = calloc(n, sizeof(*read_uids))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct passwd *pw = getpwnam(c->status_allow_users[i]);

		if (pw == NULL) {
			log_error(NULL, 0, "status_allow_users: %s: no such user",
			    c->status_allow_users[i]);
			return -1;
		}
		read_uids[nread_uids++] = pw->pw_uid;
	}
	return 0;
}

/*
 * Open the status socket of C (nothing to do when status_socket is not
 * set) and serve it in the loop with OPS.  Returns 0, or -1 after logging
 * why (nothing left open).
 */
int
control_open(const struct conf *c, const struct control_ops *o)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	const char *path = c->status_socket;
	struct stat st;
	mode_t old;
	int r;

	ops = o;
	if (path == NULL)
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error(NULL, 0, "status_socket %s: longer than %zu bytes", path,
		    sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (c->status_owner != NULL) {
		struct passwd *pw = getpwnam(c->status_owner);

		if (pw == NULL) {
			log_error(NULL, 0, "status_owner %s: no such user", c->status_owner);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (c->status_group != NULL) {
		struct group *gr = getgrnam(c->status_group);

		if (gr == NULL) {
			log_error(NULL, 0, "status_group %s: no such group", c->status_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (resolve_users(c) == -1)
		goto fail;
	if ((r = sock_unix_in_use(path)) != 0) {
		if (r == 1)
			log_error(NULL, 0, "status_socket %s: another process is listening "
			    "on it; is fcgi-pm already running?", path);
		else
			log_error(NULL, 0, "status_socket %s: %s", path, errno == EEXIST ?
			    "exists and is not a socket; refusing to remove it" :
			    strerror(errno));
		goto fail;
	}
	unlink(path);
	if ((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_error(NULL, 0, "status_socket %s: socket: %s", path, strerror(errno));
		goto fail;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	old = umask(0177);		/* nobody connects before the mode is right */
	r = bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	/* listen at once (the mode is 0600 until chmod): a client seeing the file can connect */
	if (r == -1 || listen(listen_fd, 64) == -1) {
		log_error(NULL, 0, "status_socket %s: %s: %s", path, r == -1 ? "bind" : "listen",
		    strerror(errno));
		goto fail;
	}
	if ((sock_path = strdup(path)) == NULL)
		goto fail;
	if (stat(path, &st) == 0) {
		sock_dev = st.st_dev;
		sock_ino = st.st_ino;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) == -1) {
		log_error(NULL, 0, "status_socket %s: cannot give it to status_owner %s "
		    "status_group %s: %s (only root can)", path,
		    c->status_owner ? c->status_owner : "-",
		    c->status_group ? c->status_group : "-", strerror(errno));
		goto fail;
	}
	owner_uid = uid != (uid_t)-1 ? uid : geteuid();
	if (chmod(path, c->status_mode > 0 ? (mode_t)c->status_mode : 0600) == -1) {
		log_error(NULL, 0, "status_socket %s: chmod status_mode %04o: %s", path,
		    (unsigned)c->status_mode, strerror(errno));
		goto fail;
	}
	if (loop_watch(listen_fd, EPOLLIN, on_conn, NULL) == -1) {
		log_error(NULL, 0, "status_socket %s: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	control_close();
	return -1;
}

/* Close the status socket and every connection; remove the socket file if ours. */
void
control_close(void)
{
	struct stat st;

	while (conns != NULL)
		conn_close(conns);
	if (listen_fd != -1) {
		loop_unwatch(listen_fd);
		if (sock_path != NULL && stat(sock_path, &st) == 0 &&
		    st.st_dev == sock_dev && st.st_ino == sock_ino)
			unlink(sock_path);
		close(listen_fd);
	}
	listen_fd = -1;
	paused = false;
	free(sock_path);
	sock_path = NULL;
	free(read_uids);
	read_uids = NULL;
	nread_uids = 0;
	owner_uid = (uid_t)-1;
}

static bool
str_eq(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Do A and B configure the status socket alike?  (A reload reopens it if not.) */
bool
control_same(const struct conf *a, const struct conf *b)
{
	char **x = a->status_allow_users, **y = b->status_allow_users;

	if (!str_eq(a->status_socket, b->status_socket) ||
	    !str_eq(a->status_owner, b->status_owner) ||
	    !str_eq(a->status_group, b->status_group) || a->status_mode != b->status_mode)
		return false;
	for (; x != NULL && y != NULL && *x != NULL && *y != NULL; x++, y++) {
		if (strcmp(*x, *y) != 0)
			return false;
	}
	return (x == NULL || *x == NULL) && (y == NULL || *y == NULL);
}

/* ------------------------------------------------------------ connections */

static void
conn_close(struct conn *c)
{
	struct conn **pp;

	for (pp = &conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_unwatch(c->fd);
	close(c->fd);
	buf_free(&c->out);
	free(c);
	nconns--;
}

static enum access
access_of(uid_t uid)
{
	if (uid == 0 || uid == geteuid() || uid == owner_uid)
		return ACCESS_ALL;
	for (size_t i = 0; i < nread_uids; i++) {
		if (read_uids[i] == uid)
			return ACCESS_READ;
	}
	return ACCESS_NONE;
}

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %ld", (long)uid);
	return buf;
}

static void
on_accept(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		if (nconns >= CONTROL_MAX_CONNS ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->access = access_of(cred.uid);
		c->deadline_ms = loop_now_ms() + CONTROL_TIMEOUT_MS;
		if (loop_watch(fd, EPOLLIN, on_conn, c) == -1) {
			close(fd);
			free(c);
			continue;
		}
		c->next = conns;
		conns = c;
		nconns++;
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* the listener stays readable: pause it, or the loop would spin */
		log_warning(NULL, 0, "status socket: cannot accept: %s; pausing for a tick",
		    strerror(errno));
		loop_unwatch(listen_fd);
		paused = true;
	}
}

/* Write what is left of C's answer; close C when done or on error. */
static void
conn_flush(struct conn *c)
{
	while (c->off < c->out.len) {
		ssize_t n = write(c->fd, c->out.data + c->off, c->out.len - c->off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (!c->writing) {
				loop_unwatch(c->fd);
				if (loop_watch(c->fd, EPOLLOUT, on_conn, c) == -1)
					break;
				c->writing = true;
			}
			return;
		}
		if (n <= 0)
			break;
		c->off += (size_t)n;
	}
	conn_close(c);
}

/* ----------------------------------------------------------------- status */

struct status_req {
	enum status_format format;
	bool full;
	const char *pool;		/* NULL = every pool */
};

/* Render the status asked for by R into OUT.  0, or -1 with a message in OUT. */
static int
render_status(const struct status_req *r, struct buf *out)
{
	struct status_snapshot s;
	struct pool *pools;
	size_t n;

	ops->pools(&pools, &n);
	if (status_collect(pools, n, r->pool, r->full, &s) == -1) {
		buf_printf(out, "out of memory");
		return -1;
	}
	if (r->pool != NULL && s.npools == 0) {
		status_free(&s);
		buf_printf(out, "no pool named %s", r->pool);
		return -1;
	}
	if (status_render(&s, r->format, r->full, r->pool != NULL, out) == -1) {
		status_free(&s);
		buf_free(out);
		buf_printf(out, "out of memory");
		return -1;
	}
	status_free(&s);
	return 0;
}

/* --------------------------------------------------------------- HTTP side */

static void
http_answer(struct conn *c, int code, const char *reason, const char *type,
    const struct buf *body, bool head)
{
	size_t len = body->len;

	buf_printf(&c->out, "HTTP/1.0 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-cache, no-store, must-revalidate\r\n"
	    "Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
	    "Connection: close\r\n"
	    "\r\n", code, reason, type, len);
	if (!head && len > 0)
		buf_add(&c->out, body->data, len);
}

static void
http_error(struct conn *c, int code, const char *reason, const char *msg, bool head)
{
	struct buf b = { 0 };

	buf_printf(&b, "%s\n", msg);
	http_answer(c, code, reason, "text/plain; charset=utf-8", &b, head);
	buf_free(&b);
}

/* The value of header NAME in HEADERS ("Name: value\r\n"...) into OUT, or false. */
static bool
http_header(const char *headers, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);

	for (const char *p = headers; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			size_t vlen;

			v += strspn(v, " \t");
			vlen = strcspn(v, "\r\n");
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
	}
	return false;
}

/* Decode %XX in place (pool names are plain, but a client may encode them). */
static void
url_decode(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++) {
		if (*s == '%' && s[1] != '\0' && s[2] != '\0') {
			char hex[3] = { s[1], s[2], '\0' };
			char *end;
			long v = strtol(hex, &end, 16);

			if (*end == '\0' && v > 0) {
				*d++ = (char)v;
				s += 2;
				continue;
			}
		}
		*d++ = *s == '+' ? ' ' : *s;
	}
	*d = '\0';
}

static void
serve_http(struct conn *c, char *line, const char *headers)
{
	char *method = line, *target, *version, *query, accept[512];
	struct status_req r = { STATUS_TEXT, false, NULL };
	bool head;
	struct buf body = { 0 };

	if ((target = strchr(method, ' ')) == NULL) {
		http_error(c, 400, "Bad Request", "bad request line", false);
		return;
	}
	*target++ = '\0';
	if ((version = strchr(target, ' ')) != NULL)
		*version = '\0';
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		http_error(c, 405, "Method Not Allowed", "only GET and HEAD: the status "
		    "socket is read-only over HTTP", false);
		return;
	}
	if (c->access == ACCESS_NONE) {
		char who[64];

		user_name(c->uid, who, sizeof(who));
		log_warning(NULL, 0, "status socket: refused %s (not root, not the socket's "
		    "owner, not in status_allow_users)", who);
		http_error(c, 403, "Forbidden", "fcgi-pm: this user may not read the status; "
		    "add it to status_allow_users", head);
		return;
	}
	if ((query = strchr(target, '?')) != NULL)
		*query++ = '\0';
	for (char *q = query, *tok; q != NULL && (tok = strsep(&q, "&")) != NULL;) {
		if (strcmp(tok, "json") == 0)
			r.format = STATUS_JSON;
		else if (strcmp(tok, "full") == 0)
			r.full = true;
		else if (strcmp(tok, "openmetrics") == 0)
			r.format = STATUS_OPENMETRICS;
		else if (strcmp(tok, "prometheus") == 0)
			r.format = STATUS_PROMETHEUS;
		else if (strncmp(tok, "pool=", 5) == 0) {
			url_decode(tok + 5);
			r.pool = tok + 5;
		}
	}
	/* a location such as /fcgi-pm/status keeps its prefix: match the last part */
	const char *base = strrchr(target, '/');

	base = base != NULL ? base + 1 : target;
	if (strcmp(base, "ping") == 0) {
		buf_printf(&body, "pong\n");
		http_answer(c, 200, "OK", "text/plain; charset=utf-8", &body, head);
	} else if (strcmp(base, "status") == 0 || strcmp(base, "metrics") == 0) {
		if (strcmp(base, "metrics") == 0) {
			r.full = true;		/* the per-worker series */
			if (r.format != STATUS_OPENMETRICS)
				r.format = http_header(headers, "Accept", accept, sizeof(accept)) &&
				    strstr(accept, "application/openmetrics-text") != NULL ?
				    STATUS_OPENMETRICS : STATUS_PROMETHEUS;
		}
		if (render_status(&r, &body) == -1)
			http_answer(c, r.pool != NULL ? 404 : 500,
			    r.pool != NULL ? "Not Found" : "Internal Server Error",
			    "text/plain; charset=utf-8", &body, head);
		else
			http_answer(c, 200, "OK", status_content_type(r.format), &body, head);
	} else
		http_error(c, 404, "Not Found", "fcgi-pm: try /status, /status?full, "
		    "/status?json&full, /metrics or /ping", head);
	buf_free(&body);
}

/* ------------------------------------------------------------- line side */

static void
line_answer(struct conn *c, int rc, const struct buf *msg)
{
	if (rc == 0)
		buf_add(&c->out, "OK\n", 3);
	else
		buf_printf(&c->out, "ERR %s\n", msg->len ? msg->data : "failed");
	if (rc == 0 && msg->len > 0)
		buf_add(&c->out, msg->data, msg->len);
}

static void
serve_line(struct conn *c, char *line)
{
	char *words[8], *cmd;
	int nw = 0, rc;
	const char *pool = NULL;
	struct buf msg = { 0 };

	for (char *w; nw < 8 && (w = strsep(&line, " \t")) != NULL;) {
		if (*w != '\0')
			words[nw++] = w;
	}
	if (nw == 0) {
		buf_printf(&msg, "empty command");
		line_answer(c, -1, &msg);
		goto done;
	}
	cmd = words[0];
	for (int i = 1; i < nw; i++) {
		if (strncmp(words[i], "pool=", 5) == 0)
			pool = words[i] + 5;
	}
	if (strcmp(cmd, "ping") == 0) {
		buf_printf(&msg, "pong\n");
		line_answer(c, 0, &msg);
		goto done;
	}
	if (c->access == ACCESS_NONE ||
	    (c->access == ACCESS_READ && strcmp(cmd, "status") != 0)) {
		char who[64];

		user_name(c->uid, who, sizeof(who));
		log_warning(NULL, 0, "status socket: refused '%s' from %s", cmd, who);
		buf_printf(&msg, "permission denied: %s may not %s (%s)", who,
		    c->access == ACCESS_NONE ? "use the status socket" : cmd,
		    c->access == ACCESS_NONE ? "allowed: root, the master's user, "
		    "status_owner and status_allow_users" :
		    "status_allow_users may only read the status; control needs root, "
		    "the master's user or status_owner");
		line_answer(c, -1, &msg);
		goto done;
	}
	if (strcmp(cmd, "status") == 0) {
		struct status_req r = { STATUS_TEXT, false, pool };

		for (int i = 1; i < nw; i++) {
			if (strcmp(words[i], "full") == 0)
				r.full = true;
			else if (strcmp(words[i], "json") == 0)
				r.format = STATUS_JSON;
			else if (strcmp(words[i], "prometheus") == 0)
				r.format = STATUS_PROMETHEUS;
			else if (strcmp(words[i], "openmetrics") == 0)
				r.format = STATUS_OPENMETRICS;
		}
		rc = render_status(&r, &msg);
		line_answer(c, rc, &msg);
	} else if (strcmp(cmd, "reload") == 0) {
		log_notice(NULL, 0, "status socket: reload%s%s requested", pool ? " of pool " : "",
		    pool ? pool : "");
		rc = ops->reload(pool, &msg);
		line_answer(c, rc, &msg);
	} else if (strcmp(cmd, "restart") == 0) {
		rc = ops->restart(pool, &msg);
		line_answer(c, rc, &msg);
	} else if (strcmp(cmd, "stop") == 0) {
		c->graceful = nw > 1 && strcmp(words[1], "graceful") == 0;
		buf_printf(&msg, "stopping%s\n", c->graceful ? " gracefully" : "");
		line_answer(c, 0, &msg);
		c->after = AFTER_STOP;
	} else if (strcmp(cmd, "reopen-logs") == 0) {
		rc = ops->reopen_logs(&msg);
		line_answer(c, rc, &msg);
	} else {
		buf_printf(&msg, "unknown command '%s'", cmd);
		line_answer(c, -1, &msg);
	}
done:
	buf_free(&msg);
}

/* A whole request is in C->in: answer it. */
static void
serve(struct conn *c)
{
	char *line = c->in, *rest;

	size_t len;

	rest = line + strcspn(line, "\n");
	if (*rest != '\0')
		*rest++ = '\0';
	if ((len = strlen(line)) > 0 && line[len - 1] == '\r')
		line[len - 1] = '\0';
	if (strncmp(line, "GET ", 4) == 0 || strncmp(line, "HEAD ", 5) == 0 ||
	    strncmp(line, "POST ", 5) == 0 || strncmp(line, "PUT ", 4) == 0)
		serve_http(c, line, rest);
	else
		serve_line(c, line);
}

/* Is C's request complete: a line, or for HTTP the end of the headers? */
static bool
request_complete(const struct conn *c)
{
	const char *nl = memchr(c->in, '\n', c->inlen);
	bool http;

	if (nl == NULL)
		return false;
	http = strncmp(c->in, "GET ", 4) == 0 || strncmp(c->in, "HEAD ", 5) == 0 ||
	    strncmp(c->in, "POST ", 5) == 0 || strncmp(c->in, "PUT ", 4) == 0;
	if (!http)
		return true;
	/* HTTP/0.9-style "GET /status" has no headers */
	if (strstr(c->in, " HTTP/") == NULL || (size_t)(strstr(c->in, " HTTP/") - c->in) >
	    (size_t)(nl - c->in))
		return true;
	return strstr(c->in, "\r\n\r\n") != NULL || strstr(c->in, "\n\n") != NULL;
}

static void
on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->inlen, CONTROL_MAX_REQUEST - c->inlen);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* the peer closed: answer what we have if it is a line */
			if (n == 0 && c->inlen > 0 && memchr(c->in, '\n', c->inlen) == NULL) {
				c->in[c->inlen++] = '\n';
				break;
			}
			conn_close(c);
			return;
		}
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
		if (memchr(c->in, '\0', c->inlen) != NULL) {
			conn_close(c);
			return;
		}
		if (request_complete(c))
			break;
		if (c->inlen == CONTROL_MAX_REQUEST) {
			buf_printf(&c->out, "ERR request too long\n");
			c->inlen = 0;
			loop_unwatch(c->fd);
			conn_flush(c);
			return;
		}
	}
	c->in[c->inlen] = '\0';
	loop_unwatch(c->fd);
	serve(c);
	if (c->after == AFTER_STOP) {
		bool graceful = c->graceful;
		struct buf msg = { 0 };

		c->after = AFTER_NONE;
		conn_flush(c);		/* the answer first: the loop may end soon */
		ops->stop(graceful, &msg);
		buf_free(&msg);
		return;
	}
	conn_flush(c);
}

static void
on_conn(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (c == NULL) {
		on_accept();
		return;
	}
	if (c->writing)
		conn_flush(c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(c);
}

/* The tick: drop connections that outlived CONTROL_TIMEOUT_MS; resume accepting. */
void
control_tick(uint64_t now_ms)
{
	struct conn *c = conns, *next;

	if (paused && listen_fd != -1 && loop_watch(listen_fd, EPOLLIN, on_conn, NULL) == 0)
		paused = false;

	for (; c != NULL; c = next) {
		next = c->next;
		if (now_ms >= c->deadline_ms)
			conn_close(c);
	}
}
