/*
 * main.c - fcgi-pm-worker's host: command line, signals, request threads,
 * scoreboard, recycling limits, shutdown.
 *
 * Start-up runs in a fixed order: parse arguments, chdir, check fd 0,
 * block the asynchronous signals (so every thread created later, by us or
 * by the app, inherits the mask), map the scoreboard, load the app, start
 * the request threads, then wait for signals in the main thread.  With
 * --preload the app is loaded before the scoreboard: the preload process
 * forks the workers (preload.c), and each goes on from the scoreboard.
 *
 * Exit codes: 0 done (graceful stop, max_requests, max_rss), 3 the app
 * could not be loaded (the master backs off), 64 usage, 71 start-up
 * failure, 78 configuration (bad fd 0, scoreboard mismatch, chdir).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embed/fcgi.h"
#include "embed/worker.h"
#include "fcgi-pm/scoreboard.h"

#define EXIT_APP	3
#define EXIT_USAGE	64
#define EXIT_OSERR	71
#define EXIT_CONFIG	78
#define FINALIZE_TIMEOUT 10	/* seconds python_finalize() may take */

static struct worker_opts opts = {
	.pool = "-",
	.threads = 1,
	.read_timeout_ms = 30000,
	.keepalive_timeout_ms = 75000,
	.scoreboard_fd = -1,
	.slowlog_fd = -1,
	.preload_fd = -1,
};
const struct worker_opts *worker_opts = &opts;

static struct sb_header *sb_hdr;	/* the pool's scoreboard, NULL standalone */
static struct sb_slot *sb;		/* our scoreboard slot, NULL standalone */
static struct fcgi_handoff handoff = { .tx = -1, .rx = -1 };	/* --handoff */
static pthread_mutex_t sb_lock = PTHREAD_MUTEX_INITIALIZER; /* one writer at a time on sb->seq */
static int statm_fd = -1;		/* /proc/self/statm, for RSS after requests */
#define RSS_SAMPLE_MS	100		/* RSS is read at most this often */
static _Atomic uint64_t rss_sampled_ms;	/* CLOCK_MONOTONIC_COARSE of the last read */
static _Atomic uint64_t rss_last_kb;	/* what it found */
static _Atomic uint64_t maxrss_last_kb;	/* and the peak RSS (ru_maxrss) then */
static int wake_fd = -1;		/* eventfd: a request thread asks main to stop */
static _Atomic long nrequests;		/* finished, all threads */
static _Atomic int stop_reason;		/* why a thread asked to stop (enum below) */
static _Atomic int nrunning;		/* request threads not yet finished */
static int sig_fd = -1;			/* signalfd of the blocked signals */
static sigset_t orig_mask;		/* restored in forked children */

enum { STOP_NONE, STOP_MAX_REQUESTS, STOP_MAX_RSS };

static struct wlog_ratelimit rl_queue = { .interval = 10, .burst = 5 };

