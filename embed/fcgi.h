/*
 * fcgi.h - the FastCGI layer's interface to the host (main.c) and to the
 * unit tests.  The gateway never includes this: it sees a request only
 * through struct request and request_*() in worker.h.
 *
 * Two parts:
 *   - a pure protocol core (record headers, name-value pairs, management
 *     replies) with no I/O, so tests can feed it any bytes;
 *   - the server: one epoll per process holding the listening socket and
 *     every idle kept-alive connection, and one struct conn per request
 *     thread that holds the connection it is serving and its buffers.
 */
#ifndef FCGI_PM_FCGI_H
#define FCGI_PM_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "embed/worker.h"

/* FastCGI 1.0 record types, roles, flags and protocol statuses. */
#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_STDERR		7
#define FCGI_DATA		8
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11

#define FCGI_RESPONDER		1
#define FCGI_KEEP_CONN		1

#define FCGI_REQUEST_COMPLETE	0
#define FCGI_CANT_MPX_CONN	1
#define FCGI_OVERLOADED		2
#define FCGI_UNKNOWN_ROLE	3

#define FCGI_HEADER_LEN		8
#define FCGI_CONTENT_MAX	65535

/*
 * Limits on what a peer may send us.  The params of one request are kept
 * in a per-thread buffer of FCGI_PARAMS_MAX bytes; nginx's own header
 * limits (large_client_header_buffers 4 x 8k) stay well below it.
 */
#define FCGI_PARAMS_MAX		(64 * 1024)
#define FCGI_NPARAMS_MAX	1000

struct fcgi_header {
	uint8_t version;
	uint8_t type;
	uint16_t id;
	uint16_t content_len;
	uint8_t padding_len;
};

/* What GET_VALUES answers. */
struct fcgi_values {
	unsigned max_conns;
	unsigned max_reqs;
};

/* Decode the 8-byte header at P.  Returns 0, or -1 if the version is not 1. */
int fcgi_header_parse(const uint8_t *p, struct fcgi_header *h);

/* Encode a record header at P (8 bytes). */
void fcgi_header_build(uint8_t *p, uint8_t type, uint16_t id, uint16_t clen,
    uint8_t plen);

/* Encode a whole END_REQUEST record at P; returns its size (16). */
size_t fcgi_end_request_build(uint8_t *p, uint16_t id, uint32_t app_status,
    uint8_t protocol_status);

/* Encode a whole UNKNOWN_TYPE record at P; returns its size (16). */
size_t fcgi_unknown_type_build(uint8_t *p, uint8_t type);

/*
 * Split LEN bytes of name-value pairs at BUF into OUT (at most MAX
 * entries); the entries point into BUF.  Returns 0 and sets *NP, or -1
 * (errno EMSGSIZE: more than MAX pairs; EBADMSG: a length runs past the
 * end of BUF).
 */
int fcgi_params_parse(const uint8_t *buf, size_t len, struct fcgi_param *out,
    size_t max, size_t *np);

/*
 * Build the whole GET_VALUES_RESULT record answering the GET_VALUES
 * content Q (QLEN bytes) into OUT (OUTSZ bytes).  Known names
 * (FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS) are answered once each,
 * in the order asked; unknown names are left out, as the spec says.
 * Returns the record size, or -1 if Q is malformed or OUT too small.
 */
ssize_t fcgi_get_values_build(const uint8_t *q, size_t qlen,
    const struct fcgi_values *v, uint8_t *out, size_t outsz);

/* -------------------------------------------------------------- server */

/*
 * Hand-off between the worker processes of one pool: a kept connection
 * that became readable while every thread of its process is busy goes,
 * through a socket pair shared by the pool, to a thread of another
 * process that waits for work (see fcgi_watch()).
 */
struct fcgi_handoff {
	int tx, rx;			/* the pool's socket pair: send on tx, receive on rx */
	/* threads of the pool's other processes waiting for work (the scoreboard) */
	unsigned (*idle_elsewhere)(void);
};

/* How often the watcher looks while every request thread is busy. */
#define FCGI_WATCH_MS	5

