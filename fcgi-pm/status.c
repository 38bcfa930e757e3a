/*
 * status.c - the pools' status: a snapshot of live state, rendered as
 * php-fpm's text and JSON pages or as Prometheus / OpenMetrics text.
 *
 * status_collect() copies what the status page shows out of the pools and
 * their scoreboards into a struct status_snapshot with no pointer into live
 * state; the renderers are pure functions of a snapshot, so unit tests feed
 * them hand-made ones.  Field names and meanings follow php-fpm's
 * fpm_status.c, so tools written for php-fpm's page read ours.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

/* ------------------------------------------------------------- the buffer */

/* Append LEN bytes of S to B.  0, or -1 when out of memory (B->failed set). */
int
buf_add(struct buf *b, const char *s, size_t len)
{
	if (b->failed)
		return -1;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;

		while (cap < b->len + len + 1)
			cap *= 2;
		if ((d = realloc(b->data, cap)) == NULL) {
			b->failed = true;
			return -1;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

/* printf onto the end of B.  0 or -1 (B->failed set). */
int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512], *big;
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return -1;
	}
	if ((size_t)n < sizeof(small))
		return buf_add(b, small, (size_t)n);
	if ((big = malloc((size_t)n + 1)) == NULL) {
		b->failed = true;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r = buf_add(b, big, (size_t)n);
	free(big);
	return r;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* --------------------------------------------------------------- collect */

/* Copy at most SIZE-1 bytes of S into D, always terminated. */
static void
copy_str(char *d, size_t size, const char *s)
{
	size_t n = strnlen(s, size - 1);

	memcpy(d, s, n);
	d[n] = '\0';
}

/*
 * One worker's row from its slot SV and its threads: the worker is Running
 * while any thread runs the application, Reading headers while one reads a
 * request, else Idle.  The request columns show the oldest request in
 * flight, else the last one finished (as php-fpm shows an idle process's
 * last request).
 */
static void
collect_worker(const struct pool *p, const struct worker *w, const struct sb_slot_view *sv,
    uint64_t now_us, struct status_worker *sw)
{
	struct sb_thread t, cur, last;
	uint32_t nthreads = p->sb.hdr->nthreads;
	bool have_cur = false, have_last = false;
	int busy = 0, reading = 0;

	memset(sw, 0, sizeof(*sw));
	memset(&cur, 0, sizeof(cur));
	memset(&last, 0, sizeof(last));
	sw->pid = w->pid;
	sw->start_us = sv->start_us;
	sw->rss_bytes = sv->rss_kb * 1024;
	for (uint32_t i = 0; i < nthreads; i++) {
		if (sb_thread_read(&p->sb, (uint32_t)w->slot, i, &t) == -1)
			break;
		/*
		 * Count requests per thread: a thread's count and its state change
		 * in one write, so finished plus in flight never misses one (the
		 * slot's total is bumped a moment later).
		 */
		sw->requests += t.requests;
		if (t.state == SB_THREAD_BUSY || t.state == SB_THREAD_READING) {
			busy += t.state == SB_THREAD_BUSY;
			reading += t.state == SB_THREAD_READING;
			if (!have_cur || t.req_start_us < cur.req_start_us)
				cur = t;
			have_cur = true;
		} else if (t.last_end_us != 0 && (!have_last || t.last_end_us > last.last_end_us)) {
			last = t;
			have_last = true;
		}
	}
	if (w->ending || sv->state == SB_WORKER_ENDING)
		sw->state = WORKER_ST_ENDING;
	else if (sv->state != SB_WORKER_READY)
		sw->state = WORKER_ST_STARTING;
	else if (busy > 0)
		sw->state = WORKER_ST_RUNNING;
	else if (reading > 0)
		sw->state = WORKER_ST_READING;
	else
		sw->state = WORKER_ST_IDLE;
	sw->busy_threads = busy + reading;
	if (have_cur) {
		sw->in_request = true;
		sw->duration_us = now_us > cur.req_start_us ? now_us - cur.req_start_us : 0;
		copy_str(sw->method, sizeof(sw->method), cur.req_method);
		copy_str(sw->uri, sizeof(sw->uri), cur.req_uri);
		sw->content_length = cur.req_content_length;
	} else if (have_last) {
		sw->duration_us = last.last_duration_us;
		copy_str(sw->method, sizeof(sw->method), last.req_method);
		copy_str(sw->uri, sizeof(sw->uri), last.req_uri);
		sw->content_length = last.req_content_length;
		sw->last_cpu_pct = last.last_duration_us ?
		    100.0 * (double)last.last_cpu_us / (double)last.last_duration_us : 0.0;
		sw->last_memory_bytes = last.last_rss_kb * 1024;
	}
}

/*
 * Fill *PS with pool P's numbers now, and remember its peaks (max active
 * processes, max listen queue) in P.  Workers only when FULL.
 * Returns 0, or -1 when out of memory.
 */
static int
collect_pool(struct pool *p, bool full, uint64_t now_us, struct status_pool *ps)
{
	unsigned len = 0, max = 0;
	struct pool_stats st;

	memset(ps, 0, sizeof(*ps));
	pool_counters(p, &st);
	copy_str(ps->name, sizeof(ps->name), p->conf->name);
	ps->pm = pm_mode_name(p->conf->pm);
	ps->state = p->state;
	ps->start_us = p->start_us;
	ps->accepted = p->stats.accepted;	/* reaped workers'; live ones' added below */
	ps->max_children_reached = st.max_children_reached;
	ps->slow_requests = st.slow_requests;
	ps->queue_timeouts = st.queue_timeouts;
	ps->dropped = st.peer_gone;
	ps->max_children = p->conf->max_children;
	if (p->sock.fd != -1 && sock_queue(&p->sock, &len, &max) == 0) {
		ps->listen_queue = len;
		ps->listen_queue_len = max;
		if (len > p->max_listen_queue)
			p->max_listen_queue = len;
	}
	if (full && p->nslots > 0 &&
	    (ps->workers = calloc((size_t)p->nslots, sizeof(*ps->workers))) == NULL)
		return -1;
	for (int i = 0; i < p->nslots; i++) {
		const struct worker *w = &p->workers[i];
		struct status_worker sw;
		struct sb_slot_view sv;

		if (w->pid == 0)
			continue;
		sb_slot_read(&p->sb, (uint32_t)w->slot, &sv);
		collect_worker(p, w, &sv, now_us, &sw);
		ps->accepted += sw.requests + (uint64_t)sw.busy_threads;
		if (sw.state == WORKER_ST_IDLE)
			ps->idle++;
		else if (sw.state == WORKER_ST_RUNNING || sw.state == WORKER_ST_READING)
			ps->active++;
		if (full)
			ps->workers[ps->nworkers++] = sw;
	}
	ps->total = ps->idle + ps->active;
	if ((uint64_t)ps->active > p->stats.max_active)
		p->stats.max_active = (uint64_t)ps->active;
	ps->max_active = (int)p->stats.max_active;
	ps->max_listen_queue = p->max_listen_queue;
	return 0;
}

/*
 * A pool replaced by a reload drains under the same name as its successor:
 * one entry shows both, with the running pool's settings and start time,
 * the sum of their requests and workers and the larger peaks.  Frees
 * FROM's workers.  0, or -1 when out of memory.
 */
static int
merge_pool(struct status_pool *into, struct status_pool *from)
{
	if (from->nworkers > 0) {
		struct status_worker *w = realloc(into->workers,
		    (into->nworkers + from->nworkers) * sizeof(*w));

		if (w == NULL) {
			free(from->workers);
			return -1;
		}
		memcpy(w + into->nworkers, from->workers, from->nworkers * sizeof(*w));
		into->workers = w;
		into->nworkers += from->nworkers;
	}
	free(from->workers);
	if (into->state != POOL_RUNNING && from->state == POOL_RUNNING) {
		into->pm = from->pm;
		into->state = from->state;
		into->start_us = from->start_us;
		into->max_children = from->max_children;
		into->listen_queue = from->listen_queue;
		into->listen_queue_len = from->listen_queue_len;
	}
	into->accepted += from->accepted;
	into->idle += from->idle;
	into->active += from->active;
	into->total += from->total;
	into->max_children_reached += from->max_children_reached;
	into->slow_requests += from->slow_requests;
	into->queue_timeouts += from->queue_timeouts;
	into->dropped += from->dropped;
	if (from->max_active > into->max_active)
		into->max_active = from->max_active;
	if (from->max_listen_queue > into->max_listen_queue)
		into->max_listen_queue = from->max_listen_queue;
	return 0;
}

/*
 * Snapshot the N pools of POOLS (only the one named ONLY, unless NULL) into
 * *S, with every worker's row when FULL.  A pool being drained after a
 * reload is merged into its successor's entry.  Returns 0,
 * or -1 when out of memory (*S is then empty).  status_free() releases it.
 */
int
status_collect(struct pool *pools, size_t n, const char *only, bool full,
    struct status_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->now_us = realtime_us();
	s->master_pid = getpid();
	if (n > 0 && (s->pools = calloc(n, sizeof(*s->pools))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct status_pool *into = NULL, ps;

		if (pools[i].state == POOL_STOPPED || pools[i].workers == NULL)
			continue;
		if (only != NULL && strcmp(pools[i].conf->name, only) != 0)
			continue;
		if (collect_pool(&pools[i], full, s->now_us, &ps) == -1) {
			status_free(s);
			return -1;
		}
		for (size_t k = 0; k < s->npools && into == NULL; k++) {
			if (strcmp(s->pools[k].name, ps.name) == 0)
				into = &s->pools[k];
		}
		if (into == NULL)
			s->pools[s->npools++] = ps;
		else if (merge_pool(into, &ps) == -1) {
			status_free(s);
			return -1;
		}
	}
	return 0;
}

/*
 * Connect to P's listening socket and hang up at once: the new connection
 * wakes a worker, which then also accepts the ones already waiting.
 */
static void
kick(struct pool *p)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	if (getsockname(p->sock.fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
	    htonl(INADDR_ANY))
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return;
	connect(fd, (struct sockaddr *)&ss, len);	/* loopback: done or in progress */
	close(fd);
	log_debug(p->conf->name, 0, "connections waited in the listen queue beside idle "
	    "workers for %d ticks: woke a worker", p->stuck_ticks);
}

/*
 * The tick's look at every pool: keep the peaks (listen queue, active
 * processes), and wake the workers when connections wait while some are
 * idle.  That happens when the one worker the kernel woke for a connection
 * (EPOLLEXCLUSIVE) was stopping and left it: nobody else is woken until the
 * next connection, which on a quiet site may be long.
 */
void
status_sample(struct pool *pools, size_t n)
{
	struct status_snapshot s;

	if (status_collect(pools, n, NULL, false, &s) == -1)
		return;
	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i];
		const struct status_pool *e = NULL;

		if (p->state != POOL_RUNNING || p->workers == NULL || p->sock.fd == -1)
			continue;
		for (size_t k = 0; k < s.npools && e == NULL; k++) {
			if (strcmp(s.pools[k].name, p->conf->name) == 0)
				e = &s.pools[k];
		}
		if (e != NULL && e->listen_queue > 0 && e->idle > 0) {
			if (++p->stuck_ticks >= 2)
				kick(p);
		} else
			p->stuck_ticks = 0;
	}
	status_free(&s);
}

