/*
 * test_wsgi.c - the gateway (python.c, wsgi.c, stream.c) against fake
 * requests: exact response bytes, environ, wsgi.input, errors, close(),
 * threads.  The interpreter is started once in main() with
 * tests/apps/wsgi/battery.py; check forks each test from there.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embed/gateway.h"
#include "fake_request.h"

static const char *python_path[] = { WSGI_APPS_DIR, NULL };
static char self_path[PATH_MAX] = "/proc/self/exe"; /* not valgrind's */
static struct worker_opts opts = {
	.module = "battery:application",
	.pool = "-",
	.python_path = python_path,
	.threads = 1,
	.scoreboard_fd = -1,
	.slowlog_fd = -1,
};

/* A request for battery app NAME with URI. */
static struct fake *
req(const char *name, const char *uri)
{
	struct fake *f = fake_new("GET", uri);

	fake_param(f, "HTTP_X_TEST", name, -1);
	return f;
}

/* Serve F and return wsgi_handle's result. */
static int
serve(struct fake *f)
{
	return wsgi_handle(&f->r);
}

#define OK_TEXT(body) \
	"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n" body

#define RESPONSE_500 \
	"Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n" \
	"Content-Length: 22\r\n\r\nInternal Server Error\n"

/* Serve app NAME at URI and compare the whole output with WANT. */
static void
expect(const char *name, const char *uri, const char *want, int want_rc)
{
	struct fake *f = req(name, uri);
	int rc = serve(f);

	ck_assert_int_eq(rc, want_rc);
	ck_assert_str_eq(f->out != NULL ? f->out : "", want);
	fake_free(f);
}

/* Compare battery.closes with WANT. */
static void
closecount(const char *want)
{
	struct fake *f = req("closecount", "/");

	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), want);
	fake_free(f);
}

/* ---------------------------------------------------------------- paths */

static void
split_doc(const char *mount, const char *sn, const char *pi, const char *uri,
    const char *doc, const char *want_sn, const char *want_pi)
{
	struct wsgi_path_params in = {
		{ sn, sn ? strlen(sn) : 0 }, { pi, pi ? strlen(pi) : 0 },
		{ uri, uri ? strlen(uri) : 0 }, { doc, doc ? strlen(doc) : 0 },
	};
	struct wsgi_span os, op;
	char buf[512], got_sn[256], got_pi[256];

	wsgi_path_split(mount, &in, buf, &os, &op);
	snprintf(got_sn, sizeof(got_sn), "%.*s", (int)os.len, os.p);
	snprintf(got_pi, sizeof(got_pi), "%.*s", (int)op.len, op.p);
	ck_assert_str_eq(got_sn, want_sn);
	ck_assert_str_eq(got_pi, want_pi);
}

static void
split(const char *mount, const char *sn, const char *pi, const char *uri,
    const char *want_sn, const char *want_pi)
{
	split_doc(mount, sn, pi, uri, NULL, want_sn, want_pi);
}

START_TEST(path_split_nginx_full_path_mounts_at_root)
{
	split(NULL, "/a/b", NULL, "/a/b?x=1", "", "/a/b");
	split(NULL, "/a/b", "", "/a/b", "", "/a/b");
	split(NULL, "/a b", NULL, "/a%20b?q", "", "/a b");
	split(NULL, "/", NULL, "/", "", "/");
	/* nginx merged the slashes, or rewrote the URI: DOCUMENT_URI tells */
	split_doc(NULL, "/a/b", NULL, "/a//b", "/a/b", "", "/a/b");
	split_doc(NULL, "/new", "", "/old?x", "/new", "", "/new");
	split_doc(NULL, "/app", "/x", "/app/x", "/app/x", "/app", "/x");
}
END_TEST

START_TEST(path_split_keeps_what_the_server_split)
{
	split(NULL, "/app", "/x/y", "/app/x/y?q", "/app", "/x/y");
	split(NULL, "", "/x", "/x", "", "/x");
	split(NULL, NULL, NULL, NULL, "", "");
	/* no REQUEST_URI: nothing to compare with, kept */
	split(NULL, "/app", NULL, NULL, "/app", "");
	/* SCRIPT_NAME never ends in '/' */
	split(NULL, "/app/", "", NULL, "/app", "/");
	split(NULL, "/", NULL, NULL, "", "/");
	split(NULL, "/app/", "", "/app/", "", "/app/");	/* nginx rule first */
	split(NULL, "/app/", "/x", "/app//x", "/app", "/x");
	/* rewritten URI: SCRIPT_NAME is not the path, kept */
	split(NULL, "/index", NULL, "/pretty", "/index", "");
}
END_TEST

