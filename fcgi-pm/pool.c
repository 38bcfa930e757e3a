/*
 * pool.c - pool policy: how many workers each pool should have, what to do
 * when one exits, how to stop and restart them.
 *
 * The decision is a pure function, pool_decide(): a pool's configuration
 * and a snapshot of its workers in, actions out.  Everything with side
 * effects (fork, kill, logging) happens here around it, so the policy can
 * be unit-tested without a process and dynamic/ondemand slot into it.
 *
 * A worker that dies young (before POOL_HEALTHY_MS) without being asked
 * counts as a failure: the pool backs off exponentially, spawning one probe
 * worker per step, until a worker survives; other pools are not affected.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

#define DEFAULT_CONTROL_TIMEOUT_MS	10000

static int
min_int(int a, int b)
{
	return a < b ? a : b;
}

/*
 * pm = dynamic, once per POOL_SCALE_MS: php-fpm's idle server maintenance.
 * More idle workers than max_spare: stop the one idle longest.  Fewer
 * spare (idle or still starting) than min_spare: start up to the spawn
 * rate, which doubles each step while spares stay short, up to
 * max_spawn_rate, and falls back to 1 once they are not.
 */
static int
decide_dynamic(const struct pool_conf *pc, const struct pool_view *v, struct pool_actions *a)
{
	int spare = v->idle + v->starting;
	int rate = v->spawn_rate > 0 ? v->spawn_rate : 1;

	if (v->idle > pc->max_spare && v->idlest >= 0) {
		a->stop_slot = v->idlest;
		a->spawn_rate = 1;
		return 0;
	}
	if (spare >= pc->min_spare) {
		a->spawn_rate = 1;
		return 0;
	}
	if (v->active >= pc->max_children) {
		a->spawn_rate = 1;	/* max_children reached: see pool_decide */
		return 0;
	}
	a->spawn_rate = min_int(rate * 2, pc->max_spawn_rate > 0 ? pc->max_spawn_rate : 1);
	return min_int(rate, pc->min_spare - spare);
}

/*
 * pm = ondemand: enough workers for the connections waiting in the listen
 * queue when no thread is free to take them (the workers still starting
 * will take `threads` each), at most max_spawn_rate at a time; once per
 * POOL_SCALE_MS, stop the worker idle longest once it passed
 * process_idle_timeout.  The listening socket is watched only while a new
 * connection would find no free thread and nothing starting, and there is
 * room to start one: otherwise a connection left pending would wake the
 * master in a loop.
 */
static int
decide_ondemand(const struct pool_conf *pc, const struct pool_view *v,
    struct pool_actions *a)
{
	int threads = pc->threads > 0 ? pc->threads : 1;
	int need;

	if (v->scale_due && v->idlest >= 0 &&
	    v->idlest_ms >= (uint64_t)pc->process_idle_timeout_ms)
		a->stop_slot = v->idlest;
	a->watch_listen = v->free_threads == 0 && v->starting == 0 &&
	    v->active < pc->max_children;
	if (v->pending <= 0 || v->free_threads > 0)
		return 0;
	need = (v->pending + threads - 1) / threads - v->starting;
	if (need <= 0)
		return 0;
	return min_int(need, pc->max_spawn_rate > 0 ? pc->max_spawn_rate : 1);
}

/*
 * The policy: given pool PC's configuration and snapshot V, fill *A with
 * what to do now.  Pure: no clock, no system call.  Static pools keep
 * max_children workers; dynamic and ondemand as php-fpm (above).  Any mode
 * reports max_children reached when a connection waits with no free
 * thread, no worker starting and no room for another one.  A backing-off
 * pool starts at most one probe, once the delay is over and no probe is
 * young.
 */
void
pool_decide(const struct pool_conf *pc, const struct pool_view *v, struct pool_actions *a)
{
	int want = 0;

	memset(a, 0, sizeof(*a));
	a->stop_slot = -1;
	a->spawn_rate = v->spawn_rate > 0 ? v->spawn_rate : 1;
	if (v->stopping)
		return;
	switch (pc->pm) {
	case PM_STATIC:
		want = pc->max_children - v->active;
		break;
	case PM_DYNAMIC:
		/* a pool with no worker at all (start, restart) gets start_servers */
		if (v->active == 0)
			want = pc->start_servers > 0 ? pc->start_servers : 1;
		else if (v->scale_due)
			want = decide_dynamic(pc, v, a);
		break;
	case PM_ONDEMAND:
		want = decide_ondemand(pc, v, a);
		break;
	}
	if (v->active >= pc->max_children &&
	    ((v->pending > 0 && v->free_threads == 0 && v->starting == 0) ||
	    (pc->pm == PM_DYNAMIC && v->idle + v->starting < pc->min_spare)))
		a->max_children_reached = true;
	want = min_int(want, pc->max_children - v->active);
	if (v->backoff.delay_ms > 0) {
		if (v->now_ms < v->backoff.until_ms || v->probing > 0) {
			a->watch_listen = false;	/* the tick looks again */
			return;
		}
		want = min_int(want, 1);
	}
	if (want <= 0)
		return;
	a->spawn = min_int(want, v->free_slots);
}

