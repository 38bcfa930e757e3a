/*
 * wsgi.c - the PEP 3333 gateway: environ, start_response and write(), the
 * response iteration, close(), wsgi.file_wrapper.
 *
 * The per-request state is a Python object (mod_wsgi style) that owns
 * start_response and write(); when the request ends it is expired, so an
 * app that keeps a reference gets an exception instead of writing into a
 * request that no longer exists.
 */
#include "gateway.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_BLOCK	(256 * 1024)	/* file_wrapper read size on an fd */

/* CGI names whose keys are made once; the first few are looked at too. */
enum {
	K_SCRIPT_NAME, K_PATH_INFO, K_REQUEST_URI, K_HTTPS, K_REQUEST_SCHEME,
	K_CONTENT_TYPE, K_HTTP_CONTENT_TYPE, K_HTTP_CONTENT_LENGTH,
	K_REQUEST_METHOD, K_DOCUMENT_URI,
};

static struct cgi_key {
	const char *name;
	size_t len;
	PyObject *key;
} cgi_keys[] = {
	[K_SCRIPT_NAME] = { "SCRIPT_NAME", 0, NULL },
	[K_PATH_INFO] = { "PATH_INFO", 0, NULL },
	[K_REQUEST_URI] = { "REQUEST_URI", 0, NULL },
	[K_HTTPS] = { "HTTPS", 0, NULL },
	[K_REQUEST_SCHEME] = { "REQUEST_SCHEME", 0, NULL },
	[K_CONTENT_TYPE] = { "CONTENT_TYPE", 0, NULL },
	[K_HTTP_CONTENT_TYPE] = { "HTTP_CONTENT_TYPE", 0, NULL },
	[K_HTTP_CONTENT_LENGTH] = { "HTTP_CONTENT_LENGTH", 0, NULL },
	[K_REQUEST_METHOD] = { "REQUEST_METHOD", 0, NULL },
	[K_DOCUMENT_URI] = { "DOCUMENT_URI", 0, NULL },
	{ "QUERY_STRING", 0, NULL },
	{ "CONTENT_LENGTH", 0, NULL },
	{ "SERVER_NAME", 0, NULL },
	{ "SERVER_PORT", 0, NULL },
	{ "SERVER_PROTOCOL", 0, NULL },
	{ "SERVER_ADDR", 0, NULL },
	{ "SERVER_SOFTWARE", 0, NULL },
	{ "GATEWAY_INTERFACE", 0, NULL },
	{ "REMOTE_ADDR", 0, NULL },
	{ "REMOTE_PORT", 0, NULL },
	{ "REMOTE_USER", 0, NULL },
	{ "DOCUMENT_ROOT", 0, NULL },
	{ "SCRIPT_FILENAME", 0, NULL },
	{ "REDIRECT_STATUS", 0, NULL },
	{ "HTTP_HOST", 0, NULL },
	{ "HTTP_USER_AGENT", 0, NULL },
	{ "HTTP_ACCEPT", 0, NULL },
	{ "HTTP_ACCEPT_ENCODING", 0, NULL },
	{ "HTTP_ACCEPT_LANGUAGE", 0, NULL },
	{ "HTTP_CONNECTION", 0, NULL },
	{ "HTTP_COOKIE", 0, NULL },
	{ "HTTP_REFERER", 0, NULL },
	{ "HTTP_CACHE_CONTROL", 0, NULL },
	{ "HTTP_PRAGMA", 0, NULL },
	{ "HTTP_ORIGIN", 0, NULL },
	{ "HTTP_AUTHORIZATION", 0, NULL },
	{ "HTTP_IF_MODIFIED_SINCE", 0, NULL },
	{ "HTTP_IF_NONE_MATCH", 0, NULL },
	{ "HTTP_X_FORWARDED_FOR", 0, NULL },
	{ "HTTP_X_FORWARDED_PROTO", 0, NULL },
	{ "HTTP_X_REAL_IP", 0, NULL },
	{ "HTTP_X_REQUESTED_WITH", 0, NULL },
	{ "HTTP_UPGRADE_INSECURE_REQUESTS", 0, NULL },
	{ "HTTP_SEC_FETCH_DEST", 0, NULL },
	{ "HTTP_SEC_FETCH_MODE", 0, NULL },
	{ "HTTP_SEC_FETCH_SITE", 0, NULL },
	{ "HTTP_SEC_FETCH_USER", 0, NULL },
	{ "HTTP_DNT", 0, NULL },
};
#define NCGI_KEYS	(sizeof(cgi_keys) / sizeof(cgi_keys[0]))

/* Made by wsgi_init(), read-only afterwards (and only touched with the GIL). */
static const struct worker_opts *opts;
static PyObject *app;
static PyObject *environ_template;
static PyObject *key_url_scheme, *key_input, *key_errors;
static PyObject *str_https, *str_close;

/* The request object: owns start_response and write(). */
struct wsgi_req {
	PyObject_HEAD
	struct request *r;	/* NULL once the request has ended */
	PyObject *head;		/* bytes "Status: ...\r\n...\r\n\r\n", NULL
				   until start_response() */
	long long content_length; /* the app's Content-Length, -1 if none */
	long long sent;		/* body bytes sent */
	int status;		/* the status code from start_response() */
	bool overflow;		/* body beyond Content-Length dropped */
	bool headers_sent;
	bool gone;		/* request_write() failed: client gone */
	bool busy;		/* output in flight with the GIL released */
	bool head_only;		/* a HEAD request: headers only, body dropped */
};