START_TEST(path_split_mount_point_override)
{
	split("/app", "/ignored", "/ignored", "/app/x%2Fy%20z?a=b", "/app",
	    "/x/y z");
	split("/app", NULL, NULL, "/app", "/app", "");
	split("/app/", NULL, NULL, "/app/", "/app", "/");
	split("/app", NULL, NULL, "/application", "/app", "/application");
	split("/", NULL, NULL, "/x", "", "/x");
	split("", NULL, NULL, "/x?", "", "/x");
	split("/app", NULL, NULL, "http://host/app/x?y", "/app", "/x");
	/* no REQUEST_URI: the server's split, joined */
	split("/app", "/app/x", "/y", NULL, "/app", "/x/y");
	/* bad escapes stay as they are */
	split("/app", NULL, NULL, "/app/%zz%4", "/app", "/%zz%4");
}
END_TEST

START_TEST(environ_path_from_nginx_default_params)
{
	struct fake *f = req("environ", "/a/b?SCRIPT_NAME,PATH_INFO");

	fake_param(f, "SCRIPT_NAME", "/a/b", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("SCRIPT_NAME=''\nPATH_INFO='/a/b'\n"));
	fake_free(f);
}
END_TEST

START_TEST(environ_path_with_script_name_option)
{
	struct fake *f = req("environ", "/site/x%C3%A9?SCRIPT_NAME,PATH_INFO");

	opts.script_name = "/site";
	fake_param(f, "SCRIPT_NAME", "/site/x\xc3\xa9", -1);
	ck_assert_int_eq(serve(f), 0);
	/* PEP 3333: bytes decoded as latin-1 */
	ck_assert_str_eq(f->out,
	    OK_TEXT("SCRIPT_NAME='/site'\nPATH_INFO='/x\\xc3\\xa9'\n"));
	opts.script_name = NULL;
	fake_free(f);
}
END_TEST

/* -------------------------------------------------------------- environ */

START_TEST(environ_native_strings_are_latin1)
{
	struct fake *f = req("environ", "/?HTTP_X_NAME,HTTP_X_RAW");

	fake_param(f, "HTTP_X_NAME", "\xe9t\xe9", -1);
	fake_param(f, "HTTP_X_RAW", "a\0b\xff", 4);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out,
	    OK_TEXT("HTTP_X_NAME='\\xe9t\\xe9'\nHTTP_X_RAW='a\\x00b\\xff'\n"));
	fake_free(f);
}
END_TEST

static void
scheme(const char *name, const char *value, const char *want)
{
	struct fake *f = req("environ", "/?wsgi.url_scheme");
	char buf[256];

	if (name != NULL)
		fake_param(f, name, value, -1);
	ck_assert_int_eq(serve(f), 0);
	snprintf(buf, sizeof(buf), OK_TEXT("wsgi.url_scheme='%s'\n"), want);
	ck_assert_str_eq(f->out, buf);
	fake_free(f);
}

START_TEST(environ_url_scheme)
{
	scheme(NULL, NULL, "http");
	scheme("HTTPS", "on", "https");
	scheme("HTTPS", "ON", "https");
	scheme("HTTPS", "1", "https");
	scheme("HTTPS", "off", "http");
	scheme("HTTPS", "", "http");
	scheme("REQUEST_SCHEME", "https", "https");
	scheme("REQUEST_SCHEME", "http", "http");
}
END_TEST

/* A param sent twice: the last one counts, for url_scheme as in the environ. */
START_TEST(environ_url_scheme_last_param_wins)
{
	struct fake *f = req("environ", "/?wsgi.url_scheme,REQUEST_SCHEME");

	fake_param(f, "REQUEST_SCHEME", "https", -1);
	fake_param(f, "REQUEST_SCHEME", "http", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("wsgi.url_scheme='http'\n"
	    "REQUEST_SCHEME='http'\n"));
	fake_free(f);
	f = req("environ", "/?wsgi.url_scheme,HTTPS");
	fake_param(f, "HTTPS", "off", -1);
	fake_param(f, "HTTPS", "on", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("wsgi.url_scheme='https'\n"
	    "HTTPS='on'\n"));
	fake_free(f);
}
END_TEST

START_TEST(environ_wsgi_keys_and_types)
{
	struct fake *f = req("types", "/");

	fake_param(f, "HTTP_CONTENT_LENGTH", "3", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), "bad=[] version=(1, 0) "
	    "run_once=False multithread=False multiprocess=False input=True "
	    "errors=True file_wrapper=True http_cl=False");
	fake_free(f);
}
END_TEST

START_TEST(environ_content_type_from_http_header)
{
	struct fake *f = req("environ", "/?CONTENT_TYPE,HTTP_CONTENT_TYPE");

	fake_param(f, "HTTP_CONTENT_TYPE", "text/csv", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f),
	    "CONTENT_TYPE='text/csv'\nHTTP_CONTENT_TYPE='<absent>'\n");
	fake_free(f);
}
END_TEST