/*
 * A worker started at WORKER_STARTED_MS died young at NOW_MS.  Starts the
 * next backoff step (100 ms, doubling up to 30 s) unless the worker was
 * started before the current step began (its failure is already counted:
 * a whole batch dying together is one step).  Returns true when a new step
 * began, for the caller to log.
 */
bool
backoff_failure(struct backoff *b, uint64_t now_ms, uint64_t worker_started_ms)
{
	if (b->delay_ms > 0 && worker_started_ms < b->step_ms)
		return false;
	if (b->delay_ms == 0)
		b->delay_ms = POOL_BACKOFF_MIN_MS;
	else if ((b->delay_ms *= 2) > POOL_BACKOFF_MAX_MS)
		b->delay_ms = POOL_BACKOFF_MAX_MS;
	b->step_ms = now_ms;
	b->until_ms = now_ms + (uint64_t)b->delay_ms;
	return true;
}

/*
 * A live worker started at WORKER_STARTED_MS: if it was started during the
 * current backoff step and has lived POOL_HEALTHY_MS, the pool is healthy
 * again and the backoff is reset.  Returns true when it was reset.
 */
bool
backoff_recovered(struct backoff *b, uint64_t now_ms, uint64_t worker_started_ms)
{
	if (b->delay_ms == 0 || worker_started_ms < b->step_ms ||
	    now_ms - worker_started_ms < POOL_HEALTHY_MS)
		return false;
	memset(b, 0, sizeof(*b));
	return true;
}

/*
 * Snapshot pool P at NOW for the policy: its workers by state, from the
 * scoreboard (a worker is idle when all its threads are, a kept-alive
 * connection waiting for its next request included); the listen queue
 * when it matters, at least PENDING_HINT (a connection the caller saw
 * arrive).
 */
static void
pool_view_of(const struct pool *p, uint64_t now, int pending_hint, struct pool_view *v)
{
	uint32_t nthreads = p->sb.hdr->nthreads;
	uint64_t rt = realtime_us();
	unsigned qlen, qmax;

	memset(v, 0, sizeof(*v));
	v->now_ms = now;
	v->stopping = p->state != POOL_RUNNING;
	v->backoff = p->backoff;
	v->spawn_rate = p->spawn_rate > 0 ? p->spawn_rate : 1;
	v->scale_due = now - p->last_scale_ms >= POOL_SCALE_MS;
	v->idlest = -1;
	for (int i = 0; i < p->nslots; i++) {
		const struct worker *w = &p->workers[i];
		struct sb_slot_view sv;
		uint64_t last, idle_ms;
		uint32_t nidle = 0;

		if (w->pid == 0) {
			v->free_slots++;
			continue;
		}
		if (w->ending || w->retiring) {	/* retiring: its replacement counts */
			v->ending++;
			continue;
		}
		v->active++;
		if (p->backoff.delay_ms > 0 && w->started_ms >= p->backoff.step_ms &&
		    now - w->started_ms < POOL_HEALTHY_MS)
			v->probing++;
		sb_slot_read(&p->sb, (uint32_t)i, &sv);
		if (sv.state == SB_WORKER_STARTING) {
			v->starting++;
			continue;
		}
		if (sv.state != SB_WORKER_READY) {	/* leaving on its own (max_requests) */
			v->busy++;
			continue;
		}
		last = sv.start_us;
		for (uint32_t t = 0; t < nthreads; t++) {
			struct sb_thread th;

			if (sb_thread_read(&p->sb, (uint32_t)i, t, &th) == -1)
				continue;
			if (th.state == SB_THREAD_IDLE)
				nidle++;
			if (th.last_end_us > last)
				last = th.last_end_us;
		}
		v->free_threads += (int)nidle;
		if (nidle < nthreads) {
			v->busy++;
			continue;
		}
		v->idle++;
		idle_ms = rt > last ? (rt - last) / 1000 : 0;
		if (v->idlest < 0 || idle_ms > v->idlest_ms) {
			v->idlest = i;
			v->idlest_ms = idle_ms;
		}
	}
	/* the queue matters when no thread is free, and to end a max_children episode */
	if ((v->free_threads == 0 || p->max_children_warned) && !v->stopping &&
	    sock_queue(&p->sock, &qlen, &qmax) == 0)
		v->pending = (int)qlen;
	if (v->pending < pending_hint)
		v->pending = pending_hint;
}

static void
on_worker_output(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	worker_drain(arg);
}

static struct worker *
free_worker(struct pool *p)
{
	for (int i = 0; i < p->nslots; i++) {
		if (p->workers[i].pid == 0)
			return &p->workers[i];
	}
	return NULL;
}

static void
note_failure(struct pool *p, uint64_t now, uint64_t started)
{
	if (backoff_failure(&p->backoff, now, started))
		log_warning(p->conf->name, 0, "workers fail within %.0fs of starting; "
		    "next attempt in %.1fs (doubling up to %ds until one stays up)",
		    POOL_HEALTHY_MS / 1000.0, p->backoff.delay_ms / 1000.0,
		    POOL_BACKOFF_MAX_MS / 1000);
}

