/*
 * worker.h - fcgi-pm-worker's internal header: one section per source file.
 *
 * The worker is split at one narrow boundary:
 *   - the C host (main.c, fcgi.c) owns processes, threads, sockets and the
 *     FastCGI protocol; it never includes Python.h;
 *   - the gateway (python.c, wsgi.c, stream.c) owns the interpreter and
 *     PEP 3333; it sees a request only through the struct request API below.
 *
 * Threads: every request thread calls python_thread_begin() once, then for
 * each request wsgi_handle(), which takes the GIL on entry and gives it back
 * on return; wsgi_handle releases the GIL around every request_read(),
 * request_flush(), request_write_last() and every request_write() that
 * may block (request_write_is_buffered() says which do not).
 */
#ifndef FCGI_PM_WORKER_H
#define FCGI_PM_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ main.c */

/* The worker's command line, parsed once; read-only afterwards. */
struct worker_opts {
	const char *module;		/* --module "pkg.mod:callable" (required) */
	const char *pool;		/* --pool NAME, for log lines ("-" standalone) */
	const char *chdir;		/* --chdir DIR */
	const char *virtualenv;		/* --virtualenv DIR */
	const char *script_name;	/* --script-name /prefix (mount point override) */
	const char **python_path;	/* --python-path DIR, repeatable; NULL-terminated */
	int threads;			/* --threads N (default 1) */
	long max_requests;		/* --max-requests N (0 = unlimited) */
	long max_rss_kb;		/* --max-rss KB (0 = unlimited) */
	long read_timeout_ms;		/* --read-timeout MS */
	long keepalive_timeout_ms;	/* --keepalive-timeout MS */
	long queue_timeout_ms;		/* --queue-timeout MS (0 = off) */
	int scoreboard_fd;		/* --scoreboard FD:SLOT, -1 = none */
	int scoreboard_slot;
	int slowlog_fd;			/* --slowlog-fd FD, -1 = none */
	int preload_fd;			/* --preload=FD control socket, -1 = not preload */
	bool multiprocess;		/* true under fcgi-pm (wsgi.multiprocess) */
};

extern const struct worker_opts *worker_opts;

/* --------------------------------------------------------------- preload.c */

/*
 * Preload mode (--preload=FD): load the app once (python_init), tell the
 * master on control socket FD, then fork one worker per command from the
 * master.  Returns only in a new worker, with OPTS->scoreboard_slot and
 * max_requests set and fds 1 and 2 on the worker's own output pipe; the
 * worker goes on as any other (scoreboard, threads, serve).  Otherwise
 * exits: 3 if the app cannot be loaded or started threads, 0 when told to
 * stop (TERM, INT, QUIT) or when the master closes the socket.  SIG_FD is
 * the signalfd of the blocked signals.  ARGC/ARGV as given to main, for
 * the workers' command line.
 */
void preload_run(struct worker_opts *opts, int sig_fd, int argc, char **argv);

/* ------------------------------------------------------------------ fcgi.c */

struct conn;	/* one FastCGI connection from the web server (fcgi.c) */

struct fcgi_param {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * One FastCGI request.  Everything here is valid from the moment the fcgi
 * layer hands the request to wsgi_handle() until wsgi_handle() returns;
 * strings are not NUL-terminated unless said so.
 */
struct request {
	struct conn *conn;		/* owned by fcgi.c */
	uint16_t id;			/* FastCGI request id */
	bool keep_conn;			/* FCGI_KEEP_CONN: connection outlives the request */

	struct fcgi_param *params;	/* all FCGI_PARAMS, in arrival order */
	size_t nparams;
	long long content_length;	/* CONTENT_LENGTH, 0 when absent or invalid */

	/* set by the fcgi layer while the request runs */
	bool aborted;			/* FCGI_ABORT_REQUEST received, or the peer went away */
	int io_error;			/* errno of the first failed read or write, 0 if none */