void
status_free(struct status_snapshot *s)
{
	for (size_t i = 0; i < s->npools; i++)
		free(s->pools[i].workers);
	free(s->pools);
	memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------- render */

static const char *const worker_state_names[] = {
	[WORKER_ST_STARTING] = "Starting",
	[WORKER_ST_IDLE] = "Idle",
	[WORKER_ST_READING] = "Reading headers",
	[WORKER_ST_RUNNING] = "Running",
	[WORKER_ST_ENDING] = "Ending",
};

/* The php-fpm name of worker state ST ("Idle", "Running"...). */
const char *
status_worker_state_name(enum worker_status_state st)
{
	if ((size_t)st >= sizeof(worker_state_names) / sizeof(worker_state_names[0]))
		return "Unknown";
	return worker_state_names[st];
}

static uint64_t
since_s(const struct status_snapshot *s, uint64_t us)
{
	return us != 0 && s->now_us > us ? (s->now_us - us) / 1000000 : 0;
}

/* php-fpm's text time: "25/Nov/2026:19:00:00 +0000" (local time). */
static void
fmt_time(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%d/%b/%Y:%H:%M:%S %z", &tm) == 0)
		snprintf(buf, len, "-");
}

static const char *
dash(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

static void
render_text(const struct status_snapshot *s, bool full, struct buf *b)
{
	char tb[64];

	for (size_t i = 0; i < s->npools; i++) {
		const struct status_pool *p = &s->pools[i];

		if (i > 0)
			buf_add(b, "\n", 1);
		fmt_time(p->start_us, tb, sizeof(tb));
		buf_printf(b,
		    "pool:                 %s\n"
		    "process manager:      %s\n"
		    "start time:           %s\n"
		    "start since:          %llu\n"
		    "accepted conn:        %llu\n"
		    "listen queue:         %u\n"
		    "max listen queue:     %u\n"
		    "listen queue len:     %u\n"
		    "idle processes:       %d\n"
		    "active processes:     %d\n"
		    "total processes:      %d\n"
		    "max active processes: %d\n"
		    "max children reached: %llu\n"
		    "slow requests:        %llu\n"
		    /* ours, not php-fpm's: after its fields, so parsers keep working */
		    "queue timeouts:       %llu\n"
		    "dropped requests (client gone): %llu\n",
		    p->name, p->pm, tb, (unsigned long long)since_s(s, p->start_us),
		    (unsigned long long)p->accepted, p->listen_queue, p->max_listen_queue,
		    p->listen_queue_len, p->idle, p->active, p->total, p->max_active,
		    (unsigned long long)p->max_children_reached,
		    (unsigned long long)p->slow_requests,
		    (unsigned long long)p->queue_timeouts, (unsigned long long)p->dropped);
		if (p->state == POOL_STOPPING)
			buf_printf(b, "pool state:           draining\n");
		if (!full)
			continue;
		for (size_t j = 0; j < p->nworkers; j++) {
			const struct status_worker *w = &p->workers[j];

			fmt_time(w->start_us, tb, sizeof(tb));
			buf_printf(b,
			    "\n"
			    "************************\n"
			    "pid:                  %ld\n"
			    "state:                %s\n"
			    "start time:           %s\n"
			    "start since:          %llu\n"
			    "requests:             %llu\n"
			    "request duration:     %llu\n"
			    "request method:       %s\n"
			    "request URI:          %s\n"
			    "content length:       %llu\n"
			    "last request cpu:     %.2f\n"
			    "last request memory:  %llu\n",
			    (long)w->pid, status_worker_state_name(w->state), tb,
			    (unsigned long long)since_s(s, w->start_us),
			    (unsigned long long)w->requests,
			    (unsigned long long)w->duration_us, dash(w->method), dash(w->uri),
			    (unsigned long long)w->content_length, w->last_cpu_pct,
			    (unsigned long long)w->last_memory_bytes);
		}
	}
}

/* S as a JSON string (quoted, escaped; bytes >= 0x80 pass as they are). */
static void
json_str(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\u%04x", c);
		else
			buf_add(b, (const char *)&c, 1);
	}
	buf_add(b, "\"", 1);
}

static void
render_json_pool(const struct status_snapshot *s, const struct status_pool *p, bool full,
    struct buf *b)
{
	buf_add(b, "{\"pool\":", 8);
	json_str(b, p->name);
	buf_add(b, ",\"process manager\":", 19);
	json_str(b, p->pm);
	buf_printf(b, ",\"start time\":%llu,\"start since\":%llu,\"accepted conn\":%llu,"
	    "\"listen queue\":%u,\"max listen queue\":%u,\"listen queue len\":%u,"
	    "\"idle processes\":%d,\"active processes\":%d,\"total processes\":%d,"
	    "\"max active processes\":%d,\"max children reached\":%llu,"
	    "\"slow requests\":%llu,\"queue timeouts\":%llu,"
	    "\"dropped requests (client gone)\":%llu,\"draining\":%s",
	    (unsigned long long)(p->start_us / 1000000),
	    (unsigned long long)since_s(s, p->start_us), (unsigned long long)p->accepted,
	    p->listen_queue, p->max_listen_queue, p->listen_queue_len, p->idle, p->active,
	    p->total, p->max_active, (unsigned long long)p->max_children_reached,
	    (unsigned long long)p->slow_requests, (unsigned long long)p->queue_timeouts,
	    (unsigned long long)p->dropped, p->state == POOL_STOPPING ? "true" : "false");
	if (full) {
		buf_add(b, ",\"processes\":[", 14);
		for (size_t j = 0; j < p->nworkers; j++) {
			const struct status_worker *w = &p->workers[j];

			buf_printf(b, "%s{\"pid\":%ld,\"state\":\"%s\",\"start time\":%llu,"
			    "\"start since\":%llu,\"requests\":%llu,\"request duration\":%llu,"
			    "\"request method\":", j ? "," : "", (long)w->pid,
			    status_worker_state_name(w->state),
			    (unsigned long long)(w->start_us / 1000000),
			    (unsigned long long)since_s(s, w->start_us),
			    (unsigned long long)w->requests, (unsigned long long)w->duration_us);
			json_str(b, dash(w->method));
			buf_add(b, ",\"request uri\":", 15);
			json_str(b, dash(w->uri));
			buf_printf(b, ",\"content length\":%llu,\"last request cpu\":%.2f,"
			    "\"last request memory\":%llu,\"rss\":%llu}",
			    (unsigned long long)w->content_length, w->last_cpu_pct,
			    (unsigned long long)w->last_memory_bytes,
			    (unsigned long long)w->rss_bytes);
		}
		buf_add(b, "]", 1);
	}
	buf_add(b, "}", 1);
}

/*
 * One pool asked for (ONE_POOL): php-fpm's object, so tools written for
 * php-fpm read it.  Every pool: {"pools": [...]}.
 */
static void
render_json(const struct status_snapshot *s, bool full, bool one_pool, struct buf *b)
{
	if (one_pool && s->npools == 1) {
		render_json_pool(s, &s->pools[0], full, b);
		buf_add(b, "\n", 1);
		return;
	}
	buf_add(b, "{\"pools\":[", 10);
	for (size_t i = 0; i < s->npools; i++) {
		if (i > 0)
			buf_add(b, ",", 1);
		render_json_pool(s, &s->pools[i], full, b);
	}
	buf_add(b, "]}\n", 3);
}

/* A label value, escaped as the exposition formats require. */
static void
prom_label(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			buf_add(b, "\\n", 2);
		else
			buf_add(b, s, 1);
	}
	buf_add(b, "\"", 1);
}

