/*
 * stub_gateway.c - a C stand-in for the Python gateway (python.c, wsgi.c),
 * linked with the real host (embed/main.c, fcgi.c, log.c) into fcgi-echo,
 * so the FastCGI layer and the thread model can be tested without Python.
 *
 * What a request gets is steered by its QUERY_STRING:
 *   sleep=MS      sleep before answering
 *   size=N        answer N bytes ('a'..'z' repeating) instead of the report
 *   chunk=K       ... written K bytes at a time (default 65536)
 *   flush=1       ... with request_flush() after each chunk
 *   last=1        ... the last chunk with request_write_last()
 *   echo=1        answer the request body itself
 *   noread=1      do not read the body
 *   param=NAME    add NAME's value to the report
 *   status=CODE   Status line
 *   fail=1        write the headers, then return -1 (broken response)
 * The default answer is a one-line report of what the request looked like.
 * --module fail makes python_init() fail (exit 3).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embed/worker.h"

static _Atomic int nthreads;
static __thread int thread_no = -1;

int
python_init(const struct worker_opts *o)
{
	if (strcmp(o->module, "fail") == 0) {
		wlog(WLOG_ERROR, "stub: cannot import module 'fail'\nTraceback (most recent call last):\n  (stub)");
		return -1;
	}
	return 0;
}

void
python_thread_begin(void)
{
	thread_no = atomic_fetch_add(&nthreads, 1);
}

void
python_thread_end(void)
{
}

void
python_finalize(void)
{
	const char *s = getenv("STUB_FINALIZE_MS");

	if (s != NULL) {
		long ms = atol(s);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	}
	wlog(WLOG_NOTICE, "stub: finalized");
}

pid_t
python_fork_with(pid_t (*forker)(void))
{
	return forker();
}

void
python_gc_freeze(void)
{
}

pid_t
python_fork(void)
{
	return fork();
}

int
python_register_slowlog(int fd, int signum)
{
	(void)fd;
	(void)signum;
	return 0;
}

/* Value of KEY in the query string QS (copied into BUF), or NULL. */
static const char *
qarg(const char *qs, size_t qlen, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key), i = 0, j;

	while (i < qlen) {
		for (j = i; j < qlen && qs[j] != '&'; j++)
			;
		if (j - i > kl && memcmp(qs + i, key, kl) == 0 && qs[i + kl] == '=') {
			size_t vl = j - i - kl - 1;

			if (vl >= size)
				vl = size - 1;
			memcpy(buf, qs + i + kl + 1, vl);
			buf[vl] = '\0';
			return buf;
		}
		i = j + 1;
	}
	return NULL;
}

static long
qnum(const char *qs, size_t qlen, const char *key, long def)
{
	char buf[32];

	return qarg(qs, qlen, key, buf, sizeof(buf)) ? atol(buf) : def;
}

static int
put(struct request *r, const char *s)
{
	return request_write(r, s, strlen(s));
}

int
wsgi_handle(struct request *r)
{
	static const char *empty = "";
	char head[256], line[1024], pname[64], status[32];
	const char *qs, *method, *uri, *pv;
	size_t qlen = 0, mlen = 0, ulen = 0, pvlen = 0, body = 0;
	uint32_t sum = 0;
	long ms, size, chunk;
	ssize_t n;
	static __thread char buf[256 * 1024];

	if ((qs = request_param(r, "QUERY_STRING", &qlen)) == NULL)
		qs = empty;
	if ((method = request_param(r, "REQUEST_METHOD", &mlen)) == NULL)
		method = empty;
	if ((uri = request_param(r, "REQUEST_URI", &ulen)) == NULL)
		uri = empty;
	if ((ms = qnum(qs, qlen, "sleep", 0)) > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	}
	if (!qarg(qs, qlen, "status", status, sizeof(status)))
		snprintf(status, sizeof(status), "200 OK");
	size = qnum(qs, qlen, "size", -1);
	chunk = qnum(qs, qlen, "chunk", 65536);
	if (chunk <= 0 || chunk > (long)sizeof(buf) - 26)
		chunk = sizeof(buf) - 26;

	if (qnum(qs, qlen, "echo", 0)) {
		snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: application/octet-stream\r\n"
		    "Content-Length: %lld\r\n\r\n", status, r->content_length);
		if (put(r, head) == -1)
			return 0;
		while ((n = request_read(r, buf, (size_t)chunk)) > 0)
			if (request_write(r, buf, (size_t)n) == -1)
				return 0;
		return n == -1 ? (r->aborted ? 0 : -1) : 0;
	}
	if (!qnum(qs, qlen, "noread", 0)) {
		while ((n = request_read(r, buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++)
				sum = sum * 31 + (uint8_t)buf[i];
			body += (size_t)n;
		}
		if (n == -1 && !r->aborted)
			return -1;
	}
	if (size >= 0) {
		snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: text/plain\r\n"
		    "Content-Length: %ld\r\n\r\n", status, size);
		if (put(r, head) == -1)
			return 0;
		for (long i = 0; i < chunk + 26; i++)
			buf[i] = (char)('a' + i % 26);
		for (long off = 0; off < size; off += chunk) {
			long k = size - off < chunk ? size - off : chunk;

			/* the pattern runs on across chunks */
			if (off + k == size && qnum(qs, qlen, "last", 0)) {
				request_write_last(r, buf + off % 26, (size_t)k);
				return 0;
			}
			if (request_write(r, buf + off % 26, (size_t)k) == -1)
				return 0;
			if (qnum(qs, qlen, "flush", 0) && request_flush(r) == -1)
				return 0;
		}
		return 0;
	}
	snprintf(head, sizeof(head), "Status: %s\r\nContent-Type: text/plain\r\n\r\n", status);
	if (put(r, head) == -1)
		return 0;
	if (qnum(qs, qlen, "fail", 0))
		return -1;
	pv = NULL;
	if (qarg(qs, qlen, "param", pname, sizeof(pname)))
		pv = request_param(r, pname, &pvlen);
	snprintf(line, sizeof(line),
	    "thread=%d pid=%d id=%u keep=%d method=%.*s uri=%.*s clen=%lld body=%zu "
	    "sum=%08x nparams=%zu aborted=%d param=%.*s\n",
	    thread_no, (int)getpid(), r->id, r->keep_conn, (int)mlen, method,
	    (int)ulen, uri, r->content_length, body, sum, r->nparams, r->aborted,
	    (int)(pv ? pvlen : 1), pv ? pv : "-");
	put(r, line);
	return 0;
}
