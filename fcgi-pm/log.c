/*
 * log.c - the master's log: one line per event, one write(2) per line.
 *
 * "[25-Nov-2026 18:40:00.123] WARNING: [pool catalog] pid 4242: message"
 * to stderr, or to the error_log file opened O_APPEND so that logrotate's
 * copy-free rotation works with a USR1 to reopen it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"

static int log_fd = STDERR_FILENO;
static char *log_path;			/* NULL = stderr */
static enum log_level log_max = LOG_LVL_NOTICE;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "ERROR",
	[LOG_LVL_WARNING] = "WARNING",
	[LOG_LVL_NOTICE] = "NOTICE",
	[LOG_LVL_DEBUG] = "DEBUG",
};

static bool
is_stderr(const char *path)
{
	return path == NULL || *path == '\0' || strcmp(path, "stderr") == 0;
}

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/*
 * Send log lines to PATH (NULL or "stderr": standard error).  Returns 0, or
 * -1 with errno set and the previous destination kept.
 */
int
log_open(const char *path)
{
	char *copy = NULL;
	int fd = STDERR_FILENO;

	if (!is_stderr(path)) {
		if ((copy = strdup(path)) == NULL)
			return -1;
		if ((fd = open_file(path)) == -1) {
			free(copy);
			return -1;
		}
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	free(log_path);
	log_fd = fd;
	log_path = copy;
	return 0;
}

/*
 * Reopen the log file under the same name (after logrotate moved it).
 * Returns 0, or -1 after logging why; the old file stays in use then.
 */
int
log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return 0;
	if ((fd = open_file(log_path)) == -1) {
		log_error(NULL, 0, "error_log %s: cannot reopen: %s", log_path,
		    strerror(errno));
		return -1;
	}
	close(log_fd);
	log_fd = fd;
	return 0;
}

/* Only lines at level L or more severe are written. */
void
log_set_level(enum log_level l)
{
	log_max = l;
}

/* Parse "error", "warning", "notice" or "debug" into *OUT.  0 or -1. */
int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void
log_vmsg(enum log_level l, const char *pool, pid_t pid, const char *fmt, va_list ap)
{
	char buf[4096];
	struct timespec ts;
	struct tm tm;
	size_t n, len;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "[%d-%b-%Y %H:%M:%S", &tm);
	r = snprintf(buf + n, sizeof(buf) - n, ".%03ld] %s: ",
	    ts.tv_nsec / 1000000, level_names[l]);
	n += (size_t)r;
	if (pool != NULL) {
		r = snprintf(buf + n, sizeof(buf) - n, "[pool %s] ", pool);
		n = r < 0 ? n : n + (size_t)r;
	}
	if (pid > 0 && n < sizeof(buf)) {
		r = snprintf(buf + n, sizeof(buf) - n, "pid %ld: ", (long)pid);
		n = r < 0 ? n : n + (size_t)r;
	}
	if (n < sizeof(buf)) {
		r = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
		n = r < 0 ? n : n + (size_t)r;
	}
	/* a line too long is cut, but it still ends the line */
	len = n < sizeof(buf) - 1 ? n : sizeof(buf) - 2;
	buf[len++] = '\n';
	while (write(log_fd, buf, len) == -1 && errno == EINTR)
		;
}

/*
 * Log one event at level L.  POOL (or NULL) and PID (or 0) say whom it is
 * about; FMT must not end with a newline.  errno is preserved.
 */
void
log_msg(enum log_level l, const char *pool, pid_t pid, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (l > log_max)
		return;
	va_start(ap, fmt);
	log_vmsg(l, pool, pid, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* Log an error and exit 1: only before the loop runs, or for a broken invariant. */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
