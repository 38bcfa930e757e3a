/*
 * python.c - the interpreter's lifecycle: PyConfig, virtualenv, sys.path,
 * import of "module:callable", per-thread thread states, tracebacks,
 * slowlog, finalize.
 *
 * Only the main interpreter is ever used: Cython modules such as lxml rely
 * on the PyGILState API, which assumes one interpreter per process.
 */
#include "gateway.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The Python this worker is linked with (Debian's libpython). */
#define BASE_EXECUTABLE	"/usr/bin/python3"
#define BASE_BINDIR	"/usr/bin"

/* The init thread's state, saved after python_init() for python_finalize(). */
static PyThreadState *main_tstate;

/*
 * One thread state per request thread for its whole life: dropping it per
 * request (PyGILState per call) would reset threading.local every request,
 * and Django keeps its database connections there.
 */
static __thread PyThreadState *thread_tstate;
static __thread PyGILState_STATE thread_gilstate;

/* traceback.format_exception, imported at start-up so logging an error
 * needs no import (which could itself fail under memory pressure). */
static PyObject *format_exception;

/*
 * Read VENV/pyvenv.cfg and refuse a virtualenv made by another Python: its
 * stdlib would be loaded into this libpython (a pyenv 3.11.7 venv gives
 * "undefined symbol" errors on import ssl).  Fills EXE with the venv's
 * interpreter path, which getpath uses to find the venv.
 */
