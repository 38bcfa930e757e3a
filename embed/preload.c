/*
 * preload.c - preload mode (pool `preload = yes`): import the application
 * once, then fork each worker from this process, so the workers share the
 * imported code and data copy-on-write and a new worker is ready in
 * milliseconds instead of the app's import time.
 *
 * The master starts one preload process per pool, as
 * `fcgi-pm-worker ... --preload=FD` with a SOCK_SEQPACKET control socket
 * on FD and the same fds a worker gets (0 listening socket, 1/2 output
 * pipe, 3 scoreboard, 4 slowlog).  The messages, one per packet:
 *
 *   preload -> master   "ready"                 the app is imported
 *   master -> preload   "spawn SLOT MAXREQ"     + SCM_RIGHTS: the new worker's
 *                                               output pipe (its fds 1 and 2)
 *   preload -> master   "pid PID" | "error ERRNO"
 *
 * Workers are the master's children, not ours: we fork with a raw
 * clone(CLONE_PARENT | SIGCHLD), so the master reaps each worker and sees
 * its exit status exactly as for a worker it forked itself, and a dying
 * preload process takes no worker with it.  A raw clone skips glibc's
 * fork handlers (malloc arena locks, stdio locks, pthread_atfork): that is
 * safe only while this process has a single thread, as then no other
 * thread can hold one of those locks at the moment of the clone.  So the
 * preload process starts no thread, and refuses an application that
 * started one while importing (a thread would not survive into the
 * workers anyway).  Python's own at-fork work (GIL, import lock, random
 * reseed, os.register_at_fork hooks, threading) is done by
 * python_fork_with() around the clone.
 */
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/worker.h"

#define EXIT_APP	3
#define EXIT_OSERR	71

/* fork(2) whose child is our parent's child (see the top of the file). */
static pid_t
clone_sibling(void)
{
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* How many threads this process has, from /proc/self/task; -1 if unknown. */
static int
thread_count(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir("/proc/self/task")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int
ctl_send(int ctl, const char *msg)
{
	ssize_t n;

	while ((n = send(ctl, msg, strlen(msg), MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	return n == (ssize_t)strlen(msg) ? 0 : -1;
}

/*
 * Receive one command from the master into BUF (NUL-terminated) and the
 * fd passed with it into *FD (-1 if none).  Returns the length, 0 when
 * the master closed its end, -1 on error.
 */
static ssize_t
ctl_recv(int ctl, char *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { buf, len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	while ((n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	}
	return n;
}

/*
 * In a new worker: blank "--preload=FD" in our command line (the memory
 * /proc/PID/cmdline and ps read), so the worker shows as a plain worker
 * and the preload process stays the one that says --preload.  Only that
 * argument's bytes change: opts point into the others.
 */
static void
cmdline_drop_preload(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i] != NULL && strncmp(argv[i], "--preload", 9) == 0)
			memset(argv[i], '\0', strlen(argv[i]));
	}
}

/* Handle one "spawn" command: 0 in the new worker, 1 in this process. */
static int
spawn(struct worker_opts *opts, int ctl, const char *cmd, int out_fd, int argc,
    char **argv)
{
	long slot, maxreq;
	char reply[64];
	pid_t pid;

	if (sscanf(cmd, "spawn %ld %ld", &slot, &maxreq) != 2 || slot < 0 || maxreq < 0 ||
	    out_fd == -1) {
		wlog(WLOG_ERROR, "preload: bad command from the master: '%s'", cmd);
		snprintf(reply, sizeof(reply), "error %d", EINVAL);
		ctl_send(ctl, reply);
		return 1;
	}
	if ((pid = python_fork_with(clone_sibling)) == 0) {
		/* the new worker: its own output pipe, its slot, no control socket */
		if (dup2(out_fd, STDOUT_FILENO) == -1 || dup2(out_fd, STDERR_FILENO) == -1)
			_exit(EXIT_OSERR);
		close(out_fd);
		close(ctl);
		opts->scoreboard_slot = (int)slot;
		opts->max_requests = maxreq;
		opts->preload_fd = -1;
		cmdline_drop_preload(argc, argv);
		return 0;
	}
	if (pid == -1) {
		wlog(WLOG_ERROR, "preload: cannot fork a worker: %s", strerror(errno));
		snprintf(reply, sizeof(reply), "error %d", errno);
	} else
		snprintf(reply, sizeof(reply), "pid %ld", (long)pid);
	close(out_fd);
	if (ctl_send(ctl, reply) == -1) {
		/* the master is gone; the worker it never heard of exits with it */
		wlog(WLOG_ERROR, "preload: control socket: %s", strerror(errno));
		_exit(0);
	}
	return 1;
}

/* See worker.h. */
void
preload_run(struct worker_opts *opts, int sig_fd, int argc, char **argv)
{
	int ctl = opts->preload_fd, threads, fd;
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	char cmd[128];
	ssize_t n;

	if (python_init(opts) == -1)
		exit(EXIT_APP);
	if ((threads = thread_count()) > 1) {
		wlog(WLOG_ERROR, "preload: the application started %d thread%s while "
		    "importing; workers are forked from this process, and a thread "
		    "does not survive a fork: start threads in the workers (on the "
		    "first request) or set preload = no", threads - 1,
		    threads - 1 == 1 ? "" : "s");
		exit(EXIT_APP);
	}
	/* the workers' collections must not write to what they share with us */
	python_gc_freeze();
	if (ctl_send(ctl, "ready") == -1) {
		wlog(WLOG_ERROR, "preload: control socket: %s", strerror(errno));
		exit(EXIT_OSERR);
	}
	wlog(WLOG_DEBUG, "preload process %d ready: %s", (int)getpid(), opts->module);

	pfd[0].fd = ctl;
	pfd[0].events = POLLIN;
	pfd[1].fd = sig_fd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			wlog(WLOG_ERROR, "preload: poll: %s", strerror(errno));
			exit(EXIT_OSERR);
		}
		if ((pfd[1].revents & POLLIN) &&
		    read(sig_fd, &si, sizeof(si)) == sizeof(si) &&
		    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT ||
		    si.ssi_signo == SIGQUIT))
			_exit(0);	/* nothing in flight here; skip Python's finalization */
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if ((n = ctl_recv(ctl, cmd, sizeof(cmd), &fd)) <= 0) {
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			_exit(0);	/* the master is gone */
		}
		if (spawn(opts, ctl, cmd, fd, argc, argv) == 0)
			return;
	}
}
