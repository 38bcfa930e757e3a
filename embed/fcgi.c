/*
 * fcgi.c - the FastCGI 1.0 responder: records, connections, keep-alive.
 *
 * Why our own and not libfcgi 2.4.2 (see TECH-NOTES §0): libfcgi takes
 * over SIGTERM, SIGUSR1 and SIGPIPE without SA_RESTART; a kept-alive
 * connection pins the thread that served it (nginx answers 504 once
 * every thread holds an idle connection); GET_VALUES with more than three
 * names smashes its stack; nothing limits the params; its lingering close
 * costs ~40% of throughput; a peer sending half a record blocks a thread
 * forever.  None of that is fixable from outside, and the protocol is small.
 *
 * The model:
 *   - One epoll per process.  It holds the listening socket (fd 0, shared
 *     with the other workers of the pool, EPOLLEXCLUSIVE), a stop eventfd,
 *     and every idle kept-alive connection (EPOLLONESHOT).  Each request
 *     thread waits in epoll_wait for one event: it accepts, or takes a
 *     kept connection that became readable, reads one request and serves
 *     it.  Afterwards a kept connection goes back to epoll, so an idle
 *     connection never pins a thread.
 *   - A connection table indexed by fd records which connections are
 *     parked and under which generation; the generation travels in the
 *     epoll data, so an event that lost a race with the sweeper (idle
 *     timeout) or with a close is recognised and ignored.  The table's
 *     mutex guards state changes and the epoll_ctl that goes with them;
 *     nothing blocks under it.
 *   - Each request thread owns one struct conn: the connection it serves
 *     and its buffers (input, params, output), allocated once.
 *   - BEGIN_REQUEST and PARAMS never keep a thread waiting: records are
 *     parsed only when whole, and a request whose bytes stop short is
 *     parked in epoll with them (struct partial, per slot) until more
 *     come or read_timeout from its first wait passes.  A request whose
 *     peer already closed is dropped unrun (peer_gone()).
 *   - Body reads block with SO_RCVTIMEO (read timeout: the app is
 *     waiting for them); writes block with SO_SNDTIMEO.  Output is
 *     gathered into STDOUT records of up to 64 KiB; the last record,
 *     the end of the stream and END_REQUEST leave in one write.
 *   - A connection that is done is closed at once when its request was
 *     read to the end (the usual case: no lingering close).  One closed
 *     on an unread body would reset and lose the answer, so it is shut
 *     down for writing and parked in epoll until the peer closes (it
 *     "lingers" without a thread).  A new connection that has sent
 *     nothing yet, after a short wait, is parked the same way.
 *   - The main thread runs fcgi_sweep() to close parked connections past
 *     their deadline (keep-alive timeout, read timeout, incomplete
 *     request, linger).
 *   - Under fcgi-pm, a kept connection that became readable while every
 *     request thread is busy is handed to an idle worker of the pool:
 *     the main thread (fcgi_watch()) sends its fd over the pool's socket
 *     pair, whose receiving end is in every worker's epoll (KEY_HANDOFF).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "embed/fcgi.h"

#define IN_SIZE		(128 * 1024)	/* a read usually takes params and body at once */
#define OUT_MAX		65528		/* STDOUT content per record (8-aligned, <= 65535) */
#define OUT_SIZE	(FCGI_HEADER_LEN + OUT_MAX + FCGI_HEADER_LEN + 16)
#define DIRECT_READ_MIN	(16 * 1024)	/* body reads at least this large bypass the buffer */
#define DRAIN_MS	10000		/* time we spend reading away a body the app left */
#define LINGER_MS	10000		/* most a closing connection lingers in epoll */
#define CONN_TABLE_MAX	65536
#define FRESH_WAIT_MS	2		/* wait for a new connection's first bytes */
#define WRITEV_RECORDS	16		/* large writes: records per writev */
#define DIRECT_WRITE_MIN (8 * 1024)	/* writes this large go out uncopied */
#define ACCEPT_STREAK_MAX 8		/* accepts in a row before epoll has a turn */
#define WATCH_LINGER	20		/* free looks before the watcher stops (100 ms) */

#define KEY_LISTEN	UINT64_MAX
#define KEY_STOP	(UINT64_MAX - 1)
#define KEY_HANDOFF	(UINT64_MAX - 2)	/* the lowest of the fixed keys */

/* ---------------------------------------------------------- protocol core */

/* Decode the 8-byte header at P.  Returns 0, or -1 if the version is not 1. */
int
fcgi_header_parse(const uint8_t *p, struct fcgi_header *h)
{
	h->version = p[0];
	h->type = p[1];
	h->id = (uint16_t)(p[2] << 8 | p[3]);
	h->content_len = (uint16_t)(p[4] << 8 | p[5]);
	h->padding_len = p[6];
	return h->version == FCGI_VERSION_1 ? 0 : -1;
}

/* Encode a record header at P (8 bytes). */
void
fcgi_header_build(uint8_t *p, uint8_t type, uint16_t id, uint16_t clen,
    uint8_t plen)
{
	p[0] = FCGI_VERSION_1;
	p[1] = type;
	p[2] = id >> 8;
	p[3] = id & 0xff;
	p[4] = clen >> 8;
	p[5] = clen & 0xff;
	p[6] = plen;
	p[7] = 0;
}

/* Encode a whole END_REQUEST record at P; returns its size (16). */
size_t
fcgi_end_request_build(uint8_t *p, uint16_t id, uint32_t app_status,
    uint8_t protocol_status)
{
	fcgi_header_build(p, FCGI_END_REQUEST, id, 8, 0);
	p[8] = app_status >> 24;
	p[9] = (app_status >> 16) & 0xff;
	p[10] = (app_status >> 8) & 0xff;
	p[11] = app_status & 0xff;
	p[12] = protocol_status;
	memset(p + 13, 0, 3);
	return 16;
}

/* Encode a whole UNKNOWN_TYPE record at P; returns its size (16). */
size_t
fcgi_unknown_type_build(uint8_t *p, uint8_t type)
{
	fcgi_header_build(p, FCGI_UNKNOWN_TYPE, 0, 8, 0);
	p[8] = type;
	memset(p + 9, 0, 7);
	return 16;
}

/* One name-value length: 1 byte, or 4 with the high bit set. */
static int
nv_len(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *q = *p;

	if (q >= end)
		return -1;
	if (!(q[0] & 0x80)) {
		*len = q[0];
		*p = q + 1;
		return 0;
	}
	if (end - q < 4)
		return -1;
	*len = (size_t)(q[0] & 0x7f) << 24 | (size_t)q[1] << 16 |
	    (size_t)q[2] << 8 | q[3];
	*p = q + 4;
	return 0;
}

/* Split name-value pairs into OUT; see fcgi.h. */
int
fcgi_params_parse(const uint8_t *buf, size_t len, struct fcgi_param *out,
    size_t max, size_t *np)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t n = 0, nl, vl;

	while (p < end) {
		if (nv_len(&p, end, &nl) == -1 || nv_len(&p, end, &vl) == -1 ||
		    nl > (size_t)(end - p) || vl > (size_t)(end - p) - nl) {
			errno = EBADMSG;
			return -1;
		}
		if (n == max) {
			errno = EMSGSIZE;
			return -1;
		}
		out[n].name = (const char *)p;
		out[n].name_len = nl;
		out[n].value = (const char *)p + nl;
		out[n].value_len = vl;
		p += nl + vl;
		n++;
	}
	*np = n;
	return 0;
}

static size_t
nv_put(uint8_t *p, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);	/* both < 128 */

	p[0] = (uint8_t)nl;
	p[1] = (uint8_t)vl;
	memcpy(p + 2, name, nl);
	memcpy(p + 2 + nl, value, vl);
	return 2 + nl + vl;
}

/* Build the GET_VALUES_RESULT record; see fcgi.h. */
ssize_t
fcgi_get_values_build(const uint8_t *q, size_t qlen,
    const struct fcgi_values *v, uint8_t *out, size_t outsz)
{
	static const char *const names[] = {
		"FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS",
	};
	struct fcgi_param asked[64];
	char val[3][16];
	bool done[3] = { false, false, false };
	size_t n, i, k, len = FCGI_HEADER_LEN, pad;

	/* At most 3 answers of < 40 bytes each: the reply always fits 8 + 128. */
	if (outsz < FCGI_HEADER_LEN + 128 + 8)
		return -1;
	/* More than 64 names asked: answer the first 64, it cannot matter. */
	if (fcgi_params_parse(q, qlen, asked, 64, &n) == -1) {
		if (errno != EMSGSIZE)
			return -1;
		n = 64;
	}
	snprintf(val[0], sizeof(val[0]), "%u", v->max_conns);
	snprintf(val[1], sizeof(val[1]), "%u", v->max_reqs);
	snprintf(val[2], sizeof(val[2]), "0");
	for (i = 0; i < n; i++)
		for (k = 0; k < 3; k++)
			if (!done[k] && asked[i].name_len == strlen(names[k]) &&
			    memcmp(asked[i].name, names[k], asked[i].name_len) == 0) {
				len += nv_put(out + len, names[k], val[k]);
				done[k] = true;
			}
	pad = (8 - (len & 7)) & 7;
	memset(out + len, 0, pad);
	fcgi_header_build(out, FCGI_GET_VALUES_RESULT, 0,
	    (uint16_t)(len - FCGI_HEADER_LEN), (uint8_t)pad);
	return (ssize_t)(len + pad);
}