/* What happened to a response. */
enum send_state {
	SEND_OK,
	SEND_ERROR,		/* a Python exception is pending */
	SEND_GONE,		/* the client is gone */
	SEND_FULL,		/* Content-Length reached: stop iterating */
};

static PyTypeObject req_type;
static PyTypeObject filewrapper_type;

/* "the client closed the connection": at most 5 lines per 10 s. */
static struct wlog_ratelimit rl_gone = { .interval = 10, .burst = 5 };

static const char response_500[] =
    "Status: 500 Internal Server Error\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 22\r\n"
    "\r\n"
    "Internal Server Error\n";

/* ------------------------------------------------------ SCRIPT_NAME etc. */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode the path of URI (a request target; an absolute-form
 * "http://host/path" loses its scheme and authority) into OUT, which has
 * room for LEN bytes.  Returns the decoded length.
 */
static size_t
uri_path_decode(const char *uri, size_t len, char *out)
{
	const char *s, *slash;
	size_t i = 0, o = 0;

	if (len > 0 && uri[0] != '/' &&
	    (s = memmem(uri, len, "://", 3)) != NULL) {
		s += 3;
		slash = memchr(s, '/', uri + len - s);
		i = slash != NULL ? (size_t)(slash - uri) : len;
	}
	for (; i < len && uri[i] != '?' && uri[i] != '#'; i++) {
		if (uri[i] == '%' && i + 2 < len && hexval(uri[i + 1]) >= 0 &&
		    hexval(uri[i + 2]) >= 0) {
			out[o++] = (char)(hexval(uri[i + 1]) * 16 +
			    hexval(uri[i + 2]));
			i += 2;
		} else
			out[o++] = uri[i];
	}
	return o;
}

static bool
span_eq(struct wsgi_span a, struct wsgi_span b)
{
	return a.p != NULL && b.p != NULL && a.len == b.len &&
	    memcmp(a.p, b.p, a.len) == 0;
}

/* See gateway.h. */
void
wsgi_path_split(const char *mount, const struct wsgi_path_params *in,
    char *buf, struct wsgi_span *out_script, struct wsgi_span *out_path)
{
	struct wsgi_span script = in->script_name, path_info = in->path_info;
	struct wsgi_span uri = in->request_uri, full = { NULL, 0 };
	char *p = buf;
	size_t mlen;

	if (script.p == NULL)
		script = (struct wsgi_span){ "", 0 };
	if (path_info.p == NULL)
		path_info = (struct wsgi_span){ "", 0 };
	if (uri.p != NULL) {
		full.p = p;
		full.len = uri_path_decode(uri.p, uri.len, p);
		p += full.len;
	}

	if (mount != NULL) {
		/* Mount point override: PATH_INFO is what follows it. */
		mlen = strlen(mount);
		while (mlen > 0 && mount[mlen - 1] == '/')
			mlen--;
		if (uri.p == NULL) {
			memcpy(p, script.p, script.len);
			memcpy(p + script.len, path_info.p, path_info.len);
			full = (struct wsgi_span){ p, script.len + path_info.len };
		}
		*out_script = (struct wsgi_span){ mount, mlen };
		if (full.len >= mlen && memcmp(full.p, mount, mlen) == 0 &&
		    (full.len == mlen || full.p[mlen] == '/'))
			*out_path = (struct wsgi_span){ full.p + mlen,
			    full.len - mlen };
		else
			*out_path = full;	/* outside the mount point */
		return;
	}

	/*
	 * nginx's stock fastcgi_params send SCRIPT_NAME=$fastcgi_script_name,
	 * the whole path, and no PATH_INFO: that is an app mounted at the
	 * root.  $fastcgi_script_name is nginx's normalized $uri (merged
	 * slashes, rewrites), which DOCUMENT_URI carries too.
	 */
	if (path_info.len == 0 && script.len > 0 && (span_eq(script, full) ||
	    span_eq(script, in->document_uri))) {
		*out_script = (struct wsgi_span){ "", 0 };
		*out_path = script;
		return;
	}
	/* SCRIPT_NAME never ends in '/' (PEP 3333): the slash is PATH_INFO's. */
	if (script.len > 0 && script.p[script.len - 1] == '/') {
		*out_script = (struct wsgi_span){ script.p, script.len - 1 };
		if (path_info.len > 0 && path_info.p[0] == '/')
			*out_path = path_info;
		else {
			p[0] = '/';
			memcpy(p + 1, path_info.p, path_info.len);
			*out_path = (struct wsgi_span){ p, path_info.len + 1 };
		}
		return;
	}
	*out_script = script;
	*out_path = path_info;
}

/* ---------------------------------------------------------------- environ */

