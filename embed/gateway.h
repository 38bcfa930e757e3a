/*
 * gateway.h - internals shared by the gateway files (python.c, wsgi.c,
 * stream.c).  Only these files (and their unit test) include Python.h;
 * the C host sees the gateway through worker.h alone.
 */
#ifndef FCGI_PM_GATEWAY_H
#define FCGI_PM_GATEWAY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "worker.h"

/* A byte string that is not NUL-terminated; p == NULL means "absent". */
struct wsgi_span {
	const char *p;
	size_t len;
};

/* --------------------------------------------------------------- python.c */

/*
 * Take this thread's GIL with its own thread state (created on first use
 * by python_thread_begin()), and give it back.  Every request runs between
 * the two.
 */
void python_acquire(void);
void python_release(void);

/*
 * fork(2) with Python's at-fork hooks (preload mode); see python.c.  Meant
 * for worker.h's python.c section once the host forks from a preloaded
 * process: "pid_t python_fork(void);".
 */
pid_t python_fork(void);

/*
 * Log the pending Python exception as one summary line (FMT) followed by
 * the full traceback, and clear it.  GIL held.  Without a pending
 * exception only the summary is logged.
 */
void python_log_exception(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ----------------------------------------------------------------- wsgi.c */

/*
 * Ready the gateway for APP (a new reference is taken): types, environ
 * keys and the template environ.  Called once by python_init() with the
 * GIL held.  Returns 0, or -1 with a Python error pending.
 */
int wsgi_init(const struct worker_opts *opts, PyObject *app);

/* Drop what wsgi_init() built; GIL held, before Py_FinalizeEx(). */
void wsgi_fini(void);

/* The params wsgi_path_split() works from; p == NULL when absent. */
struct wsgi_path_params {
	struct wsgi_span script_name;
	struct wsgi_span path_info;
	struct wsgi_span request_uri;
	struct wsgi_span document_uri;	/* nginx: $uri, after rewrites */
};

/*
 * Compute SCRIPT_NAME and PATH_INFO (PEP 3333) from the mount point
 * (--script-name, NULL if unset) and the params the server sent.  BUF is
 * scratch space of at least script_name.len + path_info.len +
 * request_uri.len + 2 bytes; the results point into the params, MOUNT or
 * BUF.  Pure: no Python, no allocation.
 */
void wsgi_path_split(const char *mount, const struct wsgi_path_params *in,
    char *buf, struct wsgi_span *out_script, struct wsgi_span *out_path);

/* ---------------------------------------------------------------- stream.c */

/* Ready the stream types.  GIL held.  0, or -1 with a Python error set. */
int stream_init(void);

/*
 * A new wsgi.input reading R's body: never past CONTENT_LENGTH when the
 * server sent one, to the end of FCGI_STDIN otherwise.  New reference, or
 * NULL with a Python error set.
 */
PyObject *stream_input_new(struct request *r);

/*
 * End INPUT's use of its request: later reads raise "request object has
 * expired".  Waits (GIL released) for a read another Python thread has in
 * flight.  INPUT is borrowed.
 */
void stream_input_expire(PyObject *input);

/* A new wsgi.errors: text written to it goes to the log line by line. */
PyObject *stream_errors_new(void);

/* Log what ERRORS holds of an unfinished line.  ERRORS is borrowed. */
void stream_errors_flush(PyObject *errors);

#endif