/*
 * A metric family's HELP and TYPE lines.  A counter's samples end in
 * _total; OpenMetrics names the family without it, Prometheus 0.0.4 with.
 */
static void
prom_family(struct buf *b, bool om, const char *name, const char *type, const char *help)
{
	bool counter = strcmp(type, "counter") == 0;

	buf_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, counter && !om ? "_total" : "",
	    help, name, counter && !om ? "_total" : "", type);
}

enum prom_field {
	PF_START, PF_ACCEPTED, PF_LQ, PF_MAXLQ, PF_LQLEN, PF_IDLE, PF_ACTIVE, PF_TOTAL,
	PF_MAXACTIVE, PF_MAXCHILDREN, PF_MAXREACHED, PF_SLOW, PF_QTIMEOUT, PF_DROPPED,
};

static const struct {
	enum prom_field f;
	const char *name, *type, *help;
} prom_pool_metrics[] = {
	{ PF_START, "fcgipm_start_time_seconds", "gauge",
	    "When the pool started, in seconds since the epoch." },
	{ PF_ACCEPTED, "fcgipm_accepted_connections", "counter",
	    "Requests the pool's workers accepted." },
	{ PF_LQ, "fcgipm_listen_queue", "gauge",
	    "Connections waiting in the listening socket's accept queue." },
	{ PF_MAXLQ, "fcgipm_max_listen_queue", "gauge",
	    "The longest accept queue seen since the pool started." },
	{ PF_LQLEN, "fcgipm_listen_queue_length", "gauge",
	    "The accept queue's size (the backlog the kernel applies)." },
	{ PF_IDLE, "fcgipm_idle_processes", "gauge", "Workers waiting for a request." },
	{ PF_ACTIVE, "fcgipm_active_processes", "gauge", "Workers serving a request." },
	{ PF_TOTAL, "fcgipm_total_processes", "gauge", "Idle plus active workers." },
	{ PF_MAXACTIVE, "fcgipm_max_active_processes", "gauge",
	    "The most workers active at once since the pool started." },
	{ PF_MAXCHILDREN, "fcgipm_max_children", "gauge", "The pool's max_children." },
	{ PF_MAXREACHED, "fcgipm_max_children_reached", "counter",
	    "Times the pool wanted more workers than max_children." },
	{ PF_SLOW, "fcgipm_slow_requests", "counter",
	    "Requests that ran longer than request_slowlog_timeout." },
	{ PF_QTIMEOUT, "fcgipm_queue_timeouts", "counter",
	    "Requests answered 503 without running: they waited longer than queue_timeout." },
	{ PF_DROPPED, "fcgipm_dropped_requests", "counter",
	    "Requests dropped without running: the web server had closed the connection "
	    "(its client gave up)." },
};