static int
key_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NCGI_KEYS; i++)
		if (cgi_keys[i].len == len &&
		    memcmp(cgi_keys[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Set KEY (borrowed) to the latin-1 decoding of S.  0 or -1. */
static int
environ_set(PyObject *env, PyObject *key, const char *s, size_t len)
{
	PyObject *v;
	int rc;

	if ((v = PyUnicode_DecodeLatin1(s, (Py_ssize_t)len, NULL)) == NULL)
		return -1;
	rc = PyDict_SetItem(env, key, v);
	Py_DECREF(v);
	return rc;
}

static bool
span_ieq(const char *p, size_t len, const char *s)
{
	return strlen(s) == len && strncasecmp(p, s, len) == 0;
}

/*
 * The environ of R: a copy of the template, then every param as a native
 * string (latin-1, PEP 3333), SCRIPT_NAME and PATH_INFO fixed up,
 * wsgi.url_scheme, and the streams.  New reference or NULL.
 */
static PyObject *
environ_build(struct request *r, PyObject *input, PyObject *errors)
{
	struct wsgi_path_params pp = { { NULL, 0 }, { NULL, 0 }, { NULL, 0 },
	    { NULL, 0 } };
	struct wsgi_span hct = { NULL, 0 }, osn, opi;
	PyObject *env, *key;
	bool https_on = false, scheme_https = false, have_ct = false;
	char stackbuf[1024], *buf = stackbuf;
	size_t i, need;
	int k, rc;

	if ((env = PyDict_Copy(environ_template)) == NULL)
		return NULL;
	for (i = 0; i < r->nparams; i++) {
		const struct fcgi_param *p = &r->params[i];
		struct wsgi_span v = { p->value, p->value_len };

		if (p->name_len == 0)
			continue;
		switch ((k = key_find(p->name, p->name_len))) {
		case K_SCRIPT_NAME:
			pp.script_name = v;
			continue;	/* set below */
		case K_PATH_INFO:
			pp.path_info = v;
			continue;
		case K_REQUEST_URI:
			pp.request_uri = v;
			break;
		case K_DOCUMENT_URI:
			pp.document_uri = v;
			break;
		case K_HTTPS:
			/* A param sent twice: the last one wins, in
			 * the environ and here alike. */
			https_on = span_ieq(v.p, v.len, "on") ||
			    span_ieq(v.p, v.len, "1");
			break;
		case K_REQUEST_SCHEME:
			scheme_https = span_ieq(v.p, v.len, "https");
			break;
		case K_CONTENT_TYPE:
			have_ct = true;
			break;
		case K_HTTP_CONTENT_TYPE:
			/* CGI puts the body's headers in CONTENT_*; nginx
			 * sends them as HTTP_* too (wsgiref.validate refuses). */
			hct = v;
			continue;
		case K_HTTP_CONTENT_LENGTH:
			continue;
		}
		if (k >= 0)
			key = Py_NewRef(cgi_keys[k].key);
		else if ((key = PyUnicode_DecodeLatin1(p->name,
		    (Py_ssize_t)p->name_len, NULL)) == NULL)
			goto fail;
		rc = environ_set(env, key, p->value, p->value_len);
		Py_DECREF(key);
		if (rc == -1)
			goto fail;
	}
	if (!have_ct && hct.p != NULL && environ_set(env,
	    cgi_keys[K_CONTENT_TYPE].key, hct.p, hct.len) == -1)
		goto fail;

	need = pp.script_name.len + pp.path_info.len + pp.request_uri.len + 2;
	if (need > sizeof(stackbuf) && (buf = PyMem_Malloc(need)) == NULL) {
		PyErr_NoMemory();
		goto fail;
	}
	wsgi_path_split(opts->script_name, &pp, buf, &osn, &opi);
	rc = environ_set(env, cgi_keys[K_SCRIPT_NAME].key, osn.p, osn.len);
	if (rc == 0)
		rc = environ_set(env, cgi_keys[K_PATH_INFO].key, opi.p,
		    opi.len);
	if (buf != stackbuf)
		PyMem_Free(buf);
	if (rc == -1)
		goto fail;

	if (((https_on || scheme_https) &&
	    PyDict_SetItem(env, key_url_scheme, str_https) == -1) ||
	    PyDict_SetItem(env, key_input, input) == -1 ||
	    PyDict_SetItem(env, key_errors, errors) == -1)
		goto fail;
	return env;
fail:
	Py_DECREF(env);
	return NULL;
}

/* ------------------------------------------------------- the request object */

/* "GET /uri" for log lines. */
static void
req_label(const struct request *r, char *buf, size_t size)
{
	const char *m, *u;
	size_t mlen, ulen;

	if (r == NULL || (m = request_param(r, "REQUEST_METHOD", &mlen)) == NULL)
		m = "-", mlen = 1;
	if (r == NULL || (u = request_param(r, "REQUEST_URI", &ulen)) == NULL)
		u = "-", ulen = 1;
	snprintf(buf, size, "%.*s %.*s", (int)(mlen > 16 ? 16 : mlen), m,
	    (int)(ulen > 400 ? 400 : ulen), u);
}

static struct wsgi_req *
req_new(struct request *r)
{
	struct wsgi_req *req;
	const char *m;
	size_t mlen;

	if ((req = PyObject_New(struct wsgi_req, &req_type)) == NULL)
		return NULL;
	req->r = r;
	req->head = NULL;
	req->content_length = -1;
	req->sent = 0;
	req->status = 0;
	req->overflow = false;
	req->headers_sent = false;
	req->gone = false;
	req->busy = false;
	req->head_only = (m = request_param(r, "REQUEST_METHOD", &mlen)) !=
	    NULL && mlen == 4 && memcmp(m, "HEAD", 4) == 0;
	return req;
}

static void
req_dealloc(PyObject *self)
{
	Py_XDECREF(((struct wsgi_req *)self)->head);
	PyObject_Free(self);
}

/* Wait, GIL released, for output another Python thread has in flight. */
static void
req_wait(struct wsgi_req *req)
{
	while (req->busy) {
		Py_BEGIN_ALLOW_THREADS
		usleep(1000);
		Py_END_ALLOW_THREADS
	}
}

static int
req_usable(struct wsgi_req *req)
{
	if (req->r == NULL) {
		PyErr_SetString(PyExc_RuntimeError,
		    "request object has expired");
		return -1;
	}
	return 0;
}

/*
 * Send the header block if not sent yet, then DATA (kept alive by the
 * caller), then flush if asked.  LAST: DATA ends the body (the app has
 * no more); if it also completes the Content-Length, the end of the
 * response goes in the same write.  The GIL is released only when the
 * host may do I/O; a write it just copies keeps it.  No more body than
 * the app's Content-Length goes out (PEP 3333): the excess is dropped and
 * req->overflow set.  Returns 0, or -1 when the client is gone (no
 * Python error set).
 */
static int
req_send(struct wsgi_req *req, const char *data, size_t len, bool flush, bool last)
{
	struct request *r;
	PyObject *head = NULL;
	size_t head_len = 0;
	int rc = 0;

	req_wait(req);
	if (req->gone || (r = req->r) == NULL)
		return -1;
	if (req->content_length >= 0 &&
	    (long long)len > req->content_length - req->sent) {
		len = (size_t)(req->content_length - req->sent);
		req->overflow = true;
	}
	req->sent += (long long)len;
	if (req->head_only)
		len = 0;	/* the web server would drop it anyway */
	if (!req->headers_sent) {
		head = Py_NewRef(req->head);
		head_len = (size_t)PyBytes_GET_SIZE(head);
		req->headers_sent = true;
	}
	/* An app that says more than it sends is cut short by fcgi_end(). */
	last = last && (req->content_length < 0 || req->sent == req->content_length);
	if (!flush && !last && request_write_is_buffered(r, head_len + len)) {
		if (head != NULL)
			rc = request_write(r, PyBytes_AS_STRING(head), head_len);
		if (rc == 0 && len > 0)
			rc = request_write(r, data, len);
	} else {
		req->busy = true;
		Py_BEGIN_ALLOW_THREADS
		if (head != NULL)
			rc = request_write(r, PyBytes_AS_STRING(head), head_len);
		if (rc == 0 && last)
			rc = request_write_last(r, data, len);
		else if (rc == 0 && len > 0)
			rc = request_write(r, data, len);
		if (rc == 0 && flush)
			rc = request_flush(r);
		Py_END_ALLOW_THREADS
		req->busy = false;
	}
	Py_XDECREF(head);
	if (rc == -1)
		req->gone = true;
	return rc;
}

/* A str that encodes to latin-1 as is: its bytes, else NULL. */
static const char *
latin1(PyObject *s, size_t *len)
{
	if (!PyUnicode_Check(s) || PyUnicode_READY(s) == -1 ||
	    PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
		return NULL;
	*len = (size_t)PyUnicode_GET_LENGTH(s);
	return (const char *)PyUnicode_1BYTE_DATA(s);
}

/* RFC 9110 tchar. */
static bool
is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' &&
		    strchr("!#$%&'*+-.^_`|~", c) != NULL)))
			return false;
	}
	return true;
}