START_TEST(environ_defaults_for_missing_cgi_vars)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->r.params = f->params;
	fake_param(f, "HTTP_X_TEST", "environ", -1);
	fake_param(f, "QUERY_STRING", "REQUEST_METHOD,SCRIPT_NAME,PATH_INFO,"
	    "SERVER_NAME,SERVER_PORT", -1);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), "REQUEST_METHOD='GET'\n"
	    "SCRIPT_NAME=''\nPATH_INFO=''\nSERVER_NAME='localhost'\n"
	    "SERVER_PORT='80'\n");
	fake_free(f);
}
END_TEST

/* ---------------------------------------------------------------- input */

static const char BODY[] = "line one\nline two is longer\n\nlast, no newline";

/* Run the input ops in QUERY on BODY (CONTENT_LENGTH CL, or none if NULL). */
static void
input_ops(const char *query, const char *cl, size_t read_max,
    const char *want)
{
	char uri[256];
	struct fake *f;

	snprintf(uri, sizeof(uri), "/?%s", query);
	f = req("input", uri);
	f->r.params[0].value = "POST";
	f->r.params[0].value_len = 4;
	if (cl != NULL)
		fake_param(f, "CONTENT_LENGTH", cl, -1);
	fake_body(f, BODY, strlen(BODY));
	f->read_max = read_max;
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), want);
	fake_free(f);
}

START_TEST(input_read_all_and_sized)
{
	size_t m;

	for (m = 0; m < 4; m++) {	/* whole reads, then 1..3 bytes a time */
		input_ops("read", "46", m, "[b'line one\\nline two is longer"
		    "\\n\\nlast, no newline']");
		input_ops("read:4,read:0,read:6,read:-1,read", "46", m,
		    "[b'line', b'', b' one\\nl', b'ine two is longer\\n\\nlast, "
		    "no newline', b'']");
		input_ops("read:1000", "46", m, "[b'line one\\nline two is "
		    "longer\\n\\nlast, no newline']");
	}
}
END_TEST

START_TEST(input_never_past_content_length)
{
	input_ops("read", "8", 0, "[b'line one']");
	input_ops("read:100,read", "8", 3, "[b'line one', b'']");
	input_ops("readline,readline", "12", 0, "[b'line one\\n', b'lin']");
	input_ops("readlines", "10", 0, "[[b'line one\\n', b'l']]");
	input_ops("read", "0", 0, "[b'']");
	input_ops("read", "bogus", 0, "[b'']");
}
END_TEST

START_TEST(input_without_content_length_reads_to_the_end)
{
	input_ops("read", NULL, 0, "[b'line one\\nline two is longer\\n\\n"
	    "last, no newline']");
	input_ops("read", "", 5, "[b'line one\\nline two is longer\\n\\n"
	    "last, no newline']");
}
END_TEST

START_TEST(input_readline_with_limit)
{
	size_t m;

	for (m = 0; m < 3; m++) {
		input_ops("readline:4,readline:100,readline:0,readline:-1,"
		    "readline,readline,readline", "46", m, "[b'line', b' one\\n',"
		    " b'', b'line two is longer\\n', b'\\n', b'last, no newline'"
		    ", b'']");
		input_ops("readline:9,readline:9", "46", m,
		    "[b'line one\\n', b'line two ']");
	}
}
END_TEST

START_TEST(input_readlines_with_hint)
{
	input_ops("readlines", "46", 0, "[[b'line one\\n', b'line two is "
	    "longer\\n', b'\\n', b'last, no newline']]");
	input_ops("readlines:1", "46", 0, "[[b'line one\\n']]");
	input_ops("readlines:10", "46", 2, "[[b'line one\\n', b'line two is "
	    "longer\\n']]");
	input_ops("readlines:9,readlines:-1", "46", 0, "[[b'line one\\n'], "
	    "[b'line two is longer\\n', b'\\n', b'last, no newline']]");
}
END_TEST

START_TEST(input_iteration)
{
	input_ops("read:5,iter", "46", 7, "[b'line ', [b'one\\n', b'line two "
	    "is longer\\n', b'\\n', b'last, no newline']]");
}
END_TEST

START_TEST(input_large_body_streams_in_bounded_reads)
{
	size_t len = 3 * 1024 * 1024 + 17;
	char *body = malloc(len), cl[32];
	struct fake *f = req("input", "/?len");

	memset(body, 'u', len);
	snprintf(cl, sizeof(cl), "%zu", len);
	fake_param(f, "CONTENT_LENGTH", cl, -1);
	fake_body(f, body, len);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), "[3145745]");
	/* read(65536) at a time: one request_read each, no slurping */
	ck_assert_int_ge(f->nreads, 48);
	fake_free(f);
	free(body);
}
END_TEST

