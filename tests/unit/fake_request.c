/*
 * fake_request.c - request_read/request_write/request_flush/request_param
 * and wlog over memory, for the gateway unit tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_request.h"

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len, log_cap;

static char *
xstrndup(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		abort();
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

struct fake *
fake_new(const char *method, const char *uri)
{
	struct fake *f = calloc(1, sizeof(*f));
	const char *q;

	if (f == NULL)
		abort();
	f->r.params = f->params;
	fake_param(f, "REQUEST_METHOD", method, -1);
	fake_param(f, "REQUEST_URI", uri, -1);
	q = strchr(uri, '?');
	fake_param(f, "QUERY_STRING", q != NULL ? q + 1 : "", -1);
	fake_param(f, "SERVER_NAME", "localhost", -1);
	fake_param(f, "SERVER_PORT", "80", -1);
	fake_param(f, "SERVER_PROTOCOL", "HTTP/1.1", -1);
	return f;
}

void
fake_param(struct fake *f, const char *name, const char *value, long value_len)
{
	struct fcgi_param *p;
	size_t vlen = value_len < 0 ? strlen(value) : (size_t)value_len;

	if (f->r.nparams == sizeof(f->params) / sizeof(f->params[0]))
		abort();
	p = &f->params[f->r.nparams++];
	p->name = f->strings[f->nstrings++] = xstrndup(name, strlen(name));
	p->name_len = strlen(name);
	p->value = f->strings[f->nstrings++] = xstrndup(value, vlen);
	p->value_len = vlen;
	if (strcmp(name, "CONTENT_LENGTH") == 0)
		f->r.content_length = atoll(p->value);
}

void
fake_body(struct fake *f, const char *body, size_t len)
{
	f->body = body;
	f->body_len = len;
	f->body_pos = 0;
}

void
fake_free(struct fake *f)
{
	int i;

	for (i = 0; i < f->nstrings; i++)
		free(f->strings[i]);
	free(f->out);
	free(f);
}

const char *
fake_body_out(struct fake *f)
{
	const char *p;

	if (f->out == NULL)
		return "";
	p = strstr(f->out, "\r\n\r\n");
	return p != NULL ? p + 4 : f->out;
}

ssize_t
request_read(struct request *r, void *buf, size_t len)
{
	struct fake *f = (struct fake *)r;
	size_t n = f->body_len - f->body_pos;

	f->nreads++;
	if (n == 0 && f->read_fails) {
		r->io_error = ECONNRESET;
		r->aborted = true;
		return -1;
	}
	if (n > len)
		n = len;
	if (f->read_max > 0 && n > f->read_max)
		n = f->read_max;
	memcpy(buf, f->body + f->body_pos, n);
	f->body_pos += n;
	return (ssize_t)n;
}

int
request_write(struct request *r, const void *buf, size_t len)
{
	struct fake *f = (struct fake *)r;

	f->nwrites++;
	if (r->io_error != 0 || (f->fail_at_write > 0 &&
	    f->nwrites >= f->fail_at_write)) {
		r->io_error = EPIPE;
		r->aborted = true;
		return -1;
	}
	if (f->out_len + len + 1 > f->out_cap) {
		f->out_cap = (f->out_len + len + 1) * 2;
		if ((f->out = realloc(f->out, f->out_cap)) == NULL)
			abort();
	}
	memcpy(f->out + f->out_len, buf, len);
	f->out_len += len;
	f->out[f->out_len] = '\0';
	return 0;
}

int
request_write_last(struct request *r, const void *buf, size_t len)
{
	struct fake *f = (struct fake *)r;

	if (request_write(r, buf, len) == -1)
		return -1;
	f->nlast++;
	return 0;
}

bool
request_write_is_buffered(const struct request *r, size_t len)
{
	(void)r;
	return len < 8192;
}

int
request_flush(struct request *r)
{
	struct fake *f = (struct fake *)r;

	f->nflushes++;
	return r->io_error != 0 ? -1 : 0;
}

const char *
request_param(const struct request *r, const char *name, size_t *len)
{
	size_t i, nl = strlen(name);

	for (i = 0; i < r->nparams; i++)
		if (r->params[i].name_len == nl &&
		    memcmp(r->params[i].name, name, nl) == 0) {
			if (len != NULL)
				*len = r->params[i].value_len;
			return r->params[i].value;
		}
	return NULL;
}

void
wlog(enum wlog_level l, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "notice", "debug" };
	char line[16384];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (getenv("FAKE_LOG_STDERR") != NULL)
		fprintf(stderr, "%s: %s\n", names[l], line);
	pthread_mutex_lock(&log_mutex);
	if (log_len + n + 32 > log_cap) {
		log_cap = (log_len + n + 32) * 2;
		if ((log_buf = realloc(log_buf, log_cap)) == NULL)
			abort();
	}
	log_len += sprintf(log_buf + log_len, "%s: %.*s\n", names[l], n, line);
	pthread_mutex_unlock(&log_mutex);
}

/* No rate limit here: the tests count every line (log.c's own is tested
 * in test_log). */
void
wlog_limited(struct wlog_ratelimit *rl, enum wlog_level l, const char *fmt, ...)
{
	char line[16384];
	va_list ap;

	(void)rl;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	wlog(l, "%s", line);
}

const char *
fake_log(void)
{
	return log_buf != NULL ? log_buf : "";
}

void
fake_log_reset(void)
{
	pthread_mutex_lock(&log_mutex);
	log_len = 0;
	if (log_buf != NULL)
		log_buf[0] = '\0';
	pthread_mutex_unlock(&log_mutex);
}
