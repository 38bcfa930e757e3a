/*
 * stream.c - wsgi.input (the request body, read through request_read with
 * the GIL released) and wsgi.errors (text to the log, line by line).
 */
#include "gateway.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The readline buffer and the read() block; a big read() first allocates
 * at most INPUT_ALLOC_MAX; longer partial error lines are logged as is. */
#define INPUT_BUFSZ	(64 * 1024)
#define INPUT_ALLOC_MAX	(1024 * 1024)
#define ERRORS_LINE_MAX	8192

struct input {
	PyObject_HEAD
	struct request *r;	/* NULL once the request has ended */
	long long remaining;	/* body bytes not yet read, -1: until the end */
	bool eof;
	bool busy;		/* a read is in flight with the GIL released */
	char *buf;		/* INPUT_BUFSZ, from the first buffered read */
	size_t pos, end;	/* unread bytes are buf[pos..end) */
};

struct errors {
	PyObject_HEAD
	char *line;		/* unfinished line */
	size_t len, cap;
};

static PyTypeObject input_type;
static PyTypeObject errors_type;

/* ------------------------------------------------------------ wsgi.input */

/*
 * CONTENT_LENGTH as the server sent it: -1 when absent or empty (read to
 * the end of FCGI_STDIN, which has an explicit end), 0 when invalid.
 */
