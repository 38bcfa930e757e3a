/*
 * preload.c - the master's side of `preload = yes`: each such pool has one
 * preload process (fcgi-pm-worker --preload=5) that imports the app once,
 * and its workers are forked from it, so they share the imported code and
 * data copy-on-write and a new one is ready in milliseconds.  The master
 * itself never runs Python.
 *
 * The preload process is a child of the master, started like a worker
 * (same identity, environment, fds) plus a control socket; the protocol
 * is described at the top of embed/preload.c.  It forks each worker with
 * clone(CLONE_PARENT), so workers are the master's children too: reaped,
 * logged, replaced and recycled exactly as the workers of a pool without
 * preload.  Spawning is one synchronous exchange on the control socket,
 * bounded by PRELOAD_REPLY_MS (a fork takes milliseconds), so a worker's
 * pid is known before its SIGCHLD can be read; the pid is checked before
 * the master ever signals it.
 *
 * The preload process dies or fails to import: it is restarted with the
 * pool's backoff, as a worker would be; the workers it forked keep
 * serving meanwhile.  A restart (SIGUSR2, SIGHUP) replaces it first and
 * stops the old workers only once the new one has loaded the new code, so
 * an application that no longer imports leaves the old workers serving.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"

/*
 * A fork takes milliseconds; the master's loop waits for the answer, so a
 * preload process that hangs (or an app that makes it) stalls every pool
 * this long before it is killed and, as a failure, backed off.
 */
#define PRELOAD_REPLY_MS	1000

/* Ready P's preload state (pool_open). */
void
preload_init(struct pool *p)
{
	memset(&p->preload, 0, sizeof(p->preload));
	p->preload.pool = p;
	p->preload.slot = -1;
	p->preload.out_fd = -1;
	p->preload_ctl = -1;
	p->preload_ready = false;
	p->preload_replace = false;
}

static void
on_preload_output(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	worker_drain(arg);
}

static void
ctl_close(struct pool *p)
{
	if (p->preload_ctl == -1)
		return;
	loop_unwatch(p->preload_ctl);
	close(p->preload_ctl);
	p->preload_ctl = -1;
}

/*
 * The new preload process of a restart is ready: replace the old workers
 * as a rolling restart does (pool_retire: new ones start now, each old one
 * finishes as a new one is ready).
 */
static void
replace_workers(struct pool *p)
{
	int count = 0;

	p->preload_replace = false;
	for (int i = 0; i < p->nslots; i++)
		count += p->workers[i].pid > 0 && !p->workers[i].ending &&
		    !p->workers[i].retiring;
	if (count == 0)
		return;
	log_notice(p->conf->name, 0, "replacing %d workers gracefully with workers of "
	    "the new preload process", count);
	pool_retire(p);
}

/* The control socket is readable: "ready" once the app is loaded; EOF if it died. */
static void
on_preload_ctl(int fd, uint32_t events, void *arg)
{
	struct pool *p = arg;
	char msg[64];
	ssize_t n;

	(void)events;
	n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	/* from now on the socket is read only in preload_fork(), or closed at the reap */
	loop_unwatch(fd);
	if (n <= 0) {
		if (n == -1)
			log_warning(p->conf->name, 0, "preload process %ld: control socket: %s",
			    (long)p->preload.pid, strerror(errno));
		return;
	}
	msg[n] = '\0';
	if (p->preload.ending)
		return;		/* told to stop meanwhile (a restart): its successor will do */
	if (strcmp(msg, "ready") != 0) {
		log_error(p->conf->name, 0, "preload process %ld said '%s' instead of "
		    "ready; stopping it", (long)p->preload.pid, msg);
		worker_signal(&p->preload, SIGKILL);
		return;
	}
	p->preload_ready = true;
	log_notice(p->conf->name, 0, "preload process %ld loaded %s in %.1fs; workers "
	    "are forked from it", (long)p->preload.pid, p->conf->module,
	    (double)(loop_now_ms() - p->preload.started_ms) / 1000.0);
	if (p->preload_replace && p->state == POOL_RUNNING)
		replace_workers(p);
}