/* Start one worker in a free slot.  0, or -1 after logging why. */
static int
pool_spawn(struct pool *p, uint64_t now)
{
	struct worker *w;

	if ((w = free_worker(p)) == NULL)
		return -1;
	sb_slot_assign(&p->sb, (uint32_t)w->slot);
	w->started_ms = now;
	memset(p->slow_marks + (size_t)w->slot * p->sb.hdr->nthreads, 0,
	    p->sb.hdr->nthreads * sizeof(*p->slow_marks));
	if (worker_spawn(w, p->binary) == -1) {
		sb_slot_release(&p->sb, (uint32_t)w->slot);
		note_failure(p, now, now);
		return -1;
	}
	if (loop_watch(w->out_fd, EPOLLIN, on_worker_output, w) == -1) {
		/* unread, the pipe would fill and block the worker on its next log line */
		log_warning(p->conf->name, 0, "worker %ld: cannot watch its output, "
		    "dropping it: %s", (long)w->pid, strerror(errno));
		worker_close_output(w);
	}
	log_debug(p->conf->name, 0, "worker %ld started in slot %d", (long)w->pid, w->slot);
	return 0;
}

static void on_listen_ready(int fd, uint32_t events, void *arg);

/* Watch P's listening socket for a waiting connection, or stop watching. */
static void
pool_watch_listen(struct pool *p, bool on)
{
	if (on == p->listen_watched)
		return;
	if (!on) {
		loop_unwatch(p->sock.fd);
		p->listen_watched = false;
	} else if (loop_watch(p->sock.fd, EPOLLIN, on_listen_ready, p) == 0)
		p->listen_watched = true;
	else	/* the tick still looks at the listen queue, 10 times a second */
		log_warning(p->conf->name, 0, "cannot watch the listening socket: %s",
		    strerror(errno));
}

/*
 * Apply the policy to pool P now; PENDING_HINT is at least how many
 * connections wait (1 when called because one arrived).
 */
static void
pool_maintain(struct pool *p, uint64_t now, int pending_hint)
{
	const struct pool_conf *pc = p->conf;
	struct pool_actions a;
	struct pool_view v;

	pool_view_of(p, now, pending_hint, &v);
	pool_decide(pc, &v, &a);
	if (v.scale_due) {
		p->last_scale_ms = now;
		p->spawn_rate = a.spawn_rate;
	}
	if ((uint64_t)v.busy > p->stats.max_active)
		p->stats.max_active = (uint64_t)v.busy;
	/* the episode ends when a worker is idle with nothing waiting for it */
	if (v.idle > 0 && v.pending == 0 && !a.max_children_reached)
		p->max_children_warned = false;
	if (a.max_children_reached && !p->max_children_warned) {
		p->max_children_warned = true;
		p->stats.max_children_reached++;
		if (v.pending > 0)
			log_warning(pc->name, 0, "max_children (%d) reached: every worker is "
			    "busy and connections are waiting; consider raising max_children",
			    pc->max_children);
		else
			log_warning(pc->name, 0, "max_children (%d) reached: fewer idle "
			    "workers than min_spare (%d); consider raising max_children",
			    pc->max_children, pc->min_spare);
	}
	if (a.stop_slot >= 0 && p->workers[a.stop_slot].pid != 0) {
		struct worker *w = &p->workers[a.stop_slot];

		if (pc->pm == PM_ONDEMAND)
			log_notice(pc->name, 0, "worker %ld idle for %.1fs, more than "
			    "process_idle_timeout (%.1fs): stopping it", (long)w->pid,
			    (double)v.idlest_ms / 1000.0,
			    (double)pc->process_idle_timeout_ms / 1000.0);
		else
			log_notice(pc->name, 0, "%d idle workers, more than max_spare "
			    "(%d): stopping worker %ld, idle for %.1fs", v.idle,
			    pc->max_spare, (long)w->pid, (double)v.idlest_ms / 1000.0);
		worker_stop(w, SIGQUIT, p->control_timeout_ms, now);
	}
	if (a.spawn > 0 && pc->pm != PM_STATIC && v.active > 0)
		log_debug(pc->name, 0, "starting %d workers: %d idle, %d starting, %d busy, "
		    "%d connections waiting (spawn rate %d)", a.spawn, v.idle, v.starting,
		    v.busy, v.pending, v.spawn_rate);
	/* preload = yes: workers are forked by the preload process, once it loaded the app */
	if (pc->preload && !preload_ready(p, now))
		a.spawn = 0;
	for (int i = 0; i < a.spawn; i++) {
		if (pool_spawn(p, now) == -1)
			break;
	}
	/* after a spawn, a starting worker will take the connection: look again later */
	pool_watch_listen(p, a.watch_listen && a.spawn == 0 && v.pending == 0);
}

static void
on_listen_ready(int fd, uint32_t events, void *arg)
{
	struct pool *p = arg;

	(void)fd;
	(void)events;
	if (p->state == POOL_RUNNING)
		pool_maintain(p, loop_now_ms(), 1);
	else
		pool_watch_listen(p, false);
}

static const char *
exit_reason(int code)
{
	switch (code) {
	case 3:
		return " (the application failed to import; see the traceback above)";
	case 64:
		return " (fcgi-pm-worker rejected its command line: are fcgi-pm and "
		    "fcgi-pm-worker from the same build? see worker_binary)";
	case 78:
		return " (it refused its configuration or the scoreboard; see its error "
		    "above)";
	case 127:
		return " (it could not be started; see the error above)";
	default:
		return "";
	}
}

