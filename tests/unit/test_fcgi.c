/*
 * test_fcgi.c - the FastCGI layer: the pure protocol core (records,
 * name-value pairs, limits, GET_VALUES) and one request end to end over
 * a real unix socket through fcgi_next/request_read/request_write/fcgi_end.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "embed/fcgi.h"

/* Encode one name-value pair the way a web server does. */
static size_t
nv(uint8_t *p, const char *name, size_t nl, const char *value, size_t vl)
{
	size_t n = 0;

	if (nl < 128)
		p[n++] = (uint8_t)nl;
	else {
		p[n++] = (uint8_t)(0x80 | nl >> 24);
		p[n++] = (uint8_t)(nl >> 16);
		p[n++] = (uint8_t)(nl >> 8);
		p[n++] = (uint8_t)nl;
	}
	if (vl < 128)
		p[n++] = (uint8_t)vl;
	else {
		p[n++] = (uint8_t)(0x80 | vl >> 24);
		p[n++] = (uint8_t)(vl >> 16);
		p[n++] = (uint8_t)(vl >> 8);
		p[n++] = (uint8_t)vl;
	}
	memcpy(p + n, name, nl);
	memcpy(p + n + nl, value, vl);
	return n + nl + vl;
}

START_TEST(header_roundtrip)
{
	uint8_t b[8];
	struct fcgi_header h;

	fcgi_header_build(b, FCGI_STDOUT, 0x1234, 0xfff8, 7);
	ck_assert_int_eq(fcgi_header_parse(b, &h), 0);
	ck_assert_int_eq(h.version, 1);
	ck_assert_int_eq(h.type, FCGI_STDOUT);
	ck_assert_int_eq(h.id, 0x1234);
	ck_assert_int_eq(h.content_len, 0xfff8);
	ck_assert_int_eq(h.padding_len, 7);
	ck_assert_int_eq(b[7], 0);
}
END_TEST

START_TEST(header_rejects_other_versions)
{
	uint8_t b[8] = { 'G', 'E', 'T', ' ', '/', ' ', 'H', 'T' };
	struct fcgi_header h;

	ck_assert_int_eq(fcgi_header_parse(b, &h), -1);
	b[0] = 0;
	ck_assert_int_eq(fcgi_header_parse(b, &h), -1);
}
END_TEST

START_TEST(end_request_layout)
{
	uint8_t b[16];
	static const uint8_t want[16] = { 1, 3, 0, 7, 0, 8, 0, 0,
	    0x01, 0x02, 0x03, 0x04, FCGI_CANT_MPX_CONN, 0, 0, 0 };

	ck_assert_uint_eq(fcgi_end_request_build(b, 7, 0x01020304, FCGI_CANT_MPX_CONN), 16);
	ck_assert_mem_eq(b, want, 16);
}
END_TEST

START_TEST(unknown_type_layout)
{
	uint8_t b[16];
	static const uint8_t want[16] = { 1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0 };

	ck_assert_uint_eq(fcgi_unknown_type_build(b, 42), 16);
	ck_assert_mem_eq(b, want, 16);
}
END_TEST