START_TEST(input_read_error_ends_the_request_quietly)
{
	struct fake *f = req("input", "/?read");

	fake_log_reset();
	fake_param(f, "CONTENT_LENGTH", "100", -1);
	fake_body(f, "short", 5);
	f->read_fails = true;
	ck_assert_int_eq(serve(f), -1);
	ck_assert_str_eq(fake_log(), "notice: wsgi: GET /?read: the client "
	    "closed the connection (Connection reset by peer)\n");
	fake_free(f);
}
END_TEST

/* --------------------------------------------------- status and headers */

START_TEST(bad_status_is_a_500_and_logged)
{
	static const char *bad[] = { "200", "2000 OK", "OK", "20x OK",
	    "200%20OK%0AX:%20y", "" };
	size_t i;
	char uri[64];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_log_reset();
		snprintf(uri, sizeof(uri), "/?%s", bad[i]);
		expect("status", uri, RESPONSE_500, 0);
		ck_assert_ptr_nonnull(strstr(fake_log(), "status must look like"));
		ck_assert_ptr_nonnull(strstr(fake_log(), "Traceback"));
	}
	expect("status", "/?299%20Odd", "Status: 299 Odd\r\n"
	    "Content-Type: text/plain\r\n\r\nbody", 0);
	expect("status", "/?200%20", "Status: 200 \r\n"
	    "Content-Type: text/plain\r\n\r\nbody", 0);
}
END_TEST

START_TEST(bad_headers_are_a_500_and_logged)
{
	static const char *bad[][2] = {
		{ "space", "invalid response header name 'Bad Name'" },
		{ "colon", "invalid response header name 'Bad:Name'" },
		{ "crlf", "invalid value of response header 'X-Ok'" },
		{ "notlist", "response_headers must be a list, not tuple" },
		{ "notstr", "must be latin-1 str" },
		{ "bytes", "must be latin-1 str" },
		{ "triple", "must be a (name, value) tuple" },
		{ "nonlatin", "must be latin-1 str" },
		{ "status", "'Status' response header is not allowed" },
	};
	size_t i;
	char uri[64];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_log_reset();
		snprintf(uri, sizeof(uri), "/?%s", bad[i][0]);
		expect("headers", uri, RESPONSE_500, 0);
		ck_assert_msg(strstr(fake_log(), bad[i][1]) != NULL,
		    "%s: log lacks \"%s\":\n%s", bad[i][0], bad[i][1],
		    fake_log());
	}
	expect("headers", "/?latin1", "Status: 200 OK\r\nX-Ok: caf\xe9\r\n"
	    "\r\nbody", 0);
}
END_TEST

START_TEST(start_response_twice_without_exc_info_raises)
{
	expect("again", "/", "Status: 200 OK\r\n\r\nRuntimeError: "
	    "start_response() called again without exc_info", 0);
}
END_TEST

START_TEST(exc_info_before_headers_replaces_the_status)
{
	expect("excinfo", "/?before", "Status: 500 Oops\r\n"
	    "Content-Type: text/plain\r\n\r\nerror page", 0);
}
END_TEST

START_TEST(exc_info_after_headers_reraises_and_cuts_the_response)
{
	fake_log_reset();
	expect("excinfo", "/?after", OK_TEXT("part"), -1);
	ck_assert_ptr_nonnull(strstr(fake_log(),
	    "GET /?after: exception after the response started"));
	ck_assert_ptr_nonnull(strstr(fake_log(), "Boom: kaboom"));
}
END_TEST

/* ------------------------------------------------------------- response */

START_TEST(write_callable_then_iterable)
{
	struct fake *f = req("write", "/");

	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("abcd"));
	ck_assert_int_ge(f->nflushes, 3);	/* write() sends at once */
	fake_free(f);
}
END_TEST

START_TEST(streaming_sends_each_chunk_before_the_next)
{
	struct fake *f = req("stream", "/");

	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("chunk1chunk2chunk3"));
	/* head + 3 chunks, and a flush after each chunk */
	ck_assert_int_eq(f->nwrites, 4);
	ck_assert_int_eq(f->nflushes, 3);
	ck_assert_int_eq(f->nlast, 0);		/* a generator: the end is unknown */
	fake_free(f);
}
END_TEST

START_TEST(single_item_list_is_one_write_no_flush)
{
	struct fake *f = req("environ", "/?REQUEST_METHOD");

	ck_assert_int_eq(serve(f), 0);
	ck_assert_int_eq(f->nwrites, 2);	/* head, body */
	ck_assert_int_eq(f->nflushes, 0);
	ck_assert_int_eq(f->nlast, 1);		/* the body goes with END_REQUEST */
	fake_free(f);
}
END_TEST

START_TEST(list_backed_iterable_is_not_flushed_per_chunk)
{
	struct fake *f = req("listresponse", "/");

	expect("closecount", "/?reset", OK_TEXT("0"), 0);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT("headtail"));
	ck_assert_int_eq(f->nflushes, 0);
	ck_assert_int_eq(f->nlast, 1);		/* the list iterator knew "tail" was last */
	fake_free(f);
	closecount("1");
}
END_TEST

