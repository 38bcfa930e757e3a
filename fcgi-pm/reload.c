/*
 * reload.c - what a reload changes: the running pools' configurations
 * against a newly loaded one, as a plan of steps.
 *
 * reload_plan() and reload_roll_quota() are pure: no fork, no socket, no
 * log line.  reload_apply() carries a plan out with pool.c's lifecycle
 * functions: a new pool starts; a removed pool drains
 * (its workers finish their requests) and stops; a changed pool is
 * replaced by a new one whose workers start first, the old workers being
 * told to finish only as the new ones become ready (reload_roll_quota); an
 * unchanged pool is left alone and only adopts the new pool_conf.  A
 * replaced pool that keeps its listen address hands its listening socket
 * over, so no connection is ever refused.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
list_eq(char *const *a, char *const *b)
{
	if (a == NULL || b == NULL) {
		/* NULL and an empty list mean the same */
		return (a == NULL || *a == NULL) && (b == NULL || *b == NULL);
	}
	for (; *a != NULL && *b != NULL; a++, b++) {
		if (strcmp(*a, *b) != 0)
			return false;
	}
	return *a == NULL && *b == NULL;
}

/* Do A and B listen on the same address?  (The socket can be handed over.) */
bool
reload_same_listen(const struct pool_conf *a, const struct pool_conf *b)
{
	struct listen_addr x, y;
	char err[256];

	if (str_eq(a->listen, b->listen))
		return true;
	/* "unix:/p" and "/p", "9000" and "*:9000" are one address */
	if (sock_parse(a->listen, &x, err, sizeof(err)) == -1 ||
	    sock_parse(b->listen, &y, err, sizeof(err)) == -1)
		return false;
	return x.family == y.family && x.port == y.port && strcmp(x.path, y.path) == 0 &&
	    strcmp(x.host, y.host) == 0;
}

/*
 * Would pool A's workers differ from pool B's?  Every directive counts
 * except where a pool and its options were defined (file, line, lines):
 * moving a pool to another file changes nothing.  A field added to struct pool_conf must be added
 * here too, or a reload will not apply it.
 */
bool
reload_pool_changed(const struct pool_conf *a, const struct pool_conf *b)
{
	return !(str_eq(a->name, b->name) &&
	    reload_same_listen(a, b) &&
	    str_eq(a->listen_owner, b->listen_owner) &&
	    str_eq(a->listen_group, b->listen_group) &&
	    a->listen_mode == b->listen_mode &&
	    a->listen_backlog == b->listen_backlog &&
	    list_eq(a->listen_allowed_clients, b->listen_allowed_clients) &&
	    str_eq(a->user, b->user) &&
	    str_eq(a->group, b->group) &&
	    a->allow_root == b->allow_root &&
	    a->umask == b->umask &&
	    str_eq(a->chdir, b->chdir) &&
	    list_eq(a->env, b->env) &&
	    a->clear_env == b->clear_env &&
	    a->rlimit_files == b->rlimit_files &&
	    a->rlimit_core == b->rlimit_core &&
	    a->catch_workers_output == b->catch_workers_output &&
	    str_eq(a->module, b->module) &&
	    str_eq(a->virtualenv, b->virtualenv) &&
	    list_eq(a->python_path, b->python_path) &&
	    str_eq(a->script_name, b->script_name) &&
	    a->preload == b->preload &&
	    a->pm == b->pm &&
	    a->max_children == b->max_children &&
	    a->start_servers == b->start_servers &&
	    a->min_spare == b->min_spare &&
	    a->max_spare == b->max_spare &&
	    a->max_spawn_rate == b->max_spawn_rate &&
	    a->process_idle_timeout_ms == b->process_idle_timeout_ms &&
	    a->threads == b->threads &&
	    a->max_requests == b->max_requests &&
	    a->max_requests_jitter == b->max_requests_jitter &&
	    a->max_rss == b->max_rss &&
	    a->request_terminate_timeout_ms == b->request_terminate_timeout_ms &&
	    a->request_slowlog_timeout_ms == b->request_slowlog_timeout_ms &&
	    str_eq(a->slowlog, b->slowlog) &&
	    a->queue_timeout_ms == b->queue_timeout_ms &&
	    a->read_timeout_ms == b->read_timeout_ms &&
	    a->keepalive_timeout_ms == b->keepalive_timeout_ms);
}