/* ------------------------------------------------------------- the server */

enum slot_state { SLOT_FREE = 0, SLOT_BUSY, SLOT_IDLE };

/*
 * A request whose BEGIN_REQUEST and PARAMS did not all arrive, parked
 * with its connection: the parser's state between two records and the
 * bytes that belong to it.  Allocated only when a request must wait;
 * freed when the connection is taken again or closed.
 */
struct partial {
	uint16_t id;		/* the request begun, if begun */
	bool begun;		/* BEGIN_REQUEST seen */
	bool keep;		/* its FCGI_KEEP_CONN */
	uint32_t plen;		/* params gathered so far, first in data[] */
	uint32_t ilen;		/* then the unparsed input (an incomplete record) */
	uint8_t data[];
};

/* One entry per fd number: the state of the connection on that fd. */
struct slot {
	uint8_t state;		/* enum slot_state */
	bool registered;	/* the fd is in the epoll set (maybe disarmed) */
	bool linger;		/* parked only to read away the rest, then close */
	bool pending;		/* new or part of a request: served even when stopping */
	bool timeouts;		/* SO_RCVTIMEO/SO_SNDTIMEO set (before its first block) */
	uint32_t gen;		/* bumped on every park and close */
	uint64_t deadline_ms;	/* closed by the sweeper then (CLOCK_MONOTONIC) */
	struct partial *partial;	/* an incomplete request waits, or NULL */
};

struct conn {
	int fd;			/* connection being served, -1 between connections */
	uint8_t *in;		/* IN_SIZE bytes, [in_pos, in_end) unread */
	size_t in_pos, in_end;
	size_t stdin_left;	/* content of the current STDIN record not yet read */
	size_t pad_left;	/* padding still to skip after it */
	bool stdin_eof;		/* the empty STDIN record was seen */
	bool broken;		/* protocol state unknown: close after this request */
	bool nowait;		/* fill() takes only what is there (EAGAIN otherwise) */
	bool in_params;		/* reading BEGIN_REQUEST and PARAMS */
	bool waited;		/* the params phase had its short wait on this take */
	bool begun;		/* BEGIN_REQUEST of req.id seen, params not complete */
	bool resumed;		/* a parked partial request was restored into c */
	bool fresh;		/* the connection was just accepted */
	bool ended;		/* request_write_last() sent the end of the response */
	bool accept_hot;	/* the last accept found a connection waiting */
	unsigned accept_streak;	/* accepts in a row without epoll_wait */
	uint32_t events;	/* epoll events of the take (a parked connection) */
	uint64_t deadline_ms;	/* set at the first read that must wait for them */
	uint8_t *out;		/* OUT_SIZE bytes: header, content, room for the trailer */
	size_t out_len;		/* content bytes gathered */
	uint8_t *pbuf;		/* FCGI_PARAMS_MAX bytes of name-value pairs */
	size_t plen;
	struct fcgi_param *params;	/* FCGI_NPARAMS_MAX */
	struct request req;
};

static struct {
	int ep;
	int listen_fd;
	int stop_fd;
	bool tcp;
	long read_timeout_ms;
	long keepalive_ms;
	_Atomic uint64_t *dropped;	/* the scoreboard's peer_gone, or NULL */
	const struct fcgi_handoff *handoff;	/* NULL: standalone */
	int watch_fd;		/* eventfd: wakes the watcher (fcgi_watch()) */
	_Atomic int nwaiting;	/* request threads waiting for work (with hand-off) */
	_Atomic bool watching;	/* the watcher runs: every thread was busy */
	unsigned watch_free_looks;	/* its looks in a row that found a thread waiting */
	struct fcgi_values values;
	pthread_mutex_t lock;	/* guards slots[], nidle, and the epoll_ctl calls on them */
	struct slot *slots;
	unsigned nslots;
	unsigned nidle;
	unsigned npending;	/* parked slots with pending set (under lock) */
	_Atomic bool stopping;
} srv = { .ep = -1, .listen_fd = -1, .stop_fd = -1, .watch_fd = -1,
	  .lock = PTHREAD_MUTEX_INITIALIZER };

/* One address of FCGI_WEB_SERVER_ADDRS; IPv4 kept as ::ffff:a.b.c.d. */
struct client_addr {
	uint8_t a[16];
};

static struct client_addr *allowed;	/* NULL: any peer */
static size_t nallowed;

static struct wlog_ratelimit rl_refused = { .interval = 10, .burst = 5 };
static struct wlog_ratelimit rl_proto = { .interval = 10, .burst = 5 };
static struct wlog_ratelimit rl_timeout = { .interval = 10, .burst = 5 };
static struct wlog_ratelimit rl_accept = { .interval = 10, .burst = 3 };
static struct wlog_ratelimit rl_gone = { .interval = 10, .burst = 5 };

static _Atomic unsigned long ndropped;	/* requests dropped: the peer was gone */
static _Atomic unsigned long nhandoffs;	/* connections passed to another process */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An IPv4 or IPv6 address as 16 bytes (IPv4 mapped).  0 or -1. */
static int
client_addr_parse(const char *s, struct client_addr *ca)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(ca->a, 0, 10);
		ca->a[10] = ca->a[11] = 0xff;
		memcpy(ca->a + 12, &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, s, ca->a) == 1 ? 0 : -1;
}

/*
 * Parse the comma- (or space-) separated LIST of allowed peer addresses.
 * The FastCGI convention (FCGI_WEB_SERVER_ADDRS); unlike libfcgi's, IPv6
 * and spaces after the commas work.  Returns 0, or -1 (logged).
 */
static int
allowed_parse(const char *list)
{
	char *copy, *tok, *save = NULL;
	size_t max;

	if (list == NULL || *list == '\0')
		return 0;
	max = strlen(list) / 2 + 2;
	if ((copy = strdup(list)) == NULL ||
	    (allowed = calloc(max, sizeof(*allowed))) == NULL) {
		free(copy);
		wlog(WLOG_ERROR, "fcgi: FCGI_WEB_SERVER_ADDRS: %s", strerror(errno));
		return -1;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (client_addr_parse(tok, &allowed[nallowed]) == -1) {
			wlog(WLOG_ERROR, "fcgi: FCGI_WEB_SERVER_ADDRS: '%s' is not an "
			    "IPv4 or IPv6 address", tok);
			free(copy);
			errno = EINVAL;
			return -1;
		}
		nallowed++;
	}
	free(copy);
	return 0;
}