static long long
input_length(const struct request *r)
{
	const char *v;
	long long n = 0;
	size_t len, i;

	if ((v = request_param(r, "CONTENT_LENGTH", &len)) == NULL || len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' || n > (LLONG_MAX - 9) / 10)
			return 0;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

/* See gateway.h. */
PyObject *
stream_input_new(struct request *r)
{
	struct input *in;

	if ((in = PyObject_New(struct input, &input_type)) == NULL)
		return NULL;
	in->r = r;
	in->remaining = input_length(r);
	in->eof = in->remaining == 0;
	in->busy = false;
	in->buf = NULL;
	in->pos = in->end = 0;
	return (PyObject *)in;
}

/* See gateway.h. */
void
stream_input_expire(PyObject *obj)
{
	struct input *in = (struct input *)obj;

	/* An app thread may be blocked in request_read() on this request. */
	while (in->busy) {
		Py_BEGIN_ALLOW_THREADS
		usleep(1000);
		Py_END_ALLOW_THREADS
	}
	in->r = NULL;
	PyMem_Free(in->buf);
	in->buf = NULL;
	in->pos = in->end = 0;
}

static void
input_dealloc(PyObject *obj)
{
	PyMem_Free(((struct input *)obj)->buf);
	PyObject_Free(obj);
}

/* Refuse a read on an ended request or one racing another thread's. */
static int
input_usable(struct input *in)
{
	if (in->r == NULL) {
		PyErr_SetString(PyExc_RuntimeError,
		    "request object has expired");
		return -1;
	}
	if (in->busy) {
		PyErr_SetString(PyExc_RuntimeError,
		    "wsgi.input is being read by another thread");
		return -1;
	}
	return 0;
}

/*
 * Read up to LEN body bytes into DST straight from the request, the GIL
 * released.  Returns the count (0 at the end of the body), or -1 with
 * OSError set.
 */
static Py_ssize_t
input_raw(struct input *in, char *dst, size_t len)
{
	struct request *r = in->r;
	ssize_t n;

	if (in->eof || len == 0)
		return 0;
	if (in->remaining >= 0 && (unsigned long long)in->remaining < len)
		len = (size_t)in->remaining;
	in->busy = true;
	Py_BEGIN_ALLOW_THREADS
	n = request_read(r, dst, len);
	Py_END_ALLOW_THREADS
	in->busy = false;
	if (n < 0) {
		in->eof = true;
		errno = r->io_error != 0 ? r->io_error : EIO;
		PyErr_Format(PyExc_OSError, "wsgi.input: reading the request "
		    "body failed: %s%s", strerror(errno),
		    r->aborted ? " (request aborted)" : "");
		return -1;
	}
	if (n == 0)
		in->eof = true;	/* body shorter than CONTENT_LENGTH */
	else if (in->remaining >= 0) {
		in->remaining -= n;
		if (in->remaining == 0)
			in->eof = true;
	}
	return n;
}

/* Refill the empty buffer.  0 (possibly at the end), or -1. */
static int
input_fill(struct input *in)
{
	Py_ssize_t n;

	if (in->buf == NULL && (in->buf = PyMem_Malloc(INPUT_BUFSZ)) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	in->pos = in->end = 0;
	if ((n = input_raw(in, in->buf, INPUT_BUFSZ)) < 0)
		return -1;
	in->end = (size_t)n;
	return 0;
}

/* size argument of read() and readline(): None or negative = no limit. */
static int
size_arg(PyObject *const *args, Py_ssize_t nargs, const char *fn,
    Py_ssize_t *size)
{
	*size = -1;
	if (nargs > 1) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument "
		    "(%zd given)", fn, nargs);
		return -1;
	}
	if (nargs == 1 && args[0] != Py_None) {
		*size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
		if (*size == -1 && PyErr_Occurred())
			return -1;
		if (*size < 0)
			*size = -1;
	}
	return 0;
}

/*
 * read(size=-1): up to SIZE bytes, fewer only at the end of the body; all
 * that is left without SIZE.  Large reads bypass the buffer and go
 * straight into the bytes object; the object grows as data arrives, so a
 * lying CONTENT_LENGTH cannot make us allocate it up front.
 */
static PyObject *
input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct input *in = (struct input *)self;
	PyObject *res = NULL;
	Py_ssize_t size, want, alloc, have = 0, n;
	size_t avail;

	if (input_usable(in) == -1 || size_arg(args, nargs, "read", &size))
		return NULL;
	avail = in->end - in->pos;
	want = size;
	if (in->remaining >= 0) {
		unsigned long long left = avail + in->remaining;

		if (want < 0 || (unsigned long long)want > left)
			want = left > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX :
			    (Py_ssize_t)left;
	}
	if (want < 0)
		alloc = INPUT_BUFSZ;
	else
		alloc = want < INPUT_ALLOC_MAX ? want : INPUT_ALLOC_MAX;
	if ((res = PyBytes_FromStringAndSize(NULL, alloc)) == NULL)
		return NULL;

	if (avail > 0) {
		n = (Py_ssize_t)avail < alloc ? (Py_ssize_t)avail : alloc;
		memcpy(PyBytes_AS_STRING(res), in->buf + in->pos, n);
		in->pos += n;
		have = n;
	}
	while (want < 0 || have < want) {
		if (have == alloc) {
			alloc = alloc * 2;
			if (want >= 0 && alloc > want)
				alloc = want;
			if (_PyBytes_Resize(&res, alloc) == -1)
				return NULL;
		}
		/* Buffered bytes go first, then straight reads. */
		if (in->pos < in->end) {
			n = in->end - in->pos;
			if (n > alloc - have)
				n = alloc - have;
			memcpy(PyBytes_AS_STRING(res) + have, in->buf + in->pos,
			    n);
			in->pos += n;
		} else if ((n = input_raw(in, PyBytes_AS_STRING(res) + have,
		    alloc - have)) < 0) {
			Py_DECREF(res);
			return NULL;
		} else if (n == 0)
			break;
		have += n;
	}
	if (have != alloc && _PyBytes_Resize(&res, have) == -1)
		return NULL;
	return res;
}

/*
 * readline(size=-1): one line with its "\n", at most SIZE bytes.  The
 * usual case, a line inside the buffer, is one copy.
 */