/*
 * Worker W of pool P exited with wait status ST: log it, free its slot,
 * back off.  Returns true if it crashed (SIGSEGV or SIGBUS).
 */
static bool
worker_reaped(struct pool *p, struct worker *w, int st, uint64_t now)
{
	const char *name = p->conf->name;
	double age = (double)(now - w->started_ms) / 1000.0;
	bool young = now - w->started_ms < POOL_HEALTHY_MS;
	struct sb_slot_view sv;
	bool failed;

	/* its last words (a traceback) belong before the exit line */
	worker_drain(w);
	worker_close_output(w);
	sb_slot_read(&p->sb, (uint32_t)w->slot, &sv);
	if (WIFEXITED(st)) {
		int code = WEXITSTATUS(st);

		/*
		 * Status 0 is a worker done by design (max_requests, max_rss),
		 * unless it served nothing: then it is a loop like any crash.
		 */
		failed = !w->ending && (code == 3 || code == 64 || code == 78 ||
		    code == 127 || (young && (code != 0 || sv.requests == 0)));
		log_msg(w->ending || code == 0 ? LOG_LVL_NOTICE : LOG_LVL_WARNING, name, 0,
		    "worker %ld exited with status %d after %.1fs, %llu requests%s",
		    (long)w->pid, code, age, (unsigned long long)sv.requests,
		    exit_reason(code));
	} else {
		int sig = WTERMSIG(st);
		const char *abbrev = sigabbrev_np(sig);

		failed = !w->ending && young;
		log_msg(w->ending ? LOG_LVL_NOTICE : LOG_LVL_WARNING, name, 0,
		    "worker %ld exited on signal %d (SIG%s)%s after %.1fs, %llu requests",
		    (long)w->pid, sig, abbrev ? abbrev : "?",
		    WCOREDUMP(st) ? ", core dumped" : "", age,
		    (unsigned long long)sv.requests);
	}
	p->stats.accepted += sv.requests;
	p->stats.queue_timeouts += sv.queue_timeouts;
	p->stats.peer_gone += sv.peer_gone;
	sb_slot_release(&p->sb, (uint32_t)w->slot);
	w->pid = 0;
	w->ending = w->killed = w->retiring = false;
	if (failed && p->state == POOL_RUNNING)
		note_failure(p, now, w->started_ms);
	return WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
}

/*
 * Reap every exited worker (on SIGCHLD), log why each exited, and replace
 * it when its pool is running.  Returns how many of them crashed (SIGSEGV
 * or SIGBUS), for emergency_restart_threshold.
 */
int
pools_reap(struct pool *pools, size_t n)
{
	uint64_t now = loop_now_ms();
	int st, crashed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct worker *w = NULL;
		struct pool *p = NULL;

		for (size_t i = 0; i < n && w == NULL; i++) {
			for (int j = 0; j < pools[i].nslots; j++) {
				if (pools[i].workers[j].pid == pid) {
					p = &pools[i];
					w = &p->workers[j];
					break;
				}
			}
		}
		for (size_t i = 0; i < n && w == NULL && p == NULL; i++) {
			if (pools[i].preload.pid == pid) {
				p = &pools[i];
				if (preload_reaped(p, st, now) && p->state == POOL_RUNNING)
					note_failure(p, now, p->preload.started_ms);
			}
		}
		if (w == NULL)
			continue;
		crashed += worker_reaped(p, w, st, now);
	}
	for (size_t i = 0; i < n; i++) {
		if (pools[i].state == POOL_RUNNING)
			pool_maintain(&pools[i], now, 0);
	}
	return crashed;
}

static void
fmt_duration(char *buf, size_t len, long ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%lds", ms / 1000);
	else
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
}

/*
 * Thread T of worker W has run the request in *TH for ELAPSED_US, past
 * request_slowlog_timeout: append a header to the slowlog and ask the
 * worker for its Python tracebacks (SIGUSR2: faulthandler writes every
 * thread's stack into the same file, after the header; the request goes
 * on).
 */
static void
slowlog_request(struct pool *p, struct worker *w, uint32_t t, const struct sb_thread *th,
    uint64_t elapsed_us)
{
	const struct pool_conf *pc = p->conf;
	char date[64], limit[32], buf[1024];
	struct tm tm;
	time_t sec = (time_t)(th->req_start_us / 1000000) +
	    (time_t)(elapsed_us / 1000000);
	int n;

	p->stats.slow_requests++;
	fmt_duration(limit, sizeof(limit), pc->request_slowlog_timeout_ms);
	log_warning(pc->name, 0, "worker %ld: request '%s %s' has been running for "
	    "%.1fs, more than request_slowlog_timeout (%s): its Python stack goes "
	    "to %s", (long)w->pid, th->req_method, th->req_uri,
	    (double)elapsed_us / 1e6, limit, pc->slowlog);
	if (p->slowlog_fd == -1)
		return;
	localtime_r(&sec, &tm);
	strftime(date, sizeof(date), "%d-%b-%Y %H:%M:%S", &tm);
	n = snprintf(buf, sizeof(buf), "\n[%s]  [pool %s] pid %ld\n"
	    "request: %s %s, running for %.1fs (request_slowlog_timeout %s), "
	    "thread %u (Thread 0x%016llx below)\n", date, pc->name, (long)w->pid,
	    th->req_method, th->req_uri, (double)elapsed_us / 1e6, limit, t,
	    (unsigned long long)th->thread_id);
	if (n > 0 && write(p->slowlog_fd, buf, (size_t)n < sizeof(buf) ?
	    (size_t)n : sizeof(buf) - 1) == -1)
		log_warning(pc->name, 0, "slowlog %s: %s", pc->slowlog, strerror(errno));
	worker_signal(w, SIGUSR2);
}