/* Field values and reason phrases: no CR, LF, NUL or other controls. */
static bool
is_text(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * Validate STATUS and HEADERS as PEP 3333 wants them and build the header
 * block of the response.  New bytes, or NULL with TypeError/ValueError set
 * (the app sees it; if it lets it through, the request becomes a 500).
 */
static PyObject *
head_build(PyObject *status, PyObject *headers, long long *clen)
{
	const char *s, *name, *value;
	size_t slen, nlen, vlen, total;
	Py_ssize_t i, n;
	PyObject *head, *item;
	char *p;

	if ((s = latin1(status, &slen)) == NULL) {
		PyErr_Format(PyExc_TypeError, "status must be a latin-1 str, "
		    "not %.100s", Py_TYPE(status)->tp_name);
		return NULL;
	}
	if (slen < 4 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || s[3] != ' ' || !is_text(s, slen)) {
		PyErr_Format(PyExc_ValueError, "status must look like "
		    "'200 OK', not %R", status);
		return NULL;
	}
	if (!PyList_Check(headers)) {
		PyErr_Format(PyExc_TypeError, "response_headers must be a "
		    "list, not %.100s", Py_TYPE(headers)->tp_name);
		return NULL;
	}

	*clen = -1;
	total = sizeof("Status: \r\n") - 1 + slen;
	n = PyList_GET_SIZE(headers);
	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(headers, i);	/* borrowed */
		if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
			PyErr_Format(PyExc_TypeError, "response header must "
			    "be a (name, value) tuple, not %R", item);
			return NULL;
		}
		if ((name = latin1(PyTuple_GET_ITEM(item, 0), &nlen)) == NULL ||
		    (value = latin1(PyTuple_GET_ITEM(item, 1), &vlen)) ==
		    NULL) {
			PyErr_Format(PyExc_TypeError, "response header name "
			    "and value must be latin-1 str: %R", item);
			return NULL;
		}
		if (!is_token(name, nlen)) {
			PyErr_Format(PyExc_ValueError, "invalid response "
			    "header name %R", PyTuple_GET_ITEM(item, 0));
			return NULL;
		}
		if (!is_text(value, vlen)) {
			PyErr_Format(PyExc_ValueError, "invalid value of "
			    "response header %R: %R", PyTuple_GET_ITEM(item, 0),
			    PyTuple_GET_ITEM(item, 1));
			return NULL;
		}
		/* FastCGI reads a Status header as the status line. */
		if (span_ieq(name, nlen, "status")) {
			PyErr_SetString(PyExc_ValueError, "a 'Status' response "
			    "header is not allowed: pass the status to "
			    "start_response()");
			return NULL;
		}
		if (span_ieq(name, nlen, "content-length")) {
			char *end;
			long long v;

			errno = 0;
			v = strtoll(value, &end, 10);
			*clen = (errno == 0 && end == value + vlen && vlen > 0 &&
			    v >= 0) ? v : -1;
		}
		total += nlen + 2 + vlen + 2;
	}
	total += 2;

	if ((head = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total)) == NULL)
		return NULL;
	p = PyBytes_AS_STRING(head);
	memcpy(p, "Status: ", 8), p += 8;
	memcpy(p, s, slen), p += slen;
	memcpy(p, "\r\n", 2), p += 2;
	for (i = 0; i < n; i++) {
		item = PyList_GET_ITEM(headers, i);
		name = latin1(PyTuple_GET_ITEM(item, 0), &nlen);
		value = latin1(PyTuple_GET_ITEM(item, 1), &vlen);
		memcpy(p, name, nlen), p += nlen;
		memcpy(p, ": ", 2), p += 2;
		memcpy(p, value, vlen), p += vlen;
		memcpy(p, "\r\n", 2), p += 2;
	}
	memcpy(p, "\r\n", 2);
	return head;
}