static PyObject *
input_readline_limit(struct input *in, Py_ssize_t size)
{
	char *acc = NULL, *nl, *tmp;
	size_t len = 0, cap = 0, n;
	PyObject *res = NULL;
	bool done = false;

	while (!done && (size < 0 || (Py_ssize_t)len < size)) {
		if (in->pos == in->end) {
			if (in->eof)
				break;
			if (input_fill(in) == -1)
				goto out;
			if (in->pos == in->end)
				break;
		}
		n = in->end - in->pos;
		if (size >= 0 && n > (size_t)size - len)
			n = (size_t)size - len;
		if ((nl = memchr(in->buf + in->pos, '\n', n)) != NULL) {
			n = nl - (in->buf + in->pos) + 1;
			done = true;
		}
		if (acc == NULL && (done || (size >= 0 &&
		    (Py_ssize_t)n == size))) {
			/* The whole line is in the buffer. */
			res = PyBytes_FromStringAndSize(in->buf + in->pos, n);
			if (res != NULL)
				in->pos += n;
			goto out;
		}
		if (len + n > cap) {
			cap = (len + n) * 2;
			if ((tmp = PyMem_Realloc(acc, cap)) == NULL) {
				PyErr_NoMemory();
				goto out;
			}
			acc = tmp;
		}
		memcpy(acc + len, in->buf + in->pos, n);
		in->pos += n;
		len += n;
	}
	res = PyBytes_FromStringAndSize(acc, len);
out:
	PyMem_Free(acc);
	return res;
}

static PyObject *
input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct input *in = (struct input *)self;
	Py_ssize_t size;

	if (input_usable(in) == -1 || size_arg(args, nargs, "readline", &size))
		return NULL;
	return input_readline_limit(in, size);
}

/* readlines(hint=-1): lines until their total size reaches HINT. */
static PyObject *
input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	struct input *in = (struct input *)self;
	PyObject *lines, *line;
	Py_ssize_t hint, total = 0;

	if (input_usable(in) == -1 || size_arg(args, nargs, "readlines", &hint))
		return NULL;
	if ((lines = PyList_New(0)) == NULL)
		return NULL;
	for (;;) {
		if ((line = input_readline_limit(in, -1)) == NULL)
			goto fail;
		if (PyBytes_GET_SIZE(line) == 0) {
			Py_DECREF(line);
			break;
		}
		total += PyBytes_GET_SIZE(line);
		if (PyList_Append(lines, line) == -1) {
			Py_DECREF(line);
			goto fail;
		}
		Py_DECREF(line);
		if (hint > 0 && total >= hint)
			break;
	}
	return lines;
fail:
	Py_DECREF(lines);
	return NULL;
}

static PyObject *
input_iternext(PyObject *self)
{
	struct input *in = (struct input *)self;
	PyObject *line;

	if (input_usable(in) == -1)
		return NULL;
	if ((line = input_readline_limit(in, -1)) == NULL)
		return NULL;
	if (PyBytes_GET_SIZE(line) == 0) {
		Py_DECREF(line);
		return NULL;	/* StopIteration */
	}
	return line;
}

static PyMethodDef input_methods[] = {
	{"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
	    "read(size=-1) -> bytes"},
	{"readline", (PyCFunction)(void (*)(void))input_readline,
	    METH_FASTCALL, "readline(size=-1) -> bytes"},
	{"readlines", (PyCFunction)(void (*)(void))input_readlines,
	    METH_FASTCALL, "readlines(hint=-1) -> list of bytes"},
	{NULL, NULL, 0, NULL}
};

static PyTypeObject input_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "fcgi_pm.Input",
	.tp_basicsize = sizeof(struct input),
	.tp_dealloc = input_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.input: the request body",
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = input_iternext,
	.tp_methods = input_methods,
};

/* ----------------------------------------------------------- wsgi.errors */

/* See gateway.h. */
PyObject *
stream_errors_new(void)
{
	struct errors *e;

	if ((e = PyObject_New(struct errors, &errors_type)) == NULL)
		return NULL;
	e->line = NULL;
	e->len = e->cap = 0;
	return (PyObject *)e;
}