START_TEST(body_is_cut_at_content_length)
{
	struct fake *f;

	fake_log_reset();
	expect("closecount", "/?reset", OK_TEXT("0"), 0);
	expect("length", "/?3;200%20OK;iter", "Status: 200 OK\r\n"
	    "Content-Length: 3\r\n\r\nabc", 0);
	closecount("1");
	ck_assert_ptr_nonnull(strstr(fake_log(), "warning: wsgi: GET "
	    "/?3;200%20OK;iter: the application sent more than its "
	    "Content-Length (3 bytes); the rest was dropped\n"));
	f = req("length", "/?4;200%20OK;write");
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(fake_body_out(f), "abcd");
	fake_free(f);
	expect("length", "/?0;200%20OK;iter", "Status: 200 OK\r\n"
	    "Content-Length: 0\r\n\r\n", 0);
}
END_TEST

START_TEST(short_body_closes_the_connection)
{
	struct fake *f;

	fake_log_reset();
	expect("length", "/?10;200%20OK;short", "Status: 200 OK\r\n"
	    "Content-Length: 10\r\n\r\nabc", -1);
	ck_assert_ptr_nonnull(strstr(fake_log(), "the application sent 3 bytes "
	    "of its Content-Length (10); closing the connection"));
	/* no body by definition */
	expect("length", "/?10;304%20Not%20Modified;empty", "Status: 304 Not "
	    "Modified\r\nContent-Length: 10\r\n\r\n", 0);
	expect("length", "/?10;204%20No%20Content;empty", "Status: 204 No "
	    "Content\r\nContent-Length: 10\r\n\r\n", 0);
	/* the short body must not end the response normally */
	f = req("length", "/?10;200%20OK;short");
	ck_assert_int_eq(serve(f), -1);
	ck_assert_int_eq(f->nlast, 0);
	fake_free(f);
	f = req("length", "/?10;200%20OK;empty");
	f->r.params[0].value = "HEAD";
	f->r.params[0].value_len = 4;
	ck_assert_int_eq(serve(f), 0);
	fake_free(f);
}
END_TEST

START_TEST(empty_body_sends_headers_at_the_end)
{
	expect("empty", "/", "Status: 204 No Content\r\nX-Empty: yes\r\n\r\n",
	    0);
}
END_TEST

/* The app runs as for a GET; only its headers go out (the web server
 * would drop the body anyway). */
START_TEST(head_sends_the_headers_only)
{
	struct fake *f = req("environ", "/?REQUEST_METHOD");

	f->r.params[0].value = "HEAD";
	f->r.params[0].value_len = 4;
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, OK_TEXT(""));
	fake_free(f);
}
END_TEST

START_TEST(exception_before_headers_is_a_500_with_traceback)
{
	fake_log_reset();
	expect("boom", "/boom?x=1", RESPONSE_500, 0);
	ck_assert_ptr_nonnull(strstr(fake_log(),
	    "error: wsgi: GET /boom?x=1: exception in the application\n"));
	ck_assert_ptr_nonnull(strstr(fake_log(), "Traceback (most recent "
	    "call last):"));
	ck_assert_ptr_nonnull(strstr(fake_log(),
	    "battery.Boom: before start_response"));
}
END_TEST

START_TEST(missing_start_response_or_bad_body_is_a_500)
{
	fake_log_reset();
	expect("nostart", "/", RESPONSE_500, 0);
	ck_assert_ptr_nonnull(strstr(fake_log(), "before calling "
	    "start_response()"));
	fake_log_reset();
	expect("str", "/", RESPONSE_500, 0);
	ck_assert_ptr_nonnull(strstr(fake_log(), "must yield bytes, not str"));
	fake_log_reset();
	expect("none", "/", RESPONSE_500, 0);
	ck_assert_ptr_nonnull(strstr(fake_log(), "TypeError: 'NoneType' object "
	    "is not iterable"));
}
END_TEST

START_TEST(close_called_once_on_every_path)
{
	struct fake *f;

	expect("closecount", "/?reset", OK_TEXT("0"), 0);
	expect("close", "/", OK_TEXT("onetwothree"), 0);
	closecount("1");
	/* exception in the iteration, after the headers went out */
	expect("close", "/?raise", OK_TEXT("onetwothree"), -1);
	closecount("2");
	/* client gone at the second chunk */
	f = req("close", "/");
	f->fail_at_write = 3;
	ck_assert_int_eq(serve(f), -1);
	ck_assert_int_eq(f->nwrites, 3);	/* stopped iterating */
	fake_free(f);
	closecount("3");
	/* close() raising: logged, the response stands */
	fake_log_reset();
	expect("close", "/?closeraise", OK_TEXT("onetwothree"), 0);
	ck_assert_ptr_nonnull(strstr(fake_log(), "error: wsgi: GET "
	    "/?closeraise: exception in the response's close()\n"));
	ck_assert_ptr_nonnull(strstr(fake_log(), "battery.Boom: in close"));
	closecount("4");
}
END_TEST