	/* set by the gateway */
	int app_status;			/* FCGI_END_REQUEST appStatus */
};

/*
 * Read up to LEN bytes of the request body (FCGI_STDIN).  Never reads past
 * the end of the stream.  Returns the byte count, 0 at the end of the body,
 * -1 on error (r->io_error set, r->aborted when the peer aborted).
 * May block: call without the GIL.
 */
ssize_t request_read(struct request *r, void *buf, size_t len);

/*
 * Append LEN bytes to the response (FCGI_STDOUT).  Output is gathered into
 * large records and written when the buffer fills or on request_flush().
 * Returns 0, or -1 once the peer is gone (r->io_error set); after -1 the
 * gateway stops producing output and closes the iterable.
 * May block: call without the GIL.
 */
int request_write(struct request *r, const void *buf, size_t len);

/* Send what request_write() gathered.  0 or -1 as request_write(). */
int request_flush(struct request *r);

/*
 * The response's last bytes: like request_write(), but the end of the
 * stream and FCGI_END_REQUEST leave in the same write (one syscall for a
 * response whose body came in one piece, however large).  Nothing may be
 * written after it.  0 or -1 as request_write().  May block: no GIL.
 */
int request_write_last(struct request *r, const void *buf, size_t len);

/*
 * True if request_write(R, .., LEN) now would only copy into the output
 * buffer: no I/O, so the gateway may call it without giving up the GIL.
 */
bool request_write_is_buffered(const struct request *r, size_t len);

/* Look up a param by NUL-terminated NAME; NULL if absent.  *LEN gets its length. */
const char *request_param(const struct request *r, const char *name, size_t *len);

/* ---------------------------------------------------------------- python.c */

/*
 * Start the main interpreter (never a sub-interpreter) with the pool's
 * virtualenv and python_path, and import opts->module.  Called once, from
 * the main thread, before any request thread exists.  Returns 0, or -1
 * after logging why (with the Python traceback).  On return the calling
 * thread does not hold the GIL.
 */
int python_init(const struct worker_opts *opts);

/* Give this thread its own Python thread state, kept for its whole life
 * (so threading.local survives between requests).  Returns without the GIL. */
void python_thread_begin(void);
void python_thread_end(void);

/* Finalize the interpreter after every request thread has been joined. */
void python_finalize(void);

/*
 * fork(2) with Python's at-fork hooks, from a process that ran
 * python_init() (preload mode): flushes sys.stdout and sys.stderr, runs
 * PyOS_BeforeFork / AfterFork_Child / AfterFork_Parent (random reseeded,
 * locks and the thread count reset in the child).  Call from the thread
 * that ran python_init(), with no other thread running.  Returns as
 * fork(2), without the GIL in both processes.  python_fork_with() calls
 * FORKER instead of fork(2).
 */
pid_t python_fork(void);
pid_t python_fork_with(pid_t (*forker)(void));

/* gc.freeze(): in a preload process, keep the GC of the workers off the
 * pages they share with it.  No GIL needed on entry. */
void python_gc_freeze(void);

/* Dump the Python traceback of every thread to FD (slowlog). Async-signal-safe path. */
int python_register_slowlog(int fd, int signum);

/* ------------------------------------------------------------------ wsgi.c */

/*
 * Serve one request: build the environ, call the application, stream its
 * response through request_write(), call close() on the iterable.  Takes
 * and releases the GIL itself.  An exception in the app becomes a 500 and
 * a traceback in the log.  Returns 0, or -1 if the connection must be
 * closed (the response could not be completed).
 */
int wsgi_handle(struct request *r);

/* ------------------------------------------------------------------- log.c */

/*
 * Worker log lines go to stderr as "LEVEL: message\n", one write(2) per
 * line; under fcgi-pm the master reads them from a pipe and adds time,
 * pool and pid.  Multi-line messages (tracebacks) are split into lines.
 */
enum wlog_level { WLOG_ERROR, WLOG_WARNING, WLOG_NOTICE, WLOG_DEBUG };
void wlog(enum wlog_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A log rate limit: at most BURST lines per INTERVAL seconds pass; the
 * number suppressed is reported with the next line that passes.  Use one
 * static instance per kind of per-request failure.
 */
struct wlog_ratelimit {
	int interval;			/* seconds */
	int burst;
	_Atomic long window;		/* start of the current window */
	_Atomic int count;		/* lines seen in it */
	_Atomic int missed;		/* lines suppressed since the last one passed */
};

/* Like wlog(), unless RL says this kind of line is flooding. */
void wlog_limited(struct wlog_ratelimit *rl, enum wlog_level l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