static int
find_new(const struct conf *nc, const char *name)
{
	for (size_t i = 0; i < nc->npools; i++) {
		if (strcmp(nc->pools[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static int
find_old(const struct pool_conf *const *old, size_t nold, const char *name)
{
	for (size_t i = 0; i < nold; i++) {
		if (old[i] != NULL && strcmp(old[i]->name, name) == 0)
			return (int)i;
	}
	return -1;
}

static int
add_step(struct reload_plan *p, enum reload_action a, int o, int n, bool same)
{
	struct reload_step *s = &p->steps[p->nsteps++];

	s->action = a;
	s->old = o;
	s->new = n;
	s->same_listen = same;
	switch (a) {
	case RELOAD_ADD:
		p->added++;
		break;
	case RELOAD_REMOVE:
		p->removed++;
		break;
	case RELOAD_ROLL:
		p->rolled++;
		break;
	case RELOAD_KEEP:
		p->kept++;
		break;
	case RELOAD_IGNORE:
		break;
	}
	return 0;
}

/*
 * Plan the reload from the running pools OLD (NOLD pool_confs; a NULL
 * entry is a pool already draining, left out) to the new configuration
 * NC.  ONLY (NULL = every pool) limits the reload to one pool name: the
 * others are IGNOREd and keep running as they are.  Every old pool gets
 * one step (KEEP, ROLL, REMOVE or IGNORE) in order, then one ADD per new
 * pool.  Returns 0 with *PLAN filled (reload_plan_free() it), or -1 with a
 * message in ERR when ONLY names a pool neither configuration has, or when
 * out of memory.
 */
int
reload_plan(const struct pool_conf *const *old, size_t nold, const struct conf *nc,
    const char *only, struct reload_plan *plan, char *err, size_t errlen)
{
	memset(plan, 0, sizeof(*plan));
	if (only != NULL && find_old(old, nold, only) == -1 && find_new(nc, only) == -1) {
		snprintf(err, errlen, "no pool named %s, neither running nor in the "
		    "configuration", only);
		return -1;
	}
	if ((plan->steps = calloc(nold + nc->npools + 1, sizeof(*plan->steps))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nold; i++) {
		int n;

		if (old[i] == NULL)
			continue;
		n = find_new(nc, old[i]->name);
		if (only != NULL && strcmp(only, old[i]->name) != 0)
			add_step(plan, RELOAD_IGNORE, (int)i, -1, false);
		else if (n == -1)
			add_step(plan, RELOAD_REMOVE, (int)i, -1, false);
		else if (reload_pool_changed(old[i], &nc->pools[n]))
			add_step(plan, RELOAD_ROLL, (int)i, n,
			    reload_same_listen(old[i], &nc->pools[n]));
		else
			add_step(plan, RELOAD_KEEP, (int)i, n, true);
	}
	for (size_t j = 0; j < nc->npools; j++) {
		if (only != NULL && strcmp(only, nc->pools[j].name) != 0)
			continue;
		if (find_old(old, nold, nc->pools[j].name) == -1)
			add_step(plan, RELOAD_ADD, -1, (int)j, false);
	}
	return 0;
}

void
reload_plan_free(struct reload_plan *plan)
{
	free(plan->steps);
	memset(plan, 0, sizeof(*plan));
}

/*
 * A rolling restart's pace: OLD_TOTAL workers were to be replaced,
 * OLD_SERVING of them still serve (not yet told to stop); the new workers
 * are NEW_READY ready and NEW_STARTING still loading the application.
 * Returns how many old workers to tell to finish now, so that ready new
 * workers plus old serving ones never fall below OLD_TOTAL until every
 * new worker is ready.  When no new worker is starting and some are ready
 * (a dynamic pool starts fewer), or the pool starts workers on demand,
 * the rest go at once.  If the new workers never become ready (the new
 * code does not import), the old ones keep serving.  Pure.
 */
int
reload_roll_quota(int old_total, int old_serving, int new_ready, int new_starting,
    bool ondemand)
{
	int keep;

	if (old_serving <= 0)
		return 0;
	if (ondemand || (new_starting == 0 && new_ready > 0))
		return old_serving;
	keep = old_total - new_ready;
	if (keep < 0)
		keep = 0;
	return old_serving > keep ? old_serving - keep : 0;
}

/* ------------------------------------------------------------ applying */

/* A free entry of POOLS (N used, CAPACITY in all): a destroyed one or the next. */
static struct pool *
free_entry(struct pool *pools, size_t *n, size_t capacity)
{
	for (size_t i = 0; i < *n; i++) {
		if (pool_unused(&pools[i]) && pools[i].state != POOL_RUNNING)
			return &pools[i];
	}
	return *n < capacity ? &pools[(*n)++] : NULL;
}

static size_t
free_entries(const struct pool *pools, size_t n, size_t capacity)
{
	size_t k = capacity - n;

	for (size_t i = 0; i < n; i++)
		k += pool_unused(&pools[i]) && pools[i].state != POOL_RUNNING;
	return k;
}

/*
 * A socket handed over to pool PC: apply PC's listen_backlog (listen()
 * again changes it on Linux) and, for a unix socket fcgi-pm bound, its
 * listen_owner, listen_group and listen_mode, as sock_open() would have.
 * Failures are logged; the socket keeps serving as it was.
 */
static void
resettle_socket(struct listen_sock *ls, const struct pool_conf *pc)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	struct passwd *pw;
	struct group *gr;

	if (listen(ls->fd, pc->listen_backlog > 0 ? pc->listen_backlog : 511) == -1)
		log_warning(pc->name, 0, "listen_backlog %d: %s", pc->listen_backlog,
		    strerror(errno));
	if (ls->addr.family != AF_UNIX || ls->activated)
		return;
	if (pc->listen_owner != NULL && (pw = getpwnam(pc->listen_owner)) != NULL)
		uid = pw->pw_uid;
	if (pc->listen_group != NULL && (gr = getgrnam(pc->listen_group)) != NULL)
		gid = gr->gr_gid;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(ls->addr.path, uid, gid) == -1)
		log_warning(pc->name, 0, "listen %s: listen_owner/listen_group: %s",
		    ls->addr.path, strerror(errno));
	if (chmod(ls->addr.path, pc->listen_mode > 0 ? (mode_t)pc->listen_mode : 0660) == -1)
		log_warning(pc->name, 0, "listen %s: listen_mode %04o: %s", ls->addr.path,
		    (unsigned)pc->listen_mode, strerror(errno));
}

/*
 * Apply the configuration NC to the running POOLS (*NPOOLS used of
 * CAPACITY, see POOLS_CAPACITY): plan with reload_plan (ONLY = one pool
 * name or NULL), then start added pools, replace changed ones (the new
 * pool adopts the old one's listening socket when the address stayed; the
 * old workers retire as new ones are ready), drain removed ones, and point
 * unchanged ones at NC.  Pools still referring to the previous
 * configuration are the draining ones (and, with ONLY, the others): the
 * caller keeps that configuration until none does.  A summary, or what
 * failed, goes to MSG.  Returns 0, or -1 if some step failed (the pools it
 * concerns keep running as they were).
 */
int
reload_apply(struct pool *pools, size_t *npools, size_t capacity, const struct conf *nc,
    const char *only, const char *binary, struct buf *msg)
{
	const struct pool_conf **old;
	struct reload_plan plan;
	char err[512];
	int rc = 0;
	size_t n = *npools;

	if ((old = calloc(n + 1, sizeof(*old))) == NULL) {
		buf_printf(msg, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		old[i] = pools[i].state == POOL_RUNNING && !pool_unused(&pools[i]) ?
		    pools[i].conf : NULL;
	if (reload_plan(old, n, nc, only, &plan, err, sizeof(err)) == -1) {
		free(old);
		buf_printf(msg, "%s", err);
		return -1;
	}
	free(old);
	if ((size_t)(plan.added + plan.rolled) > free_entries(pools, n, capacity)) {
		buf_printf(msg, "%d pools to start but room for %zu more until fcgi-pm "
		    "restarts (pools still draining from earlier reloads take room); "
		    "nothing changed", plan.added + plan.rolled,
		    free_entries(pools, n, capacity));
		reload_plan_free(&plan);
		return -1;
	}
	for (size_t k = 0; k < plan.nsteps; k++) {
		const struct reload_step *st = &plan.steps[k];
		const struct pool_conf *pc = st->new >= 0 ? &nc->pools[st->new] : NULL;
		struct pool *p = st->old >= 0 ? &pools[st->old] : NULL, *np;

		switch (st->action) {
		case RELOAD_IGNORE:
			break;
		case RELOAD_KEEP:
			p->conf = pc;
			p->control_timeout_ms = nc->process_control_timeout_ms > 0 ?
			    nc->process_control_timeout_ms : p->control_timeout_ms;
			break;
		case RELOAD_REMOVE:
			log_notice(p->conf->name, 0, "no longer configured: draining its "
			    "workers, then closing it");
			buf_printf(msg, "pool %s: removed, draining\n", p->conf->name);
			pools_stop(p, 1, true);
			break;
		case RELOAD_ROLL:
			np = free_entry(pools, &n, capacity);
			/* an ondemand pool may watch the socket it hands over */
			if (st->same_listen && p->listen_watched) {
				loop_unwatch(p->sock.fd);
				p->listen_watched = false;
			}
			if (pool_create(np, pc, nc, binary, st->same_listen ? &p->sock : NULL) == -1) {
				buf_printf(msg, "pool %s: the new configuration cannot start "
				    "(see the log); the old one keeps running\n", pc->name);
				pool_destroy(np);
				rc = -1;
				break;
			}
			if (st->same_listen)
				resettle_socket(&np->sock, pc);
			np->start_us = p->start_us;
			np->max_listen_queue = p->max_listen_queue;
			log_notice(pc->name, 0, "configuration changed: new workers start; "
			    "the old ones finish as the new ones are ready%s",
			    st->same_listen ? " (same listening socket)" : "");
			buf_printf(msg, "pool %s: changed, rolling its workers\n", pc->name);
			p->state = POOL_STOPPING;
			pool_retire(p);
			/* its workers need it no more: they are the master's children */
			preload_stop(p, SIGQUIT, p->control_timeout_ms, loop_now_ms());
			pools_start(np, 1);
			break;
		case RELOAD_ADD:
			np = free_entry(pools, &n, capacity);
			if (pool_create(np, pc, nc, binary, NULL) == -1) {
				buf_printf(msg, "pool %s: cannot start (see the log)\n", pc->name);
				pool_destroy(np);
				rc = -1;
				break;
			}
			buf_printf(msg, "pool %s: added\n", pc->name);
			pools_start(np, 1);
			break;
		}
	}
	buf_printf(msg, "%d added, %d removed, %d changed, %d unchanged\n", plan.added,
	    plan.removed, plan.rolled, plan.kept);
	reload_plan_free(&plan);
	*npools = n;
	return rc;
}

/*
 * Close the pools a reload drained (removed or replaced) once their last
 * worker is gone; a replaced pool's counters go to its successor.  The
 * tick calls it while the master is not stopping.
 */
void
reload_sweep(struct pool *pools, size_t npools)
{
	for (size_t i = 0; i < npools; i++) {
		struct pool *p = &pools[i];

		if (pool_unused(p) || p->state != POOL_STOPPING || !pools_stopped(p, 1))
			continue;
		for (size_t k = 0; k < npools; k++) {
			struct pool *s = &pools[k];

			if (k == i || pool_unused(s) || s->state != POOL_RUNNING ||
			    strcmp(s->conf->name, p->conf->name) != 0)
				continue;
			s->stats.accepted += p->stats.accepted;
			s->stats.queue_timeouts += p->stats.queue_timeouts;
			s->stats.peer_gone += p->stats.peer_gone;
			s->stats.max_children_reached += p->stats.max_children_reached;
			s->stats.slow_requests += p->stats.slow_requests;
			s->stats.terminated_requests += p->stats.terminated_requests;
			if (p->stats.max_active > s->stats.max_active)
				s->stats.max_active = p->stats.max_active;
			break;
		}
		log_notice(p->conf->name, 0, "drained: %llu requests served since it "
		    "started; closed", (unsigned long long)p->stats.accepted);
		pool_destroy(p);
	}
}
