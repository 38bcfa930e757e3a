/*
 * log.c - the worker's log lines: "LEVEL: message\n" on stderr.
 *
 * Under fcgi-pm, stderr is a pipe the master reads; it adds time, pool
 * and pid.  Each line goes out in one write(2), so lines from several
 * threads never interleave (a pipe write up to PIPE_BUF is atomic).
 * No locks, no stdio: callable from any thread, with or without the GIL.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "embed/fcgi.h"

#define LINE_MAX_LEN	4000	/* one line, truncated beyond: keeps the write atomic */

static _Atomic int max_level = WLOG_NOTICE;

static const char *const level_names[] = {
	[WLOG_ERROR] = "ERROR",
	[WLOG_WARNING] = "WARNING",
	[WLOG_NOTICE] = "NOTICE",
	[WLOG_DEBUG] = "DEBUG",
};

/* Set the most verbose level written. */
void
wlog_set_level(enum wlog_level l)
{
	atomic_store(&max_level, l);
}

static void
write_line(const char *prefix, size_t plen, const char *s, size_t len)
{
	char line[LINE_MAX_LEN + 32];
	size_t n;

	if (len > LINE_MAX_LEN)
		len = LINE_MAX_LEN;
	memcpy(line, prefix, plen);
	memcpy(line + plen, s, len);
	n = plen + len;
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, n) == -1 && errno == EINTR)
		;
}

static void
vlog(enum wlog_level l, const char *fmt, va_list ap)
{
	char buf[8192], *msg = buf, *heap = NULL, prefix[16];
	const char *p, *end, *nl;
	size_t plen;
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0) {
		va_end(ap2);
		return;
	}
	/* Tracebacks can be long: format them whole rather than cut them. */
	if ((size_t)n >= sizeof(buf) && (heap = malloc((size_t)n + 1)) != NULL) {
		vsnprintf(heap, (size_t)n + 1, fmt, ap2);
		msg = heap;
	} else if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	va_end(ap2);

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s: ", level_names[l]);
	end = msg + n;
	while (end > msg && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	for (p = msg; p < end || p == msg; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		write_line(prefix, plen, p, (size_t)(nl - p));
		if (nl >= end)
			break;
	}
	free(heap);
}

/* Write one message at level L; multi-line messages become several lines. */
void
wlog(enum wlog_level l, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if ((int)l > atomic_load(&max_level))
		return;
	va_start(ap, fmt);
	vlog(l, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* Like wlog(), unless RL says this kind of line is flooding. */
void
wlog_limited(struct wlog_ratelimit *rl, enum wlog_level l, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;
	long now, w;
	int saved = errno, missed;

	if ((int)l > atomic_load(&max_level))
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = ts.tv_sec;
	w = atomic_load(&rl->window);
	if (now - w >= rl->interval &&
	    atomic_compare_exchange_strong(&rl->window, &w, now))
		atomic_store(&rl->count, 0);
	if (atomic_fetch_add(&rl->count, 1) >= rl->burst) {
		atomic_fetch_add(&rl->missed, 1);
		errno = saved;
		return;
	}
	if ((missed = atomic_exchange(&rl->missed, 0)) > 0)
		wlog(l, "(%d similar messages suppressed in the last %d s)",
		    missed, rl->interval);
	va_start(ap, fmt);
	vlog(l, fmt, ap);
	va_end(ap);
	errno = saved;
}