START_TEST(client_gone_in_write_raises_in_the_app)
{
	struct fake *f = req("clientgone", "/");

	fake_log_reset();
	f->fail_at_write = 2;
	ck_assert_int_eq(serve(f), -1);
	ck_assert_ptr_nonnull(strstr(fake_log(), "notice: wsgi: GET /: the "
	    "client closed the connection"));
	ck_assert_ptr_null(strstr(fake_log(), "Traceback"));
	fake_free(f);
	expect("gonemsg", "/", OK_TEXT("write(): the client closed the "
	    "connection"), 0);
}
END_TEST

START_TEST(kept_references_expire_with_the_request)
{
	expect("keep", "/?keep", OK_TEXT("kept"), 0);
	expect("keep", "/?use", OK_TEXT("start_response: RuntimeError: "
	    "request object has expired\ninput: RuntimeError: request object "
	    "has expired"), 0);
}
END_TEST

START_TEST(file_wrapper_from_fd_and_from_read)
{
	char path[] = "/tmp/test_wsgi.XXXXXX", uri[128];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "0123456789abcdef", 16), 16);
	close(fd);
	snprintf(uri, sizeof(uri), "/?%s", path);
	expect("file", uri, "Status: 200 OK\r\nContent-Type: "
	    "application/octet-stream\r\n\r\n23456789abcdef", 0);
	snprintf(uri, sizeof(uri), "/?%s;5", path);
	expect("file", uri, "Status: 200 OK\r\nContent-Type: "
	    "application/octet-stream\r\nContent-Length: 5\r\n\r\n23456", 0);
	expect("file", "/?bytesio", "Status: 200 OK\r\nContent-Type: "
	    "application/octet-stream\r\n\r\n012345678901234567890123456789",
	    0);
	unlink(path);
}
END_TEST

START_TEST(wsgi_errors_go_to_the_log_by_line)
{
	fake_log_reset();
	expect("errors", "/", OK_TEXT("logged"), 0);
	ck_assert_str_eq(fake_log(), "error: first line\nerror: second line\n"
	    "error: printed\nerror: w1\nerror: w2\nerror: unterminated\n");
}
END_TEST

START_TEST(validator_wrapped_app_passes)
{
	struct fake *f = req("validated", "/v");

	fake_log_reset();
	f->r.params[0].value = "POST";
	f->r.params[0].value_len = 4;
	fake_param(f, "CONTENT_LENGTH", "5", -1);
	fake_param(f, "SCRIPT_NAME", "/v", -1);
	fake_body(f, "hello", 5);
	ck_assert_int_eq(serve(f), 0);
	ck_assert_str_eq(f->out, "Status: 200 OK\r\nContent-Type: text/plain"
	    "\r\nContent-Length: 8\r\n\r\nok:hello");
	ck_assert_str_eq(fake_log(), "");
	fake_free(f);
}
END_TEST

/* -------------------------------------------------------------- threads */

START_TEST(interpreter_is_the_main_one)
{
	expect("interp", "/", OK_TEXT("interp=0 main=0"), 0);
}
END_TEST

static void *
tlocal_thread(void *arg)
{
	char *out = arg;
	int i;

	python_thread_begin();
	for (i = 0; i < 5; i++) {
		struct fake *f = req("tlocal", "/");

		if (serve(f) == 0)
			snprintf(out, 64, "%s", fake_body_out(f));
		fake_free(f);
	}
	python_thread_end();
	return NULL;
}

START_TEST(threading_local_survives_between_requests)
{
	pthread_t t[3];
	char out[3][64];
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, tlocal_thread,
		    out[i]), 0);
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_str_eq(out[i], "5 False");
	}
}
END_TEST

START_TEST(slowlog_dumps_every_thread)
{
	char path[] = "/tmp/test_wsgi_slow.XXXXXX", buf[4096];
	int fd = mkstemp(path);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(python_register_slowlog(fd, SIGUSR2), 0);
	kill(getpid(), SIGUSR2);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, "Thread 0x") != NULL ||
	    strstr(buf, "Current thread 0x") != NULL, "dump: %s", buf);
	close(fd);
}
END_TEST

START_TEST(fork_runs_the_python_at_fork_hooks)
{
	char mine[128], theirs[128] = "";
	struct fake *f;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = python_fork()) == 0) {
		f = req("random", "/");
		if (serve(f) == 0 && write(p[1], fake_body_out(f),
		    strlen(fake_body_out(f))) == -1)
			_exit(1);
		/* exec, not exit: valgrind would count Python's leaks here */
		execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(p[1]);
	f = req("random", "/");
	ck_assert_int_eq(serve(f), 0);
	snprintf(mine, sizeof(mine), "%s", fake_body_out(f));
	fake_free(f);
	n = read(p[0], theirs, sizeof(theirs) - 1);
	ck_assert_int_gt(n, 0);
	theirs[n] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	/* reseeded in the child; one thread each */
	ck_assert_str_ne(mine, theirs);
	ck_assert_ptr_nonnull(strstr(theirs, " 1"));
}
END_TEST