/* write(data): the imperative API; data is sent before it returns. */
static PyObject *
req_write(PyObject *self, PyObject *data)
{
	struct wsgi_req *req = (struct wsgi_req *)self;
	int rc;

	if (req_usable(req) == -1)
		return NULL;
	if (req->head == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "write() called before "
		    "start_response()");
		return NULL;
	}
	if (!PyBytes_Check(data)) {
		PyErr_Format(PyExc_TypeError, "write() argument must be bytes, "
		    "not %.100s", Py_TYPE(data)->tp_name);
		return NULL;
	}
	Py_INCREF(data);
	rc = req_send(req, PyBytes_AS_STRING(data),
	    (size_t)PyBytes_GET_SIZE(data), true, false);
	Py_DECREF(data);
	if (rc == -1) {
		PyErr_SetString(PyExc_OSError, "write(): the client closed "
		    "the connection");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyMethodDef write_def = {
	"write", req_write, METH_O, "write(data): send bytes now"
};

/* start_response(status, response_headers, exc_info=None) -> write */
static PyObject *
req_start_response(PyObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "status", "response_headers", "exc_info",
	    NULL };
	struct wsgi_req *req = (struct wsgi_req *)self;
	PyObject *status, *headers, *exc_info = Py_None, *head;
	long long clen;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:start_response",
	    kwlist, &status, &headers, &exc_info))
		return NULL;
	if (req_usable(req) == -1)
		return NULL;
	if (exc_info != Py_None) {
		if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
			PyErr_SetString(PyExc_TypeError, "exc_info must be a "
			    "(type, value, traceback) tuple");
			return NULL;
		}
		if (req->headers_sent) {
			/* Too late to change the response: re-raise. */
			PyObject *t = PyTuple_GET_ITEM(exc_info, 0);
			PyObject *v = PyTuple_GET_ITEM(exc_info, 1);
			PyObject *tb = PyTuple_GET_ITEM(exc_info, 2);

			PyErr_Restore(Py_NewRef(t), Py_NewRef(v),
			    tb != Py_None ? Py_NewRef(tb) : NULL);
			return NULL;
		}
	} else if (req->head != NULL) {
		PyErr_SetString(PyExc_RuntimeError, "start_response() called "
		    "again without exc_info");
		return NULL;
	}
	if ((head = head_build(status, headers, &clen)) == NULL)
		return NULL;
	Py_XSETREF(req->head, head);
	req->content_length = clen;
	/* head_build() checked the three digits. */
	req->status = atoi(PyBytes_AS_STRING(head) + sizeof("Status: ") - 1);
	return PyCFunction_New(&write_def, self);
}

static PyMethodDef start_response_def = {
	"start_response", (PyCFunction)(void (*)(void))req_start_response,
	METH_VARARGS | METH_KEYWORDS,
	"start_response(status, response_headers, exc_info=None) -> write"
};

static PyTypeObject req_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "fcgi_pm.Request",
	.tp_basicsize = sizeof(struct wsgi_req),
	.tp_dealloc = req_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "one WSGI request: owns start_response and write",
};

/* ------------------------------------------------------ wsgi.file_wrapper */

struct filewrapper {
	PyObject_HEAD
	PyObject *filelike;
	Py_ssize_t blksize;
};

static int
filewrapper_init(PyObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "filelike", "block_size", NULL };
	struct filewrapper *fw = (struct filewrapper *)self;
	PyObject *filelike;
	Py_ssize_t blksize = 8192;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:file_wrapper",
	    kwlist, &filelike, &blksize))
		return -1;
	if (blksize <= 0) {
		PyErr_SetString(PyExc_ValueError, "block_size must be > 0");
		return -1;
	}
	Py_XSETREF(fw->filelike, Py_NewRef(filelike));
	fw->blksize = blksize;
	return 0;
}

static int
filewrapper_traverse(PyObject *self, visitproc visit, void *arg)
{
	Py_VISIT(((struct filewrapper *)self)->filelike);
	return 0;
}

static int
filewrapper_clear(PyObject *self)
{
	Py_CLEAR(((struct filewrapper *)self)->filelike);
	return 0;
}