/* May the TCP peer SS talk to us?  Unix-socket peers always may. */
static bool
peer_allowed(const struct sockaddr_storage *ss)
{
	struct client_addr ca;
	size_t i;

	if (allowed == NULL)
		return true;
	if (ss->ss_family == AF_INET) {
		memset(ca.a, 0, 10);
		ca.a[10] = ca.a[11] = 0xff;
		memcpy(ca.a + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6)
		memcpy(ca.a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else
		return true;
	for (i = 0; i < nallowed; i++)
		if (memcmp(ca.a, allowed[i].a, 16) == 0)
			return true;
	return false;
}

static const char *
peer_name(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const void *a = ss->ss_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

/* Set up epoll, the connection table and the stop eventfd; see fcgi.h. */
int
fcgi_server_init(const struct fcgi_server_conf *conf)
{
	struct epoll_event ev;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct rlimit rl;
	int rc;

	srv.listen_fd = conf->listen_fd;
	srv.dropped = conf->dropped;
	srv.handoff = conf->handoff;
	srv.read_timeout_ms = conf->read_timeout_ms > 0 ? conf->read_timeout_ms : 30000;
	srv.keepalive_ms = conf->keepalive_timeout_ms > 0 ? conf->keepalive_timeout_ms : 75000;
	if (getsockname(srv.listen_fd, (struct sockaddr *)&ss, &sl) == 0)
		srv.tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
	if (srv.tcp && allowed_parse(conf->allowed_clients) == -1)
		return -1;

	/* Every fd number can be a connection: size the table to the fd limit. */
	srv.nslots = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > srv.nslots)
		srv.nslots = rl.rlim_cur > CONN_TABLE_MAX ? CONN_TABLE_MAX : (unsigned)rl.rlim_cur;
	if ((srv.slots = calloc(srv.nslots, sizeof(*srv.slots))) == NULL) {
		wlog(WLOG_ERROR, "fcgi: connection table: %s", strerror(errno));
		return -1;
	}
	srv.values.max_conns = srv.nslots - 16;
	srv.values.max_reqs = (unsigned)(conf->threads > 0 ? conf->threads : 1);

	if ((srv.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		wlog(WLOG_ERROR, "fcgi: epoll: %s", strerror(errno));
		return -1;
	}
	/* Level-triggered, not exclusive: a stop wakes every thread. */
	ev.events = EPOLLIN;
	ev.data.u64 = KEY_STOP;
	if (epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.stop_fd, &ev) == -1) {
		wlog(WLOG_ERROR, "fcgi: epoll_ctl stop fd: %s", strerror(errno));
		return -1;
	}
	/* Exclusive: the other workers of the pool wait on the same socket. */
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u64 = KEY_LISTEN;
	rc = epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.listen_fd, &ev);
	if (rc == -1 && errno == EINVAL) {	/* EPOLLEXCLUSIVE is Linux 4.5+ */
		ev.events = EPOLLIN;
		rc = epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.listen_fd, &ev);
	}
	if (rc == -1) {
		wlog(WLOG_ERROR, "fcgi: epoll_ctl listening socket: %s", strerror(errno));
		return -1;
	}
	/* Exclusive too: every worker of the pool receives from it. */
	if (srv.handoff != NULL) {
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u64 = KEY_HANDOFF;
		rc = epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.handoff->rx, &ev);
		if (rc == -1 && errno == EINVAL) {
			ev.events = EPOLLIN;
			rc = epoll_ctl(srv.ep, EPOLL_CTL_ADD, srv.handoff->rx, &ev);
		}
		if (rc == -1) {
			wlog(WLOG_ERROR, "fcgi: epoll_ctl hand-off socket: %s", strerror(errno));
			return -1;
		}
		if ((srv.watch_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
			wlog(WLOG_ERROR, "fcgi: eventfd: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Allocate a request thread's context; NULL on ENOMEM. */
struct conn *
fcgi_conn_new(void)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = -1;
	c->in = malloc(IN_SIZE);
	c->out = malloc(OUT_SIZE);
	c->pbuf = malloc(FCGI_PARAMS_MAX);
	c->params = calloc(FCGI_NPARAMS_MAX, sizeof(*c->params));
	if (c->in == NULL || c->out == NULL || c->pbuf == NULL || c->params == NULL) {
		fcgi_conn_free(c);
		return NULL;
	}
	c->req.conn = c;
	return c;
}

/* Free a context made by fcgi_conn_new() (its connection must be closed). */
void
fcgi_conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	free(c->in);
	free(c->out);
	free(c->pbuf);
	free(c->params);
	free(c);
}

/*
 * A pending slot stops being parked (taken or swept); lock held.  The
 * last one during a graceful stop wakes the threads to exit: they wait
 * on for pending connections, which a stop must not drop (see fcgi_stop).
 */
static void
pending_done_locked(struct slot *s)
{
	uint64_t one = 1;

	if (!s->pending)
		return;
	s->pending = false;
	if (--srv.npending == 0 && atomic_load(&srv.stopping) &&
	    write(srv.stop_fd, &one, sizeof(one)) == -1)
		wlog(WLOG_ERROR, "fcgi: stop eventfd: %s", strerror(errno));
}

static unsigned
pending_count(void)
{
	unsigned n;

	pthread_mutex_lock(&srv.lock);
	n = srv.npending;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static void sweep(bool all, bool idle);

/* Close the connection C holds, and forget it in the table. */
static void
conn_close(struct conn *c)
{
	struct slot *s;

	if (c->fd == -1)
		return;
	pthread_mutex_lock(&srv.lock);
	s = &srv.slots[c->fd];
	/* An fd shared with a forked child would stay in the epoll set. */
	if (s->registered)
		epoll_ctl(srv.ep, EPOLL_CTL_DEL, c->fd, NULL);
	s->registered = false;
	s->state = SLOT_FREE;
	s->gen++;
	pthread_mutex_unlock(&srv.lock);
	close(c->fd);
	c->fd = -1;
	c->in_pos = c->in_end = 0;
}

/*
 * Hand C's connection to epoll until it becomes readable or times out.
 * The epoll_ctl runs under the lock: once the lock is released, another
 * thread or the sweeper may own (and close) the fd.
 */
static void
conn_park(struct conn *c, uint64_t deadline_ms, bool linger, bool pending,
    struct partial *p)
{
	struct epoll_event ev;
	struct slot *s;
	int fd = c->fd, op;

	pthread_mutex_lock(&srv.lock);
	s = &srv.slots[fd];
	s->state = SLOT_IDLE;
	s->linger = linger;
	s->gen++;
	s->deadline_ms = deadline_ms;
	op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
	ev.data.u64 = (uint64_t)s->gen << 32 | (uint32_t)fd;
	if (epoll_ctl(srv.ep, op, fd, &ev) == -1) {
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&srv.lock);
		wlog_limited(&rl_accept, WLOG_WARNING, "fcgi: epoll_ctl: %s", strerror(errno));
		free(p);
		conn_close(c);
		return;
	}
	s->partial = p;
	s->registered = true;
	s->pending = pending;
	if (pending)
		srv.npending++;
	srv.nidle++;
	pthread_mutex_unlock(&srv.lock);
	c->fd = -1;
	c->in_pos = c->in_end = 0;
}

/*
 * Take the parked connection KEY names, if nobody was faster.  Returns
 * its fd (with *LINGER, *DEADLINE and *PARTIAL as it was parked; the
 * caller owns *PARTIAL now) or -1.
 */
static int
conn_take(uint64_t key, bool *linger, uint64_t *deadline, struct partial **partial)
{
	uint32_t fd = (uint32_t)key, gen = (uint32_t)(key >> 32);
	int ret = -1;

	pthread_mutex_lock(&srv.lock);
	if (fd < srv.nslots && srv.slots[fd].state == SLOT_IDLE &&
	    srv.slots[fd].gen == gen) {
		srv.slots[fd].state = SLOT_BUSY;
		*linger = srv.slots[fd].linger;
		*deadline = srv.slots[fd].deadline_ms;
		*partial = srv.slots[fd].partial;
		srv.slots[fd].partial = NULL;
		pending_done_locked(&srv.slots[fd]);
		srv.nidle--;
		ret = (int)fd;
	}
	pthread_mutex_unlock(&srv.lock);
	return ret;
}

/*
 * Read away whatever a lingering connection sent; close it at its end
 * (the peer closed: it has our whole answer) or park it again.
 */
static void
conn_linger_read(struct conn *c, uint64_t deadline)
{
	ssize_t n;

	while ((n = recv(c->fd, c->in, IN_SIZE, MSG_DONTWAIT)) > 0)
		;
	if (n == -1 && errno == EAGAIN && !atomic_load(&srv.stopping))
		conn_park(c, deadline, true, false, NULL);
	else
		conn_close(c);
}

static int
conn_accept(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char name[INET6_ADDRSTRLEN];
	int fd, one = 1;

	if ((fd = accept4(srv.listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC)) == -1) {
		switch (errno) {
		case EAGAIN:
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			break;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM: {
			/* The socket stays readable: pause instead of spinning. */
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			wlog_limited(&rl_accept, WLOG_WARNING,
			    "fcgi: accept: %s, pausing", strerror(errno));
			nanosleep(&ts, NULL);
			break;
		}
		default:
			wlog_limited(&rl_accept, WLOG_ERROR, "fcgi: accept: %s",
			    strerror(errno));
		}
		return -1;
	}
	if (srv.tcp && !peer_allowed(&ss)) {
		wlog_limited(&rl_refused, WLOG_WARNING, "fcgi: connection from %s refused: "
		    "not in listen_allowed_clients (FCGI_WEB_SERVER_ADDRS)",
		    peer_name(&ss, name, sizeof(name)));
		close(fd);
		return -1;
	}
	if ((unsigned)fd >= srv.nslots) {
		wlog_limited(&rl_accept, WLOG_WARNING,
		    "fcgi: fd %d beyond the connection table (%u), closing", fd, srv.nslots);
		close(fd);
		return -1;
	}
	if (srv.tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Its slot is FREE (the fd was closed): nobody else looks at it. */
	srv.slots[fd].timeouts = false;
	return fd;
}

/*
 * Before the first read or write on C's connection that may block: give
 * it read_timeout both ways.  Most requests never block (the request came
 * in one read, the answer fits the socket buffer), so most connections
 * never pay these two syscalls.  The slot is C's while it serves it.
 */
static void
conn_arm_timeouts(struct conn *c)
{
	struct slot *s = &srv.slots[c->fd];
	struct timeval tv;

	if (s->timeouts)
		return;
	tv.tv_sec = srv.read_timeout_ms / 1000;
	tv.tv_usec = (srv.read_timeout_ms % 1000) * 1000;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s->timeouts = true;
}

static void conn_restore(struct conn *c, const struct partial *p, uint64_t deadline);

/* ----------------------------------------------------------- hand-off */

/* Pass connection FD (ready with EVENTS) to the pool.  0, or -1 (EAGAIN: full). */
static int
handoff_send(int fd, uint32_t events)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = &events, .iov_len = sizeof(events) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(srv.handoff->tx, &m, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)sizeof(events) ? 0 : -1;
}

/*
 * Receive a connection another process of the pool passed: its fd (its
 * slot FREE, as after accept) with *EVENTS as epoll reported them there,
 * or -1 (another process was faster).
 */
static int
handoff_recv(uint32_t *events)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = events, .iov_len = sizeof(*events) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	n = recvmsg(srv.handoff->rx, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fd == -1 || n != (ssize_t)sizeof(*events) || (m.msg_flags & MSG_CTRUNC) ||
	    (unsigned)fd >= srv.nslots) {
		wlog_limited(&rl_accept, WLOG_WARNING, "fcgi: hand-off: a malformed "
		    "message or an fd beyond the connection table, dropped");
		if (fd != -1)
			close(fd);
		return -1;
	}
	srv.slots[fd].timeouts = false;
	return fd;
}

/*
 * EV, a connection's event (not a fixed key), was taken from epoll by the
 * watcher (fcgi_watch()) while every request thread of this process is
 * busy.  With PASS, a kept connection waiting for nothing but a thread
 * goes to the pool; any other goes back as it was, re-armed
 * (EPOLLONESHOT took it out).
 */
static void
handoff_or_rearm(const struct epoll_event *ev, bool pass)
{
	uint32_t fd = (uint32_t)ev->data.u64, gen = (uint32_t)(ev->data.u64 >> 32);
	struct epoll_event again = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
				     .data = ev->data };
	struct slot *s;

	if (fd >= srv.nslots)
		return;
	pthread_mutex_lock(&srv.lock);
	s = &srv.slots[fd];
	if (s->state != SLOT_IDLE || s->gen != gen) {
		pthread_mutex_unlock(&srv.lock);	/* swept or closed meanwhile */
		return;
	}
	if (pass && !s->linger && !s->pending && s->partial == NULL &&
	    handoff_send((int)fd, ev->events) == 0) {
		/* the message holds the connection now: forget our fd */
		epoll_ctl(srv.ep, EPOLL_CTL_DEL, (int)fd, NULL);
		s->registered = false;
		s->state = SLOT_FREE;
		s->gen++;
		srv.nidle--;
		close((int)fd);
		atomic_fetch_add(&nhandoffs, 1);
	} else
		epoll_ctl(srv.ep, EPOLL_CTL_MOD, (int)fd, &again);
	pthread_mutex_unlock(&srv.lock);
}