static uint64_t
realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Current RSS in KB, 0 if unknown. */
static uint64_t
rss_read_kb(void)
{
	char buf[128];
	unsigned long size, res;
	ssize_t n;

	if (statm_fd == -1 || (n = pread(statm_fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)(sysconf(_SC_PAGESIZE) / 1024);
}

/* CLOCK_MONOTONIC_COARSE in ms: vDSO, no syscall, a few ms coarse. */
static uint64_t
mono_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * RSS in KB after a request, read from /proc at most every RSS_SAMPLE_MS
 * (with the peak RSS for the scoreboard): reading /proc/self/statm and
 * getrusage() after every request cost ~6% of a small request's CPU.
 * max_rss therefore acts within RSS_SAMPLE_MS of the request that grew.
 */
static uint64_t
rss_kb(void)
{
	struct rusage ru;
	uint64_t now = mono_coarse_ms(), last;

	last = atomic_load(&rss_sampled_ms);
	if (last != 0 && now - last < RSS_SAMPLE_MS)
		return atomic_load(&rss_last_kb);
	if (!atomic_compare_exchange_strong(&rss_sampled_ms, &last, now))
		return atomic_load(&rss_last_kb);	/* another thread reads it */
	atomic_store(&rss_last_kb, rss_read_kb());
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		atomic_store(&maxrss_last_kb, (uint64_t)ru.ru_maxrss);
	return atomic_load(&rss_last_kb);
}

/* ------------------------------------------------------------ arguments */

static void
usage(FILE *f)
{
	fprintf(f,
"usage: fcgi-pm-worker --module PKG.MOD:CALLABLE [options]\n"
"Serve a WSGI application over FastCGI on the listening socket on fd 0.\n"
"  --module M:C            the WSGI application (required)\n"
"  --pool NAME             pool name for log lines\n"
"  --chdir DIR             working directory\n"
"  --virtualenv DIR        virtualenv to use\n"
"  --script-name PREFIX    mount point (SCRIPT_NAME) override\n"
"  --python-path DIR       add DIR to sys.path (repeatable)\n"
"  --threads N             request threads (default 1)\n"
"  --max-requests N        exit gracefully after N requests (0 = never)\n"
"  --max-rss KB            exit gracefully once RSS exceeds KB (0 = never)\n"
"  --read-timeout MS       drop a peer that stalls this long (default 30000)\n"
"  --keepalive-timeout MS  close idle kept connections after MS (default 75000)\n"
"  --queue-timeout MS      answer 503 to requests queued longer (REQUEST_START)\n"
"  --scoreboard FD:SLOT    scoreboard memfd and slot (under fcgi-pm)\n"
"  --handoff TX:RX         the pool's socket pair for passing ready kept\n"
"                          connections between workers (with --scoreboard)\n"
"  --slowlog-fd FD         where slow-request tracebacks go (SIGUSR2)\n"
"  --preload=FD            import the app once, fork workers on the master's\n"
"                          commands on control socket FD (under fcgi-pm)\n"
"  --help, --version\n");
}

static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "A:B", two non-negative ints.  0 or -1. */
static int
parse_pair(char *s, long *a, long *b)
{
	char *colon = strchr(s, ':');
	int rc;

	if (colon == NULL)
		return -1;
	*colon = '\0';
	rc = parse_long(s, 0, INT_MAX, a) == -1 || parse_long(colon + 1, 0, INT_MAX, b) == -1;
	*colon = ':';
	return rc ? -1 : 0;
}

/* Fill opts from ARGV; exits 64 on a usage error. */
static void
parse_args(int argc, char **argv)
{
	enum { O_MODULE = 256, O_POOL, O_CHDIR, O_VENV, O_SCRIPT, O_PYPATH,
	    O_THREADS, O_MAXREQ, O_MAXRSS, O_READTO, O_KEEPTO, O_QUEUETO,
	    O_SB, O_SLOWLOG, O_PRELOAD, O_HANDOFF };
	static const struct option lopts[] = {
		{ "module", required_argument, NULL, O_MODULE },
		{ "pool", required_argument, NULL, O_POOL },
		{ "chdir", required_argument, NULL, O_CHDIR },
		{ "virtualenv", required_argument, NULL, O_VENV },
		{ "script-name", required_argument, NULL, O_SCRIPT },
		{ "python-path", required_argument, NULL, O_PYPATH },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "max-requests", required_argument, NULL, O_MAXREQ },
		{ "max-rss", required_argument, NULL, O_MAXRSS },
		{ "read-timeout", required_argument, NULL, O_READTO },
		{ "keepalive-timeout", required_argument, NULL, O_KEEPTO },
		{ "queue-timeout", required_argument, NULL, O_QUEUETO },
		{ "scoreboard", required_argument, NULL, O_SB },
		{ "slowlog-fd", required_argument, NULL, O_SLOWLOG },
		{ "preload", required_argument, NULL, O_PRELOAD },
		{ "handoff", required_argument, NULL, O_HANDOFF },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char **pypath;
	size_t npath = 0;
	long v, slot;
	int ch;

	if ((pypath = calloc((size_t)argc + 1, sizeof(*pypath))) == NULL)
		exit(EXIT_OSERR);
	opts.python_path = pypath;
	while ((ch = getopt_long(argc, argv, "hV", lopts, NULL)) != -1) {
		switch (ch) {
		case O_MODULE: opts.module = optarg; break;
		case O_POOL: opts.pool = optarg; break;
		case O_CHDIR: opts.chdir = optarg; break;
		case O_VENV: opts.virtualenv = optarg; break;
		case O_SCRIPT: opts.script_name = optarg; break;
		case O_PYPATH: pypath[npath++] = optarg; break;
		case O_THREADS:
			if (parse_long(optarg, 1, 1024, &v) == -1)
				goto bad;
			opts.threads = (int)v;
			break;
		case O_MAXREQ:
			if (parse_long(optarg, 0, LONG_MAX, &opts.max_requests) == -1)
				goto bad;
			break;
		case O_MAXRSS:
			if (parse_long(optarg, 0, LONG_MAX, &opts.max_rss_kb) == -1)
				goto bad;
			break;
		case O_READTO:
			if (parse_long(optarg, 1, 86400000, &opts.read_timeout_ms) == -1)
				goto bad;
			break;
		case O_KEEPTO:
			if (parse_long(optarg, 1, 86400000, &opts.keepalive_timeout_ms) == -1)
				goto bad;
			break;
		case O_QUEUETO:
			if (parse_long(optarg, 0, 86400000, &opts.queue_timeout_ms) == -1)
				goto bad;
			break;
		case O_SB:
			if (parse_pair(optarg, &v, &slot) == -1)
				goto bad;
			opts.scoreboard_fd = (int)v;
			opts.scoreboard_slot = (int)slot;
			opts.multiprocess = true;
			break;
		case O_HANDOFF:
			if (parse_pair(optarg, &v, &slot) == -1)
				goto bad;
			handoff.tx = (int)v;
			handoff.rx = (int)slot;
			break;
		case O_SLOWLOG:
			if (parse_long(optarg, 0, INT_MAX, &v) == -1)
				goto bad;
			opts.slowlog_fd = (int)v;
			break;
		case O_PRELOAD:
			if (parse_long(optarg, 0, INT_MAX, &v) == -1)
				goto bad;
			opts.preload_fd = (int)v;
			opts.multiprocess = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("fcgi-pm-worker %s\n", FCGI_PM_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_USAGE);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "fcgi-pm-worker: unexpected argument '%s'\n", argv[optind]);
		exit(EXIT_USAGE);
	}
	if (opts.module == NULL) {
		fprintf(stderr, "fcgi-pm-worker: --module is required\n");
		usage(stderr);
		exit(EXIT_USAGE);
	}
	return;
bad:
	fprintf(stderr, "fcgi-pm-worker: bad value '%s' for --%s\n", optarg,
	    lopts[ch - O_MODULE].name);
	exit(EXIT_USAGE);
}

/* ----------------------------------------------------------- scoreboard */

/* Map the pool's scoreboard and find our slot; exits 78 on a mismatch. */
static void
scoreboard_attach(void)
{
	struct sb_header *h;
	struct stat st;
	size_t size;

	if (fstat(opts.scoreboard_fd, &st) == -1 ||
	    (size_t)st.st_size < sizeof(struct sb_header)) {
		wlog(WLOG_ERROR, "scoreboard fd %d: %s", opts.scoreboard_fd,
		    errno ? strerror(errno) : "too small");
		exit(EXIT_CONFIG);
	}
	size = (size_t)st.st_size;
	h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, opts.scoreboard_fd, 0);
	if (h == MAP_FAILED) {
		wlog(WLOG_ERROR, "scoreboard fd %d: mmap: %s", opts.scoreboard_fd,
		    strerror(errno));
		exit(EXIT_CONFIG);
	}
	if (h->magic != SB_MAGIC || h->version != SB_VERSION) {
		wlog(WLOG_ERROR, "scoreboard magic %#x version %u, this worker wants "
		    "%#x version %u: fcgi-pm and fcgi-pm-worker do not match",
		    h->magic, h->version, SB_MAGIC, SB_VERSION);
		exit(EXIT_CONFIG);
	}
	if ((uint32_t)opts.scoreboard_slot >= h->nslots ||
	    h->nthreads < (uint32_t)opts.threads ||
	    h->slot_size < sb_slot_size(h->nthreads) ||
	    sb_total_size(h->nslots, h->nthreads) > size) {
		wlog(WLOG_ERROR, "scoreboard: slot %d of %u, %u threads per slot for "
		    "%d threads: does not fit", opts.scoreboard_slot, h->nslots,
		    h->nthreads, opts.threads);
		exit(EXIT_CONFIG);
	}
	sb = sb_slot_at(h, (uint32_t)opts.scoreboard_slot);
	sb_hdr = h;
	/* mapped: a program the app runs needs it no more than the pair below */
	fcntl(opts.scoreboard_fd, F_SETFD, FD_CLOEXEC);
}

/*
 * Request threads of the pool's other workers that wait for work: idle
 * in the scoreboard since their last request ended at least
 * IDLE_MIN_US ago (or never served one).  A thread between two requests
 * of a busy pool is idle for microseconds only: it does not count.
 * Read without the seqlock: a guess, for the hand-off watcher only.
 */
#define IDLE_MIN_US	1000
static unsigned
idle_threads_elsewhere(void)
{
	uint64_t now = realtime_us();
	unsigned n = 0;

	for (uint32_t i = 0; i < sb_hdr->nslots; i++) {
		const struct sb_slot *s = sb_slot_at(sb_hdr, i);

		if (s == sb || s->state != SB_WORKER_READY)
			continue;
		/* the pool's workers all run opts.threads threads */
		for (int t = 0; t < opts.threads; t++) {
			const struct sb_thread *st = &s->threads[t];

			if (st->state == SB_THREAD_IDLE && st->last_end_us + IDLE_MIN_US <= now)
				n++;
		}
	}
	return n;
}

/*
 * The --handoff pair, or NULL; it needs the scoreboard, which tells who
 * is idle.  Exits 78 if they are not sockets.
 */
static const struct fcgi_handoff *
handoff_attach(void)
{
	struct stat a, b;

	if (handoff.tx == -1 || sb == NULL)
		return NULL;
	if (fstat(handoff.tx, &a) == -1 || fstat(handoff.rx, &b) == -1 ||
	    !S_ISSOCK(a.st_mode) || !S_ISSOCK(b.st_mode)) {
		wlog(WLOG_ERROR, "--handoff %d:%d: not a socket pair", handoff.tx, handoff.rx);
		exit(EXIT_CONFIG);
	}
	/* a program the app runs must not get a way into the pool */
	fcntl(handoff.tx, F_SETFD, FD_CLOEXEC);
	fcntl(handoff.rx, F_SETFD, FD_CLOEXEC);
	handoff.idle_elsewhere = idle_threads_elsewhere;
	return &handoff;
}

static void
sb_set_state(enum sb_worker_state st)
{
	if (sb == NULL)
		return;
	pthread_mutex_lock(&sb_lock);
	sb_write_begin(&sb->seq);
	sb->state = st;
	if (st == SB_WORKER_STARTING) {
		sb->pid = getpid();
		sb->start_us = realtime_us();
		sb->rss_kb = rss_kb();
	}
	sb_write_end(&sb->seq);
	pthread_mutex_unlock(&sb_lock);
}

static void
copy_param(char *dst, size_t size, const struct request *r, const char *name)
{
	const char *v;
	size_t len;

	if ((v = request_param(r, name, &len)) == NULL)
		len = 0;
	if (len >= size)
		len = size - 1;
	memcpy(dst, v ? v : "", len);
	dst[len] = '\0';
}

/* ------------------------------------------------------ request threads */

struct thread {
	pthread_t tid;
	int index;
	struct conn *conn;
	uint64_t cpu_mark;	/* thread CPU time at the end of its last request */
};

/* Is R older than --queue-timeout, per nginx's REQUEST_START ($msec)? */
static bool
queued_too_long(const struct request *r, uint64_t now_us, double *age_ms)
{
	char buf[32];
	const char *v;
	size_t len;
	double start;
	char *end;

	if (opts.queue_timeout_ms <= 0 ||
	    (v = request_param(r, "REQUEST_START", &len)) == NULL ||
	    len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (buf[0] == 't' && buf[1] == '=')	/* "t=..." as some proxies send it */
		memmove(buf, buf + 2, len - 1);
	start = strtod(buf, &end);
	if (end == buf || start <= 0)
		return false;
	*age_ms = (double)now_us / 1000.0 - start * 1000.0;
	return *age_ms > (double)opts.queue_timeout_ms;
}

/* Ask the worker to stop for REASON; false if a stop was already asked. */
static bool
request_stop(int reason)
{
	uint64_t one = 1;
	int expected = STOP_NONE;

	if (!atomic_compare_exchange_strong(&stop_reason, &expected, reason))
		return false;
	/* Stop taking connections here and now: waiting for the main thread
	 * would let this thread accept one more request past the limit. */
	fcgi_stop();
	if (write(wake_fd, &one, sizeof(one)) == -1)
		wlog(WLOG_ERROR, "wake eventfd: %s", strerror(errno));
	return true;
}

/* Serve R on thread T: scoreboard, queue timeout, the app, limits. */
static void
serve(struct thread *t, struct request *r)
{
	struct sb_thread *st = sb ? &sb->threads[t->index] : NULL;
	uint64_t start_us = 0, end_us, cpu_us, rss;
	double age_ms;
	long total;
	int rc;

	if (st != NULL || opts.queue_timeout_ms > 0)
		start_us = realtime_us();
	if (st != NULL) {
		sb_write_begin(&st->seq);
		st->state = SB_THREAD_BUSY;
		st->req_start_us = start_us;
		st->req_content_length = (uint64_t)r->content_length;
		copy_param(st->req_method, sizeof(st->req_method), r, "REQUEST_METHOD");
		copy_param(st->req_uri, sizeof(st->req_uri), r, "REQUEST_URI");
		sb_write_end(&st->seq);
	}

	if (queued_too_long(r, start_us, &age_ms)) {
		char uri[128];

		copy_param(uri, sizeof(uri), r, "REQUEST_URI");
		wlog_limited(&rl_queue, WLOG_WARNING,
		    "request %s waited %.0f ms in the queue, more than queue_timeout "
		    "(%ld ms): answered 503", uri, age_ms, opts.queue_timeout_ms);
		rc = fcgi_respond(r, "503 Service Unavailable",
		    "503 Service Unavailable: the server is overloaded, try again later.\n");
		if (sb != NULL)		/* counted by the master for the status page */
			atomic_fetch_add(&sb->queue_timeouts, 1);
	} else
		rc = wsgi_handle(r);
	fcgi_end(r, rc);

	total = atomic_fetch_add(&nrequests, 1) + 1;
	rss = (sb != NULL || opts.max_rss_kb > 0) ? rss_kb() : 0;
	if (st != NULL) {
		/*
		 * One clock read per request: its CPU is what the thread used
		 * since its last request ended, which includes accepting and
		 * reading this one (and any connection it parked meanwhile).
		 */
		end_us = realtime_us();
		cpu_us = thread_cpu_us();
		sb_write_begin(&st->seq);
		st->state = SB_THREAD_IDLE;
		st->requests++;
		st->last_end_us = end_us;
		st->last_duration_us = end_us - start_us;
		st->last_cpu_us = cpu_us - t->cpu_mark;
		t->cpu_mark = cpu_us;
		st->last_rss_kb = atomic_load(&maxrss_last_kb);
		sb_write_end(&st->seq);
		atomic_fetch_add(&sb->requests, 1);
		/* The slot record has one writer per thread: serialize them. */
		pthread_mutex_lock(&sb_lock);
		sb_write_begin(&sb->seq);
		sb->rss_kb = rss;
		sb_write_end(&sb->seq);
		pthread_mutex_unlock(&sb_lock);
	}
	if (opts.max_requests > 0 && total >= opts.max_requests)
		request_stop(STOP_MAX_REQUESTS);
	/* Logged once: threads that finish together see the same sample. */
	if (opts.max_rss_kb > 0 && rss > (uint64_t)opts.max_rss_kb &&
	    request_stop(STOP_MAX_RSS))
		wlog(WLOG_NOTICE, "worker RSS %llu KB exceeds max_rss (%ld KB) after %ld "
		    "requests: exiting gracefully", (unsigned long long)rss,
		    opts.max_rss_kb, total);
}

static void *
request_thread(void *arg)
{
	struct thread *t = arg;
	struct request *r;

	if (sb != NULL) {
		/* the slowlog header names the thread as faulthandler does */
		struct sb_thread *st = &sb->threads[t->index];

		sb_write_begin(&st->seq);
		st->thread_id = (uint64_t)pthread_self();
		sb_write_end(&st->seq);
	}
	python_thread_begin();
	if (sb != NULL)
		t->cpu_mark = thread_cpu_us();
	while ((r = fcgi_next(t->conn)) != NULL)
		serve(t, r);
	python_thread_end();
	atomic_fetch_sub(&nrunning, 1);
	return NULL;
}

/* ------------------------------------------------------------ shutdown */

static void *
finalize_watchdog(void *arg)
{
	struct timespec ts = { FINALIZE_TIMEOUT, 0 };

	(void)arg;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	wlog(WLOG_WARNING, "python finalization took more than %d s, exiting now",
	    FINALIZE_TIMEOUT);
	_exit(0);
}

/*
 * Graceful stop: accept nothing more, let the requests in flight finish,
 * close idle kept connections, join the threads, then finalize Python
 * (atexit handlers, DB connections) under a watchdog.
 */
static void __attribute__((noreturn))
shutdown_gracefully(struct thread *threads, int n)
{
	pthread_t wd;
	int i;

	sb_set_state(SB_WORKER_ENDING);
	fcgi_stop();
	/*
	 * Requests in flight finish, and connections accepted whose request
	 * has not all come are served (or closed at their read_timeout by the
	 * sweep); SIGTERM or SIGINT meanwhile still stop us now, and so does
	 * the master's SIGKILL after process_control_timeout.
	 */
	while (atomic_load(&nrunning) > 0) {
		struct pollfd pfd = { .fd = sig_fd, .events = POLLIN };
		struct signalfd_siginfo si;

		fcgi_sweep(false);
		if (poll(&pfd, 1, 50) == 1 && read(sig_fd, &si, sizeof(si)) == sizeof(si) &&
		    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
			_exit(0);
	}
	for (i = 0; i < n; i++)
		pthread_join(threads[i].tid, NULL);
	fcgi_sweep(true);
	wlog(WLOG_DEBUG, "handed off %lu kept connections to other workers",
	    fcgi_handoff_count());
	if (pthread_create(&wd, NULL, finalize_watchdog, NULL) != 0)
		wlog(WLOG_WARNING, "finalize watchdog: cannot start");
	python_finalize();
	_exit(0);
}

/* In a child forked by the app, undo our signal blocking (exec keeps the mask). */
static void
atfork_child(void)
{
	pthread_sigmask(SIG_SETMASK, &orig_mask, NULL);
}

int
main(int argc, char **argv)
{
	struct fcgi_server_conf sc;
	struct signalfd_siginfo si;
	struct pollfd pfd[3];
	struct thread *threads;
	sigset_t mask;
	socklen_t len;
	int i, listening = 0, sweep_ms, watch_ms = -1;
	uint64_t next_sweep = 0;
	const char *dbg;
	bool preloaded;

	parse_args(argc, argv);
	if ((dbg = getenv("FCGI_PM_WORKER_DEBUG")) != NULL && *dbg && *dbg != '0')
		wlog_set_level(WLOG_DEBUG);
	if (opts.chdir != NULL && chdir(opts.chdir) == -1) {
		wlog(WLOG_ERROR, "chdir %s: %s", opts.chdir, strerror(errno));
		exit(EXIT_CONFIG);
	}

	/* fd 0 is the listening socket (FastCGI convention). */
	len = sizeof(listening);
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == -1 || !listening) {
		wlog(WLOG_ERROR, "fd 0 is not a listening socket: run under fcgi-pm, "
		    "spawn-fcgi or a web server that passes one");
		exit(EXIT_CONFIG);
	}
	/* O_NONBLOCK is shared with every worker of the pool: all use epoll. */
	if (fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) == -1) {
		wlog(WLOG_ERROR, "fd 0: O_NONBLOCK: %s", strerror(errno));
		exit(EXIT_OSERR);
	}
	/*
	 * Block the asynchronous signals before any thread exists, so every
	 * thread (ours, the app's) inherits the mask and only the main thread
	 * sees them, through signalfd.  SIGUSR2 stays open for the slowlog
	 * traceback.  SIGPIPE ignored: a gone peer is an EPIPE, not a death.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGALRM);
	if (pthread_sigmask(SIG_BLOCK, &mask, &orig_mask) != 0 ||
	    (sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		wlog(WLOG_ERROR, "signals: %s", strerror(errno));
		exit(EXIT_OSERR);
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_atfork(NULL, NULL, atfork_child);

	/*
	 * preload = yes: this process loads the app once and forks the
	 * workers (preload.c); preload_run() returns only in a new worker,
	 * app loaded, signals blocked, and goes on from here like any worker.
	 * The signalfd reads the signals of whichever process reads it.
	 */
	preloaded = opts.preload_fd != -1;
	if (preloaded)
		preload_run(&opts, sig_fd, argc, argv);

	if (opts.scoreboard_fd != -1)
		scoreboard_attach();
	if (sb != NULL || opts.max_rss_kb > 0)
		statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	sb_set_state(SB_WORKER_STARTING);

	if ((wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		wlog(WLOG_ERROR, "eventfd: %s", strerror(errno));
		exit(EXIT_OSERR);
	}

	if (!preloaded && python_init(&opts) == -1)
		exit(EXIT_APP);
	if (opts.slowlog_fd != -1 && python_register_slowlog(opts.slowlog_fd, SIGUSR2) == -1)
		wlog(WLOG_WARNING, "slowlog: cannot register the traceback dump on SIGUSR2");

	sc.listen_fd = 0;
	sc.threads = opts.threads;
	sc.read_timeout_ms = opts.read_timeout_ms;
	sc.keepalive_timeout_ms = opts.keepalive_timeout_ms;
	/* listen_allowed_clients, passed the FastCGI way (as libfcgi reads it) */
	sc.allowed_clients = getenv("FCGI_WEB_SERVER_ADDRS");
	/* requests dropped because the web server was gone, for the master */
	sc.dropped = sb != NULL ? &sb->peer_gone : NULL;
	sc.handoff = handoff_attach();
	if (fcgi_server_init(&sc) == -1)
		exit(errno == EINVAL ? EXIT_CONFIG : EXIT_OSERR);
	if ((threads = calloc((size_t)opts.threads, sizeof(*threads))) == NULL)
		exit(EXIT_OSERR);
	atomic_store(&nrunning, opts.threads);
	for (i = 0; i < opts.threads; i++) {
		threads[i].index = i;
		if ((threads[i].conn = fcgi_conn_new()) == NULL) {
			wlog(WLOG_ERROR, "request thread buffers: %s", strerror(errno));
			exit(EXIT_OSERR);
		}
		if ((errno = pthread_create(&threads[i].tid, NULL, request_thread,
		    &threads[i])) != 0) {
			wlog(WLOG_ERROR, "request thread: %s", strerror(errno));
			exit(EXIT_OSERR);
		}
	}
	sb_set_state(SB_WORKER_READY);
	wlog(WLOG_DEBUG, "worker %d ready: %s, %d threads", (int)getpid(),
	    opts.module, opts.threads);

	/* The sweeper wakes often enough to close idle connections on time. */
	sweep_ms = (int)(opts.keepalive_timeout_ms / 4);
	if (sweep_ms > 1000)
		sweep_ms = 1000;
	if (sweep_ms < 50)
		sweep_ms = 50;
	pfd[0].fd = sig_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = wake_fd;
	pfd[1].events = POLLIN;
	/* The hand-off watcher (fcgi.h): -1 without a pool to hand off to. */
	pfd[2].fd = fcgi_watch_fd();
	pfd[2].events = POLLIN;
	for (;;) {
		if (poll(pfd, 3, watch_ms != -1 && watch_ms < sweep_ms ? watch_ms : sweep_ms) == -1) {
			if (errno == EINTR)	/* SIGUSR2 (slowlog) lands here too */
				continue;
			wlog(WLOG_ERROR, "poll: %s", strerror(errno));
			_exit(EXIT_OSERR);
		}
		watch_ms = fcgi_watch();
		/* the watcher wakes us every few ms: the sweep needs no more than its own pace */
		if (mono_coarse_ms() >= next_sweep) {
			fcgi_sweep(false);
			next_sweep = mono_coarse_ms() + (uint64_t)sweep_ms;
		}
		if (pfd[1].revents & POLLIN) {
			if (atomic_load(&stop_reason) == STOP_MAX_REQUESTS)
				wlog(WLOG_NOTICE, "served max_requests (%ld): exiting gracefully",
				    opts.max_requests);
			shutdown_gracefully(threads, opts.threads);
		}
		if (!(pfd[0].revents & POLLIN) || read(sig_fd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGQUIT:
			wlog(WLOG_DEBUG, "SIGQUIT: stopping gracefully");
			shutdown_gracefully(threads, opts.threads);
		case SIGTERM:
		case SIGINT:
			_exit(0);
		default:
			/* HUP, USR1: nothing to reload or reopen (stderr is a pipe);
			 * CHLD: the app reaps its own children. */
			break;
		}
	}
}
