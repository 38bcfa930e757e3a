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
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

#define DEFAULT_CONTROL_TIMEOUT_MS	10000

/*
 * The policy: given pool PC's configuration and snapshot V, fill *A with
 * what to do now.  Pure: no clock, no system call.
 */
void
pool_decide(const struct pool_conf *pc, const struct pool_view *v, struct pool_actions *a)
{
	int target, missing;

	memset(a, 0, sizeof(*a));
	if (v->stopping)
		return;
	/* static; dynamic and ondemand will compute their target here */
	target = pc->max_children;
	missing = target - v->active;
	if (missing <= 0)
		return;
	if (v->backoff.delay_ms > 0) {
		/* backing off: one probe at a time, and only once the delay is over */
		if (v->now_ms < v->backoff.until_ms || v->probing > 0)
			return;
		missing = 1;
	}
	a->spawn = missing < v->free_slots ? missing : v->free_slots;
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

static void
pool_view_of(const struct pool *p, uint64_t now, struct pool_view *v)
{
	memset(v, 0, sizeof(*v));
	v->now_ms = now;
	v->stopping = p->state != POOL_RUNNING;
	v->backoff = p->backoff;
	for (int i = 0; i < p->nslots; i++) {
		const struct worker *w = &p->workers[i];

		if (w->pid == 0)
			v->free_slots++;
		else if (w->ending)
			v->ending++;
		else {
			v->active++;
			if (p->backoff.delay_ms > 0 && w->started_ms >= p->backoff.step_ms &&
			    now - w->started_ms < POOL_HEALTHY_MS)
				v->probing++;
		}
	}
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

/* Apply the policy to pool P now. */
static void
pool_maintain(struct pool *p, uint64_t now)
{
	struct pool_actions a;
	struct pool_view v;

	pool_view_of(p, now, &v);
	pool_decide(p->conf, &v, &a);
	for (int i = 0; i < a.spawn; i++) {
		if (pool_spawn(p, now) == -1)
			break;
	}
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
	sb_slot_release(&p->sb, (uint32_t)w->slot);
	w->pid = 0;
	w->ending = w->killed = false;
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
		if (w == NULL)
			continue;
		crashed += worker_reaped(p, w, st, now);
	}
	for (size_t i = 0; i < n; i++) {
		if (pools[i].state == POOL_RUNNING)
			pool_maintain(&pools[i], now);
	}
	return crashed;
}

/*
 * The periodic tick: kill workers that outlived their stop deadline, end
 * a backoff once a worker stays up, and bring pools back to size.
 */
void
pools_tick(struct pool *pools, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct pool *p = &pools[i];

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
		if (p->state == POOL_RUNNING)
			pool_maintain(p, now);
	}
}

/* Tell every live worker of P to stop with SIGNO, SIGKILL after BOUND_MS. */
static void
pool_signal_all(struct pool *p, int signo, long bound_ms, uint64_t now)
{
	for (int j = 0; j < p->nslots; j++) {
		struct worker *w = &p->workers[j];
		uint64_t kill_at = now + (uint64_t)bound_ms;

		if (w->pid == 0 || w->killed || (w->ending && signo == SIGQUIT))
			continue;
		worker_signal(w, signo);
		w->stop_signal = signo;
		if (!w->ending)
			w->stop_ms = now;
		if (!w->ending || kill_at < w->kill_at_ms)
			w->kill_at_ms = kill_at;
		w->ending = true;
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
		if (graceful)
			pool_signal_all(p, SIGQUIT, p->control_timeout_ms, now);
		else
			pool_signal_all(p, SIGTERM, POOL_TERM_KILL_MS, now);
	}
}

