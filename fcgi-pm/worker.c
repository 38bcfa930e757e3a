/*
 * worker.c - the mechanism of one worker process: find the binary, fork,
 * plumb the fds, drop privileges, exec fcgi-pm-worker; read its output.
 *
 * Everything the child needs (argv, envp, identity) is built before fork:
 * between fork and exec the child only makes system calls, writes a fixed
 * message with write(2) on failure and leaves with _exit(127).
 *
 * The child's fds: 0 the pool's listening socket (FCGI_LISTENSOCK_FILENO),
 * 1 and 2 one pipe whose read end the master watches, 3 the scoreboard
 * memfd, 4 the slowlog file when the pool has one, for a pool's preload
 * process (preload.c) 5 its control socket, and 6 and 7 the pool's
 * hand-off socket pair when it has more than one worker.  Nothing else.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

#define CHILD_FD_SCOREBOARD	3
#define CHILD_FD_SLOWLOG	4
#define CHILD_FD_CONTROL	5
#define CHILD_FD_HANDOFF_TX	6
#define CHILD_FD_HANDOFF_RX	7
#define DEFAULT_PATH		"PATH=/usr/local/bin:/usr/bin:/bin"

extern char **environ;

/* A growable NULL-terminated vector of owned strings. */
struct strv {
	char **v;
	size_t n, cap;
	bool failed;
};

static void
strv_add(struct strv *sv, char *s)
{
	char **nv;

	if (s == NULL || sv->failed)
		goto fail;
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 32;

		if ((nv = realloc(sv->v, cap * sizeof(*nv))) == NULL)
			goto fail;
		sv->v = nv;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return;
fail:
	free(s);
	sv->failed = true;
}

static void strv_addf(struct strv *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
strv_addf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	strv_add(sv, s);
}

static void
strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

static bool
executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int
set_path(char *out, size_t outlen, const char *dir, const char *rel)
{
	int n = snprintf(out, outlen, "%s/%s", dir, rel);

	return n > 0 && (size_t)n < outlen && executable(out) ? 0 : -1;
}

/*
 * Find fcgi-pm-worker: CONFIGURED (worker_binary) if set, else next to
 * this program (/proc/self/exe), else in its build tree (../embed/), else
 * in PATH.  Writes the path into OUT.  Returns 0, or -1 (errno ENOENT or
 * what checking CONFIGURED gave).
 */
int
worker_find_binary(const char *configured, char *out, size_t outlen)
{
	char self[PATH_MAX], *slash, *path, *dir, *save = NULL;
	ssize_t n;

	if (configured != NULL) {
		if (!executable(configured)) {
			if (errno == 0)
				errno = EACCES;
			return -1;
		}
		if ((size_t)snprintf(out, outlen, "%s", configured) >= outlen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			if (set_path(out, outlen, self, "fcgi-pm-worker") == 0 ||
			    set_path(out, outlen, self, "../embed/fcgi-pm-worker") == 0)
				return 0;
		}
	}
	if ((path = getenv("PATH")) != NULL && (path = strdup(path)) != NULL) {
		for (dir = strtok_r(path, ":", &save); dir != NULL;
		    dir = strtok_r(NULL, ":", &save)) {
			if (*dir != '\0' && set_path(out, outlen, dir, "fcgi-pm-worker") == 0) {
				free(path);
				return 0;
			}
		}
		free(path);
	}
	errno = ENOENT;
	return -1;
}

/* max_requests for a new worker: jitter spreads the recycling of workers started together. */
long
worker_max_requests(const struct pool_conf *pc)
{
	long max_requests = pc->max_requests;

	if (max_requests > 0 && pc->max_requests_jitter > 0)
		max_requests += random() % (pc->max_requests_jitter + 1);
	return max_requests;
}