static void
filewrapper_dealloc(PyObject *self)
{
	PyObject_GC_UnTrack(self);
	filewrapper_clear(self);
	Py_TYPE(self)->tp_free(self);
}

static PyObject *
filewrapper_iternext(PyObject *self)
{
	struct filewrapper *fw = (struct filewrapper *)self;
	PyObject *data;
	int full;

	if (fw->filelike == NULL)
		return NULL;
	data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
	if (data == NULL)
		return NULL;
	if ((full = PyObject_IsTrue(data)) <= 0) {
		Py_DECREF(data);
		return NULL;	/* StopIteration, or the error */
	}
	return data;
}

static PyObject *
filewrapper_close(PyObject *self, PyObject *Py_UNUSED(unused))
{
	struct filewrapper *fw = (struct filewrapper *)self;
	PyObject *close, *res;

	if (fw->filelike == NULL)
		Py_RETURN_NONE;
	if ((close = PyObject_GetAttr(fw->filelike, str_close)) == NULL) {
		if (!PyErr_ExceptionMatches(PyExc_AttributeError))
			return NULL;
		PyErr_Clear();
		Py_RETURN_NONE;
	}
	res = PyObject_CallNoArgs(close);
	Py_DECREF(close);
	return res;
}

static PyMethodDef filewrapper_methods[] = {
	{"close", filewrapper_close, METH_NOARGS, "close the file"},
	{NULL, NULL, 0, NULL}
};

static PyTypeObject filewrapper_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "fcgi_pm.FileWrapper",
	.tp_basicsize = sizeof(struct filewrapper),
	.tp_dealloc = filewrapper_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "wsgi.file_wrapper(filelike, block_size=8192)",
	.tp_traverse = filewrapper_traverse,
	.tp_clear = filewrapper_clear,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = filewrapper_iternext,
	.tp_methods = filewrapper_methods,
	.tp_init = filewrapper_init,
	.tp_new = PyType_GenericNew,
};

/*
 * Send a file_wrapper whose file is a regular file straight from its fd,
 * in large blocks with the GIL released, from its current position and
 * no further than the app's Content-Length.  Sets *HANDLED to false (no
 * error pending) when the file has no usable fd: the caller then iterates.
 */
static enum send_state
filewrapper_send(struct wsgi_req *req, struct filewrapper *fw, bool *handled)
{
	PyObject *o;
	struct stat st;
	long long pos, left;
	struct request *r = req->r;
	PyObject *head = NULL;
	char *buf;
	ssize_t n = 0;
	int fd, rc = 0, err = 0;

	*handled = false;
	if (fw->filelike == NULL || req->head == NULL)
		return SEND_OK;
	if ((o = PyObject_CallMethod(fw->filelike, "fileno", NULL)) == NULL) {
		PyErr_Clear();
		return SEND_OK;
	}
	fd = PyLong_AsLong(o);
	Py_DECREF(o);
	if (fd < 0 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		PyErr_Clear();
		return SEND_OK;
	}
	/* tell() is the logical position, past Python's read-ahead. */
	if ((o = PyObject_CallMethod(fw->filelike, "tell", NULL)) == NULL) {
		PyErr_Clear();
		return SEND_OK;
	}
	pos = PyLong_AsLongLong(o);
	Py_DECREF(o);
	if (pos < 0) {
		PyErr_Clear();
		return SEND_OK;
	}
	if ((buf = PyMem_RawMalloc(FILE_BLOCK)) == NULL)
		return SEND_OK;
	*handled = true;

	left = st.st_size > pos ? st.st_size - pos : 0;
	if (req->content_length >= 0 &&
	    req->content_length - req->sent < left)
		left = req->content_length - req->sent;
	if (req->head_only)
		left = 0;
	req_wait(req);
	if (!req->headers_sent) {
		head = Py_NewRef(req->head);
		req->headers_sent = true;
	}
	req->busy = true;
	Py_BEGIN_ALLOW_THREADS
	if (head != NULL)
		rc = request_write(r, PyBytes_AS_STRING(head),
		    (size_t)PyBytes_GET_SIZE(head));
	while (rc == 0 && left > 0) {
		n = pread(fd, buf, left < FILE_BLOCK ? (size_t)left :
		    FILE_BLOCK, pos);
		if (n <= 0) {
			err = n < 0 ? errno : 0;
			break;
		}
		rc = request_write(r, buf, (size_t)n);
		req->sent += n;
		pos += n;
		left -= n;
	}
	Py_END_ALLOW_THREADS
	req->busy = false;
	Py_XDECREF(head);
	PyMem_RawFree(buf);
	if (rc == -1) {
		req->gone = true;
		return SEND_GONE;
	}
	if (left > 0) {
		/* The file shrank or failed under us: the response is short. */
		PyErr_Format(PyExc_OSError, "file_wrapper: reading the file "
		    "failed with %lld bytes left%s%s", left,
		    err != 0 ? ": " : "", err != 0 ? strerror(err) : "");
		return SEND_ERROR;
	}
	return SEND_OK;
}

/* ---------------------------------------------------------- the response */

