/*
 * fake_request.h - the worker.h request API over memory buffers, so the
 * gateway (python.c, wsgi.c, stream.c) runs without a web server.
 */
#ifndef FAKE_REQUEST_H
#define FAKE_REQUEST_H

#include "embed/worker.h"

struct fake {
	struct request r;		/* first: the request_* calls cast back */
	struct fcgi_param params[64];
	char *strings[128];		/* owned copies behind params */
	int nstrings;

	const char *body;		/* FCGI_STDIN, not owned */
	size_t body_len, body_pos;
	size_t read_max;		/* most bytes one request_read() gives, 0 = all */
	int nreads;
	bool read_fails;		/* request_read() fails at the end of body */

	char *out;			/* FCGI_STDOUT as the gateway wrote it */
	size_t out_len, out_cap;
	int nwrites;			/* request_write() calls */
	int nflushes;			/* request_flush() calls */
	int nlast;			/* request_write_last() calls (each also counts in nwrites) */
	int fail_at_write;		/* request_write() number that fails (1 = first), 0 = never */
};

/* A request with REQUEST_METHOD, REQUEST_URI and QUERY_STRING from URI. */
struct fake *fake_new(const char *method, const char *uri);
/* Add a param; VALUE_LEN may be -1 for a NUL-terminated VALUE. */
void fake_param(struct fake *f, const char *name, const char *value, long value_len);
void fake_body(struct fake *f, const char *body, size_t len);
void fake_free(struct fake *f);

/* The body part of the output (after the header block), NUL-terminated. */
const char *fake_body_out(struct fake *f);

/* Log lines wlog() captured ("LEVEL: message\n" each), and a reset. */
const char *fake_log(void);
void fake_log_reset(void);

#endif