/* Start P's preload process.  0, or -1 after logging why. */
static int
preload_start(struct pool *p, uint64_t now)
{
	struct worker *w = &p->preload;
	int ctl;

	w->started_ms = now;
	p->preload_ready = false;
	if (worker_spawn_preload(p, &ctl) == -1)
		return -1;
	p->preload_ctl = ctl;
	if (loop_watch(w->out_fd, EPOLLIN, on_preload_output, w) == -1) {
		log_warning(p->conf->name, 0, "preload process %ld: cannot watch its "
		    "output, dropping it: %s", (long)w->pid, strerror(errno));
		worker_close_output(w);
	}
	if (loop_watch(ctl, EPOLLIN, on_preload_ctl, p) == -1) {
		log_error(p->conf->name, 0, "preload process %ld: cannot watch its "
		    "control socket: %s; stopping it", (long)w->pid, strerror(errno));
		worker_signal(w, SIGKILL);
		return 0;	/* reaped like any failure */
	}
	log_notice(p->conf->name, 0, "preload process %ld started: loading %s once for "
	    "all workers", (long)w->pid, p->conf->module);
	return 0;
}

/*
 * Can P's workers be forked now?  Starts the preload process when there
 * is none and the pool's backoff allows; true once it has loaded the app.
 */
bool
preload_ready(struct pool *p, uint64_t now)
{
	if (p->preload.pid == 0) {
		if (p->backoff.delay_ms > 0 && now < p->backoff.until_ms)
			return false;
		if (preload_start(p, now) == -1 &&
		    backoff_failure(&p->backoff, now, now))
			log_warning(p->conf->name, 0, "next attempt to start the preload "
			    "process in %.1fs", p->backoff.delay_ms / 1000.0);
		return false;
	}
	return p->preload_ready && !p->preload.ending;
}

/*
 * Is PID, as P's preload process reported it, a worker it just forked: a
 * child of ours (alive or not yet reaped), with the pool's uid, not
 * already one of P's workers?  The preload process runs the application:
 * it must not be able to make the master signal another process.
 */
static bool
is_new_worker(const struct pool *p, pid_t pid)
{
	siginfo_t si = { 0 };
	char path[64], line[256];
	bool ok = !p->drop_privileges;
	FILE *f;

	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
		return false;	/* ECHILD: not ours */
	for (int i = 0; i < p->nslots; i++) {
		if (p->workers[i].pid == pid)
			return false;
	}
	if (ok)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long uid;

		if (sscanf(line, "Uid: %lu", &uid) == 1) {
			ok = (uid_t)uid == p->uid;
			break;
		}
	}
	fclose(f);
	return ok;
}

/*
 * Have P's preload process fork worker W (slot assigned, started_ms set):
 * send "spawn SLOT MAX_REQUESTS" with the write end of W's new output
 * pipe, and wait up to PRELOAD_REPLY_MS for its pid.  0 with w->pid and
 * w->out_fd set, or -1 after logging why (a preload process that does not
 * answer is killed, and restarted when reaped).
 */
