/*
 * main.c - fcgi-pm: options, start-up order, signals, shutdown.
 *
 * Start-up runs top to bottom in main(), in this order and no other:
 * parse the configuration (exit 78 on error) -> open the log -> create
 * every pool's listening socket (while root, so owner and mode can be
 * set) -> pid file (refuse to start if another instance holds it) ->
 * start the pools -> the event loop.  Leaving removes the unix sockets
 * and the pid file.
 */
#include <sys/file.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define DEFAULT_CONF		"/etc/fcgi-pm/fcgi-pm.conf"
#define TICK_MS			100	/* backoff steps start at 100 ms */
#define EXIT_LAST_RESORT_MS	5000	/* after SIGKILL, wait this long for the reaps */
#define EX_USAGE_STATUS		64

static struct conf *conf;
static struct pool *pools;
static size_t npools;
static bool stopping;
static uint64_t exit_deadline_ms;
static int pidfile_fd = -1;
static uint64_t *crash_times;		/* emergency_restart_threshold ring */
static size_t crash_next;
static size_t pools_cap;		/* the pools array's room (POOLS_CAPACITY) */
static const char *worker_path;		/* fcgi-pm-worker, for pools a reload starts */
static bool log_to_stderr;		/* -F: a reload leaves the log alone */
static struct conf **retired;		/* earlier configurations draining pools still use */
static size_t nretired;
static bool control_reopen;		/* a reload changed status_socket: reopen at the tick */

/*
 * Commands for a running master, `fcgi-pm [-c file] COMMAND [args]`: each
 * gets the loaded configuration (to find status_socket) and its own argv,
 * and returns the exit status.  status, reload, stop and reopen-logs come
 * with the status socket.
 */
struct command {
	const char *name;
	int (*run)(const struct conf *c, int argc, char **argv);
};

static const struct command commands[] = {
	{ "status", ctl_status },
	{ "reload", ctl_reload },
	{ "restart", ctl_restart },
	{ "stop", ctl_stop },
	{ "reopen-logs", ctl_reopen_logs },
	{ NULL, NULL },
};

static const struct command *
find_command(const char *name)
{
	for (const struct command *c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: fcgi-pm [-FDt] [-c file]\n"
	    "       fcgi-pm [-c file] status [POOL] [--full] [--json|--prometheus|--openmetrics]\n"
	    "       fcgi-pm [-c file] reload [POOL] | restart [POOL] | stop [--graceful] | "
	    "reopen-logs\n"
	    "  -c file    configuration file (default " DEFAULT_CONF ")\n"
	    "  -F         stay in the foreground and log to stderr\n"
	    "  -D         run in the background (daemon)\n"
	    "  -t         test the configuration and exit (0 good, 78 bad)\n"
	    "  --help     this text\n"
	    "  --version  print the version\n");
	exit(status);
}