static void
prom_pool_value(struct buf *b, const struct status_pool *p, enum prom_field f)
{
	switch (f) {
	case PF_START:
		buf_printf(b, "%llu.%06llu", (unsigned long long)(p->start_us / 1000000),
		    (unsigned long long)(p->start_us % 1000000));
		break;
	case PF_ACCEPTED:
		buf_printf(b, "%llu", (unsigned long long)p->accepted);
		break;
	case PF_LQ:
		buf_printf(b, "%u", p->listen_queue);
		break;
	case PF_MAXLQ:
		buf_printf(b, "%u", p->max_listen_queue);
		break;
	case PF_LQLEN:
		buf_printf(b, "%u", p->listen_queue_len);
		break;
	case PF_IDLE:
		buf_printf(b, "%d", p->idle);
		break;
	case PF_ACTIVE:
		buf_printf(b, "%d", p->active);
		break;
	case PF_TOTAL:
		buf_printf(b, "%d", p->total);
		break;
	case PF_MAXACTIVE:
		buf_printf(b, "%d", p->max_active);
		break;
	case PF_MAXCHILDREN:
		buf_printf(b, "%d", p->max_children);
		break;
	case PF_MAXREACHED:
		buf_printf(b, "%llu", (unsigned long long)p->max_children_reached);
		break;
	case PF_SLOW:
		buf_printf(b, "%llu", (unsigned long long)p->slow_requests);
		break;
	case PF_QTIMEOUT:
		buf_printf(b, "%llu", (unsigned long long)p->queue_timeouts);
		break;
	case PF_DROPPED:
		buf_printf(b, "%llu", (unsigned long long)p->dropped);
		break;
	}
}