/*
 * request_terminate_timeout and request_slowlog_timeout for pool P at NOW:
 * the scoreboard tells each thread's request and when it started.  A
 * request past the terminate timeout has its worker killed (SIGKILL: its
 * other threads' requests die with it) and replaced; one past the slowlog
 * timeout is logged once.  A thread idle on a kept-alive connection has no
 * request, so no timeout applies to it.
 */
static void
pool_check_requests(struct pool *p, uint64_t now)
{
	const struct pool_conf *pc = p->conf;
	uint64_t term_us = (uint64_t)pc->request_terminate_timeout_ms * 1000;
	uint64_t slow_us = (uint64_t)pc->request_slowlog_timeout_ms * 1000;
	uint32_t nthreads = p->sb.hdr->nthreads;
	uint64_t rt;

	if (term_us == 0 && slow_us == 0)
		return;
	rt = realtime_us();
	for (int i = 0; i < p->nslots; i++) {
		struct worker *w = &p->workers[i];

		if (w->pid == 0 || w->killed)
			continue;
		for (uint32_t t = 0; t < nthreads; t++) {
			uint64_t *mark = &p->slow_marks[(size_t)i * nthreads + t];
			struct sb_thread th;
			uint64_t elapsed;

			if (sb_thread_read(&p->sb, (uint32_t)i, t, &th) == -1 ||
			    th.state != SB_THREAD_BUSY || th.req_start_us == 0 ||
			    rt <= th.req_start_us)
				continue;
			elapsed = rt - th.req_start_us;
			if (term_us > 0 && elapsed > term_us) {
				char limit[32];

				fmt_duration(limit, sizeof(limit),
				    pc->request_terminate_timeout_ms);
				log_warning(pc->name, 0, "worker %ld: request '%s %s' has been "
				    "running for %.1fs, more than request_terminate_timeout "
				    "(%s): killing it", (long)w->pid, th.req_method,
				    th.req_uri, (double)elapsed / 1e6, limit);
				p->stats.terminated_requests++;
				worker_stop(w, SIGKILL, 0, now);
				w->killed = true;
				break;
			}
			if (slow_us > 0 && elapsed > slow_us && *mark != th.req_start_us) {
				*mark = th.req_start_us;
				slowlog_request(p, w, t, &th, elapsed);
			}
		}
	}
}

/*
 * The periodic tick: kill workers that outlived their stop deadline, end
 * a backoff once a worker stays up, cut off requests past their timeouts,
 * and scale the pools.
 */
void
pools_tick(struct pool *pools, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i];

		if (pool_unused(p))	/* an entry a reload closed */
			continue;
		for (int j = 0; j < p->nslots; j++) {
			struct worker *w = &p->workers[j];

			if (w->pid == 0)
				continue;
			if (w->ending && !w->killed && now >= w->kill_at_ms) {
				log_warning(p->conf->name, 0, "worker %ld still running %.1fs "
				    "after SIG%s; killing it%s", (long)w->pid,
				    (double)(now - w->stop_ms) / 1000.0,
				    w->stop_signal == SIGQUIT ? "QUIT" : "TERM",
				    w->stop_signal == SIGQUIT ?
				    " (process_control_timeout)" : "");
				worker_signal(w, SIGKILL);
				w->killed = true;
			}
			if (!w->ending && backoff_recovered(&p->backoff, now, w->started_ms))
				log_notice(p->conf->name, 0, "worker %ld stayed up %.0fs; "
				    "starting workers normally again", (long)w->pid,
				    POOL_HEALTHY_MS / 1000.0);
		}
		preload_tick(p, now);
		pool_check_requests(p, now);
		if (p->state == POOL_RUNNING)
			pool_maintain(p, now, 0);
	}
}

/* Tell every live worker of P to stop with SIGNO, SIGKILL after BOUND_MS. */
void
pool_signal_all(struct pool *p, int signo, long bound_ms, uint64_t now)
{
	for (int j = 0; j < p->nslots; j++) {
		struct worker *w = &p->workers[j];

		if (w->pid == 0 || w->killed || (w->ending && signo == SIGQUIT))
			continue;
		worker_stop(w, signo, bound_ms, now);
	}
}

/*
 * Stop every pool: GRACEFUL sends SIGQUIT (in-flight requests finish,
 * SIGKILL after process_control_timeout), otherwise SIGTERM (SIGKILL after
 * POOL_TERM_KILL_MS).  A fast stop also cuts a graceful one short.
 * pools_stopped() tells when every worker is gone.
 */