/* See gateway.h. */
void
stream_errors_flush(PyObject *obj)
{
	struct errors *e = (struct errors *)obj;

	if (e->len > 0)
		wlog(WLOG_ERROR, "%.*s", (int)e->len, e->line);
	e->len = 0;
}

static void
errors_dealloc(PyObject *obj)
{
	stream_errors_flush(obj);
	PyMem_Free(((struct errors *)obj)->line);
	PyObject_Free(obj);
}

/* Log every complete line of P[0..LEN), keep the rest.  0 or -1. */
static int
errors_add(struct errors *e, const char *p, size_t len)
{
	const char *nl;
	char *tmp;
	size_t n;

	while (len > 0) {
		nl = memchr(p, '\n', len);
		n = nl != NULL ? (size_t)(nl - p) : len;
		if (e->len + n > e->cap) {
			size_t cap = (e->len + n) * 2;

			if ((tmp = PyMem_Realloc(e->line, cap)) == NULL) {
				PyErr_NoMemory();
				return -1;
			}
			e->line = tmp;
			e->cap = cap;
		}
		memcpy(e->line + e->len, p, n);
		e->len += n;
		if (nl != NULL || e->len >= ERRORS_LINE_MAX) {
			wlog(WLOG_ERROR, "%.*s", (int)e->len, e->line);
			e->len = 0;
		}
		if (nl != NULL)
			n++;
		p += n;
		len -= n;
	}
	return 0;
}

/* write(str): wsgi.errors is a text stream (PEP 3333). */
static PyObject *
errors_write(PyObject *self, PyObject *arg)
{
	const char *p;
	Py_ssize_t len;

	if (!PyUnicode_Check(arg)) {
		PyErr_Format(PyExc_TypeError, "wsgi.errors.write() argument "
		    "must be str, not %.100s", Py_TYPE(arg)->tp_name);
		return NULL;
	}
	if ((p = PyUnicode_AsUTF8AndSize(arg, &len)) == NULL) {
		/* Lone surrogates: log them escaped rather than fail. */
		PyObject *b;
		int rc;

		PyErr_Clear();
		if ((b = PyUnicode_AsEncodedString(arg, "utf-8",
		    "backslashreplace")) == NULL)
			return NULL;
		rc = errors_add((struct errors *)self, PyBytes_AS_STRING(b),
		    PyBytes_GET_SIZE(b));
		Py_DECREF(b);
		return rc == -1 ? NULL : Py_NewRef(Py_None);
	}
	if (errors_add((struct errors *)self, p, (size_t)len) == -1)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
errors_writelines(PyObject *self, PyObject *seq)
{
	PyObject *it, *item, *res;

	if ((it = PyObject_GetIter(seq)) == NULL)
		return NULL;
	while ((item = PyIter_Next(it)) != NULL) {
		res = errors_write(self, item);
		Py_DECREF(item);
		if (res == NULL)
			break;
		Py_DECREF(res);
	}
	Py_DECREF(it);
	if (PyErr_Occurred())
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
errors_flush(PyObject *self, PyObject *Py_UNUSED(unused))
{
	stream_errors_flush(self);
	Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
	{"write", errors_write, METH_O, "write(str): log the text"},
	{"writelines", errors_writelines, METH_O, "writelines(lines)"},
	{"flush", errors_flush, METH_NOARGS, "log an unfinished line"},
	{NULL, NULL, 0, NULL}
};

static PyTypeObject errors_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "fcgi_pm.Errors",
	.tp_basicsize = sizeof(struct errors),
	.tp_dealloc = errors_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "wsgi.errors: text to the worker log",
	.tp_methods = errors_methods,
};

/* See gateway.h. */
int
stream_init(void)
{
	if (PyType_Ready(&input_type) == -1 || PyType_Ready(&errors_type) == -1)
		return -1;
	return 0;
}