/* The command line of worker W, or with PRELOAD of its pool's preload process. */
static void
build_argv(struct strv *av, const struct worker *w, const char *binary, bool preload)
{
	const struct pool_conf *pc = w->pool->conf;
	/* a preloaded worker gets its own from the spawn command */
	long max_requests = preload ? 0 : worker_max_requests(pc);

	strv_add(av, strdup(binary));
	strv_add(av, strdup("--pool"));
	strv_add(av, strdup(pc->name));
	strv_add(av, strdup("--module"));
	strv_add(av, strdup(pc->module ? pc->module : ""));
	strv_add(av, strdup("--threads"));
	strv_addf(av, "%d", pc->threads > 0 ? pc->threads : 1);
	for (char **p = pc->python_path; p != NULL && *p != NULL; p++) {
		strv_add(av, strdup("--python-path"));
		strv_add(av, strdup(*p));
	}
	if (pc->chdir != NULL) {
		strv_add(av, strdup("--chdir"));
		strv_add(av, strdup(pc->chdir));
	}
	if (pc->virtualenv != NULL) {
		strv_add(av, strdup("--virtualenv"));
		strv_add(av, strdup(pc->virtualenv));
	}
	if (pc->script_name != NULL) {
		strv_add(av, strdup("--script-name"));
		strv_add(av, strdup(pc->script_name));
	}
	if (max_requests > 0) {
		strv_add(av, strdup("--max-requests"));
		strv_addf(av, "%ld", max_requests);
	}
	if (pc->max_rss > 0) {
		strv_add(av, strdup("--max-rss"));
		strv_addf(av, "%ld", (pc->max_rss + 1023) / 1024);
	}
	if (pc->read_timeout_ms > 0) {
		strv_add(av, strdup("--read-timeout"));
		strv_addf(av, "%ld", pc->read_timeout_ms);
	}
	if (pc->keepalive_timeout_ms > 0) {
		strv_add(av, strdup("--keepalive-timeout"));
		strv_addf(av, "%ld", pc->keepalive_timeout_ms);
	}
	if (pc->queue_timeout_ms > 0) {
		strv_add(av, strdup("--queue-timeout"));
		strv_addf(av, "%ld", pc->queue_timeout_ms);
	}
	strv_add(av, strdup("--scoreboard"));
	strv_addf(av, "%d:%d", CHILD_FD_SCOREBOARD, preload ? 0 : w->slot);
	if (w->pool->handoff[0] != -1) {
		strv_add(av, strdup("--handoff"));
		strv_addf(av, "%d:%d", CHILD_FD_HANDOFF_TX, CHILD_FD_HANDOFF_RX);
	}
	if (w->pool->slowlog_fd != -1) {
		strv_add(av, strdup("--slowlog-fd"));
		strv_addf(av, "%d", CHILD_FD_SLOWLOG);
	}
	/* last, and in one piece: each forked worker blanks it (ps tells them apart) */
	if (preload)
		strv_addf(av, "--preload=%d", CHILD_FD_CONTROL);
}

static bool
env_overridden(char **env, const char *entry)
{
	size_t klen = strcspn(entry, "=");

	for (char **p = env; p != NULL && *p != NULL; p++) {
		if (strncmp(*p, entry, klen) == 0 && (*p)[klen] == '=')
			return true;
	}
	return false;
}

static void
build_envp(struct strv *ev, const struct pool *p)
{
	const struct pool_conf *pc = p->conf;

	if (pc->clear_env) {
		if (!env_overridden(pc->env, DEFAULT_PATH))
			strv_add(ev, strdup(DEFAULT_PATH));
	} else {
		for (char **e = environ; e != NULL && *e != NULL; e++) {
			if (!env_overridden(pc->env, *e) && strncmp(*e,
			    "FCGI_WEB_SERVER_ADDRS=", 22) != 0)
				strv_add(ev, strdup(*e));
		}
	}
	for (char **e = pc->env; e != NULL && *e != NULL; e++)
		strv_add(ev, strdup(*e));
	/* the FastCGI convention for "accept only these peers" on TCP */
	if (p->sock.addr.family != AF_UNIX && pc->listen_allowed_clients != NULL &&
	    pc->listen_allowed_clients[0] != NULL) {
		size_t len = sizeof("FCGI_WEB_SERVER_ADDRS=");
		char *s;

		for (char **a = pc->listen_allowed_clients; *a != NULL; a++)
			len += strlen(*a) + 1;
		if ((s = malloc(len)) != NULL) {
			strcpy(s, "FCGI_WEB_SERVER_ADDRS=");
			for (char **a = pc->listen_allowed_clients; *a != NULL; a++) {
				if (a != pc->listen_allowed_clients)
					strcat(s, ",");
				strcat(s, *a);
			}
		}
		strv_add(ev, s);
	}
}