/*
 * Restart every running pool's workers gracefully: each gets SIGQUIT and
 * finishes its in-flight requests while a replacement starts in a spare
 * slot, so the pool keeps serving.  RESET_BACKOFF when an operator asks
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
		pool_signal_all(p, SIGQUIT, p->control_timeout_ms, now);
		pool_maintain(p, now);
	}
}

/* Have all workers of every pool exited (been reaped)? */
bool
pools_stopped(const struct pool *pools, size_t n)
{
	for (size_t i = 0; i < n; i++) {
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
		if ((pw = getpwnam(pc->user)) == NULL) {
			log_error(pc->name, 0, "user %s: no such user", pc->user);
			return -1;
		}
		p->uid = pw->pw_uid;
		p->gid = pw->pw_gid;
	}
	if (pc->group != NULL) {
		if ((gr = getgrnam(pc->group)) == NULL) {
			log_error(pc->name, 0, "group %s: no such group", pc->group);
			return -1;
		}
		p->gid = gr->gr_gid;
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
		getgrouplist(pc->user, p->gid, NULL, &ng);
		if (ng > 0 && (p->groups = calloc((size_t)ng, sizeof(gid_t))) == NULL)
			return -1;
		if (ng > 0 && getgrouplist(pc->user, p->gid, p->groups, &ng) == -1)
			ng = 0;
	}
	p->ngroups = ng;
	return 0;
}

static void
pool_close(struct pool *p)
{
	sock_close(&p->sock);
	sb_destroy(&p->sb);
	if (p->slowlog_fd != -1)
		close(p->slowlog_fd);
	p->slowlog_fd = -1;
	free(p->workers);
	free(p->groups);
	p->workers = NULL;
	p->groups = NULL;
}

static int
pool_open(struct pool *p, const struct pool_conf *pc, const struct conf *c,
    const char *binary)
{
	const char *name = pc->name;
	int threads = pc->threads > 0 ? pc->threads : 1;

	memset(p, 0, sizeof(*p));
	p->conf = pc;
	p->binary = binary;
	p->state = POOL_NEW;
	p->slowlog_fd = -1;
	p->sock.fd = -1;
	p->sb.fd = -1;
	p->control_timeout_ms = c->process_control_timeout_ms > 0 ?
	    c->process_control_timeout_ms : DEFAULT_CONTROL_TIMEOUT_MS;
	if (pc->max_children < 1) {
		log_error(name, 0, "max_children (%d) must be at least 1", pc->max_children);
		return -1;
	}
	if (pc->pm != PM_STATIC)
		log_warning(name, 0, "pm = %s: this build scales no pool yet; running "
		    "max_children (%d) workers as with pm = static", pm_mode_name(pc->pm),
		    pc->max_children);
	if (pool_identity(p) == -1)
		goto fail;
	if (sock_open(&p->sock, pc) == -1)
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
	if ((p->workers = calloc((size_t)p->nslots, sizeof(*p->workers))) == NULL) {
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
	pool_close(p);
	return -1;
}

/*
 * Open every pool of C: resolve its workers' identity, create its
 * listening socket (as root: with owner, group and mode), its scoreboard
 * and slowlog.  BINARY is fcgi-pm-worker's path and must outlive the
 * pools.  On success *POOLS is an array of c->npools; on failure returns
 * -1 after logging why, with nothing left open.
 */
int
pools_open(struct pool **pools, const struct conf *c, const char *binary)
{
	struct pool *ps;

	if ((ps = calloc(c->npools ? c->npools : 1, sizeof(*ps))) == NULL)
		return -1;
	for (size_t i = 0; i < c->npools; i++) {
		if (pool_open(&ps[i], &c->pools[i], c, binary) == -1) {
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

		pools[i].state = POOL_RUNNING;
		log_notice(pools[i].conf->name, 0, "listening on %s, starting %d workers",
		    sock_name(&pools[i].sock.addr, addr, sizeof(addr)),
		    pools[i].conf->max_children);
		pool_maintain(&pools[i], now);
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
		for (int j = 0; pools[i].workers != NULL && j < pools[i].nslots; j++)
			worker_close_output(&pools[i].workers[j]);
		pool_close(&pools[i]);
	}
	free(pools);
}