static void
render_prom(const struct status_snapshot *s, bool full, bool om, struct buf *b)
{
	static const enum worker_status_state states[] = {
		WORKER_ST_STARTING, WORKER_ST_IDLE, WORKER_ST_READING, WORKER_ST_RUNNING,
		WORKER_ST_ENDING,
	};
	size_t npm = sizeof(prom_pool_metrics) / sizeof(prom_pool_metrics[0]);

	for (size_t m = 0; m < npm; m++) {
		bool counter = strcmp(prom_pool_metrics[m].type, "counter") == 0;

		prom_family(b, om, prom_pool_metrics[m].name, prom_pool_metrics[m].type,
		    prom_pool_metrics[m].help);
		for (size_t i = 0; i < s->npools; i++) {
			buf_printf(b, "%s%s{pool=", prom_pool_metrics[m].name,
			    counter ? "_total" : "");
			prom_label(b, s->pools[i].name);
			buf_add(b, "} ", 2);
			prom_pool_value(b, &s->pools[i], prom_pool_metrics[m].f);
			buf_add(b, "\n", 1);
		}
	}
	if (!full)
		goto done;
	prom_family(b, om, "fcgipm_worker_state", "gauge",
	    "1 for the state a worker is in, 0 for the others.");
	for (size_t i = 0; i < s->npools; i++) {
		for (size_t j = 0; j < s->pools[i].nworkers; j++) {
			const struct status_worker *w = &s->pools[i].workers[j];

			for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
				buf_add(b, "fcgipm_worker_state{pool=", 25);
				prom_label(b, s->pools[i].name);
				buf_printf(b, ",pid=\"%ld\",state=\"%s\"} %d\n", (long)w->pid,
				    status_worker_state_name(states[k]), w->state == states[k]);
			}
		}
	}
	prom_family(b, om, "fcgipm_worker_requests", "counter",
	    "Requests the worker finished.");
	for (size_t i = 0; i < s->npools; i++) {
		for (size_t j = 0; j < s->pools[i].nworkers; j++) {
			const struct status_worker *w = &s->pools[i].workers[j];

			buf_add(b, "fcgipm_worker_requests_total{pool=", 34);
			prom_label(b, s->pools[i].name);
			buf_printf(b, ",pid=\"%ld\"} %llu\n", (long)w->pid,
			    (unsigned long long)w->requests);
		}
	}
	prom_family(b, om, "fcgipm_worker_request_duration_seconds", "gauge",
	    "How long the worker's current request has been running; 0 when idle.");
	for (size_t i = 0; i < s->npools; i++) {
		for (size_t j = 0; j < s->pools[i].nworkers; j++) {
			const struct status_worker *w = &s->pools[i].workers[j];
			uint64_t d = w->in_request ? w->duration_us : 0;

			buf_add(b, "fcgipm_worker_request_duration_seconds{pool=", 44);
			prom_label(b, s->pools[i].name);
			buf_printf(b, ",pid=\"%ld\"} %llu.%06llu\n", (long)w->pid,
			    (unsigned long long)(d / 1000000), (unsigned long long)(d % 1000000));
		}
	}
	prom_family(b, om, "fcgipm_worker_rss_bytes", "gauge",
	    "The worker's resident memory after its last request.");
	for (size_t i = 0; i < s->npools; i++) {
		for (size_t j = 0; j < s->pools[i].nworkers; j++) {
			const struct status_worker *w = &s->pools[i].workers[j];

			buf_add(b, "fcgipm_worker_rss_bytes{pool=", 29);
			prom_label(b, s->pools[i].name);
			buf_printf(b, ",pid=\"%ld\"} %llu\n", (long)w->pid,
			    (unsigned long long)w->rss_bytes);
		}
	}
done:
	if (om)
		buf_add(b, "# EOF\n", 6);
}

/*
 * Render snapshot S in format F onto B: every pool's numbers and, when
 * FULL, every worker's.  ONE_POOL: the caller asked for a single pool
 * (JSON is then php-fpm's single object).  Pure.  Returns 0, or -1 when
 * out of memory.
 */
int
status_render(const struct status_snapshot *s, enum status_format f, bool full,
    bool one_pool, struct buf *b)
{
	switch (f) {
	case STATUS_TEXT:
		render_text(s, full, b);
		break;
	case STATUS_JSON:
		render_json(s, full, one_pool, b);
		break;
	case STATUS_PROMETHEUS:
		render_prom(s, full, false, b);
		break;
	case STATUS_OPENMETRICS:
		render_prom(s, full, true, b);
		break;
	}
	return b->failed ? -1 : 0;
}

/* The Content-Type of format F. */
const char *
status_content_type(enum status_format f)
{
	switch (f) {
	case STATUS_JSON:
		return "application/json";
	case STATUS_PROMETHEUS:
		return "text/plain; version=0.0.4; charset=utf-8";
	case STATUS_OPENMETRICS:
		return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	default:
		return "text/plain; charset=utf-8";
	}
}