/* (Re)write our pid into the locked pid file PATH.  0, or -1 after logging why. */
static int
pidfile_write(const char *path)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(pidfile_fd, 0) == -1 || pwrite(pidfile_fd, buf, (size_t)n, 0) != n) {
		log_error(NULL, 0, "pid_file %s: cannot write it: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Lock and write the pid file PATH.  Returns 0, or -1 after logging why
 * (another live instance holds the lock, or the file cannot be written).
 * The lock lives as long as the process, so a crashed master never blocks
 * the next start; workers do not inherit it (CLOEXEC).
 */
static int
pidfile_open(const char *path)
{
	char buf[32];
	ssize_t n;

	if ((pidfile_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644)) == -1) {
		log_error(NULL, 0, "pid_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(pidfile_fd, LOCK_EX | LOCK_NB) == -1) {
		n = errno == EWOULDBLOCK ? pread(pidfile_fd, buf, sizeof(buf) - 1, 0) : -1;
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (n > 0)
			log_error(NULL, 0, "pid_file %s: fcgi-pm is already running as pid %s; "
			    "stop it first or set another pid_file", path, buf);
		else
			log_error(NULL, 0, "pid_file %s: cannot lock it: %s", path,
			    strerror(errno));
		close(pidfile_fd);
		pidfile_fd = -1;
		return -1;
	}
	if (pidfile_write(path) == -1) {
		unlink(path);
		close(pidfile_fd);
		pidfile_fd = -1;
		return -1;
	}
	return 0;
}

static void
pidfile_remove(const char *path)
{
	if (pidfile_fd == -1)
		return;
	unlink(path);
	close(pidfile_fd);
	pidfile_fd = -1;
}

static void
stop(bool graceful, uint64_t now)
{
	long bound = conf->process_control_timeout_ms > 0 ?
	    conf->process_control_timeout_ms : 10000;

	if (!stopping)
		exit_deadline_ms = now + (uint64_t)(graceful ? bound : POOL_TERM_KILL_MS) +
		    EXIT_LAST_RESORT_MS;
	else if (!graceful && exit_deadline_ms > now + POOL_TERM_KILL_MS + EXIT_LAST_RESORT_MS)
		exit_deadline_ms = now + POOL_TERM_KILL_MS + EXIT_LAST_RESORT_MS;
	if (!stopping)
		notify_send("STOPPING=1\nSTATUS=stopping%s", graceful ? " gracefully" : "");
	stopping = true;
	pools_stop(pools, npools, graceful);
	if (pools_stopped(pools, npools))
		loop_exit();
}

/*
 * php-fpm's safety net: emergency_restart_threshold crashes (SIGSEGV,
 * SIGBUS) within emergency_restart_interval restart every pool gracefully,
 * for a crash that comes from state the workers share (a bad file, a
 * broken shared library).
 */
static void
note_crashes(int count, uint64_t now)
{
	size_t t = (size_t)conf->emergency_restart_threshold;
	uint64_t oldest;

	if (crash_times == NULL || count <= 0)
		return;
	for (int i = 0; i < count; i++) {
		crash_times[crash_next] = now;
		crash_next = (crash_next + 1) % t;
	}
	/* the ring's next slot holds the oldest of the last t crashes (0: fewer yet) */
	oldest = crash_times[crash_next];
	if (oldest == 0 || now - oldest > (uint64_t)conf->emergency_restart_interval_ms)
		return;
	log_warning(NULL, 0, "%zu workers crashed within %.1fs: restarting every pool "
	    "gracefully (emergency_restart_threshold %d, emergency_restart_interval %.1fs)",
	    t, (double)(now - oldest) / 1000.0, conf->emergency_restart_threshold,
	    (double)conf->emergency_restart_interval_ms / 1000.0);
	memset(crash_times, 0, t * sizeof(*crash_times));
	pools_restart(pools, npools, false);
}

/* Does some open pool still use a pool_conf of C? */
static bool
conf_in_use(const struct conf *c)
{
	for (size_t i = 0; i < npools; i++) {
		const struct pool_conf *pc = pools[i].conf;

		if (!pool_unused(&pools[i]) && pc >= c->pools && pc < c->pools + c->npools)
			return true;
	}
	return false;
}

/* Free the earlier configurations no pool uses any more. */
static void
retired_sweep(void)
{
	size_t k = 0;

	for (size_t i = 0; i < nretired; i++) {
		if (conf_in_use(retired[i]))
			retired[k++] = retired[i];
		else
			conf_free(retired[i]);
	}
	nretired = k;
}

static int
retire_conf(struct conf *c)
{
	struct conf **r = realloc(retired, (nretired + 1) * sizeof(*r));

	if (r == NULL)
		return -1;
	retired = r;
	retired[nretired++] = c;
	return 0;
}

/* The main file's settings that only a restart applies: say so. */
static void
warn_restart_only(const struct conf *o, const struct conf *n)
{
	static const char *const what[] = { "pid_file", "worker_binary" };
	const char *const ov[] = { o->pid_file, o->worker_binary };
	const char *const nv[] = { n->pid_file, n->worker_binary };

	for (size_t i = 0; i < 2; i++) {
		if ((ov[i] == NULL) != (nv[i] == NULL) ||
		    (ov[i] != NULL && strcmp(ov[i], nv[i]) != 0))
			log_warning(NULL, 0, "reload: %s changed; it takes effect when "
			    "fcgi-pm is restarted", what[i]);
	}
	if (o->emergency_restart_threshold != n->emergency_restart_threshold ||
	    o->emergency_restart_interval_ms != n->emergency_restart_interval_ms)
		log_warning(NULL, 0, "reload: emergency_restart_threshold/interval changed; "
		    "they take effect when fcgi-pm is restarted");
}

/*
 * Reload: read the main file again and apply the difference to the pools
 * (only pool ONLY if not NULL).  A configuration with errors is refused,
 * every error logged and written to MSG, and the running one kept.
 * 0, or -1 (MSG says why).
 */
static int
do_reload(const char *only, struct buf *msg)
{
	enum log_level level = LOG_LVL_NOTICE;
	char err[8192];
	struct conf *nc;
	int rc;

	if (stopping) {
		buf_printf(msg, "fcgi-pm is stopping: no reload");
		return -1;
	}
	err[0] = '\0';
	if ((nc = conf_load(conf->file, err, sizeof(err))) == NULL ||
	    (nc->log_level != NULL && log_level_parse(nc->log_level, &level) == -1) ||
	    conf_check_system(nc, err, sizeof(err)) == -1) {
		if (nc != NULL && err[0] == '\0')	/* the log_level case */
			snprintf(err, sizeof(err), "%s: option 'log_level': '%s' is not "
			    "error, warning, notice or debug", nc->file, nc->log_level);
		/* the reply first: the log loop below cuts ERR into lines */
		buf_printf(msg, "the configuration has errors; the running one is kept:\n%s",
		    err[0] ? err : "cannot load it\n");
		for (char *line = err, *next; *line != '\0'; line = next) {
			next = line + strcspn(line, "\n");
			if (*next == '\n')
				*next++ = '\0';
			if (*line != '\0')
				log_error(NULL, 0, "reload refused: %s", line);
		}
		log_error(NULL, 0, "reload refused: %s has errors; the running configuration "
		    "is kept", conf->file);
		conf_free(nc);
		return -1;
	}
	/* conf_check_system's warnings (a python_path entry that does not exist) */
	for (char *line = err, *next; *line != '\0'; line = next) {
		next = line + strcspn(line, "\n");
		if (*next == '\n')
			*next++ = '\0';
		if (*line != '\0')
			log_warning(NULL, 0, "reload: %s", line);
	}
	log_notice(NULL, 0, "reloading %s%s%s", nc->file, only ? " for pool " : "",
	    only ? only : "");
	notify_reloading();
	rc = reload_apply(pools, &npools, pools_cap, nc, only, worker_path, msg);
	if (only == NULL) {
		log_set_level(level);
		if (!log_to_stderr && (conf->error_log == NULL) != (nc->error_log == NULL))
			log_open(nc->error_log);
		else if (!log_to_stderr && nc->error_log != NULL &&
		    strcmp(conf->error_log, nc->error_log) != 0 && log_open(nc->error_log) == -1)
			log_error(NULL, 0, "reload: error_log %s: %s; logging on to the old one",
			    nc->error_log, strerror(errno));
		if (!control_same(conf, nc))
			control_reopen = true;
		warn_restart_only(conf, nc);
		if (retire_conf(conf) == 0)
			conf = nc;
		else
			retire_conf(nc);	/* (best effort when out of memory) */
	} else
		retire_conf(nc);
	retired_sweep();
	notify_ready(pools, npools, loop_now_ms());
	log_notice(NULL, 0, "reload %s", rc == 0 ? "done" : "done with errors (see above)");
	return rc;
}

/* restart [POOL]: roll the workers of POOL, or of every pool. */
static int
do_restart(const char *pool, struct buf *msg)
{
	if (stopping) {
		buf_printf(msg, "fcgi-pm is stopping");
		return -1;
	}
	if (pool == NULL) {
		log_notice(NULL, 0, "restart requested: restarting every pool's workers "
		    "gracefully");
		pools_restart(pools, npools, true);
		buf_printf(msg, "restarting every pool's workers\n");
		return 0;
	}
	for (size_t i = 0; i < npools; i++) {
		if (pools[i].state == POOL_RUNNING && !pool_unused(&pools[i]) &&
		    strcmp(pools[i].conf->name, pool) == 0) {
			pools_restart(&pools[i], 1, true);
			buf_printf(msg, "restarting pool %s's workers\n", pool);
			return 0;
		}
	}
	buf_printf(msg, "no running pool named %s", pool);
	return -1;
}

static int
do_stop(bool graceful, struct buf *msg)
{
	(void)msg;
	log_notice(NULL, 0, "stop requested on the status socket: stopping %s",
	    graceful ? "gracefully, workers finish their requests" : "now");
	stop(graceful, loop_now_ms());
	return 0;
}

static int
do_reopen_logs(struct buf *msg)
{
	if (log_reopen() == -1) {
		buf_printf(msg, "cannot reopen error_log: %s", strerror(errno));
		return -1;
	}
	log_notice(NULL, 0, "error_log reopened");
	buf_printf(msg, "error_log reopened\n");
	return 0;
}

static void
get_pools(struct pool **p, size_t *n)
{
	*p = pools;
	*n = npools;
}

static const struct control_ops control_ops = {
	.reload = do_reload,
	.restart = do_restart,
	.stop = do_stop,
	.reopen_logs = do_reopen_logs,
	.pools = get_pools,
};

static void
on_signal(int signo)
{
	const char *name = sigabbrev_np(signo);

	switch (signo) {
	case SIGCHLD:
		note_crashes(pools_reap(pools, npools), loop_now_ms());
		if (stopping && pools_stopped(pools, npools))
			loop_exit();
		break;
	case SIGTERM:
	case SIGINT:
		log_notice(NULL, 0, "SIG%s: stopping now, workers get SIGTERM", name);
		stop(false, loop_now_ms());
		break;
	case SIGQUIT:
		log_notice(NULL, 0, "SIGQUIT: stopping gracefully, workers get SIGQUIT "
		    "and finish their requests");
		stop(true, loop_now_ms());
		break;
	case SIGUSR1:
		if (log_reopen() == 0)
			log_notice(NULL, 0, "SIGUSR1: error_log reopened");
		break;
	case SIGHUP: {
		struct buf msg = { 0 };

		log_notice(NULL, 0, "SIGHUP: reloading the configuration");
		do_reload(NULL, &msg);
		buf_free(&msg);
		break;
	}
	case SIGUSR2:
		log_notice(NULL, 0, "SIGUSR2: restarting every pool's workers gracefully");
		pools_restart(pools, npools, true);
		break;
	}
}

static void
on_tick(uint64_t now)
{
	pools_tick(pools, npools, now);
	pools_roll(pools, npools, now);
	control_tick(now);
	if (!stopping) {
		status_sample(pools, npools);
		reload_sweep(pools, npools);
		retired_sweep();
		if (control_reopen) {
			control_reopen = false;
			control_close();
			if (control_open(conf, &control_ops) == -1)
				log_error(NULL, 0, "the status socket is closed until the next "
				    "reload or restart");
		}
		notify_status(pools, npools, now, false);
		return;
	}
	if (pools_stopped(pools, npools))
		loop_exit();
	else if (now >= exit_deadline_ms) {
		log_error(NULL, 0, "workers still alive %ds after SIGKILL; exiting without "
		    "them", EXIT_LAST_RESORT_MS / 1000);
		loop_exit();
	}
}

/* -t: what conf_load does not check but the start would refuse. */
static int
test_conf(const struct conf *c)
{
	struct listen_addr a;
	char err[512];
	int rc = 0;

	for (size_t i = 0; i < c->npools; i++) {
		if (sock_parse(c->pools[i].listen, &a, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s:%d: pool %s: option 'listen': %s\n",
			    c->pools[i].file ? c->pools[i].file : c->file, c->pools[i].line,
			    c->pools[i].name, err);
			rc = -1;
		}
		if (geteuid() == 0 && c->pools[i].user == NULL && !c->pools[i].allow_root) {
			fprintf(stderr, "%s:%d: pool %s: option 'user': not set, so workers "
			    "would run as root; set user, or allow_root = true\n",
			    c->pools[i].file ? c->pools[i].file : c->file, c->pools[i].line,
			    c->pools[i].name);
			rc = -1;
		}
	}
	return rc;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conffile = DEFAULT_CONF;
	bool foreground = false, daemonize = false, test = false;
	char err[8192], binary[PATH_MAX];
	enum log_level level = LOG_LVL_NOTICE;
	int ch, status = 0;

	while ((ch = getopt_long(argc, argv, "+c:DFt", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conffile = optarg;
			break;
		case 'D':
			daemonize = true;
			break;
		case 'F':
			foreground = true;
			break;
		case 't':
			test = true;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("fcgi-pm %s\n", FCGI_PM_VERSION);
			return 0;
		default:
			usage(EX_USAGE_STATUS);
		}
	}
	/* "+" above: options after a command word are the command's own */
	if (optind < argc && find_command(argv[optind]) == NULL) {
		fprintf(stderr, "fcgi-pm: unknown command '%s'\n", argv[optind]);
		usage(EX_USAGE_STATUS);
	}
	if (foreground && daemonize) {
		fprintf(stderr, "fcgi-pm: -F and -D contradict each other\n");
		usage(EX_USAGE_STATUS);
	}

	/* 1. the configuration */
	err[0] = '\0';
	if ((conf = conf_load(conffile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s%s", err[0] ? err : "fcgi-pm: cannot load the configuration\n",
		    err[0] && err[strlen(err) - 1] != '\n' ? "\n" : "");
		if (optind < argc) {
			struct conf fb;

			/* the daemon keeps its configuration: reach it all the same */
			if (ctl_conf_fallback(conffile, &fb) == 0) {
				fprintf(stderr, "fcgi-pm: warning: the configuration has the "
				    "errors above; status_socket %s found in %s\n",
				    fb.status_socket, conffile);
				status = find_command(argv[optind])->run(&fb, argc - optind,
				    argv + optind);
				free(fb.status_socket);
				return status;
			}
			fprintf(stderr, "fcgi-pm: %s not sent: no status_socket found in %s\n",
			    argv[optind], conffile);
		}
		return EX_CONFIG_STATUS;
	}
	if (conf->log_level != NULL && log_level_parse(conf->log_level, &level) == -1) {
		fprintf(stderr, "%s: option 'log_level': '%s' is not error, warning, "
		    "notice or debug\n", conf->file ? conf->file : conffile, conf->log_level);
		conf_free(conf);
		return EX_CONFIG_STATUS;
	}
	/* a command needs only status_socket: no -t checks (they depend on who runs it) */
	if (optind < argc) {
		const struct command *cmd = find_command(argv[optind]);

		status = cmd->run(conf, argc - optind, argv + optind);
		conf_free(conf);
		return status;
	}
	/*
	 * Users, groups and paths, before any socket is made: -t and the start
	 * refuse alike what could not run here (stderr: the log is not open yet).
	 */
	err[0] = '\0';
	int sys_rc = conf_check_system(conf, err, sizeof(err));
	fputs(err, stderr);
	if (test_conf(conf) == -1 || sys_rc == -1) {
		conf_free(conf);
		return EX_CONFIG_STATUS;
	}
	if (test) {
		printf("fcgi-pm: the configuration file %s syntax is ok, %zu pools\n",
		    conffile, conf->npools);
		conf_free(conf);
		return 0;
	}
	log_set_level(level);

	/* 2. the log */
	if (!foreground && log_open(conf->error_log) == -1) {
		fprintf(stderr, "fcgi-pm: error_log %s: %s\n", conf->error_log, strerror(errno));
		conf_free(conf);
		return 1;
	}
	if (daemonize && (conf->error_log == NULL || strcmp(conf->error_log, "stderr") == 0))
		log_warning(NULL, 0, "error_log is stderr but -D detaches from it: "
		    "log lines will be lost; set error_log");
	if (worker_find_binary(conf->worker_binary, binary, sizeof(binary)) == -1) {
		log_error(NULL, 0, "cannot find fcgi-pm-worker%s%s: %s; set worker_binary",
		    conf->worker_binary ? " at " : "",
		    conf->worker_binary ? conf->worker_binary : "", strerror(errno));
		conf_free(conf);
		return 1;
	}
	npools = conf->npools;
	pools_cap = POOLS_CAPACITY(conf->npools);
	worker_path = binary;
	log_to_stderr = foreground;
	if (npools == 0)
		log_warning(NULL, 0, "no pool is configured (include_dir %s); idle until "
		    "stopped", conf->include_dir ? conf->include_dir : "unset");

	/* systemd: the notify socket, and the listening sockets it passed (fd 3...) */
	notify_init();
	if (activate_init() == -1) {
		conf_free(conf);
		return 1;
	}

	/* 3. every listening socket, while still root */
	if (pools_open(&pools, conf, binary) == -1) {
		conf_free(conf);
		return 1;
	}
	activate_report_unused();

	/* 4. the pid file */
	if (conf->pid_file != NULL && pidfile_open(conf->pid_file) == -1) {
		pools_close(pools, npools);
		conf_free(conf);
		return 1;
	}
	/* detach only now, so a refused start still fails the command; the lock moves along */
	if (daemonize) {
		if (daemon(0, 0) == -1)
			fatal("cannot run in the background: %s", strerror(errno));
		if (conf->pid_file != NULL && pidfile_write(conf->pid_file) == -1)
			fatal("cannot record the daemon's pid");
		notify_send("MAINPID=%ld", (long)getpid());
	}

	if (conf->emergency_restart_threshold > 0 && conf->emergency_restart_interval_ms > 0 &&
	    (crash_times = calloc((size_t)conf->emergency_restart_threshold,
	    sizeof(*crash_times))) == NULL)
		fatal("out of memory");

	/* 5. the pools, 6. the loop */
	if (loop_init(on_signal, on_tick, TICK_MS) == -1)
		fatal("cannot create the event loop: %s", strerror(errno));
	if (control_open(conf, &control_ops) == -1) {
		pools_close(pools, npools);
		if (conf->pid_file != NULL)
			pidfile_remove(conf->pid_file);
		loop_free();
		conf_free(conf);
		return 1;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	log_notice(NULL, 0, "fcgi-pm %s started, pid %ld, %zu pools, worker %s",
	    FCGI_PM_VERSION, (long)getpid(), npools, binary);
	pools_start(pools, npools);
	notify_ready(pools, npools, loop_now_ms());
	if (loop_run() == -1) {
		log_error(NULL, 0, "event loop failed: %s; stopping", strerror(errno));
		pools_stop(pools, npools, false);
		status = 1;
	}

	control_close();
	pools_close(pools, npools);
	if (conf->pid_file != NULL)
		pidfile_remove(conf->pid_file);
	log_notice(NULL, 0, "exiting");
	loop_free();
	free(crash_times);
	for (size_t i = 0; i < nretired; i++)
		conf_free(retired[i]);
	free(retired);
	conf_free(conf);
	return status;
}
