/*
 * fuzz_fcgi.c - libFuzzer target for the worker's FastCGI responder: the
 * fuzz input is what a web server (or an attacker who can connect to the
 * pool socket) sends on one connection.
 *
 * fcgi.c is included whole so the target drives its real record reader
 * (read_records, next_record, management, request_read, fcgi_end with
 * keep-alive parking and draining) over a socketpair: the input is written
 * to one end and that end shut down, then requests are served from the
 * other until the connection is closed.  The pure core (header and
 * name-value parsing, GET_VALUES answers) is fed the raw input as well.
 *
 * Checked beyond the sanitizers: every param points inside the params
 * buffer, the count is within FCGI_NPARAMS_MAX, request_read() never gives
 * more than it was asked for.
 *
 * Built a second time with -DFUZZ_GATEWAY as fuzz_environ: each request is
 * then served by the real gateway (python.c, wsgi.c, stream.c: params ->
 * environ, wsgi.input over the STDIN records) calling tests/fuzz/fuzz_app.py,
 * which checks PEP 3333's promises about the environ and aborts when one
 * is broken.  The interpreter starts once, in LLVMFuzzerInitialize.
 */
#include "embed/fcgi.c"

#include <assert.h>

static int fuzz_listen = -1;

#ifdef FUZZ_GATEWAY
static const char *python_path[] = { FUZZ_APP_DIR, NULL };
static const struct worker_opts opts = {
	.module = "fuzz_app:application",
	.pool = "fuzz",
	.python_path = python_path,
	.threads = 1,
	.scoreboard_fd = -1,
	.slowlog_fd = -1,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	wlog_set_level(WLOG_ERROR);
	if (python_init(&opts) == -1) {
		fprintf(stderr, "fuzz_environ: python_init failed\n");
		abort();
	}
	return 0;
}
#endif

/* fcgi_server_init() needs a listening socket for its epoll; nobody connects. */
static void
fuzz_server_init(void)
{
	struct fcgi_server_conf sc = {
		.threads = 2,
		.read_timeout_ms = 200,
		.keepalive_timeout_ms = 1000,
	};

	struct sockaddr_storage ss = { .ss_family = AF_UNIX };

	/* autobind: an abstract address nobody else knows */
	if ((fuzz_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fuzz_listen, (struct sockaddr *)&ss, sizeof(sa_family_t)) == -1 ||
	    listen(fuzz_listen, 1) == -1)
		abort();
	sc.listen_fd = fuzz_listen;
	wlog_set_level(WLOG_ERROR);
	if (fcgi_server_init(&sc) == -1)
		abort();
}

/* Take a parked connection that is ready, or return -1 when none is. */
static int
fuzz_wait(struct conn *c)
{
	return conn_wait_ms(c, 0);
}

static void
drain(int fd)
{
	char buf[65536];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void
check_request(const struct conn *c, const struct request *r)
{
	size_t i;

	assert(r->nparams <= FCGI_NPARAMS_MAX);
	assert(r->content_length >= 0);
	for (i = 0; i < r->nparams; i++) {
		const struct fcgi_param *p = &r->params[i];

		assert((const uint8_t *)p->name >= c->pbuf);
		assert((const uint8_t *)p->value + p->value_len <= c->pbuf + c->plen);
		assert(p->name + p->name_len == p->value);
	}
}

/* The pure core on the raw bytes: headers, name-value pairs, GET_VALUES. */
static void
fuzz_core(const uint8_t *data, size_t size)
{
	static struct fcgi_param params[FCGI_NPARAMS_MAX];
	struct fcgi_values v = { 100, 4 };
	struct fcgi_header h;
	uint8_t out[512];
	size_t np, i;
	ssize_t n;

	if (size >= FCGI_HEADER_LEN)
		(void)fcgi_header_parse(data, &h);
	if (fcgi_params_parse(data, size, params, FCGI_NPARAMS_MAX, &np) == 0) {
		for (i = 0; i < np; i++)
			assert(params[i].value + params[i].value_len <=
			    (const char *)data + size);
	}
	n = fcgi_get_values_build(data, size, &v, out, sizeof(out));
	if (n != -1) {
		assert(n >= FCGI_HEADER_LEN && n <= (ssize_t)sizeof(out) && n % 8 == 0);
		assert(fcgi_header_parse(out, &h) == 0 && h.type == FCGI_GET_VALUES_RESULT);
		assert(FCGI_HEADER_LEN + h.content_len + h.padding_len == (size_t)n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conn *c;
#ifndef FUZZ_GATEWAY
	static char body[70000];
#endif
	struct request *r;
	int sv[2], sz = 1 << 20, rounds = 0;
	ssize_t n;

	fuzz_core(data, size);
	if (c == NULL) {
		fuzz_server_init();
		if ((c = fcgi_conn_new()) == NULL)
			abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	/* Bounded: the peer never blocks us (a stalled write times out). */
	{
		struct timeval tv = { 0, 50 * 1000 };

		setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	/* Whatever fits at once; libFuzzer's -max_len keeps it all. */
	n = send(sv[0], data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(sv[0], SHUT_WR);

	c->fd = sv[1];
	c->in_pos = c->in_end = 0;
	while (rounds++ < 10000) {
		if (c->fd == -1 && fuzz_wait(c) == -1)
			break;
		if (read_request(c) == -1) {
			conn_close(c);
			continue;
		}
		r = &c->req;
		check_request(c, r);
#ifdef FUZZ_GATEWAY
		fcgi_end(r, wsgi_handle(r));
#else
		/* The application: read the body, answer with some bytes. */
		for (;;) {
			ssize_t k = request_read(r, body, sizeof(body));

			if (k <= 0)
				break;
			assert((size_t)k <= sizeof(body));
		}
		request_write(r, "Status: 200\r\n\r\n", 15);
		fcgi_end(r, r->io_error ? -1 : 0);
#endif
		drain(sv[0]);
	}
	if (c->fd != -1)
		conn_close(c);
	fcgi_sweep(true);		/* parked connections of this input */
	drain(sv[0]);
	close(sv[0]);
	return 0;
}