void
pools_stop(struct pool *pools, size_t n, bool graceful)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i];

		p->state = POOL_STOPPING;
		pool_watch_listen(p, false);
		if (graceful)
			pool_signal_all(p, SIGQUIT, p->control_timeout_ms, now);
		else
			pool_signal_all(p, SIGTERM, POOL_TERM_KILL_MS, now);
		preload_stop(p, SIGTERM, POOL_TERM_KILL_MS, now);
	}
}

/*
 * Restart every running pool's workers gracefully: replacements start in
 * spare slots first, and each old worker gets SIGQUIT (and finishes its
 * in-flight requests) only as a new one is ready (pools_roll), so the pool
 * keeps its capacity.  RESET_BACKOFF when an operator asks
 * (USR2: "the code is fixed"), not for an automatic restart, which must not
 * turn a crash loop into a spawn loop.
 */
void
pools_restart(struct pool *pools, size_t n, bool reset_backoff)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i];
		int count = 0;

		if (p->state != POOL_RUNNING)
			continue;
		for (int j = 0; j < p->nslots; j++)
			count += p->workers[j].pid != 0 && !p->workers[j].ending;
		if (count > 0)
			log_notice(p->conf->name, 0, "restarting %d workers gracefully", count);
		if (reset_backoff)
			memset(&p->backoff, 0, sizeof(p->backoff));
		if (p->conf->preload)
			preload_restart(p, now);	/* new code: the workers go once it is ready */
		else
			pool_retire(p);		/* pools_roll() stops them as new ones are ready */
		pool_maintain(p, now, 0);
	}
}

/* Have all workers of every pool exited (been reaped)? */
bool
pools_stopped(const struct pool *pools, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pools[i].preload.pid != 0)
			return false;
		for (int j = 0; j < pools[i].nslots; j++) {
			if (pools[i].workers[j].pid != 0)
				return false;
		}
	}
	return true;
}

/*
 * Decide whose identity P's workers take.  As root: the pool's user (and
 * group, else the user's), with the user's supplementary groups; root
 * itself only with allow_root.  Not root: workers run as the master.
 */
static int
pool_identity(struct pool *p)
{
	const struct pool_conf *pc = p->conf;
	struct passwd *pw = NULL;
	struct group *gr;
	unsigned long id;
	int ng = 0;

	if (geteuid() != 0) {
		if (pc->user != NULL || pc->group != NULL)
			log_notice(pc->name, 0, "user and group are ignored: the master "
			    "is not running as root");
		return 0;
	}
	p->uid = 0;
	p->gid = 0;
	if (pc->user != NULL) {
		/* a name, or as php-fpm a numeric uid (which may have no passwd entry) */
		if ((pw = getpwnam(pc->user)) != NULL) {
			p->uid = pw->pw_uid;
			p->gid = pw->pw_gid;
		} else if (numeric_id(pc->user, &id) && pc->group != NULL) {
			p->uid = (uid_t)id;
			pw = getpwuid(p->uid);
		} else {
			log_error(pc->name, 0, "user %s: no such user%s", pc->user,
			    numeric_id(pc->user, &id) ? " (a uid without a passwd entry "
			    "needs group as well)" : "");
			return -1;
		}
	}
	if (pc->group != NULL) {
		if ((gr = getgrnam(pc->group)) != NULL)
			p->gid = gr->gr_gid;
		else if (numeric_id(pc->group, &id))
			p->gid = (gid_t)id;
		else {
			log_error(pc->name, 0, "group %s: no such group", pc->group);
			return -1;
		}
	}
	if (p->uid == 0 && !pc->allow_root) {
		log_error(pc->name, 0, "workers would run as root; set user (and group) "
		    "for the pool, or allow_root = true if you really mean it");
		return -1;
	}
	if (pc->user == NULL && pc->group == NULL)
		return 0;
	p->drop_privileges = true;
	if (pw != NULL) {
		getgrouplist(pw->pw_name, p->gid, NULL, &ng);
		if (ng > 0 && (p->groups = calloc((size_t)ng, sizeof(gid_t))) == NULL)
			return -1;
		if (ng > 0 && getgrouplist(pw->pw_name, p->gid, p->groups, &ng) == -1)
			ng = 0;
	}
	p->ngroups = ng;
	return 0;
}

static void
pool_close(struct pool *p)
{
	if (p->listen_watched)
		loop_unwatch(p->sock.fd);
	p->listen_watched = false;
	sock_close(&p->sock);
	sb_destroy(&p->sb);
	preload_close(p);
	if (p->slowlog_fd != -1)
		close(p->slowlog_fd);
	p->slowlog_fd = -1;
	for (int i = 0; i < 2; i++) {
		if (p->handoff[i] != -1)
			close(p->handoff[i]);
		p->handoff[i] = -1;
	}
	free(p->workers);
	free(p->groups);
	free(p->slow_marks);
	p->workers = NULL;
	p->groups = NULL;
	p->slow_marks = NULL;
}