static int
venv_check(const char *venv, char *exe, size_t exelen)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], line[1024];
	char home[PATH_MAX] = "", homereal[PATH_MAX], basereal[PATH_MAX];
	int major = -1, minor = -1;
	FILE *fp;

	if (realpath(venv, dir) == NULL) {
		wlog(WLOG_ERROR, "virtualenv %s: %s", venv, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/pyvenv.cfg", dir);
	if ((fp = fopen(path, "re")) == NULL) {
		wlog(WLOG_ERROR, "virtualenv %s: cannot read %s: %s (make it "
		    "with " BASE_EXECUTABLE " -m venv)", venv, path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *key = line, *val, *end;

		if ((val = strchr(line, '=')) == NULL)
			continue;
		*val++ = '\0';
		key += strspn(key, " \t");
		for (end = val - 1; end > key && strchr(" \t", end[-1]); end--)
			;
		*end = '\0';
		val += strspn(val, " \t");
		val[strcspn(val, "\r\n")] = '\0';
		if (strcmp(key, "version") == 0 ||
		    strcmp(key, "version_info") == 0) {
			if (sscanf(val, "%d.%d", &major, &minor) != 2)
				major = minor = -1;
		} else if (strcmp(key, "home") == 0)
			snprintf(home, sizeof(home), "%s", val);
	}
	fclose(fp);

	if (major != PY_MAJOR_VERSION || minor != PY_MINOR_VERSION) {
		wlog(WLOG_ERROR, "virtualenv %s: made with Python %d.%d but "
		    "this worker embeds Python " PY_VERSION "; recreate it with "
		    BASE_EXECUTABLE " -m venv", venv, major, minor);
		return -1;
	}
	/* Same minor version from another build (pyenv) still mixes stdlibs. */
	if (home[0] != '\0' && (realpath(home, homereal) == NULL ||
	    realpath(BASE_BINDIR, basereal) == NULL ||
	    strcmp(homereal, basereal) != 0)) {
		wlog(WLOG_ERROR, "virtualenv %s: made from the Python in %s, "
		    "not " BASE_BINDIR "; recreate it with " BASE_EXECUTABLE
		    " -m venv", venv, home);
		return -1;
	}
	if ((size_t)snprintf(exe, exelen, "%s/bin/python", dir) >= exelen) {
		wlog(WLOG_ERROR, "virtualenv %s: path too long", venv);
		return -1;
	}
	return 0;
}

/* Insert DIR at INDEX in sys.path.  0, or -1 with a Python error set. */
static int
syspath_insert(Py_ssize_t index, const char *dir)
{
	PyObject *path, *item;
	int rc;

	if ((path = PySys_GetObject("path")) == NULL) {	/* borrowed */
		PyErr_SetString(PyExc_RuntimeError, "sys.path is missing");
		return -1;
	}
	if ((item = PyUnicode_DecodeFSDefault(dir)) == NULL)
		return -1;
	rc = PyList_Insert(path, index, item);
	Py_DECREF(item);
	return rc;
}

/*
 * Import SPEC, "pkg.mod:callable" (default callable "application"; the
 * callable may be a dotted attribute path).  New reference, or NULL after
 * logging why.
 */
static PyObject *
app_import(const char *spec)
{
	PyObject *mod = NULL, *obj = NULL, *next;
	char *modname, *attrs, *name, *save;

	if ((modname = strdup(spec)) == NULL) {
		wlog(WLOG_ERROR, "module %s: out of memory", spec);
		return NULL;
	}
	if ((attrs = strchr(modname, ':')) != NULL)
		*attrs++ = '\0';
	if (attrs == NULL || *attrs == '\0')
		attrs = "application";
	if (*modname == '\0') {
		wlog(WLOG_ERROR, "module %s: no module name before ':'", spec);
		goto done;
	}
	if ((mod = PyImport_ImportModule(modname)) == NULL) {
		python_log_exception("module %s: cannot import %s", spec,
		    modname);
		goto done;
	}
	obj = Py_NewRef(mod);
	for (name = strtok_r(attrs, ".", &save); name != NULL;
	    name = strtok_r(NULL, ".", &save)) {
		next = PyObject_GetAttrString(obj, name);
		Py_SETREF(obj, next);
		if (obj == NULL) {
			python_log_exception("module %s: no callable %s in %s",
			    spec, name, modname);
			goto done;
		}
	}
	if (!PyCallable_Check(obj)) {
		wlog(WLOG_ERROR, "module %s: %s is not callable (%s)", spec,
		    attrs, Py_TYPE(obj)->tp_name);
		Py_CLEAR(obj);
	}
done:
	Py_XDECREF(mod);
	free(modname);
	return obj;
}

/* Log a failed PyStatus from the init API. */
static int
status_error(const char *what, PyStatus st)
{
	wlog(WLOG_ERROR, "python: %s: %s%s%s", what,
	    st.func != NULL ? st.func : "", st.func != NULL ? ": " : "",
	    st.err_msg != NULL ? st.err_msg : "failed");
	return -1;
}

/*
 * The steps of python_init() that run Python code.  GIL held.  0, or -1
 * after logging.
 */
static int
app_load(const struct worker_opts *opts)
{
	char cwd[PATH_MAX];
	Py_ssize_t at = 0;
	PyObject *tb, *app;
	const char **p;
	int rc;

	/* safe_path (isolated) keeps cwd out of sys.path: add it (main.c has
	 * chdir'ed there) after the python_path entries, all before the venv
	 * and the stdlib. */
	for (p = opts->python_path; p != NULL && *p != NULL; p++)
		if (syspath_insert(at++, *p) == -1)
			goto pyerror;
	if (opts->chdir != NULL) {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			wlog(WLOG_ERROR, "chdir %s: getcwd: %s", opts->chdir,
			    strerror(errno));
			return -1;
		}
		if (syspath_insert(at++, cwd) == -1)
			goto pyerror;
	}

	/* A request pthread importing threading first would become
	 * threading.main_thread(). */
	if ((tb = PyImport_ImportModule("threading")) == NULL)
		goto pyerror;
	Py_DECREF(tb);
	if ((tb = PyImport_ImportModule("traceback")) == NULL)
		goto pyerror;
	format_exception = PyObject_GetAttrString(tb, "format_exception");
	Py_DECREF(tb);
	if (format_exception == NULL)
		goto pyerror;

	if ((app = app_import(opts->module)) == NULL)
		return -1;
	rc = wsgi_init(opts, app);
	Py_DECREF(app);
	if (rc == -1)
		goto pyerror;
	return 0;
pyerror:
	python_log_exception("python: start-up failed");
	return -1;
}

/*
 * Start the main interpreter: isolated (no PYTHON* variables, no user site,
 * no signal handlers) with UTF-8 mode (an isolated config leaves the "C"
 * locale, i.e. ASCII file names and open()), executable set so getpath
 * finds the virtualenv instead of looking python3 up in PATH.
 * See worker.h.
 */
int
python_init(const struct worker_opts *opts)
{
	char exe[PATH_MAX];
	PyPreConfig pre;
	PyConfig cfg;
	PyStatus st;
	int rc;

	if (opts->module == NULL) {
		wlog(WLOG_ERROR, "python: no --module given");
		return -1;
	}
	if (opts->virtualenv != NULL) {
		if (venv_check(opts->virtualenv, exe, sizeof(exe)) == -1)
			return -1;
	} else
		snprintf(exe, sizeof(exe), "%s", BASE_EXECUTABLE);
	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1;
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		return status_error("pre-initialization", st);

	PyConfig_InitIsolatedConfig(&cfg);
	cfg.install_signal_handlers = 0;
	cfg.buffered_stdio = 0;	/* app prints reach the log at once */
	st = PyConfig_SetBytesString(&cfg, &cfg.executable, exe);
	if (PyStatus_Exception(st)) {
		PyConfig_Clear(&cfg);
		return status_error("config", st);
	}
	st = Py_InitializeFromConfig(&cfg);
	PyConfig_Clear(&cfg);
	if (PyStatus_Exception(st))
		return status_error("initialization", st);

	rc = app_load(opts);
	/* Request threads take the GIL with their own thread states. */
	main_tstate = PyEval_SaveThread();
	return rc;
}

/* See worker.h. */
void
python_thread_begin(void)
{
	if (thread_tstate != NULL)
		return;
	thread_gilstate = PyGILState_Ensure();
	thread_tstate = PyEval_SaveThread();
}

/* See worker.h. */
void
python_thread_end(void)
{
	if (thread_tstate == NULL)
		return;
	PyEval_RestoreThread(thread_tstate);
	thread_tstate = NULL;
	PyGILState_Release(thread_gilstate);	/* also releases the GIL */
}

/* See gateway.h. */
void
python_acquire(void)
{
	if (thread_tstate == NULL)
		python_thread_begin();
	PyEval_RestoreThread(thread_tstate);
}

/* See gateway.h. */
void
python_release(void)
{
	thread_tstate = PyEval_SaveThread();
}

/* See worker.h. */
void
python_finalize(void)
{
	if (main_tstate == NULL)
		return;
	PyEval_RestoreThread(main_tstate);
	main_tstate = NULL;
	wsgi_fini();
	Py_CLEAR(format_exception);
	/* Runs atexit handlers (database connections, log handlers). */
	if (Py_FinalizeEx() < 0)
		wlog(WLOG_WARNING, "python: finalize: flushing stdout or "
		    "stderr failed");
}

/* Flush sys.NAME's Python-level buffer; errors are not worth a report. */
static void
flush_std(const char *name)
{
	PyObject *f, *r;

	if ((f = PySys_GetObject(name)) != NULL && f != Py_None &&
	    (r = PyObject_CallMethod(f, "flush", NULL)) != NULL)
		Py_DECREF(r);
	PyErr_Clear();
}

/*
 * fork(2) with Python's at-fork hooks, for a preload parent that imported
 * the app once: without them every child has the same random state, stale
 * locks and a stale thread count.  Call it from the thread that ran
 * python_init(), with no request thread running (threads do not survive a
 * fork).  Returns as fork(2), without the GIL in both processes.
 */
pid_t
python_fork(void)
{
	return python_fork_with(fork);
}

/*
 * python_fork() with FORKER in place of fork(2) (preload.c passes a raw
 * clone that makes the child a sibling).  FORKER returns as fork(2).
 */
pid_t
python_fork_with(pid_t (*forker)(void))
{
	PyGILState_STATE g;
	pid_t pid;
	int saved;

	g = PyGILState_Ensure();
	/* Buffered output would be written by parent and child alike. */
	flush_std("stdout");
	flush_std("stderr");
	PyOS_BeforeFork();
	pid = forker();
	saved = errno;
	if (pid == 0)
		PyOS_AfterFork_Child();
	else
		PyOS_AfterFork_Parent();
	PyGILState_Release(g);
	errno = saved;
	return pid;
}

/*
 * Move every object tracked by the garbage collector into its permanent
 * generation (gc.freeze()), for a preload process about to fork workers:
 * a collection in a worker then never writes to the objects it shares
 * with the preload process, so their pages stay shared.  Errors are
 * logged.  See worker.h.
 */
void
python_gc_freeze(void)
{
	PyGILState_STATE g;
	PyObject *gc, *r = NULL;

	g = PyGILState_Ensure();
	if ((gc = PyImport_ImportModule("gc")) != NULL) {
		r = PyObject_CallMethod(gc, "freeze", NULL);
		Py_DECREF(gc);
	}
	if (r == NULL)
		python_log_exception("python: gc.freeze() failed");
	Py_XDECREF(r);
	PyGILState_Release(g);
}

/*
 * Register faulthandler to dump every thread's traceback to FD on SIGNUM.
 * faulthandler needs no GIL in its handler, so a request stuck in C code
 * still shows where it is.  See worker.h.
 */
int
python_register_slowlog(int fd, int signum)
{
	PyGILState_STATE g;
	PyObject *fh, *res = NULL;

	g = PyGILState_Ensure();
	if ((fh = PyImport_ImportModule("faulthandler")) != NULL) {
		res = PyObject_CallMethod(fh, "register", "iiii", signum, fd,
		    1, 0);
		Py_DECREF(fh);
	}
	if (res == NULL)
		python_log_exception("slowlog: faulthandler.register(%d, "
		    "file=%d) failed", signum, fd);
	Py_XDECREF(res);
	PyGILState_Release(g);
	return res == NULL ? -1 : 0;
}

/* See gateway.h. */
void
python_log_exception(const char *fmt, ...)
{
	PyObject *type, *value, *tb, *lines = NULL, *sep = NULL;
	PyObject *text = NULL, *bytes = NULL;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	PyErr_Fetch(&type, &value, &tb);
	if (type == NULL) {
		wlog(WLOG_ERROR, "%s", msg);
		return;
	}
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb != NULL && value != NULL)
		PyException_SetTraceback(value, tb);
	if (format_exception != NULL)
		lines = PyObject_CallFunctionObjArgs(format_exception, type,
		    value != NULL ? value : Py_None, tb != NULL ? tb : Py_None,
		    NULL);
	if (lines != NULL && (sep = PyUnicode_FromString("")) != NULL &&
	    (text = PyUnicode_Join(sep, lines)) != NULL)
		bytes = PyUnicode_AsEncodedString(text, "utf-8",
		    "backslashreplace");
	if (bytes != NULL) {
		/* wlog splits the traceback into one line each. */
		wlog(WLOG_ERROR, "%s\n%.*s", msg,
		    (int)(PyBytes_GET_SIZE(bytes) -
		    (PyBytes_GET_SIZE(bytes) > 0 &&
		    PyBytes_AS_STRING(bytes)[PyBytes_GET_SIZE(bytes) - 1] ==
		    '\n')), PyBytes_AS_STRING(bytes));
	} else {
		/* No traceback module (early start-up): the type will do. */
		PyErr_Clear();
		wlog(WLOG_ERROR, "%s: %s", msg,
		    ((PyTypeObject *)type)->tp_name);
	}
	Py_XDECREF(bytes);
	Py_XDECREF(text);
	Py_XDECREF(sep);
	Py_XDECREF(lines);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}