struct fcgi_server_conf {
	int listen_fd;			/* non-blocking listening socket */
	int threads;			/* request threads (FCGI_MAX_REQS) */
	long read_timeout_ms;		/* a stalled peer is dropped after this */
	long keepalive_timeout_ms;	/* an idle kept connection is closed after this */
	const char *allowed_clients;	/* TCP peers allowed, "addr,addr" (FCGI_WEB_SERVER_ADDRS); NULL = any */
	_Atomic uint64_t *dropped;	/* also counts fcgi_dropped_count() here (scoreboard), or NULL */
	const struct fcgi_handoff *handoff;	/* NULL: no other process to hand off to */
};

/*
 * Set up the process-wide epoll, the connection table and the stop
 * eventfd.  Call once, before any request thread.  Returns 0, or -1
 * after logging why (errno EINVAL: a bad address in allowed_clients).
 */
int fcgi_server_init(const struct fcgi_server_conf *conf);

/* Allocate a request thread's context (buffers included), NULL on ENOMEM. */
struct conn *fcgi_conn_new(void);
void fcgi_conn_free(struct conn *c);

/*
 * Wait for the next request on C: a new connection, an idle kept
 * connection that became readable, a parked incomplete request whose
 * next bytes came, or the next request pipelined on the connection C is
 * holding.  Reads the BEGIN_REQUEST and all PARAMS; the body is left for
 * request_read().  A request whose params do not come whole is parked
 * in epoll with its bytes (no thread waits for a slow peer), and one
 * whose peer is already gone is dropped (fcgi_dropped_count()).  Returns
 * NULL once fcgi_stop() was called and no connection new or holding part
 * of a request is left parked (see fcgi_stop()).  Never holds a lock
 * while blocked.
 */
struct request *fcgi_next(struct conn *c);

/*
 * Finish R: send the gathered output and END_REQUEST (one write when it
 * fits), then close the connection, or, when the peer asked to keep it
 * and all went well, drain unread STDIN and hand it back to epoll.
 * RC is wsgi_handle()'s result: -1 closes without END_REQUEST.
 */
void fcgi_end(struct request *r, int rc);

/* Answer R without the application: a complete CGI response. */
int fcgi_respond(struct request *r, const char *status, const char *body);

/*
 * Graceful stop: no more accepting, close the connections kept idle
 * between requests, wake every thread waiting in fcgi_next(); requests
 * in flight finish and their connections close.  Connections accepted
 * but silent yet, or holding part of a request, are still served: the
 * threads return NULL from fcgi_next() once none is left (the sweeper
 * closes them at their read_timeout deadline).  Call from any thread
 * holding no connection lock (a request thread at max_requests does).
 */
void fcgi_stop(void);

/*
 * Close parked connections past their deadline (or all of them if ALL):
 * idle kept ones after the keep-alive timeout, new silent ones and
 * incomplete requests read_timeout after their first byte, lingering
 * ones.  The main thread calls it periodically.
 */
void fcgi_sweep(bool all);

/* Parked connections new or holding part of a request (a stop waits). */
unsigned fcgi_pending_count(void);

/* Connections currently parked in epoll (for tests and status). */
unsigned fcgi_idle_count(void);

/*
 * Requests read completely but dropped without running the app, because
 * the web server had already closed the connection (its client gave up
 * while the request waited in the queue).  Since the process started.
 */
unsigned long fcgi_dropped_count(void);

/* Kept connections this process handed off to another of its pool. */
unsigned long fcgi_handoff_count(void);

/*
 * The watcher, for the main thread (with a hand-off pair; without, the
 * fd is -1 and fcgi_watch() returns -1).  Poll fcgi_watch_fd() for
 * reading and call fcgi_watch() after every poll: it hands off the kept
 * connections that wait while every request thread is busy, and returns
 * the poll timeout it needs in ms (FCGI_WATCH_MS while it watches), or
 * -1 when it needs none until fcgi_watch_fd() wakes it.
 */
int fcgi_watch_fd(void);
int fcgi_watch(void);

/* ------------------------------------------------------------- log.c */

/* wlog_limited() and struct wlog_ratelimit: worker.h (the gateway uses them too). */

/* Set the most verbose level written (default WLOG_NOTICE). */
void wlog_set_level(enum wlog_level l);

#endif