/* TAKE: a listening socket to adopt (a reload hands it over), NULL = open one. */
static int
pool_open(struct pool *p, const struct pool_conf *pc, const struct conf *c,
    const char *binary, struct listen_sock *take)
{
	const char *name = pc->name;
	int threads = pc->threads > 0 ? pc->threads : 1;

	memset(p, 0, sizeof(*p));
	p->conf = pc;
	p->binary = binary;
	p->state = POOL_NEW;
	p->slowlog_fd = -1;
	p->handoff[0] = p->handoff[1] = -1;
	p->sock.fd = -1;
	p->sb.fd = -1;
	p->start_us = realtime_us();
	preload_init(p);
	p->control_timeout_ms = c->process_control_timeout_ms > 0 ?
	    c->process_control_timeout_ms : DEFAULT_CONTROL_TIMEOUT_MS;
	if (pc->max_children < 1) {
		log_error(name, 0, "max_children (%d) must be at least 1", pc->max_children);
		return -1;
	}
	if (pool_identity(p) == -1)
		goto fail;
	if (take != NULL) {
		p->sock = *take;
		take->fd = -1;
	} else if (sock_open(&p->sock, pc) == -1)
		goto fail;
	/* twice max_children: a graceful restart starts new workers while old ones finish */
	p->nslots = 2 * pc->max_children;
	if (sb_create(&p->sb, name, (uint32_t)p->nslots, (uint32_t)threads) == -1) {
		log_error(name, 0, "cannot create the scoreboard: %s", strerror(errno));
		goto fail;
	}
	if (pc->slowlog != NULL && (p->slowlog_fd = open(pc->slowlog,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640)) == -1) {
		log_error(name, 0, "slowlog %s: %s", pc->slowlog, strerror(errno));
		goto fail;
	}
	/*
	 * With more than one worker: a worker whose threads are all busy
	 * passes a kept connection that became readable to one waiting idle.
	 */
	if (pc->max_children > 1 &&
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p->handoff) == -1) {
		log_error(name, 0, "cannot create the hand-off socket pair: %s",
		    strerror(errno));
		goto fail;
	}
	p->spawn_rate = 1;
	if ((p->slow_marks = calloc((size_t)p->nslots * (size_t)threads,
	    sizeof(*p->slow_marks))) == NULL ||
	    (p->workers = calloc((size_t)p->nslots, sizeof(*p->workers))) == NULL) {
		log_error(name, 0, "out of memory");
		goto fail;
	}
	for (int i = 0; i < p->nslots; i++) {
		p->workers[i].pool = p;
		p->workers[i].slot = i;
		p->workers[i].out_fd = -1;
	}
	return 0;
fail:
	if (take != NULL && p->sock.fd != -1) {
		*take = p->sock;	/* give it back: its pool keeps serving */
		p->sock.fd = -1;
	}
	pool_close(p);
	return -1;
}

/*
 * Open every pool of C: resolve its workers' identity, create its
 * listening socket (as root: with owner, group and mode), its scoreboard
 * and slowlog.  BINARY is fcgi-pm-worker's path and must outlive the
 * pools.  On success *POOLS is an array of c->npools (with room for
 * POOLS_CAPACITY(c->npools): see reload_apply); on failure returns
 * -1 after logging why, with nothing left open.
 */
int
pools_open(struct pool **pools, const struct conf *c, const char *binary)
{
	struct pool *ps;

	/* room for pools a reload adds: the array never moves (workers point into it) */
	if ((ps = calloc(POOLS_CAPACITY(c->npools), sizeof(*ps))) == NULL)
		return -1;
	for (size_t i = 0; i < c->npools; i++) {
		if (pool_open(&ps[i], &c->pools[i], c, binary, NULL) == -1) {
			pools_close(ps, i);
			return -1;
		}
	}
	*pools = ps;
	return 0;
}

/* Start the workers of every pool. */
int
pools_start(struct pool *pools, size_t n)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < n; i++) {
		char addr[300];

		const struct pool_conf *pc = pools[i].conf;

		pools[i].state = POOL_RUNNING;
		pools[i].last_scale_ms = now;
		log_notice(pc->name, 0, "listening on %s, pm = %s, starting %d workers "
		    "(max_children %d)", sock_name(&pools[i].sock.addr, addr, sizeof(addr)),
		    pm_mode_name(pc->pm), pc->pm == PM_STATIC ? pc->max_children :
		    pc->pm == PM_DYNAMIC ? pc->start_servers : 0, pc->max_children);
		pool_maintain(&pools[i], now, 0);
	}
	return 0;
}

/*
 * Close every pool's socket (removing a unix socket's file), scoreboard
 * and slowlog, and free POOLS.  Workers must have been reaped.
 */
void
pools_close(struct pool *pools, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pool_stats st;

		for (int j = 0; pools[i].workers != NULL && j < pools[i].nslots; j++)
			worker_close_output(&pools[i].workers[j]);
		if (pools[i].state != POOL_NEW && pools[i].workers != NULL) {
			pool_counters(&pools[i], &st);
			log_notice(pools[i].conf->name, 0, "served %llu requests, %llu "
			    "answered 503 by queue_timeout, %llu slow, %llu terminated; "
			    "max_children reached %llu times; at most %llu workers busy; "
			    "%llu dropped unrun (web server gone)",
			    (unsigned long long)st.accepted,
			    (unsigned long long)st.queue_timeouts,
			    (unsigned long long)st.slow_requests,
			    (unsigned long long)st.terminated_requests,
			    (unsigned long long)st.max_children_reached,
			    (unsigned long long)st.max_active,
			    (unsigned long long)st.peer_gone);
		}
		pool_close(&pools[i]);
	}
	free(pools);
}