/*
 * Async-signal-safe: "ERROR: cannot WHAT[ ARG][ (WHY)]: ENAME\n" on fd 2 (the
 * pipe, so the master logs it with the pool and pid), then _exit(127).
 */
static void __attribute__((noreturn))
child_fail(const char *what, const char *arg, const char *why, int err)
{
	const char *name = strerrorname_np(err);
	char buf[1024];
	size_t n = 0;
	const char *parts[] = { "ERROR: cannot ", what, arg ? " " : "", arg ? arg : "",
	    why ? " (" : "", why ? why : "", why ? ")" : "", ": ",
	    name ? name : "unknown error", "\n" };

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t l = strlen(parts[i]);

		if (l > sizeof(buf) - 1 - n)
			l = sizeof(buf) - 1 - n;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	buf[n - 1] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
	_exit(127);
}

/*
 * In the child, between fork and exec: system calls only.  CTL is the
 * preload process's control socket, -1 for a worker.
 */
static void __attribute__((noreturn))
child_exec(const struct worker *w, int pipe_w, int ctl, const char *binary, char **argv,
    char **envp)
{
	const struct pool *p = w->pool;
	const struct pool_conf *pc = p->conf;
	int lfd, out, sbfd, slow = -1, cfd = -1, htx = -1, hrx = -1;
	struct sigaction sa;
	struct rlimit rl;
	sigset_t none;

	/* the master blocks its signals for the signalfd and ignores SIGPIPE */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* own session: a ^C on the master's terminal is the master's to handle */
	setsid();

	/* move every source above the targets first, so no dup2 clobbers another */
	if ((out = fcntl(pipe_w, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    dup2(out, STDOUT_FILENO) == -1 || dup2(out, STDERR_FILENO) == -1)
		_exit(127);
	if ((lfd = fcntl(p->sock.fd, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (sbfd = fcntl(p->sb.fd, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (p->slowlog_fd != -1 &&
	    (slow = fcntl(p->slowlog_fd, F_DUPFD_CLOEXEC, 10)) == -1) ||
	    (ctl != -1 && (cfd = fcntl(ctl, F_DUPFD_CLOEXEC, 10)) == -1) ||
	    (p->handoff[0] != -1 &&
	    ((htx = fcntl(p->handoff[0], F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (hrx = fcntl(p->handoff[1], F_DUPFD_CLOEXEC, 10)) == -1)))
		child_fail("duplicate the worker's fds", NULL, NULL, errno);
	if (dup2(lfd, 0) == -1 || dup2(sbfd, CHILD_FD_SCOREBOARD) == -1 ||
	    (slow != -1 && dup2(slow, CHILD_FD_SLOWLOG) == -1) ||
	    (cfd != -1 && dup2(cfd, CHILD_FD_CONTROL) == -1) ||
	    (htx != -1 && (dup2(htx, CHILD_FD_HANDOFF_TX) == -1 ||
	    dup2(hrx, CHILD_FD_HANDOFF_RX) == -1)))
		child_fail("set up the worker's fds", NULL, NULL, errno);
	close_range(CHILD_FD_HANDOFF_RX + 1, ~0U, 0);
	if (slow == -1)
		close(CHILD_FD_SLOWLOG);
	if (cfd == -1)
		close(CHILD_FD_CONTROL);
	if (htx == -1) {
		close(CHILD_FD_HANDOFF_TX);
		close(CHILD_FD_HANDOFF_RX);
	}

	if (pc->umask >= 0)
		umask((mode_t)pc->umask);
	if (pc->rlimit_files > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)pc->rlimit_files;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			child_fail("set the open files limit", NULL, "rlimit_files", errno);
	}
	if (pc->rlimit_core >= 0) {
		/* conf.c reads "unlimited" as LONG_MAX */
		rl.rlim_cur = rl.rlim_max = pc->rlimit_core == LONG_MAX ? RLIM_INFINITY :
		    (rlim_t)pc->rlimit_core;
		if (setrlimit(RLIMIT_CORE, &rl) == -1)
			child_fail("set the core size limit", NULL, "rlimit_core", errno);
	}
	if (p->drop_privileges) {
		if (setgroups((size_t)p->ngroups, p->groups) == -1)
			child_fail("set the groups of user", pc->user, "user", errno);
		if (setgid(p->gid) == -1)
			child_fail("switch to the group of the pool", pc->group, "group", errno);
		if (setuid(p->uid) == -1)
			child_fail("switch to user", pc->user, "user", errno);
	}
	/* after the identity change: the pool's user must be able to enter it */
	if (pc->chdir != NULL && chdir(pc->chdir) == -1)
		child_fail("enter", pc->chdir, "chdir", errno);
	execve(binary, argv, envp);
	child_fail("run", binary, "worker_binary", errno);
}

/*
 * Fork and exec BINARY for W: a worker, or with CTL_FD non-NULL its pool's
 * preload process, whose end of a new control socket goes into *CTL_FD.
 * 0 or -1 as worker_spawn().
 */
static int
spawn_process(struct worker *w, const char *binary, int *ctl_fd)
{
	const char *pool = w->pool->conf->name;
	const char *what = ctl_fd ? "the preload process" : "a worker";
	struct strv av = { 0 }, ev = { 0 };
	int fds[2] = { -1, -1 }, ctl[2] = { -1, -1 };
	pid_t pid;

	build_argv(&av, w, binary, ctl_fd != NULL);
	build_envp(&ev, w->pool);
	if (av.failed || ev.failed) {
		log_error(pool, 0, "cannot start %s: out of memory", what);
		goto fail;
	}
	if (pipe2(fds, O_CLOEXEC) == -1) {
		log_error(pool, 0, "cannot start %s: pipe: %s", what, strerror(errno));
		goto fail;
	}
	if (ctl_fd != NULL &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1) {
		log_error(pool, 0, "cannot start %s: socketpair: %s", what, strerror(errno));
		goto fail;
	}
	if ((pid = fork()) == -1) {
		log_error(pool, 0, "cannot start %s: fork: %s", what, strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec(w, fds[1], ctl[1], binary, av.v, ev.v);
	close(fds[1]);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	if (ctl_fd != NULL) {
		close(ctl[1]);
		*ctl_fd = ctl[0];
	}
	w->pid = pid;
	w->out_fd = fds[0];
	w->linelen = 0;
	w->ending = w->killed = false;
	strv_free(&av);
	strv_free(&ev);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (fds[i] != -1)
			close(fds[i]);
		if (ctl[i] != -1)
			close(ctl[i]);
	}
	strv_free(&av);
	strv_free(&ev);
	return -1;
}

/*
 * Start worker W (its pool, slot and started_ms set by the caller; the
 * slot already assigned in the scoreboard): fork and exec BINARY with the
 * pool's arguments, environment and identity, or with preload = yes have
 * the pool's preload process fork it (preload_fork(); the caller checked
 * preload_ready()).  On success sets w->pid and w->out_fd (non-blocking,
 * to be watched by the caller) and returns 0; on failure returns -1
 * after logging why.
 */
int
worker_spawn(struct worker *w, const char *binary)
{
	if (w->pool->conf->preload)
		return preload_fork(w->pool, w);
	return spawn_process(w, binary, NULL);
}

/*
 * Start pool P's preload process in P->preload (its started_ms set by the
 * caller): as a worker, with a control socket, whose master end goes into
 * *CTL_FD.  0 or -1 as worker_spawn().
 */
int
worker_spawn_preload(struct pool *p, int *ctl_fd)
{
	return spawn_process(&p->preload, p->binary, ctl_fd);
}

/* Send SIGNO to worker W if it is alive. */
void
worker_signal(struct worker *w, int signo)
{
	if (w->pid > 0 && kill(w->pid, signo) == -1 && errno != ESRCH)
		log_warning(w->pool->conf->name, 0, "cannot signal worker %ld: %s",
		    (long)w->pid, strerror(errno));
}

/*
 * Tell W to stop with SIGNO at NOW; the pool's tick sends SIGKILL once
 * BOUND_MS have passed (the earliest bound wins if asked twice).
 */
void
worker_stop(struct worker *w, int signo, long bound_ms, uint64_t now)
{
	uint64_t kill_at = now + (uint64_t)bound_ms;

	worker_signal(w, signo);
	w->stop_signal = signo;
	if (!w->ending)
		w->stop_ms = now;
	if (!w->ending || kill_at < w->kill_at_ms)
		w->kill_at_ms = kill_at;
	w->ending = true;
}

static bool
has_prefix(const char *s, size_t len, const char *prefix, size_t *skip)
{
	size_t pl = strlen(prefix);

	if (len < pl || memcmp(s, prefix, pl) != 0)
		return false;
	*skip = pl;
	return true;
}

/*
 * One line of a worker's output: "LEVEL: message" lines are the worker's
 * own log lines; anything else is the application's output, kept only
 * with catch_workers_output.
 */
static void
output_line(struct worker *w, const char *s, size_t len)
{
	const struct pool_conf *pc = w->pool->conf;
	enum log_level l;
	size_t skip = 0;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (has_prefix(s, len, "ERROR: ", &skip))
		l = LOG_LVL_ERROR;
	else if (has_prefix(s, len, "WARNING: ", &skip))
		l = LOG_LVL_WARNING;
	else if (has_prefix(s, len, "NOTICE: ", &skip))
		l = LOG_LVL_NOTICE;
	else if (has_prefix(s, len, "DEBUG: ", &skip))
		l = LOG_LVL_DEBUG;
	else if (pc->catch_workers_output)
		l = LOG_LVL_NOTICE;
	else
		return;
	log_msg(l, pc->name, w->pid, "%.*s", (int)(len - skip), s + skip);
}

/*
 * Read what worker W wrote, logging each complete line; a line longer than
 * the buffer is logged in pieces.  At end of file the partial line is
 * logged and the pipe closed.  Never blocks.
 */
void
worker_drain(struct worker *w)
{
	ssize_t n;
	char *nl, *start;

	while (w->out_fd != -1) {
		n = read(w->out_fd, w->line + w->linelen, sizeof(w->line) - w->linelen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			worker_close_output(w);
			return;
		}
		w->linelen += (size_t)n;
		start = w->line;
		while ((nl = memchr(start, '\n', w->linelen - (size_t)(start - w->line))) != NULL) {
			output_line(w, start, (size_t)(nl - start));
			start = nl + 1;
		}
		w->linelen -= (size_t)(start - w->line);
		memmove(w->line, start, w->linelen);
		if (w->linelen == sizeof(w->line)) {
			output_line(w, w->line, w->linelen);
			w->linelen = 0;
		}
	}
}

/* Log W's unfinished last line, stop watching and close its output pipe. */
void
worker_close_output(struct worker *w)
{
	if (w->linelen > 0)
		output_line(w, w->line, w->linelen);
	w->linelen = 0;
	if (w->out_fd == -1)
		return;
	loop_unwatch(w->out_fd);
	close(w->out_fd);
	w->out_fd = -1;
}
