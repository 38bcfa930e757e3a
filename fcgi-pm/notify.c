/*
 * notify.c - tell systemd how the master is doing (Type=notify), without
 * libsystemd.
 *
 * sd_notify(3) is one datagram of "KEY=VALUE\n" lines to the unix socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for an abstract socket).
 * The master sends READY=1 once every pool's socket listens and its
 * workers are started, RELOADING=1 / READY=1 around a reload, STOPPING=1
 * when it stops, MAINPID= after -D detaches, and a STATUS= line with the
 * pools' worker counts that `systemctl status` shows.  Without
 * $NOTIFY_SOCKET every call is a no-op.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

#define NOTIFY_STATUS_MS	3000	/* STATUS= at most this often */

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static bool notify_failed;		/* a send failed: warned once */
static char status_sent[256];		/* the last STATUS= text */
static uint64_t status_sent_ms;

/*
 * Read $NOTIFY_SOCKET and open a datagram socket for it (CLOEXEC), then
 * remove the variable from the environment so that workers and the
 * applications in them do not talk to systemd in the master's name.
 * Returns 0 (also when the variable is unset: notifications are off), or
 * -1 after logging why (notifications are off then too).
 */
int
notify_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t len;

	if (e == NULL || *e == '\0')
		return 0;
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	len = strlen(e);
	if ((*e != '/' && *e != '@') || len >= sizeof(notify_addr.sun_path)) {
		log_warning(NULL, 0, "NOTIFY_SOCKET=%s: not a unix socket path or @name; "
		    "not notifying systemd", e);
		unsetenv("NOTIFY_SOCKET");
		return -1;
	}
	memcpy(notify_addr.sun_path, e, len);
	if (*e == '@')
		notify_addr.sun_path[0] = '\0';	/* abstract: no NUL at the end */
	else
		len++;
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warning(NULL, 0, "NOTIFY_SOCKET=%s: socket: %s; not notifying systemd",
		    e, strerror(errno));
		unsetenv("NOTIFY_SOCKET");
		return -1;
	}
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

/* True if $NOTIFY_SOCKET was set and usable. */
bool
notify_enabled(void)
{
	return notify_fd != -1;
}

/*
 * Send one notification, "KEY=VALUE" lines separated by '\n' (printf
 * format).  Returns 0 (also when notifications are off), or -1 when the
 * datagram could not be sent; the first failure is logged.
 */
int
notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd == -1)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = (int)strlen(msg);
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_addr, notify_len) == -1) {
		if (!notify_failed)
			log_warning(NULL, 0, "cannot notify systemd on NOTIFY_SOCKET: %s",
			    strerror(errno));
		notify_failed = true;
		return -1;
	}
	notify_failed = false;
	return 0;
}

/*
 * Write "3 pools, 12 workers (8 idle, 4 busy)" for POOLS (N of them) into
 * BUF (LEN bytes): live workers not told to stop, idle or busy from their
 * scoreboard slots; workers still loading the application are "starting".
 * Returns BUF.
 */
const char *
notify_status_text(const struct pool *pools, size_t n, char *buf, size_t len)
{
	int workers = 0, idle = 0, busy = 0, starting = 0;

	for (size_t i = 0; i < n; i++) {
		const struct pool *p = &pools[i];
		uint32_t nthreads;

		if (p->workers == NULL || p->sb.hdr == NULL)
			continue;
		nthreads = p->sb.hdr->nthreads;
		for (int j = 0; j < p->nslots; j++) {
			const struct worker *w = &p->workers[j];
			struct sb_slot_view v;
			bool is_busy = false;

			if (w->pid == 0 || w->ending)
				continue;
			workers++;
			sb_slot_read(&p->sb, (uint32_t)j, &v);
			if (v.state != SB_WORKER_READY || v.pid != w->pid) {
				starting++;
				continue;
			}
			for (uint32_t t = 0; t < nthreads && !is_busy; t++) {
				struct sb_thread th;

				if (sb_thread_read(&p->sb, (uint32_t)j, t, &th) == 0 &&
				    th.state != SB_THREAD_IDLE)
					is_busy = true;
			}
			if (is_busy)
				busy++;
			else
				idle++;
		}
	}
	if (starting > 0)
		snprintf(buf, len, "%zu pool%s, %d worker%s (%d idle, %d busy, %d starting)",
		    n, n == 1 ? "" : "s", workers, workers == 1 ? "" : "s", idle, busy,
		    starting);
	else
		snprintf(buf, len, "%zu pool%s, %d worker%s (%d idle, %d busy)",
		    n, n == 1 ? "" : "s", workers, workers == 1 ? "" : "s", idle, busy);
	return buf;
}

/*
 * Send STATUS= with the pools' worker counts if they changed and the last
 * one is at least NOTIFY_STATUS_MS old, or at once when FORCE.  Called
 * from the master's tick.
 */
void
notify_status(const struct pool *pools, size_t n, uint64_t now_ms, bool force)
{
	char text[sizeof(status_sent)];

	if (notify_fd == -1)
		return;
	if (!force && now_ms - status_sent_ms < NOTIFY_STATUS_MS)
		return;
	notify_status_text(pools, n, text, sizeof(text));
	if (!force && strcmp(text, status_sent) == 0)
		return;
	if (notify_send("STATUS=%s", text) == 0) {
		memcpy(status_sent, text, sizeof(status_sent));
		status_sent_ms = now_ms;
	}
}

/*
 * READY=1 with the first STATUS= line: every pool's socket listens and its
 * workers are started (also the end of a reload).
 */
int
notify_ready(const struct pool *pools, size_t n, uint64_t now_ms)
{
	char text[sizeof(status_sent)];

	if (notify_fd == -1)
		return 0;
	notify_status_text(pools, n, text, sizeof(text));
	if (notify_send("READY=1\nSTATUS=%s", text) == -1)
		return -1;
	memcpy(status_sent, text, sizeof(status_sent));
	status_sent_ms = now_ms;
	return 0;
}

/* RELOADING=1 with the time systemd (253 and later) uses to match the READY=1. */
int
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}