/* Send one item of the response (LAST: the app has no more).  A borrowed ITEM. */
static enum send_state
chunk_send(struct wsgi_req *req, PyObject *item, bool flush, bool last)
{
	int rc;

	if (!PyBytes_Check(item)) {
		PyErr_Format(PyExc_TypeError, "the response must yield bytes, "
		    "not %.100s", Py_TYPE(item)->tp_name);
		return SEND_ERROR;
	}
	/* Headers wait for the first non-empty chunk (PEP 3333). */
	if (PyBytes_GET_SIZE(item) == 0 && (!last || req->head == NULL))
		return SEND_OK;
	if (req->head == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "the application returned "
		    "data before calling start_response()");
		return SEND_ERROR;
	}
	Py_INCREF(item);
	rc = req_send(req, PyBytes_AS_STRING(item),
	    (size_t)PyBytes_GET_SIZE(item), flush, last);
	Py_DECREF(item);
	if (rc == -1)
		return SEND_GONE;
	return req->overflow ? SEND_FULL : SEND_OK;
}

/*
 * Send RESULT, the app's iterable.  A list or tuple is sent as is (a
 * one-item list is Django's and Flask's common case and needs no iterator
 * protocol); anything else is iterated, each chunk flushed before the next
 * is asked for, since the app may take its time producing it (PEP 3333:
 * no block may be delayed).
 */
static enum send_state
response_body(struct wsgi_req *req, PyObject *result)
{
	enum send_state st = SEND_OK;
	PyObject *iter, *item;
	Py_ssize_t i;
	bool handled, flush;

	if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
		for (i = 0; st == SEND_OK &&
		    i < PySequence_Fast_GET_SIZE(result); i++) {
			item = Py_NewRef(PySequence_Fast_GET_ITEM(result, i));
			st = chunk_send(req, item, false,
			    i == PySequence_Fast_GET_SIZE(result) - 1);
			Py_DECREF(item);
		}
	} else {
		if (Py_IS_TYPE(result, &filewrapper_type)) {
			st = filewrapper_send(req, (struct filewrapper *)result,
			    &handled);
			if (handled)
				return st;
		}
		if ((iter = PyObject_GetIter(result)) == NULL)
			return SEND_ERROR;
		/* Django's HttpResponse iterates over its list: nothing to
		 * wait for between chunks, so the host's last write will do. */
		flush = !Py_IS_TYPE(iter, &PyListIter_Type) &&
		    !Py_IS_TYPE(iter, &PyTupleIter_Type);
		while ((item = PyIter_Next(iter)) != NULL) {
			/* Over a list, the iterator knows when it gave the last. */
			st = chunk_send(req, item, flush,
			    !flush && PyObject_LengthHint(iter, -1) == 0);
			Py_DECREF(item);
			if (st != SEND_OK)
				break;
		}
		Py_DECREF(iter);
		if (st == SEND_OK && PyErr_Occurred())
			st = SEND_ERROR;
	}
	if (st == SEND_FULL)
		return SEND_OK;
	if (st != SEND_OK || req->headers_sent)
		return st;
	/* An empty body: the headers go now. */
	if (req->head == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "the application returned "
		    "without calling start_response()");
		return SEND_ERROR;
	}
	return req_send(req, NULL, 0, false, false) == 0 ? SEND_OK : SEND_GONE;
}

/*
 * Report a failed response (exception pending unless the client is gone)
 * and finish it: a 500 if nothing was sent yet.  Returns wsgi_handle()'s
 * result.
 */
static int
response_fail(struct wsgi_req *req, const char *label)
{
	struct request *r = req->r;
	int rc;

	/* A failed read of the body (wsgi.input raised) is the client too.
	 * Clients that give up are common (a browser's stop button, a load
	 * balancer's timeout): a burst of them must not flood the log. */
	if (req->gone || r->io_error != 0) {
		PyErr_Clear();
		wlog_limited(&rl_gone, WLOG_NOTICE, "wsgi: %s: the client closed "
		    "the connection (%s)", label, strerror(r->io_error != 0 ?
		    r->io_error : EPIPE));
		return -1;
	}
	if (req->headers_sent) {
		python_log_exception("wsgi: %s: exception after the response "
		    "started, closing the connection", label);
		return -1;
	}
	python_log_exception("wsgi: %s: exception in the application", label);
	req->headers_sent = true;
	req_wait(req);
	req->busy = true;
	Py_BEGIN_ALLOW_THREADS
	rc = request_write(r, response_500, sizeof(response_500) - 1);
	Py_END_ALLOW_THREADS
	req->busy = false;
	return rc;
}

/*
 * A complete response against its Content-Length.  Too much was cut
 * (logged); too little leaves a client waiting for the rest, so the
 * connection is closed (PEP 3333).  A HEAD, 1xx, 204 or 304 response
 * carries no body whatever its Content-Length says.  Returns
 * wsgi_handle()'s result.
 */
static int
response_check_length(struct wsgi_req *req, const char *label)
{
	if (req->overflow)
		wlog(WLOG_WARNING, "wsgi: %s: the application sent more than "
		    "its Content-Length (%lld bytes); the rest was dropped",
		    label, req->content_length);
	if (req->content_length < 0 || req->sent >= req->content_length ||
	    req->status < 200 || req->status == 204 || req->status == 304 ||
	    req->head_only)
		return 0;
	wlog(WLOG_WARNING, "wsgi: %s: the application sent %lld bytes of its "
	    "Content-Length (%lld); closing the connection", label, req->sent,
	    req->content_length);
	return -1;
}

/* Call RESULT.close() if it has one; errors are logged. */
static void
response_close(PyObject *result, const char *label)
{
	PyObject *close, *res;

	if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
		return;
	if ((close = PyObject_GetAttr(result, str_close)) == NULL) {
		if (PyErr_ExceptionMatches(PyExc_AttributeError))
			PyErr_Clear();
		else
			python_log_exception("wsgi: %s: response.close",
			    label);
		return;
	}
	if ((res = PyObject_CallNoArgs(close)) == NULL)
		python_log_exception("wsgi: %s: exception in the response's "
		    "close()", label);
	Py_XDECREF(res);
	Py_DECREF(close);
}