/* ------------------------------------------------------ start-up, venvs */

/*
 * Run "test_wsgi child VENV MODULE THREADS CHDIR" (python_init in a fresh
 * process, as the worker does) and return what it printed; malloc'd.
 */
static char *
run_child(const char *venv, const char *module, const char *threads,
    const char *dir)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl(self_path, "test_wsgi", "child", venv, module,
		    threads, dir, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	close(p[1]);
	for (;;) {
		if (len + 4096 > cap && (out = realloc(out, cap = cap * 2 +
		    8192)) == NULL)
			abort();
		if ((n = read(p[0], out + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d: %s", status, out);
	return out;
}

static void
has(const char *out, const char *want)
{
	ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want,
	    out);
}

static int
child_main(char **argv)
{
	struct fake *f;
	int rc;

	opts.virtualenv = strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
	opts.module = argv[3];
	opts.threads = atoi(argv[4]);
	if (strcmp(argv[5], "-") != 0) {
		opts.chdir = argv[5];
		if (chdir(argv[5]) == -1)	/* main.c does it before init */
			return 1;
	}
	rc = python_init(&opts);
	printf("init=%d\n%s", rc, fake_log());
	if (rc == 0) {
		f = req("sys", "/");
		if (serve(f) == 0)
			printf("%s", fake_body_out(f));
		fake_free(f);
		python_finalize();
	}
	fflush(stdout);
	return 0;
}

START_TEST(init_isolated_utf8_with_paths_in_front)
{
	char *out = run_child("-", "battery", "4", "/tmp");

	has(out, "init=0\n");
	has(out, "prefix=/usr\n");
	has(out, "executable=/usr/bin/python3\n");
	has(out, "utf8=1\nfsenc=utf-8\n");
	has(out, "path=['" WSGI_APPS_DIR "', '/tmp']\n");
	has(out, "cwd=/tmp\n");
	has(out, "multithread=True\n");
	free(out);
}
END_TEST

START_TEST(init_uses_a_venv_made_by_this_python)
{
	char dir[] = "/tmp/test_wsgi_venv.XXXXXX", cmd[256], want[256];
	char *out;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -m venv --without-pip "
	    "%s/v", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/v", dir);
	out = run_child(cmd, "battery", "1", "-");
	has(out, "init=0\n");
	snprintf(want, sizeof(want), "prefix=%s/v\nexecutable=%s/v/bin/python"
	    "\n", dir, dir);
	has(out, want);
	snprintf(want, sizeof(want), "site=['%s/v/lib/python%d.%d/"
	    "site-packages']\n", dir, PY_MAJOR_VERSION, PY_MINOR_VERSION);
	has(out, want);
	has(out, "multithread=False\n");
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static char *
venv_cfg(char *dir, const char *cfg)
{
	char path[128];
	FILE *fp;
	char *out;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pyvenv.cfg", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(cfg, fp);
	fclose(fp);
	out = run_child(dir, "battery", "1", "-");
	unlink(path);
	rmdir(dir);
	return out;
}

START_TEST(init_refuses_a_venv_of_another_python)
{
	char d1[] = "/tmp/test_wsgi_venv.XXXXXX", d2[] = "/tmp/test_wsgi_venv.XXXXXX";
	char *out;

	out = venv_cfg(d1, "home = /usr/bin\nversion = 3.9.2\n");
	has(out, "init=-1\n");
	has(out, "made with Python 3.9 but this worker embeds Python " PY_VERSION);
	has(out, "/usr/bin/python3 -m venv");
	free(out);
	out = venv_cfg(d2, "home = /tmp\nversion = " PY_VERSION "\n");
	has(out, "init=-1\n");
	has(out, "made from the Python in /tmp, not /usr/bin");
	free(out);
	out = run_child("/nonexistent/venv", "battery", "1", "-");
	has(out, "init=-1\nerror: virtualenv /nonexistent/venv: No such file");
	free(out);
}
END_TEST

START_TEST(init_logs_the_import_traceback)
{
	char *out = run_child("-", "broken", "1", "-");

	has(out, "init=-1\nerror: module broken: cannot import broken\n");
	has(out, "Traceback (most recent call last):");
	has(out, "in _configure");
	has(out, "RuntimeError: broken at import time");
	free(out);
	out = run_child("-", "battery:nope", "1", "-");
	has(out, "init=-1\nerror: module battery:nope: no callable nope");
	has(out, "AttributeError");
	free(out);
	out = run_child("-", "battery:closes", "1", "-");
	has(out, "init=-1\nerror: module battery:closes: closes is not "
	    "callable (int)");
	free(out);
}
END_TEST

/* Python's own state is sane after the tests above (no pending error). */
START_TEST(no_error_left_pending)
{
	expect("boom", "/", RESPONSE_500, 0);
	python_acquire();
	ck_assert(!PyErr_Occurred());
	python_release();
}
END_TEST

static Suite *
wsgi_suite(void)
{
	Suite *s = suite_create("wsgi");
	TCase *tc;

	tc = tcase_create("path");
	tcase_add_test(tc, path_split_nginx_full_path_mounts_at_root);
	tcase_add_test(tc, path_split_keeps_what_the_server_split);
	tcase_add_test(tc, path_split_mount_point_override);
	tcase_add_test(tc, environ_path_from_nginx_default_params);
	tcase_add_test(tc, environ_path_with_script_name_option);
	suite_add_tcase(s, tc);

	tc = tcase_create("environ");
	tcase_add_test(tc, environ_native_strings_are_latin1);
	tcase_add_test(tc, environ_url_scheme);
	tcase_add_test(tc, environ_url_scheme_last_param_wins);
	tcase_add_test(tc, environ_wsgi_keys_and_types);
	tcase_add_test(tc, environ_content_type_from_http_header);
	tcase_add_test(tc, environ_defaults_for_missing_cgi_vars);
	suite_add_tcase(s, tc);

	tc = tcase_create("input");
	tcase_add_test(tc, input_read_all_and_sized);
	tcase_add_test(tc, input_never_past_content_length);
	tcase_add_test(tc, input_without_content_length_reads_to_the_end);
	tcase_add_test(tc, input_readline_with_limit);
	tcase_add_test(tc, input_readlines_with_hint);
	tcase_add_test(tc, input_iteration);
	tcase_add_test(tc, input_large_body_streams_in_bounded_reads);
	tcase_add_test(tc, input_read_error_ends_the_request_quietly);
	suite_add_tcase(s, tc);

	tc = tcase_create("response");
	tcase_add_test(tc, bad_status_is_a_500_and_logged);
	tcase_add_test(tc, bad_headers_are_a_500_and_logged);
	tcase_add_test(tc, start_response_twice_without_exc_info_raises);
	tcase_add_test(tc, exc_info_before_headers_replaces_the_status);
	tcase_add_test(tc, exc_info_after_headers_reraises_and_cuts_the_response);
	tcase_add_test(tc, write_callable_then_iterable);
	tcase_add_test(tc, streaming_sends_each_chunk_before_the_next);
	tcase_add_test(tc, single_item_list_is_one_write_no_flush);
	tcase_add_test(tc, list_backed_iterable_is_not_flushed_per_chunk);
	tcase_add_test(tc, body_is_cut_at_content_length);
	tcase_add_test(tc, short_body_closes_the_connection);
	tcase_add_test(tc, empty_body_sends_headers_at_the_end);
	tcase_add_test(tc, head_sends_the_headers_only);
	tcase_add_test(tc, exception_before_headers_is_a_500_with_traceback);
	tcase_add_test(tc, missing_start_response_or_bad_body_is_a_500);
	tcase_add_test(tc, close_called_once_on_every_path);
	tcase_add_test(tc, client_gone_in_write_raises_in_the_app);
	tcase_add_test(tc, kept_references_expire_with_the_request);
	tcase_add_test(tc, file_wrapper_from_fd_and_from_read);
	tcase_add_test(tc, wsgi_errors_go_to_the_log_by_line);
	tcase_add_test(tc, validator_wrapped_app_passes);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_test(tc, interpreter_is_the_main_one);
	tcase_add_test(tc, threading_local_survives_between_requests);
	tcase_add_test(tc, no_error_left_pending);
	tcase_add_test(tc, slowlog_dumps_every_thread);
	tcase_add_test(tc, fork_runs_the_python_at_fork_hooks);
	suite_add_tcase(s, tc);

	tc = tcase_create("init");
	tcase_add_test(tc, init_isolated_utf8_with_paths_in_front);
	tcase_add_test(tc, init_uses_a_venv_made_by_this_python);
	tcase_add_test(tc, init_refuses_a_venv_of_another_python);
	tcase_add_test(tc, init_logs_the_import_traceback);
	suite_add_tcase(s, tc);
	return s;
}

int
main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 6 && strcmp(argv[1], "child") == 0)
		return child_main(argv);
	if (realpath(argv[0], self_path) == NULL)
		snprintf(self_path, sizeof(self_path), "/proc/self/exe");

	/* Once, before check forks the tests: they all share this interpreter. */
	if (python_init(&opts) == -1) {
		fprintf(stderr, "python_init failed:\n%s", fake_log());
		return EXIT_FAILURE;
	}
	fake_log_reset();
	sr = srunner_create(wsgi_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	python_finalize();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