/*
 * A request thread just took work (with hand-off).  If that left no
 * thread of this process waiting, make sure the watcher runs
 * (fcgi_watch()): a request on one of our kept connections would
 * otherwise wait for one of ours.  Costs a syscall only when the watcher
 * was not running already.
 */
static void
watch_poke(void)
{
	uint64_t one = 1;

	if (atomic_load(&srv.nwaiting) == 0 &&
	    !atomic_load(&srv.watching) && !atomic_exchange(&srv.watching, true) &&
	    write(srv.watch_fd, &one, sizeof(one)) == -1)
		wlog(WLOG_ERROR, "fcgi: watch eventfd: %s", strerror(errno));
}

/*
 * Every request thread is busy: hand the kept connections that became
 * ready to the threads of other processes that wait for work, one each;
 * with none waiting, leave them (a saturated pool hands off nothing).
 */
static void
handoff_ready(void)
{
	struct epoll_event ev[16];
	unsigned idle;
	int i, n;

	if (atomic_load(&srv.stopping) || (idle = srv.handoff->idle_elsewhere()) == 0)
		return;
	/* room for the three level-triggered fixed keys besides */
	n = epoll_wait(srv.ep, ev, idle + 3 < 16 ? (int)idle + 3 : 16, 0);
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 >= KEY_HANDOFF)
			continue;	/* level-triggered: they come again */
		handoff_or_rearm(&ev[i], idle > 0);
		if (idle > 0)
			idle--;
	}
}

/*
 * Wait until C holds a connection with bytes to read.  A connection with
 * nothing to read yet (accepted before the peer wrote) gets FRESH_WAIT_MS,
 * then is parked rather than waited on, so a peer that connects and sends
 * nothing costs no thread.  Lingering connections met on the way are
 * read and closed here.  TIMEOUT_MS bounds each epoll wait (-1: none;
 * the fuzz target polls with 0).  Returns 0, or -1 when stopping or when
 * TIMEOUT_MS passed with nothing ready.
 */