/*
 * P's counters since it started into *OUT: those kept in P plus what its
 * live workers have in the scoreboard.
 */
void
pool_counters(const struct pool *p, struct pool_stats *out)
{
	*out = p->stats;
	for (int i = 0; p->sb.hdr != NULL && i < p->nslots; i++) {
		struct sb_slot_view sv;

		if (p->workers[i].pid == 0)
			continue;
		sb_slot_read(&p->sb, (uint32_t)i, &sv);
		out->accepted += sv.requests;
		out->queue_timeouts += sv.queue_timeouts;
		out->peer_gone += sv.peer_gone;
	}
}

/* ------------------------------------------------ lifecycle for reloads */

/* What a closed array entry points at, so no p->conf is ever NULL. */
static const struct pool_conf closed_conf = { .name = (char *)"(closed)" };

/*
 * Open pool PC of configuration C into the unused entry *P (as pools_open
 * does for one pool), adopting the listening socket *TAKE when not NULL
 * (TAKE->fd is then -1; on failure it is given back).  Start it with
 * pools_start(P, 1).  Returns 0, or -1 after logging why.
 */
int
pool_create(struct pool *p, const struct pool_conf *pc, const struct conf *c,
    const char *binary, struct listen_sock *take)
{
	return pool_open(p, pc, c, binary, take);
}

/*
 * Close pool P whose workers are all reaped: its socket (unless handed
 * over), scoreboard and slowlog.  The entry stays in the array, unused
 * (pool_unused) until a reload reuses it.
 */
void
pool_destroy(struct pool *p)
{
	for (int j = 0; p->workers != NULL && j < p->nslots; j++)
		worker_close_output(&p->workers[j]);
	pool_close(p);
	p->conf = &closed_conf;
	p->state = POOL_NEW;
	p->nslots = 0;
	p->roll_total = 0;
}

/* Is array entry P free (never opened, or destroyed)? */
bool
pool_unused(const struct pool *p)
{
	return p->workers == NULL;
}

/*
 * Mark every serving worker of P as retiring: it keeps serving, its
 * replacement starts now, and pools_roll() tells it to finish once enough
 * new workers are ready.
 */
void
pool_retire(struct pool *p)
{
	for (int j = 0; j < p->nslots; j++) {
		struct worker *w = &p->workers[j];

		if (w->pid != 0 && !w->ending && !w->retiring) {
			w->retiring = true;
			p->roll_total++;
		}
	}
}

/* The running pool that takes over from P: P itself, or its reload successor. */
static struct pool *
roll_successor(struct pool *pools, size_t n, struct pool *p)
{
	if (p->state == POOL_RUNNING)
		return p;
	if (p->state != POOL_STOPPING)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (&pools[i] != p && pools[i].state == POOL_RUNNING &&
		    pools[i].workers != NULL && strcmp(pools[i].conf->name, p->conf->name) == 0)
			return &pools[i];
	}
	return NULL;
}

/*
 * The rolling restarts' pace (the tick calls it): for every pool with
 * retiring workers, tell as many to finish (SIGQUIT) as new workers of
 * the pool or of its reload successor became ready (reload_roll_quota).
 * A pool being removed, or stopped, lets them all go.
 */
void
pools_roll(struct pool *pools, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i], *s;
		int serving = 0, ready = 0, starting = 0, quota;

		for (int j = 0; j < p->nslots; j++)
			serving += p->workers[j].pid != 0 && p->workers[j].retiring &&
			    !p->workers[j].ending;
		if (serving == 0) {
			if (p->roll_total > 0)
				log_notice(p->conf->name, 0, "rolling restart done: %d workers "
				    "replaced", p->roll_total);
			p->roll_total = 0;
			continue;
		}
		if ((s = roll_successor(pools, n, p)) != NULL) {
			for (int j = 0; j < s->nslots; j++) {
				const struct worker *w = &s->workers[j];
				struct sb_slot_view sv;

				if (w->pid == 0 || w->ending || w->retiring)
					continue;
				sb_slot_read(&s->sb, (uint32_t)j, &sv);
				if (sv.state == SB_WORKER_READY)
					ready++;
				else if (sv.state == SB_WORKER_STARTING)
					starting++;
			}
			quota = reload_roll_quota(p->roll_total, serving, ready, starting,
			    s->conf->pm == PM_ONDEMAND);
		} else
			quota = serving;
		for (int j = 0; j < p->nslots && quota > 0; j++) {
			struct worker *w = &p->workers[j];

			if (w->pid == 0 || !w->retiring || w->ending)
				continue;
			log_debug(p->conf->name, 0, "worker %ld: its replacement is ready; "
			    "telling it to finish", (long)w->pid);
			worker_stop(w, SIGQUIT, p->control_timeout_ms, now);
			quota--;
		}
	}
}