START_TEST(params_short_and_long_lengths)
{
	uint8_t buf[1024];
	char big[300];
	struct fcgi_param p[4];
	size_t len = 0, n;

	memset(big, 'v', sizeof(big));
	len += nv(buf + len, "REQUEST_METHOD", 14, "GET", 3);
	len += nv(buf + len, "HTTP_X_BIG", 10, big, sizeof(big));
	len += nv(buf + len, "EMPTY", 5, "", 0);
	ck_assert_int_eq(fcgi_params_parse(buf, len, p, 4, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(p[0].name_len, 14);
	ck_assert(memcmp(p[0].name, "REQUEST_METHOD", 14) == 0);
	ck_assert(memcmp(p[0].value, "GET", 3) == 0);
	ck_assert_uint_eq(p[1].value_len, 300);
	ck_assert(p[1].value[299] == 'v');
	ck_assert_uint_eq(p[2].value_len, 0);
}
END_TEST

START_TEST(params_empty_stream)
{
	struct fcgi_param p[1];
	size_t n = 99;

	ck_assert_int_eq(fcgi_params_parse((const uint8_t *)"", 0, p, 1, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(params_truncated_are_refused)
{
	uint8_t buf[64];
	struct fcgi_param p[4];
	size_t len, n, cut;

	len = nv(buf, "NAME", 4, "value", 5);
	for (cut = 1; cut < len; cut++) {
		errno = 0;
		ck_assert_int_eq(fcgi_params_parse(buf, cut, p, 4, &n), -1);
		ck_assert_int_eq(errno, EBADMSG);
	}
}
END_TEST

START_TEST(params_huge_length_is_refused)
{
	/* a 4-byte value length of 2^31-1 with 3 bytes behind it */
	static const uint8_t buf[] = { 1, 0xff, 0xff, 0xff, 0xff, 'A', 'b', 'c' };
	struct fcgi_param p[4];
	size_t n;

	ck_assert_int_eq(fcgi_params_parse(buf, sizeof(buf), p, 4, &n), -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

START_TEST(params_over_count_limit_are_refused)
{
	uint8_t *buf = malloc(8 * (FCGI_NPARAMS_MAX + 1));
	struct fcgi_param *p = calloc(FCGI_NPARAMS_MAX, sizeof(*p));
	size_t len = 0, n, i;

	for (i = 0; i < FCGI_NPARAMS_MAX; i++)
		len += nv(buf + len, "AB", 2, "cd", 2);
	ck_assert_int_eq(fcgi_params_parse(buf, len, p, FCGI_NPARAMS_MAX, &n), 0);
	ck_assert_uint_eq(n, FCGI_NPARAMS_MAX);
	len += nv(buf + len, "AB", 2, "cd", 2);
	ck_assert_int_eq(fcgi_params_parse(buf, len, p, FCGI_NPARAMS_MAX, &n), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	free(buf);
	free(p);
}
END_TEST

/* Parse a GET_VALUES_RESULT record into "NAME=VALUE;..." */
static void
values_string(const uint8_t *rec, size_t len, char *out, size_t size)
{
	struct fcgi_header h;
	struct fcgi_param p[8];
	size_t n, i;

	ck_assert_int_eq(fcgi_header_parse(rec, &h), 0);
	ck_assert_int_eq(h.type, FCGI_GET_VALUES_RESULT);
	ck_assert_int_eq(h.id, 0);
	ck_assert_uint_eq(len, FCGI_HEADER_LEN + h.content_len + h.padding_len);
	ck_assert_uint_eq(len % 8, 0);
	ck_assert_int_eq(fcgi_params_parse(rec + 8, h.content_len, p, 8, &n), 0);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%.*s=%.*s;",
		    (int)p[i].name_len, p[i].name, (int)p[i].value_len, p[i].value);
}

START_TEST(get_values_six_names_answered_once_each)
{
	static const char *names[] = { "FCGI_MAX_CONNS", "FCGI_MAX_REQS",
	    "FCGI_MPXS_CONNS", "FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_UNKNOWN_X" };
	struct fcgi_values v = { 1000, 8 };
	uint8_t q[256], out[256];
	char s[256];
	size_t qlen = 0, i;
	ssize_t n;

	for (i = 0; i < 6; i++)
		qlen += nv(q + qlen, names[i], strlen(names[i]), "", 0);
	n = fcgi_get_values_build(q, qlen, &v, out, sizeof(out));
	ck_assert_int_gt(n, 0);
	values_string(out, (size_t)n, s, sizeof(s));
	ck_assert_str_eq(s, "FCGI_MAX_CONNS=1000;FCGI_MAX_REQS=8;FCGI_MPXS_CONNS=0;");
}
END_TEST

START_TEST(get_values_unknown_names_only)
{
	struct fcgi_values v = { 1, 1 };
	uint8_t q[64], out[256];
	char s[64];
	ssize_t n;

	n = fcgi_get_values_build(q, nv(q, "FOO", 3, "", 0), &v, out, sizeof(out));
	ck_assert_int_eq(n, 8);
	values_string(out, (size_t)n, s, sizeof(s));
	ck_assert_str_eq(s, "");
}
END_TEST

START_TEST(get_values_malformed_or_small_buffer)
{
	struct fcgi_values v = { 1, 1 };
	static const uint8_t bad[] = { 20, 0, 'F' };
	uint8_t q[64], out[256];

	ck_assert_int_eq(fcgi_get_values_build(bad, sizeof(bad), &v, out, sizeof(out)), -1);
	ck_assert_int_eq(fcgi_get_values_build(q, nv(q, "FCGI_MAX_REQS", 13, "", 0),
	    &v, out, 32), -1);
}
END_TEST

START_TEST(request_param_lookup)
{
	struct fcgi_param p[2] = {
		{ "CONTENT_LENGTH", 14, "12", 2 },
		{ "CONTENT", 7, "x", 1 },
	};
	struct request r = { .params = p, .nparams = 2 };
	size_t len = 0;

	ck_assert_ptr_nonnull(request_param(&r, "CONTENT", &len));
	ck_assert_uint_eq(len, 1);
	ck_assert(memcmp(request_param(&r, "CONTENT_LENGTH", &len), "12", 2) == 0);
	ck_assert_ptr_null(request_param(&r, "CONTENT_TYPE", &len));
}
END_TEST

/* ---------------------------------------------------- over a real socket */

static size_t
rec(uint8_t *p, uint8_t type, uint16_t id, const void *c, size_t len)
{
	fcgi_header_build(p, type, id, (uint16_t)len, 0);
	memcpy(p + 8, c, len);
	return 8 + len;
}

struct client {
	char path[108];
	uint8_t reply[300000];
	size_t reply_len;
	size_t body_len;
};

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static uint8_t req[400000];
	uint8_t params[512], begin[8] = { 0, FCGI_RESPONDER, 0 };
	size_t len = 0, plen = 0, off;
	ssize_t n;
	int fd;

	memcpy(sa.sun_path, cl->path, sizeof(cl->path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	plen += nv(params + plen, "REQUEST_METHOD", 14, "POST", 4);
	plen += nv(params + plen, "CONTENT_LENGTH", 14, "200000", 6);
	len += rec(req + len, FCGI_BEGIN_REQUEST, 1, begin, 8);
	len += rec(req + len, FCGI_PARAMS, 1, params, plen);
	len += rec(req + len, FCGI_PARAMS, 1, "", 0);
	/* the body in uneven records: 60000 + 60000 + 80000 - in 65535 max pieces */
	for (off = 0; off < 200000; ) {
		size_t k = off < 120000 ? 60000 : 65535;
		static uint8_t chunk[65535];

		if (k > 200000 - off)
			k = 200000 - off;
		memset(chunk, 'a' + (int)(off / 60000), k);
		len += rec(req + len, FCGI_STDIN, 1, chunk, k);
		off += k;
	}
	len += rec(req + len, FCGI_STDIN, 1, "", 0);
	for (off = 0; off < len; off += (size_t)n)
		ck_assert_int_gt(n = write(fd, req + off, len - off), 0);
	while ((n = read(fd, cl->reply + cl->reply_len,
	    sizeof(cl->reply) - cl->reply_len)) > 0)
		cl->reply_len += (size_t)n;
	close(fd);
	return NULL;
}

START_TEST(request_end_to_end)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fcgi_server_conf sc = { .threads = 1, .read_timeout_ms = 5000,
	    .keepalive_timeout_ms = 5000 };
	static struct client cl;
	struct fcgi_header h;
	struct request *r;
	struct conn *c;
	pthread_t t;
	static char body[200001];
	char *out = malloc(300000);
	size_t got = 0, off, outlen = 0;
	ssize_t n;
	int lfd;

	snprintf(cl.path, sizeof(cl.path), "/tmp/test_fcgi.%d.sock", (int)getpid());
	memcpy(sa.sun_path, cl.path, sizeof(cl.path));
	unlink(cl.path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	sc.listen_fd = lfd;
	ck_assert_int_eq(fcgi_server_init(&sc), 0);
	ck_assert_ptr_nonnull(c = fcgi_conn_new());
	pthread_create(&t, NULL, client_main, &cl);

	ck_assert_ptr_nonnull(r = fcgi_next(c));
	ck_assert_int_eq(r->id, 1);
	ck_assert(!r->keep_conn);
	ck_assert_int_eq(r->content_length, 200000);
	ck_assert_uint_eq(r->nparams, 2);
	while ((n = request_read(r, body + got, 7777)) > 0)
		got += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(got, 200000);
	ck_assert(body[0] == 'a' && body[60000] == 'b' && body[199999] == 'd');
	ck_assert_int_eq(request_read(r, body, 10), 0);	/* never past the end */
	ck_assert_int_eq(request_write(r, "Status: 200\r\n\r\n", 15), 0);
	ck_assert_int_eq(request_write(r, body, 200000), 0);	/* large: direct records */
	ck_assert_int_eq(request_write(r, "!", 1), 0);
	fcgi_end(r, 0);
	pthread_join(t, NULL);

	/* STDOUT records carry the 200016 bytes; then empty STDOUT, END_REQUEST */
	for (off = 0; off + 8 <= cl.reply_len; off += 8 + h.content_len + h.padding_len) {
		ck_assert_int_eq(fcgi_header_parse(cl.reply + off, &h), 0);
		ck_assert_int_eq(h.id, 1);
		if (h.type == FCGI_STDOUT) {
			memcpy(out + outlen, cl.reply + off + 8, h.content_len);
			outlen += h.content_len;
			ck_assert(h.content_len > 0 || off + 8 + 16 == cl.reply_len);
		} else {
			ck_assert_int_eq(h.type, FCGI_END_REQUEST);
			ck_assert_uint_eq(off + 16, cl.reply_len);
			ck_assert_int_eq(cl.reply[off + 12], FCGI_REQUEST_COMPLETE);
		}
	}
	ck_assert_uint_eq(outlen, 15 + 200000 + 1);
	ck_assert(memcmp(out + 15, body, 200000) == 0);
	ck_assert_int_eq(out[outlen - 1], '!');
	unlink(cl.path);
	fcgi_conn_free(c);
	free(out);
}
END_TEST

/*
 * Parked partial requests: a request cut at every byte boundary before
 * the end of its params (mid-header, mid-BEGIN_REQUEST, mid-name-value,
 * between the PARAMS records) is parked in epoll with its bytes, and
 * completes when the rest arrives later, with the same params and body.
 */
static uint8_t split_req[512];
static size_t split_len, split_params_end;

static void
split_build(void)
{
	uint8_t params[256], begin[8] = { 0, FCGI_RESPONDER, 0 };
	size_t len = 0, plen = 0, k;

	k = nv(params, "REQUEST_METHOD", 14, "POST", 4);
	plen = k;
	plen += nv(params + plen, "CONTENT_LENGTH", 14, "3", 1);
	plen += nv(params + plen, "REQUEST_URI", 11, "/split?x=1", 10);
	len += rec(split_req + len, FCGI_BEGIN_REQUEST, 7, begin, 8);
	/* two PARAMS records, the second with padding */
	len += rec(split_req + len, FCGI_PARAMS, 7, params, k);
	fcgi_header_build(split_req + len, FCGI_PARAMS, 7, (uint16_t)(plen - k), 3);
	memcpy(split_req + len + 8, params + k, plen - k);
	memset(split_req + len + 8 + plen - k, 0, 3);
	len += 8 + plen - k + 3;
	len += rec(split_req + len, FCGI_PARAMS, 7, "", 0);
	split_params_end = len;
	len += rec(split_req + len, FCGI_STDIN, 7, "abc", 3);
	len += rec(split_req + len, FCGI_STDIN, 7, "", 0);
	split_len = len;
}

struct split_client {
	char path[108];
	size_t cut;		/* send [0, cut), wait until parked, then the rest */
	bool bytewise;		/* or one byte at a time, with pauses */
	bool close_early;	/* send all, then close before the server looks */
	uint8_t reply[4096];
	size_t reply_len;
};

static int
client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	memcpy(sa.sun_path, path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void *
split_client_main(void *arg)
{
	struct split_client *cl = arg;
	struct timespec ms3 = { 0, 3 * 1000 * 1000 };
	ssize_t n;
	size_t i;
	int fd = client_connect(cl->path);

	if (cl->bytewise) {
		for (i = 0; i < split_len; i++) {
			ck_assert_int_eq(write(fd, split_req + i, 1), 1);
			nanosleep(&ms3, NULL);
		}
	} else {
		ck_assert_int_eq(write(fd, split_req, cl->cut), (ssize_t)cl->cut);
		/* bounded: the server parks it within a few ms */
		for (i = 0; i < 2000 && cl->cut < split_params_end &&
		    fcgi_idle_count() == 0; i++)
			nanosleep(&ms3, NULL);
		if (cl->cut < split_params_end)
			ck_assert_uint_eq(fcgi_idle_count(), 1);
		else
			nanosleep(&ms3, NULL);
		if (cl->cut < split_len)
			ck_assert_int_eq(write(fd, split_req + cl->cut,
			    split_len - cl->cut), (ssize_t)(split_len - cl->cut));
	}
	while ((n = read(fd, cl->reply + cl->reply_len,
	    sizeof(cl->reply) - cl->reply_len)) > 0)
		cl->reply_len += (size_t)n;
	close(fd);
	return NULL;
}

static int
split_server(struct split_client *cl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fcgi_server_conf sc = { .threads = 1, .read_timeout_ms = 10000,
	    .keepalive_timeout_ms = 10000 };
	int lfd;

	snprintf(cl->path, sizeof(cl->path), "/tmp/test_fcgi_split.%d.sock", (int)getpid());
	memcpy(sa.sun_path, cl->path, sizeof(cl->path));
	unlink(cl->path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	sc.listen_fd = lfd;
	ck_assert_int_eq(fcgi_server_init(&sc), 0);
	return lfd;
}

/* Serve one request of the split client CL on C and check it whole. */
static void
split_serve_one(struct conn *c, struct split_client *cl)
{
	static const uint8_t want_end[16] = { 1, FCGI_END_REQUEST, 0, 7, 0, 8, 0, 0,
	    0, 0, 0, 0, FCGI_REQUEST_COMPLETE, 0, 0, 0 };
	struct request *r;
	pthread_t t;
	char body[8];
	size_t len = 0;
	const char *v;
	ssize_t n = 0;

	cl->reply_len = 0;
	pthread_create(&t, NULL, split_client_main, cl);
	ck_assert_ptr_nonnull(r = fcgi_next(c));
	ck_assert_int_eq(r->id, 7);
	ck_assert_uint_eq(r->nparams, 3);
	ck_assert_int_eq(r->content_length, 3);
	ck_assert_ptr_nonnull(v = request_param(r, "REQUEST_URI", &len));
	ck_assert_uint_eq(len, 10);
	ck_assert(memcmp(v, "/split?x=1", 10) == 0);
	len = 0;
	/* the body may come in pieces (a cut inside STDIN) */
	while (len < sizeof(body) && (n = request_read(r, body + len, sizeof(body) - len)) > 0)
		len += (size_t)n;
	ck_assert_uint_eq(len, 3);
	ck_assert(memcmp(body, "abc", 3) == 0);
	ck_assert_int_eq(request_write(r, "Status: 200\r\n\r\nok", 17), 0);
	fcgi_end(r, 0);
	pthread_join(t, NULL);
	/* STDOUT of 17, empty STDOUT, END_REQUEST */
	ck_assert_uint_eq(cl->reply_len, 8 + 17 + 8 + 16);
	ck_assert(memcmp(cl->reply + 8, "Status: 200\r\n\r\nok", 17) == 0);
	ck_assert_mem_eq(cl->reply + 8 + 17 + 8, want_end, 16);
	ck_assert_uint_eq(fcgi_idle_count(), 0);
}

START_TEST(partial_request_parked_and_completed)
{
	static struct split_client cl;
	struct conn *c;
	size_t cut;
	int lfd;

	split_build();
	lfd = split_server(&cl);
	ck_assert_ptr_nonnull(c = fcgi_conn_new());
	for (cut = 1; cut < split_len; cut++) {
		cl.cut = cut;
		split_serve_one(c, &cl);
	}
	cl.bytewise = true;
	split_serve_one(c, &cl);
	ck_assert_uint_eq(fcgi_dropped_count(), 0);
	unlink(cl.path);
	close(lfd);
	fcgi_conn_free(c);
}
END_TEST

/*
 * A request complete in the socket whose peer closed before the server
 * looked (nginx gave up on it in the listen queue) is dropped unanswered;
 * the next one is served.
 */
START_TEST(request_of_a_closed_peer_is_dropped)
{
	static struct split_client cl;
	struct conn *c;
	int lfd, fd;

	split_build();
	lfd = split_server(&cl);
	ck_assert_ptr_nonnull(c = fcgi_conn_new());
	fd = client_connect(cl.path);
	ck_assert_int_eq(write(fd, split_req, split_len), (ssize_t)split_len);
	close(fd);
	cl.cut = split_len;
	split_serve_one(c, &cl);	/* the dropped one is never returned */
	ck_assert_uint_eq(fcgi_dropped_count(), 1);
	unlink(cl.path);
	close(lfd);
	fcgi_conn_free(c);
}
END_TEST

/* ------------------------------------------------------------- log.c */

/* Run FN with stderr redirected to a pipe; return what it wrote. */
static char *
capture_stderr(void (*fn)(void))
{
	static char buf[8192];
	int p[2], saved;
	ssize_t n;

	ck_assert_int_eq(pipe(p), 0);
	saved = dup(2);
	dup2(p[1], 2);
	close(p[1]);
	fn();
	dup2(saved, 2);
	close(saved);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
log_multiline(void)
{
	wlog(WLOG_ERROR, "Traceback:\n  line %d\nValueError: x\n", 1);
	wlog(WLOG_DEBUG, "not shown at the default level");
	wlog(WLOG_NOTICE, "%s", "");
}

START_TEST(log_splits_lines_and_prefixes_each)
{
	ck_assert_str_eq(capture_stderr(log_multiline),
	    "ERROR: Traceback:\nERROR:   line 1\nERROR: ValueError: x\nNOTICE: \n");
}
END_TEST

static void
log_flood(void)
{
	static struct wlog_ratelimit rl = { .interval = 60, .burst = 3 };
	int i;

	for (i = 0; i < 100; i++)
		wlog_limited(&rl, WLOG_WARNING, "peer %d misbehaved", i);
}

START_TEST(log_rate_limit_bounds_a_flood)
{
	ck_assert_str_eq(capture_stderr(log_flood),
	    "WARNING: peer 0 misbehaved\nWARNING: peer 1 misbehaved\n"
	    "WARNING: peer 2 misbehaved\n");
}
END_TEST

static Suite *
fcgi_suite(void)
{
	Suite *s = suite_create("fcgi");
	TCase *tc = tcase_create("protocol");

	tcase_add_test(tc, header_roundtrip);
	tcase_add_test(tc, header_rejects_other_versions);
	tcase_add_test(tc, end_request_layout);
	tcase_add_test(tc, unknown_type_layout);
	tcase_add_test(tc, params_short_and_long_lengths);
	tcase_add_test(tc, params_empty_stream);
	tcase_add_test(tc, params_truncated_are_refused);
	tcase_add_test(tc, params_huge_length_is_refused);
	tcase_add_test(tc, params_over_count_limit_are_refused);
	tcase_add_test(tc, get_values_six_names_answered_once_each);
	tcase_add_test(tc, get_values_unknown_names_only);
	tcase_add_test(tc, get_values_malformed_or_small_buffer);
	tcase_add_test(tc, request_param_lookup);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_test(tc, log_splits_lines_and_prefixes_each);
	tcase_add_test(tc, log_rate_limit_bounds_a_flood);
	suite_add_tcase(s, tc);

	tc = tcase_create("server");
	tcase_add_test(tc, request_end_to_end);
	tcase_add_test(tc, partial_request_parked_and_completed);
	tcase_add_test(tc, request_of_a_closed_peer_is_dropped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fcgi_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