static int
conn_wait_ms(struct conn *c, int timeout_ms)
{
	struct epoll_event ev;
	struct partial *p = NULL;
	uint64_t deadline = 0;
	bool linger = false;
	ssize_t n;
	int fd;

	for (;;) {
		if (atomic_load(&srv.stopping) && pending_count() == 0)
			return -1;
		p = NULL;
		/*
		 * Busy (the last accept found a connection waiting): accept
		 * again before asking epoll, which saves a syscall per request
		 * under load; every ACCEPT_STREAK_MAX accepts epoll has a turn,
		 * so parked connections that became readable are not starved.
		 */
		if (c->accept_hot && c->accept_streak < ACCEPT_STREAK_MAX &&
		    timeout_ms == -1 && !atomic_load(&srv.stopping)) {
			c->accept_streak++;
			ev.events = EPOLLIN;
			ev.data.u64 = KEY_LISTEN;
			if ((fd = conn_accept()) != -1)
				goto accepted;
			c->accept_hot = false;
		}
		if ((n = epoll_wait(srv.ep, &ev, 1, timeout_ms)) != 1) {
			if (n == 0)
				return -1;
			continue;
		}
		c->accept_streak = 0;
		if (ev.data.u64 == KEY_STOP) {
			uint64_t v;

			if (pending_count() == 0)
				return -1;
			/*
			 * Stopping, but connections wait for their request: serve
			 * them.  Consume the wakeup (level-triggered: it would spin);
			 * the last pending one to go writes it again.
			 */
			if (read(srv.stop_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
				wlog(WLOG_ERROR, "fcgi: stop eventfd: %s", strerror(errno));
			continue;
		}
		if (ev.data.u64 == KEY_LISTEN)
			c->accept_hot = (fd = conn_accept()) != -1;
		else if (ev.data.u64 == KEY_HANDOFF) {
			uint32_t events;

			/* a kept connection ready to read, as conn_take() gives one */
			fd = handoff_recv(&events);
			ev.events = events;	/* epoll_event is packed */
			linger = false;
		}
		else
			fd = conn_take(ev.data.u64, &linger, &deadline, &p);
		if (fd == -1)
			continue;
accepted:
		c->fd = fd;
		c->in_pos = c->in_end = 0;
		c->fresh = ev.data.u64 == KEY_LISTEN;
		c->events = ev.events;
		if (!c->fresh && linger) {
			conn_linger_read(c, deadline);
			continue;
		}
		if (!c->fresh && p != NULL) {
			/* The rest of a parked request: fill() reads what came. */
			conn_restore(c, p, deadline);
			free(p);
			return 0;
		}
		n = recv(fd, c->in, IN_SIZE, MSG_DONTWAIT);
		/*
		 * A web server writes right after connect(), but we often accept
		 * first: waiting a moment here is cheaper than a trip through epoll,
		 * and a silent peer costs a thread no more than FRESH_WAIT_MS.
		 */
		if (n == -1 && errno == EAGAIN && ev.data.u64 == KEY_LISTEN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (poll(&pfd, 1, FRESH_WAIT_MS) == 1)
				n = recv(fd, c->in, IN_SIZE, MSG_DONTWAIT);
		}
		if (n > 0) {
			c->in_end = (size_t)n;
			return 0;
		}
		/*
		 * A new connection stays parked even when stopping: the peer
		 * sends its request on it (nginx: EPIPE and a 502 if we close).
		 * A kept one with nothing of a next request may close then.
		 */
		if (n == -1 && (errno == EAGAIN || errno == EINTR) && c->fresh)
			conn_park(c, now_ms() + (uint64_t)srv.read_timeout_ms, false,
			    true, NULL);
		else if (n == -1 && (errno == EAGAIN || errno == EINTR) &&
		    !atomic_load(&srv.stopping))
			conn_park(c, now_ms() + (uint64_t)srv.keepalive_ms, false,
			    false, NULL);
		else
			conn_close(c);	/* the peer closed an idle connection: normal */
	}
}

/* ------------------------------------------------------------ reading */

/*
 * Make at least NEED (<= IN_SIZE) unread bytes available in c->in.
 * Returns 0, or -1 with errno: ECONNRESET (peer closed), ETIMEDOUT, other.
 * In the params phase it never blocks for long: after one short wait per
 * take (FRESH_WAIT_MS) it fails with EAGAIN, and the caller parks the
 * connection with what it has (a peer that dribbles pins no thread).
 */
static int
fill(struct conn *c, size_t need)
{
	ssize_t n;

	if (c->in_end - c->in_pos >= need)
		return 0;
	if (c->in_pos + need > IN_SIZE || c->in_pos == c->in_end) {
		memmove(c->in, c->in + c->in_pos, c->in_end - c->in_pos);
		c->in_end -= c->in_pos;
		c->in_pos = 0;
	}
	while (c->in_end - c->in_pos < need) {
		/* The clock is read only when a request did not come in one read. */
		if (c->in_params) {
			uint64_t now = now_ms();

			if (c->deadline_ms == 0)
				c->deadline_ms = now + (uint64_t)srv.read_timeout_ms;
			else if (now > c->deadline_ms) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		if (!c->nowait && !c->in_params)
			conn_arm_timeouts(c);
		n = recv(c->fd, c->in + c->in_end, IN_SIZE - c->in_end,
		    c->nowait || c->in_params ? MSG_DONTWAIT : 0);
		if (n > 0) {
			c->in_end += (size_t)n;
			continue;
		}
		if (n == 0)
			errno = ECONNRESET;
		else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN && c->in_params) {
			/* The rest is usually a moment away: cheaper than epoll. */
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

			if (!c->waited) {
				c->waited = true;
				if (poll(&pfd, 1, FRESH_WAIT_MS) == 1)
					continue;
			}
			errno = EAGAIN;
		} else if (errno == EAGAIN && !c->nowait)
			errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

/* fill(), with the usual case (all here already) decided without a call. */
static inline int
need(struct conn *c, size_t n)
{
	return c->in_end - c->in_pos >= n ? 0 : fill(c, n);
}

/* Read and throw away N bytes of the stream. */
static int
skip(struct conn *c, size_t n)
{
	size_t k;

	while (n > 0) {
		if (c->in_pos == c->in_end && fill(c, 1) == -1)
			return -1;
		k = c->in_end - c->in_pos;
		if (k > n)
			k = n;
		c->in_pos += k;
		n -= k;
	}
	return 0;
}

/*
 * Write all of IOV to C's connection, whatever the partial writes.  The
 * first try does not block; only if the socket buffer is full are the
 * timeouts armed and the rest written blocking.  Returns 0 or -1 (errno).
 */
static int
write_all(struct conn *c, struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { 0 };
	int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	ssize_t n;

	while (iovcnt > 0) {
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)iovcnt;
		if ((n = sendmsg(c->fd, &msg, flags)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && flags != MSG_NOSIGNAL) {
				flags = MSG_NOSIGNAL;
				conn_arm_timeouts(c);
				continue;
			}
			if (errno == EAGAIN)
				errno = ETIMEDOUT;
			return -1;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
			if (flags != MSG_NOSIGNAL) {	/* the buffer is full: block */
				flags = MSG_NOSIGNAL;
				conn_arm_timeouts(c);
			}
		}
	}
	return 0;
}

static int
send_bytes(struct conn *c, const void *p, size_t len)
{
	struct iovec iov = { (void *)p, len };

	return write_all(c, &iov, 1);
}

static int
send_end_request(struct conn *c, uint16_t id, uint32_t app_status, uint8_t ps)
{
	uint8_t rec[16];

	fcgi_end_request_build(rec, id, app_status, ps);
	return send_bytes(c, rec, sizeof(rec));
}

/*
 * Answer a management record (request id 0) whose header is H and whose
 * content and padding are in the buffer.  Consumes the record.
 */
static int
management(struct conn *c, const struct fcgi_header *h)
{
	uint8_t reply[256];
	ssize_t n;

	if (fill(c, FCGI_HEADER_LEN + h->content_len + h->padding_len) == -1)
		return -1;
	if (h->type == FCGI_GET_VALUES) {
		n = fcgi_get_values_build(c->in + c->in_pos + FCGI_HEADER_LEN,
		    h->content_len, &srv.values, reply, sizeof(reply));
		if (n == -1) {
			wlog_limited(&rl_proto, WLOG_WARNING,
			    "fcgi: malformed GET_VALUES record, closing");
			errno = EBADMSG;
			return -1;
		}
	} else
		n = (ssize_t)fcgi_unknown_type_build(reply, h->type);
	c->in_pos += FCGI_HEADER_LEN + h->content_len + h->padding_len;
	return send_bytes(c, reply, (size_t)n);
}

/*
 * Read the next record header into H, answering management records and
 * refusing a second request on the way.  Returns 0, or -1 (errno).
 */
static int
next_record(struct conn *c, struct fcgi_header *h, bool begun)
{
	for (;;) {
		if (need(c, FCGI_HEADER_LEN) == -1)
			return -1;
		if (fcgi_header_parse(c->in + c->in_pos, h) == -1) {
			wlog_limited(&rl_proto, WLOG_WARNING,
			    "fcgi: record version %u, not a FastCGI peer? closing", h->version);
			errno = EPROTO;
			return -1;
		}
		/*
		 * Params phase: a record is consumed only once it is all here
		 * (< IN_SIZE), so a request can stop between two records and be
		 * parked with the parser's state and no half-consumed record.
		 */
		if (c->in_params && need(c, FCGI_HEADER_LEN + (size_t)h->content_len +
		    h->padding_len) == -1)
			return -1;
		if (h->id == 0 && h->type >= FCGI_GET_VALUES) {
			if (management(c, h) == -1)
				return -1;
			continue;
		}
		/* One request per connection at a time (FCGI_MPXS_CONNS=0). */
		if (begun && h->type == FCGI_BEGIN_REQUEST && h->id != c->req.id) {
			c->in_pos += FCGI_HEADER_LEN;
			if (skip(c, (size_t)h->content_len + h->padding_len) == -1 ||
			    send_end_request(c, h->id, 0, FCGI_CANT_MPX_CONN) == -1)
				return -1;
			continue;
		}
		c->in_pos += FCGI_HEADER_LEN;
		return 0;
	}
}

static void
request_reset(struct conn *c, uint16_t id, bool keep)
{
	struct request *r = &c->req;

	r->id = id;
	r->keep_conn = keep;
	r->params = c->params;
	r->nparams = 0;
	r->content_length = 0;
	r->aborted = false;
	r->io_error = 0;
	r->app_status = 0;
	c->plen = 0;
	c->stdin_left = c->pad_left = 0;
	c->stdin_eof = false;
	c->broken = false;
	c->out_len = 0;
}

static long long
parse_content_length(const struct request *r)
{
	const char *v;
	size_t len, i;
	long long n = 0;

	if ((v = request_param(r, "CONTENT_LENGTH", &len)) == NULL || len == 0 || len > 18)
		return 0;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

/*
 * Read BEGIN_REQUEST and all PARAMS of the next request on C.  Returns 0
 * with c->req ready, 1 when the bytes so far do not complete them (park
 * the connection: c->in from c->in_pos holds at most one incomplete
 * record, c->begun and c->pbuf the state), or -1: the connection must be
 * closed (already logged if it was worth it).
 */
static int
read_records(struct conn *c)
{
	struct fcgi_header h;
	struct request *r = &c->req;
	const uint8_t *b;

	for (;;) {
		if (next_record(c, &h, c->begun) == -1)
			goto fail;
		switch (h.type) {
		case FCGI_BEGIN_REQUEST:
			if (c->begun || h.content_len < 8) {
				wlog_limited(&rl_proto, WLOG_WARNING,
				    "fcgi: malformed or repeated BEGIN_REQUEST, closing");
				return -1;
			}
			if (need(c, (size_t)h.content_len + h.padding_len) == -1)
				goto fail;
			b = c->in + c->in_pos;
			c->in_pos += (size_t)h.content_len + h.padding_len;
			if ((b[0] << 8 | b[1]) != FCGI_RESPONDER) {
				if (send_end_request(c, h.id, 0, FCGI_UNKNOWN_ROLE) == -1)
					goto fail;
				if (!(b[2] & FCGI_KEEP_CONN))
					return -1;
				continue;
			}
			request_reset(c, h.id, b[2] & FCGI_KEEP_CONN);
			c->begun = true;
			break;
		case FCGI_PARAMS:
			if (!c->begun || h.id != r->id) {
				if (skip(c, (size_t)h.content_len + h.padding_len) == -1)
					goto fail;
				break;
			}
			if (h.content_len == 0) {
				if (skip(c, h.padding_len) == -1)
					goto fail;
				goto params_done;
			}
			if (c->plen + h.content_len > FCGI_PARAMS_MAX) {
				wlog_limited(&rl_proto, WLOG_WARNING,
				    "fcgi: request params exceed %d bytes, refused",
				    FCGI_PARAMS_MAX);
				send_end_request(c, r->id, 0, FCGI_OVERLOADED);
				return -1;
			}
			if (need(c, (size_t)h.content_len + h.padding_len) == -1)
				goto fail;
			memcpy(c->pbuf + c->plen, c->in + c->in_pos, h.content_len);
			c->plen += h.content_len;
			c->in_pos += (size_t)h.content_len + h.padding_len;
			break;
		case FCGI_ABORT_REQUEST:
			if (skip(c, (size_t)h.content_len + h.padding_len) == -1)
				goto fail;
			if (c->begun && h.id == r->id) {
				/* Aborted before it ran: end it, keep the connection. */
				if (send_end_request(c, r->id, 0, FCGI_REQUEST_COMPLETE) == -1 ||
				    !r->keep_conn)
					return -1;
				c->begun = false;
			}
			break;
		case FCGI_STDIN:
			if (c->begun && h.id == r->id) {
				wlog_limited(&rl_proto, WLOG_WARNING,
				    "fcgi: STDIN before the end of PARAMS, closing");
				return -1;
			}
			/* a leftover of an aborted request: skip it */
			__attribute__((fallthrough));
		default:
			if (skip(c, (size_t)h.content_len + h.padding_len) == -1)
				goto fail;
		}
	}

params_done:
	c->begun = false;
	if (fcgi_params_parse(c->pbuf, c->plen, c->params, FCGI_NPARAMS_MAX,
	    &r->nparams) == -1) {
		if (errno == EMSGSIZE)
			wlog_limited(&rl_proto, WLOG_WARNING,
			    "fcgi: more than %d request params, refused", FCGI_NPARAMS_MAX);
		else
			wlog_limited(&rl_proto, WLOG_WARNING,
			    "fcgi: malformed request params, refused");
		send_end_request(c, r->id, 0, FCGI_OVERLOADED);
		return -1;
	}
	r->content_length = parse_content_length(r);
	return 0;

fail:
	if (errno == EAGAIN && c->in_params)
		return 1;	/* incomplete: the caller parks the connection */
	if (errno == ETIMEDOUT)
		wlog_limited(&rl_timeout, WLOG_WARNING,
		    "fcgi: peer sent an incomplete request within read_timeout (%ld ms), closing",
		    srv.read_timeout_ms);
	/* ECONNRESET (peer closed between requests) is normal; protocol
	 * errors were reported where they were found. */
	return -1;
}

/*
 * read_records() with the params-phase deadline armed: read_timeout from
 * the first read that had to wait, kept across parks.  0, 1 or -1 as
 * read_records().
 */
static int
read_request(struct conn *c)
{
	int rc;

	if (!c->resumed) {
		c->begun = false;
		c->deadline_ms = 0;
	}
	/* A parked request's peer is slow: no short wait, straight to epoll
	 * (a peer dribbling bytes costs a take per piece, never a sleep). */
	c->waited = c->resumed;
	c->resumed = false;
	c->in_params = true;
	rc = read_records(c);
	c->in_params = false;
	return rc;
}

/* Put the parked request P back into C (just taken, buffers empty). */
static void
conn_restore(struct conn *c, const struct partial *p, uint64_t deadline)
{
	if (p->begun) {
		request_reset(c, p->id, p->keep);
		memcpy(c->pbuf, p->data, p->plen);
		c->plen = p->plen;
	}
	c->begun = p->begun;
	memcpy(c->in, p->data + p->plen, p->ilen);
	c->in_pos = 0;
	c->in_end = p->ilen;
	c->deadline_ms = deadline;
	c->resumed = true;
}

/*
 * Park C's incomplete request with its connection: the params gathered
 * and the unparsed bytes move to a buffer of their own (at most
 * FCGI_PARAMS_MAX + one record), the thread's buffers stay its own.
 * Closed by the sweeper at the request's deadline.
 */
static void
conn_park_partial(struct conn *c)
{
	size_t plen = c->begun ? c->plen : 0, ilen = c->in_end - c->in_pos;
	struct partial *p = NULL;

	if (c->begun || ilen > 0) {
		if ((p = malloc(sizeof(*p) + plen + ilen)) == NULL) {
			wlog_limited(&rl_accept, WLOG_WARNING,
			    "fcgi: no memory to park an incomplete request, closing");
			conn_close(c);
			return;
		}
		p->id = c->req.id;
		p->begun = c->begun;
		p->keep = c->req.keep_conn;
		p->plen = (uint32_t)plen;
		p->ilen = (uint32_t)ilen;
		memcpy(p->data, c->pbuf, plen);
		memcpy(p->data + plen, c->in + c->in_pos, ilen);
	}
	/* fill() armed the deadline before the read that would block */
	conn_park(c, c->deadline_ms != 0 ? c->deadline_ms :
	    now_ms() + (uint64_t)srv.read_timeout_ms, false, true, p);
}

/* Is the peer of C's complete request gone?  See fcgi_next(). */
static bool
peer_gone(struct conn *c)
{
	uint32_t ev = c->events;
	size_t pos;

	if (c->fresh) {
		/* Accepted, not seen by epoll: one look costs a syscall. */
		struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

		if (poll(&pfd, 1, 0) != 1)
			return false;
		ev = (uint32_t)pfd.revents;	/* POLL* == EPOLL* bits on Linux */
	}
	if (!(ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		return false;
	/* Unix: HUP is both directions shut, nobody can read an answer.
	 * TCP: HUP or ERR without our own shutdown is a reset. */
	if (ev & (EPOLLHUP | EPOLLERR))
		return true;
	if (!srv.tcp)
		return false;
	/*
	 * A TCP FIN is only a half-close: the peer might still read.  No
	 * FastCGI web server half-closes while it waits for an answer, but
	 * drop only a request whose body is all here (its empty STDIN).
	 */
	for (pos = c->in_pos; pos + FCGI_HEADER_LEN <= c->in_end; ) {
		struct fcgi_header h;

		if (fcgi_header_parse(c->in + pos, &h) == -1)
			return false;
		if (h.type == FCGI_STDIN && h.id == c->req.id && h.content_len == 0)
			return true;
		pos += FCGI_HEADER_LEN + (size_t)h.content_len + h.padding_len;
	}
	return false;
}

/* Drop C's request, whose peer is gone: nobody can read an answer. */
static void
drop(struct conn *c)
{
	const char *uri;
	size_t len = 0;

	atomic_fetch_add(&ndropped, 1);
	if (srv.dropped != NULL)
		atomic_fetch_add(srv.dropped, 1);
	if ((uri = request_param(&c->req, "REQUEST_URI", &len)) == NULL)
		uri = "";
	wlog_limited(&rl_gone, WLOG_NOTICE, "fcgi: request %.*s dropped without "
	    "running it: the web server had closed the connection (its client gave up)",
	    (int)(len > 200 ? 200 : len), uri);
	conn_close(c);
}

/* Requests dropped because the peer was gone; see fcgi.h. */
unsigned long
fcgi_dropped_count(void)
{
	return atomic_load(&ndropped);
}

/*
 * conn_wait_ms() for a request thread, counted in srv.nwaiting for the
 * watcher (with hand-off): the thread is free while it waits.
 */
static int
wait_for_work(struct conn *c)
{
	int rc;

	if (srv.handoff == NULL)
		return conn_wait_ms(c, -1);
	atomic_fetch_add(&srv.nwaiting, 1);
	rc = conn_wait_ms(c, -1);
	atomic_fetch_sub(&srv.nwaiting, 1);
	if (rc == 0)
		watch_poke();
	return rc;
}

/*
 * Wait for C to hold a request; see fcgi.h.  A request complete whose
 * peer already closed (nginx closes its upstream connection when the
 * client gives up while the request waits in the listen queue) is
 * dropped: the app would run for nobody.
 */
struct request *
fcgi_next(struct conn *c)
{
	for (;;) {
		/* Stopping: bytes of a next request already here are served too. */
		if (c->fd == -1 && wait_for_work(c) == -1)
			return NULL;
		switch (read_request(c)) {
		case 0:
			if (!peer_gone(c))
				return &c->req;
			drop(c);
			break;
		case 1:
			/* Even when stopping: the peer is sending the rest. */
			conn_park_partial(c);
			break;
		default:
			conn_close(c);
		}
	}
}

static int
io_fail(struct request *r, int err)
{
	if (r->io_error == 0)
		r->io_error = err;
	if (err != ETIMEDOUT)
		r->aborted = true;
	r->conn->broken = true;
	return -1;
}

/* Advance to the next STDIN record of R. Returns 0 or -1 (r->io_error set). */
static int
next_stdin(struct request *r)
{
	struct conn *c = r->conn;
	struct fcgi_header h;

	if (skip(c, c->pad_left) == -1)
		return io_fail(r, errno);
	c->pad_left = 0;
	for (;;) {
		if (next_record(c, &h, true) == -1)
			return io_fail(r, errno);
		if (h.id == r->id && h.type == FCGI_STDIN) {
			c->stdin_left = h.content_len;
			c->pad_left = h.padding_len;
			if (h.content_len == 0) {
				c->stdin_eof = true;
				if (skip(c, h.padding_len) == -1)
					return io_fail(r, errno);
				c->pad_left = 0;
			}
			return 0;
		}
		if (skip(c, (size_t)h.content_len + h.padding_len) == -1)
			return io_fail(r, errno);
		if (h.id == r->id && h.type == FCGI_ABORT_REQUEST) {
			r->aborted = true;
			c->stdin_eof = true;
			if (r->io_error == 0)
				r->io_error = ECONNABORTED;
			return -1;
		}
		if (h.id == r->id && h.type == FCGI_BEGIN_REQUEST) {
			c->broken = true;
			return io_fail(r, EPROTO);
		}
	}
}

/* Read up to LEN bytes of the body; see worker.h. */
ssize_t
request_read(struct request *r, void *buf, size_t len)
{
	struct conn *c = r->conn;
	size_t n, avail;
	ssize_t k;

	if (r->io_error)
		return -1;
	if (len == 0)
		return 0;
	while (c->stdin_left == 0) {
		if (c->stdin_eof)
			return 0;
		if (next_stdin(r) == -1)
			return -1;
	}
	n = len < c->stdin_left ? len : c->stdin_left;
	avail = c->in_end - c->in_pos;
	if (avail == 0 && n >= DIRECT_READ_MIN) {
		/* Big bodies go straight to the caller: no copy. */
		conn_arm_timeouts(c);
		for (;;) {
			k = read(c->fd, buf, n);
			if (k > 0)
				break;
			if (k == -1 && errno == EINTR)
				continue;
			return io_fail(r, k == 0 ? ECONNRESET :
			    errno == EAGAIN ? ETIMEDOUT : errno);
		}
		n = (size_t)k;
	} else {
		if (avail == 0) {
			if (fill(c, 1) == -1)
				return io_fail(r, errno);
			avail = c->in_end - c->in_pos;
		}
		if (n > avail)
			n = avail;
		memcpy(buf, c->in + c->in_pos, n);
		c->in_pos += n;
	}
	c->stdin_left -= n;
	return (ssize_t)n;
}

/* ------------------------------------------------------------ writing */

/* Send the gathered STDOUT content as one record. */
static int
out_send(struct request *r)
{
	struct conn *c = r->conn;

	if (c->out_len == 0)
		return 0;
	fcgi_header_build(c->out, FCGI_STDOUT, r->id, (uint16_t)c->out_len, 0);
	if (send_bytes(c, c->out, FCGI_HEADER_LEN + c->out_len) == -1)
		return io_fail(r, errno);
	c->out_len = 0;
	return 0;
}

/*
 * Send what was gathered and LEN bytes at P, uncopied, as STDOUT records
 * of up to OUT_MAX (the first one carries the gathered bytes, usually the
 * headers, and the start of P's), in as few writevs as WRITEV_RECORDS
 * allow.  END: P ends the response; the end of the stream and END_REQUEST
 * go in the last writev.  Otherwise a tail under DIRECT_WRITE_MIN is
 * gathered for the next write instead of becoming a small record.
 */
static int
write_records(struct request *r, const uint8_t *p, size_t len, bool end)
{
	struct conn *c = r->conn;
	uint8_t hdr[WRITEV_RECORDS][FCGI_HEADER_LEN];
	uint8_t trailer[FCGI_HEADER_LEN + 16];
	struct iovec iov[WRITEV_RECORDS * 2 + 1];
	size_t n, min = end ? 1 : DIRECT_WRITE_MIN;
	bool last = false;
	int i, k;

	while (!last && (len >= min || c->out_len > 0 || end)) {
		i = k = 0;
		if (c->out_len > 0) {
			n = OUT_MAX - c->out_len;
			if (n > len)
				n = len;
			fcgi_header_build(c->out, FCGI_STDOUT, r->id,
			    (uint16_t)(c->out_len + n), 0);
			iov[k].iov_base = c->out;
			iov[k++].iov_len = FCGI_HEADER_LEN + c->out_len;
			iov[k].iov_base = (void *)p;
			iov[k++].iov_len = n;
			p += n;
			len -= n;
			i++;
		}
		for (; i < WRITEV_RECORDS && len >= min; i++) {
			n = len < OUT_MAX ? len : OUT_MAX;
			fcgi_header_build(hdr[i], FCGI_STDOUT, r->id, (uint16_t)n, 0);
			iov[k].iov_base = hdr[i];
			iov[k++].iov_len = FCGI_HEADER_LEN;
			iov[k].iov_base = (void *)p;
			iov[k++].iov_len = n;
			p += n;
			len -= n;
		}
		if (end && len == 0) {
			fcgi_header_build(trailer, FCGI_STDOUT, r->id, 0, 0);
			fcgi_end_request_build(trailer + FCGI_HEADER_LEN, r->id,
			    (uint32_t)r->app_status, FCGI_REQUEST_COMPLETE);
			iov[k].iov_base = trailer;
			iov[k++].iov_len = sizeof(trailer);
			last = true;
		}
		c->out_len = 0;
		if (k > 0 && write_all(c, iov, k) == -1)
			return io_fail(r, errno);
		if (!end && len < min)
			break;
	}
	if (len > 0) {
		memcpy(c->out + FCGI_HEADER_LEN, p, len);
		c->out_len = len;
	}
	return 0;
}

/*
 * Append LEN bytes to the response; see worker.h.  Small writes are
 * gathered into c->out (sent when full, or at the end with END_REQUEST);
 * a write of DIRECT_WRITE_MIN or more goes out now, uncopied.
 */
int
request_write(struct request *r, const void *buf, size_t len)
{
	struct conn *c = r->conn;
	const uint8_t *p = buf;
	size_t n;

	if (r->io_error)
		return -1;
	if (len >= DIRECT_WRITE_MIN)
		return write_records(r, p, len, false);
	n = OUT_MAX - c->out_len;
	if (n > len)
		n = len;
	memcpy(c->out + FCGI_HEADER_LEN + c->out_len, p, n);
	c->out_len += n;
	p += n;
	len -= n;
	if (c->out_len == OUT_MAX && out_send(r) == -1)
		return -1;
	if (len > 0) {		/* less than DIRECT_WRITE_MIN: fits */
		memcpy(c->out + FCGI_HEADER_LEN, p, len);
		c->out_len = len;
	}
	return 0;
}

/* Will request_write(R, .., LEN) only copy (no I/O)?  See worker.h. */
bool
request_write_is_buffered(const struct request *r, size_t len)
{
	return len < DIRECT_WRITE_MIN && r->conn->out_len + len < OUT_MAX;
}

/* The response's last bytes, with its end, in one write; see worker.h. */
int
request_write_last(struct request *r, const void *buf, size_t len)
{
	if (r->io_error)
		return -1;
	if (write_records(r, buf, len, true) == -1)
		return -1;
	r->conn->ended = true;
	return 0;
}

/* Send what request_write() gathered; see worker.h. */
int
request_flush(struct request *r)
{
	if (r->io_error)
		return -1;
	return out_send(r);
}

/*
 * Look up a param by NUL-terminated NAME; see worker.h.  A name sent twice
 * (two fastcgi_param lines) has its last value, as in the environ, whose
 * dict keeps the last: wsgi.input must stop where the app's CONTENT_LENGTH
 * says (fuzz_environ found the first and the last disagreeing).
 */
const char *
request_param(const struct request *r, const char *name, size_t *len)
{
	size_t i, nl = strlen(name);

	for (i = r->nparams; i-- > 0; )
		if (r->params[i].name_len == nl &&
		    memcmp(r->params[i].name, name, nl) == 0) {
			if (len != NULL)
				*len = r->params[i].value_len;
			return r->params[i].value;
		}
	return NULL;
}

/* Answer R without the application; see fcgi.h. */
int
fcgi_respond(struct request *r, const char *status, const char *body)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
	    "Status: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n\r\n", status, strlen(body));
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (request_write(r, head, (size_t)n) == -1 ||
	    request_write(r, body, strlen(body)) == -1)
		return -1;
	return 0;
}

/*
 * Read away the body the application left, up to its end: closing a
 * socket with unread bytes resets it, and the peer may lose our answer
 * (nginx: "readv() failed (104: Connection reset by peer)", a 502).
 * 0, or -1 when the stream broke or took longer than DRAIN_MS.
 */
static int
drain_stdin(struct request *r)
{
	struct conn *c = r->conn;
	uint64_t deadline = 0;

	for (;;) {
		while (c->stdin_left == 0) {
			if (c->stdin_eof)
				return 0;
			if (next_stdin(r) == -1)
				return -1;
		}
		/* Usually all here already; a big unread upload gets a time budget. */
		if (deadline == 0)
			deadline = now_ms() + DRAIN_MS;
		else if (now_ms() > deadline)
			return -1;
		if (skip(c, c->stdin_left) == -1)
			return io_fail(r, errno);
		c->stdin_left = 0;
	}
}

/* Finish R; see fcgi.h. */
void
fcgi_end(struct request *r, int rc)
{
	struct conn *c = r->conn;
	bool ended = c->ended;
	uint8_t *p;
	size_t start, len;

	c->ended = false;
	if (c->broken) {
		conn_close(c);
		return;
	}
	/* request_write_last() sent the end: whatever failed after it (the
	 * app's close()) cannot take back an answer already complete. */
	if (ended)
		goto sent;
	/* ABORT_REQUEST received: the request ends with END_REQUEST as usual. */
	if (rc == -1 && r->io_error != ECONNABORTED) {
		/* No END_REQUEST: the web server must see the response as cut short. */
		out_send(r);
		conn_close(c);
		return;
	}
	/* Last STDOUT record, empty STDOUT (end of stream), END_REQUEST: one write. */
	p = c->out + FCGI_HEADER_LEN + c->out_len;
	start = c->out_len > 0 ? 0 : FCGI_HEADER_LEN;
	if (c->out_len > 0)
		fcgi_header_build(c->out, FCGI_STDOUT, r->id, (uint16_t)c->out_len, 0);
	fcgi_header_build(p, FCGI_STDOUT, r->id, 0, 0);
	fcgi_end_request_build(p + FCGI_HEADER_LEN, r->id, (uint32_t)r->app_status,
	    FCGI_REQUEST_COMPLETE);
	len = FCGI_HEADER_LEN + c->out_len + FCGI_HEADER_LEN + 16 - start;
	c->out_len = 0;
	if (send_bytes(c, c->out + start, len) == -1) {
		conn_close(c);
		return;
	}
sent:
	if (r->keep_conn && !atomic_load(&srv.stopping)) {
		/* The peer sends the whole body to keep the connection: read it. */
		if (!r->aborted && drain_stdin(r) == -1) {
			conn_close(c);
			return;
		}
	} else if (!r->aborted && !c->stdin_eof) {
		/*
		 * Closing with unread bytes resets the socket, and the peer may
		 * lose the answer (nginx: "readv() failed (104: Connection reset
		 * by peer)", a 502); a peer still sending (Apache sends the empty
		 * STDIN late) fails with EPIPE.  Read what is there.  If the body
		 * is not all here (nginx stops sending it once it has the answer,
		 * and waits for our close), send our end of stream and linger in
		 * epoll until the peer closes: no thread waits for it.
		 */
		c->nowait = true;
		if (drain_stdin(r) == -1 && r->io_error == EAGAIN) {
			c->nowait = false;
			shutdown(c->fd, SHUT_WR);
			conn_park(c, now_ms() + (uint64_t)(srv.read_timeout_ms < LINGER_MS ?
			    srv.read_timeout_ms : LINGER_MS), true, false, NULL);
			return;
		}
		c->nowait = false;
	}
	if (!r->keep_conn || atomic_load(&srv.stopping)) {
		conn_close(c);
		return;
	}
	/* Bytes of the next request already here: serve them without epoll. */
	if (c->in_pos < c->in_end)
		return;
	conn_park(c, now_ms() + (uint64_t)srv.keepalive_ms, false, false, NULL);
}

/* Graceful stop; see fcgi.h. */
void
fcgi_stop(void)
{
	uint64_t one = 1;

	if (atomic_exchange(&srv.stopping, true))
		return;
	if (srv.ep != -1)
		epoll_ctl(srv.ep, EPOLL_CTL_DEL, srv.listen_fd, NULL);
	if (srv.ep != -1 && srv.handoff != NULL)
		epoll_ctl(srv.ep, EPOLL_CTL_DEL, srv.handoff->rx, NULL);
	sweep(false, true);
	if (srv.stop_fd != -1 && write(srv.stop_fd, &one, sizeof(one)) == -1)
		wlog(WLOG_ERROR, "fcgi: stop eventfd: %s", strerror(errno));
}

/* The watcher's wake-up fd, -1 without hand-off; see fcgi.h. */
int
fcgi_watch_fd(void)
{
	return srv.watch_fd;
}

/*
 * The watcher, on the main thread; see fcgi.h.  While every request
 * thread is busy it hands off, every FCGI_WATCH_MS, the kept connections
 * that became ready to idle threads elsewhere.  It stops after
 * WATCH_LINGER looks in a row found a thread waiting (restarted by the
 * next watch_poke()): under steady load it keeps ticking instead of
 * being stopped and poked again every few requests.  Cleared, then
 * checked again: a thread that found it running just before it stopped
 * did not poke.
 */
int
fcgi_watch(void)
{
	uint64_t v;

	if (srv.handoff == NULL)
		return -1;
	if (read(srv.watch_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		wlog(WLOG_ERROR, "fcgi: watch eventfd: %s", strerror(errno));
	if (!atomic_load(&srv.watching))
		return -1;
	if (atomic_load(&srv.nwaiting) == 0) {
		srv.watch_free_looks = 0;
		handoff_ready();
		return FCGI_WATCH_MS;
	}
	if (++srv.watch_free_looks < WATCH_LINGER)
		return FCGI_WATCH_MS;
	srv.watch_free_looks = 0;
	atomic_store(&srv.watching, false);
	if (atomic_load(&srv.nwaiting) == 0 && !atomic_exchange(&srv.watching, true))
		return FCGI_WATCH_MS;
	return -1;
}

/* Connections handed off to another process; see fcgi.h. */
unsigned long
fcgi_handoff_count(void)
{
	return atomic_load(&nhandoffs);
}

/*
 * Close parked connections: those past their deadline, or ALL, or (IDLE)
 * every one not pending, i.e. kept between requests or lingering.
 */
static void
sweep(bool all, bool idle)
{
	uint64_t now = now_ms();
	unsigned i, partials = 0;

	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < srv.nslots && srv.nidle > 0; i++) {
		struct slot *s = &srv.slots[i];

		if (s->state != SLOT_IDLE ||
		    (!all && now < s->deadline_ms && !(idle && !s->pending)))
			continue;
		epoll_ctl(srv.ep, EPOLL_CTL_DEL, (int)i, NULL);
		close((int)i);
		if (s->partial != NULL) {
			free(s->partial);
			s->partial = NULL;
			partials++;
		}
		pending_done_locked(s);
		s->state = SLOT_FREE;
		s->registered = false;
		s->gen++;
		srv.nidle--;
	}
	pthread_mutex_unlock(&srv.lock);
	if (partials > 0 && !all)
		wlog_limited(&rl_timeout, WLOG_WARNING, "fcgi: %u peer(s) sent an incomplete "
		    "request within read_timeout (%ld ms), closing", partials,
		    srv.read_timeout_ms);
}

/* Close idle connections past their timeout (or all); see fcgi.h. */
void
fcgi_sweep(bool all)
{
	sweep(all, false);
}

/* Parked connections a graceful stop waits for; see fcgi.h. */
unsigned
fcgi_pending_count(void)
{
	return pending_count();
}

/* Connections currently parked idle in epoll. */
unsigned
fcgi_idle_count(void)
{
	unsigned n;

	pthread_mutex_lock(&srv.lock);
	n = srv.nidle;
	pthread_mutex_unlock(&srv.lock);
	return n;
}