/* See worker.h. */
int
wsgi_handle(struct request *r)
{
	struct wsgi_req *req = NULL;
	PyObject *input = NULL, *errors = NULL, *env = NULL;
	PyObject *start = NULL, *result = NULL;
	enum send_state st = SEND_ERROR;
	char label[512];
	int rc;

	python_acquire();
	req_label(r, label, sizeof(label));
	if ((req = req_new(r)) == NULL ||
	    (input = stream_input_new(r)) == NULL ||
	    (errors = stream_errors_new()) == NULL ||
	    (env = environ_build(r, input, errors)) == NULL ||
	    (start = PyCFunction_New(&start_response_def,
	    (PyObject *)req)) == NULL) {
		if (req == NULL) {
			python_log_exception("wsgi: %s: out of memory", label);
			rc = -1;
			goto done;
		}
	} else if ((result = PyObject_CallFunctionObjArgs(app, env, start,
	    NULL)) != NULL)
		st = response_body(req, result);

	if (st == SEND_OK)
		rc = response_check_length(req, label);
	else
		rc = response_fail(req, label);
	/* close() on every path, once, after the response is complete. */
	if (result != NULL)
		response_close(result, label);
done:
	if (req != NULL) {
		req_wait(req);
		req->r = NULL;
	}
	if (input != NULL)
		stream_input_expire(input);
	if (errors != NULL)
		stream_errors_flush(errors);
	Py_XDECREF(result);
	Py_XDECREF(start);
	Py_XDECREF(env);
	Py_XDECREF(errors);
	Py_XDECREF(input);
	Py_XDECREF((PyObject *)req);
	if (PyErr_Occurred())	/* never leave one for the next request */
		python_log_exception("wsgi: %s: error left pending", label);
	python_release();
	return rc;
}

/* ------------------------------------------------------------- start-up */

/* See gateway.h. */
int
wsgi_init(const struct worker_opts *o, PyObject *application)
{
	PyObject *v;
	size_t i;
	int rc;

	opts = o;
	if (stream_init() == -1 || PyType_Ready(&req_type) == -1 ||
	    PyType_Ready(&filewrapper_type) == -1)
		return -1;
	for (i = 0; i < NCGI_KEYS; i++) {
		cgi_keys[i].len = strlen(cgi_keys[i].name);
		if ((cgi_keys[i].key = PyUnicode_InternFromString(
		    cgi_keys[i].name)) == NULL)
			return -1;
	}
	if ((key_url_scheme = PyUnicode_InternFromString("wsgi.url_scheme")) ==
	    NULL ||
	    (key_input = PyUnicode_InternFromString("wsgi.input")) == NULL ||
	    (key_errors = PyUnicode_InternFromString("wsgi.errors")) == NULL ||
	    (str_https = PyUnicode_InternFromString("https")) == NULL ||
	    (str_close = PyUnicode_InternFromString("close")) == NULL ||
	    (environ_template = PyDict_New()) == NULL)
		return -1;

	/* What every request shares; params overwrite the CGI defaults. */
	if ((v = Py_BuildValue("(ii)", 1, 0)) == NULL)
		return -1;
	rc = PyDict_SetItemString(environ_template, "wsgi.version", v);
	Py_DECREF(v);
	if (rc == -1 || (v = PyUnicode_InternFromString("http")) == NULL)
		return -1;
	rc = PyDict_SetItemString(environ_template, "wsgi.url_scheme", v);
	Py_DECREF(v);
	if (rc == -1)
		return -1;
	if (PyDict_SetItemString(environ_template, "wsgi.multithread",
	    o->threads > 1 ? Py_True : Py_False) == -1 ||
	    PyDict_SetItemString(environ_template, "wsgi.multiprocess",
	    o->multiprocess ? Py_True : Py_False) == -1 ||
	    PyDict_SetItemString(environ_template, "wsgi.run_once",
	    Py_False) == -1 ||
	    PyDict_SetItemString(environ_template, "wsgi.file_wrapper",
	    (PyObject *)&filewrapper_type) == -1)
		return -1;
	static const char *defaults[][2] = {
		{ "REQUEST_METHOD", "GET" }, { "SCRIPT_NAME", "" },
		{ "PATH_INFO", "" }, { "QUERY_STRING", "" },
		{ "SERVER_NAME", "localhost" }, { "SERVER_PORT", "80" },
		{ "SERVER_PROTOCOL", "HTTP/1.0" },
	};
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if ((v = PyUnicode_FromString(defaults[i][1])) == NULL)
			return -1;
		rc = PyDict_SetItemString(environ_template, defaults[i][0], v);
		Py_DECREF(v);
		if (rc == -1)
			return -1;
	}
	app = Py_NewRef(application);
	return 0;
}

/* See gateway.h. */
void
wsgi_fini(void)
{
	size_t i;

	for (i = 0; i < NCGI_KEYS; i++)
		Py_CLEAR(cgi_keys[i].key);
	Py_CLEAR(key_url_scheme);
	Py_CLEAR(key_input);
	Py_CLEAR(key_errors);
	Py_CLEAR(str_https);
	Py_CLEAR(str_close);
	Py_CLEAR(environ_template);
	Py_CLEAR(app);
}