int
preload_fork(struct pool *p, struct worker *w)
{
	const char *name = p->conf->name;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh = { 0 };
	struct iovec iov;
	struct cmsghdr *c;
	struct pollfd pfd;
	int fds[2], rc;
	char msg[64];
	long pid;
	ssize_t n;

	if (!p->preload_ready || p->preload_ctl == -1) {
		log_error(name, 0, "cannot start a worker: the preload process is not ready");
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC) == -1) {
		log_error(name, 0, "cannot start a worker: pipe: %s", strerror(errno));
		return -1;
	}
	snprintf(msg, sizeof(msg), "spawn %d %ld", w->slot, worker_max_requests(p->conf));
	iov.iov_base = msg;
	iov.iov_len = strlen(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fds[1], sizeof(int));
	while ((n = sendmsg(p->preload_ctl, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	close(fds[1]);
	if (n == -1) {
		log_error(name, 0, "cannot start a worker: preload process %ld: control "
		    "socket: %s", (long)p->preload.pid, strerror(errno));
		goto fail;
	}
	pfd.fd = p->preload_ctl;
	pfd.events = POLLIN;
	while ((rc = poll(&pfd, 1, PRELOAD_REPLY_MS)) == -1 && errno == EINTR)
		;
	if (rc != 1 || (n = recv(p->preload_ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT)) <= 0) {
		log_error(name, 0, "cannot start a worker: preload process %ld %s%s; "
		    "killing it", (long)p->preload.pid, rc == 0 ?
		    "did not answer within " : "is gone",
		    rc == 0 ? "1s" : "");
		goto fail;
	}
	msg[n] = '\0';
	if (sscanf(msg, "pid %ld", &pid) != 1 || pid <= 0) {
		int err = 0;

		if (sscanf(msg, "error %d", &err) == 1)
			log_error(name, 0, "cannot start a worker: preload process %ld "
			    "cannot fork: %s", (long)p->preload.pid, strerror(err));
		else
			log_error(name, 0, "cannot start a worker: preload process %ld "
			    "answered '%s'", (long)p->preload.pid, msg);
		close(fds[0]);
		return -1;	/* fork failed (EAGAIN, ENOMEM): the backoff retries */
	}
	if (!is_new_worker(p, (pid_t)pid)) {
		log_error(name, 0, "preload process %ld answered pid %ld, which is not a "
		    "worker it forked; killing it", (long)p->preload.pid, pid);
		goto fail;
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	w->pid = (pid_t)pid;
	w->out_fd = fds[0];
	w->linelen = 0;
	w->ending = w->killed = false;
	return 0;
fail:
	close(fds[0]);
	p->preload_ready = false;
	worker_signal(&p->preload, SIGKILL);
	return -1;
}

/*
 * P's preload process exited with wait status ST: log it and forget it.
 * Returns true when that was a failure the pool must back off from (it
 * was not told to stop, and died young or could not import the app).
 */
bool
preload_reaped(struct pool *p, int st, uint64_t now)
{
	struct worker *w = &p->preload;
	const char *name = p->conf->name;
	double age = (double)(now - w->started_ms) / 1000.0;
	bool young = now - w->started_ms < POOL_HEALTHY_MS, failed;

	worker_drain(w);
	worker_close_output(w);
	ctl_close(p);
	if (WIFEXITED(st)) {
		int code = WEXITSTATUS(st);

		failed = !w->ending && (young || code != 0);
		log_msg(w->ending ? LOG_LVL_NOTICE : LOG_LVL_WARNING, name, 0,
		    "preload process %ld exited with status %d after %.1fs%s", (long)w->pid,
		    code, age, code == 3 ? " (the application failed to import; see "
		    "the traceback above)" : code == 127 ? " (it could not be started; "
		    "see the error above)" : "");
	} else {
		const char *abbrev = sigabbrev_np(WTERMSIG(st));

		failed = !w->ending && young;
		log_msg(w->ending ? LOG_LVL_NOTICE : LOG_LVL_WARNING, name, 0,
		    "preload process %ld exited on signal %d (SIG%s) after %.1fs",
		    (long)w->pid, WTERMSIG(st), abbrev ? abbrev : "?", age);
	}
	if (p->preload_replace && p->state == POOL_RUNNING && !w->ending)
		log_warning(name, 0, "the old workers keep serving until a new preload "
		    "process loads the application");
	w->pid = 0;
	w->ending = w->killed = false;
	p->preload_ready = false;
	return failed;
}

/*
 * The periodic tick for P's preload process: the SIGKILL deadline, the
 * backoff's end, and no preload process for a pool that no longer runs
 * (a reload replaced or removed it: its workers drain, nothing is forked).
 */
void
preload_tick(struct pool *p, uint64_t now)
{
	struct worker *w = &p->preload;

	if (w->pid == 0)
		return;
	if (p->state != POOL_RUNNING && !w->ending)
		preload_stop(p, SIGTERM, POOL_TERM_KILL_MS, now);
	if (w->ending && !w->killed && now >= w->kill_at_ms) {
		log_warning(p->conf->name, 0, "preload process %ld still running %.1fs "
		    "after SIG%s; killing it", (long)w->pid,
		    (double)(now - w->stop_ms) / 1000.0, sigabbrev_np(w->stop_signal));
		worker_signal(w, SIGKILL);
		w->killed = true;
	}
	if (!w->ending && p->preload_ready &&
	    backoff_recovered(&p->backoff, now, w->started_ms))
		log_notice(p->conf->name, 0, "preload process %ld stayed up %.0fs; "
		    "starting workers normally again", (long)w->pid,
		    POOL_HEALTHY_MS / 1000.0);
}

/* Tell P's preload process to stop with SIGNO, SIGKILL after BOUND_MS. */
void
preload_stop(struct pool *p, int signo, long bound_ms, uint64_t now)
{
	struct worker *w = &p->preload;

	if (w->pid == 0 || w->killed)
		return;
	worker_stop(w, signo, bound_ms, now);
	p->preload_ready = false;
}

/*
 * Restart P (SIGUSR2, SIGHUP, emergency restart) for new code: replace the
 * preload process, and stop the workers once the new one is ready.
 */
void
preload_restart(struct pool *p, uint64_t now)
{
	log_notice(p->conf->name, 0, "restarting the preload process; the workers "
	    "are replaced once it has loaded the application");
	p->preload_replace = true;
	preload_stop(p, SIGTERM, POOL_TERM_KILL_MS, now);
}

/* Close what is left of P's preload process (pools_close: it was reaped). */
void
preload_close(struct pool *p)
{
	worker_close_output(&p->preload);
	ctl_close(p);
}
