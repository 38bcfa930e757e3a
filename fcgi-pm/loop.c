/*
 * loop.c - the master's event loop: epoll, a signalfd, a timerfd tick.
 *
 * Signals are blocked and read from a signalfd, so no handler ever runs and
 * no system call is interrupted: a signal is just another event, handled in
 * order with the others.  Watches live in a table indexed by fd with a
 * generation number in the epoll data, so an event already returned for an
 * fd that a callback has since closed (and perhaps reused) is dropped.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"

struct watch {
	loop_fd_cb *cb;
	void *arg;
	uint32_t gen;			/* 0 = not watched */
};

static int epfd = -1, sigfd = -1, timfd = -1;
static struct watch *watches;
static size_t nwatches;
static uint32_t next_gen = 1;
static bool running;
static loop_signal_cb *signal_cb;
static loop_tick_cb *tick_cb;

/* The signals the master acts on; all of them arrive through the signalfd. */
static const int loop_signals[] = {
	SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD,
};

/* CLOCK_MONOTONIC in milliseconds: for ages, deadlines and backoff. */
uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
add_raw(int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * Create the loop: block the master's signals and read them from a
 * signalfd (ON_SIGNAL gets each one), and call ON_TICK every TICK_MS.
 * SIGPIPE is ignored: a write to a closed pipe returns EPIPE instead.
 * Returns 0, or -1 with errno set.
 */
int
loop_init(loop_signal_cb *on_signal, loop_tick_cb *on_tick, long tick_ms)
{
	struct itimerspec its;
	sigset_t set;

	signal_cb = on_signal;
	tick_cb = on_tick;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(loop_signals) / sizeof(loop_signals[0]); i++)
		sigaddset(&set, loop_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -1;
	signal(SIGPIPE, SIG_IGN);

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		goto fail;
	if ((sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		goto fail;
	if ((timfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) == -1)
		goto fail;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = tick_ms / 1000;
	its.it_value.tv_nsec = (tick_ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	if (timerfd_settime(timfd, 0, &its, NULL) == -1)
		goto fail;
	/* data values 0 and 1 are ours: user watches carry a generation >= 1 in the high half */
	if (add_raw(sigfd, EPOLLIN, 0) == -1 || add_raw(timfd, EPOLLIN, 1) == -1)
		goto fail;
	return 0;
fail:
	loop_free();
	return -1;
}

/*
 * Call CB(fd, events, ARG) whenever FD has one of EVENTS (EPOLLIN...).
 * The caller keeps owning FD and must loop_unwatch() it before closing it.
 * Returns 0, or -1 with errno set.
 */
int
loop_watch(int fd, uint32_t events, loop_fd_cb *cb, void *arg)
{
	struct watch *w;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd >= nwatches) {
		size_t n = (size_t)fd + 64;

		if ((w = realloc(watches, n * sizeof(*w))) == NULL)
			return -1;
		memset(w + nwatches, 0, (n - nwatches) * sizeof(*w));
		watches = w;
		nwatches = n;
	}
	w = &watches[fd];
	w->cb = cb;
	w->arg = arg;
	w->gen = ++next_gen;
	if (add_raw(fd, events, (uint64_t)w->gen << 32 | (uint32_t)fd) == -1) {
		w->gen = 0;
		return -1;
	}
	return 0;
}

/* Stop watching FD (before the caller closes it).  Harmless if not watched. */
void
loop_unwatch(int fd)
{
	if (fd < 0 || (size_t)fd >= nwatches || watches[fd].gen == 0)
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	watches[fd].gen = 0;
}

static void
read_signals(void)
{
	struct signalfd_siginfo si[16];
	ssize_t n;

	while ((n = read(sigfd, si, sizeof(si))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
			signal_cb((int)si[i].ssi_signo);
	}
}

static void
read_tick(void)
{
	uint64_t expirations;

	/* several missed ticks are one tick: the handler looks at the clock */
	if (read(timfd, &expirations, sizeof(expirations)) > 0)
		tick_cb(loop_now_ms());
}

/*
 * Dispatch events until a callback calls loop_exit().  Returns 0 then, or
 * -1 if epoll_wait fails for a reason other than EINTR.
 */
int
loop_run(void)
{
	struct epoll_event ev[64];
	int n;

	running = true;
	while (running) {
		if ((n = epoll_wait(epfd, ev, 64, -1)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n && running; i++) {
			uint64_t d = ev[i].data.u64;
			int fd = (int)(uint32_t)d;
			uint32_t gen = (uint32_t)(d >> 32);

			if (d == 0)
				read_signals();
			else if (d == 1)
				read_tick();
			else if ((size_t)fd < nwatches && watches[fd].gen == gen)
				watches[fd].cb(fd, ev[i].events, watches[fd].arg);
		}
	}
	return 0;
}

/* Make loop_run() return after the current callback. */
void
loop_exit(void)
{
	running = false;
}

/* Close the loop's fds and forget every watch; signals stay blocked. */
void
loop_free(void)
{
	if (timfd != -1)
		close(timfd);
	if (sigfd != -1)
		close(sigfd);
	if (epfd != -1)
		close(epfd);
	timfd = sigfd = epfd = -1;
	free(watches);
	watches = NULL;
	nwatches = 0;
}
