/*
 * fcgi-pm.h - the supervisor's internal header: one section per source file.
 *
 * The supervisor never includes Python.h and never links libpython.
 */
#ifndef FCGI_PM_H
#define FCGI_PM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define EX_CONFIG_STATUS	78	/* sysexits.h EX_CONFIG: bad configuration */

/* ------------------------------------------------------------------ conf.c */

enum pm_mode { PM_STATIC, PM_DYNAMIC, PM_ONDEMAND };

/*
 * One `pool NAME { ... }` section, copied out of libconfuse into plain
 * values.  Strings are owned by the struct (freed by conf_free).  Durations
 * are in milliseconds, sizes in bytes; 0 means "off" where the man page
 * says so.  `$pool` in string values is already expanded.
 */
struct pool_conf {
	char *name;
	char *file;			/* where it was defined, for messages */
	int line;

	/* listening socket */
	char *listen;			/* "/path.sock", "host:port", "[v6]:port", ":port" */
	char *listen_owner;		/* unix sockets: user name, NULL = unchanged */
	char *listen_group;
	int listen_mode;		/* unix sockets: e.g. 0660 */
	int listen_backlog;
	char **listen_allowed_clients;	/* TCP only: allowed peer addresses; NULL-terminated, NULL = any */

	/* process identity and environment */
	char *user;			/* NULL = the master's user */
	char *group;
	bool allow_root;		/* workers may run as root only if set */
	int umask;			/* -1 = inherit */
	char *chdir;
	char **env;			/* "KEY=VALUE", NULL-terminated */
	bool clear_env;			/* start workers from an empty environment (plus env) */
	long rlimit_files;		/* 0 = inherit */
	long rlimit_core;		/* -1 = inherit, 0.. bytes */
	bool catch_workers_output;

	/* the application */
	char *module;			/* "package.module:callable" */
	char *virtualenv;
	char **python_path;		/* NULL-terminated */
	char *script_name;		/* mount point override, NULL = from the web server */
	bool preload;

	/* process manager */
	enum pm_mode pm;
	int max_children;
	int start_servers;
	int min_spare;
	int max_spare;
	int max_spawn_rate;
	long process_idle_timeout_ms;
	int threads;
	long max_requests;
	long max_requests_jitter;
	long max_rss;			/* bytes, 0 = no limit */

	/* timeouts and logs */
	long request_terminate_timeout_ms;	/* 0 = off */
	long request_slowlog_timeout_ms;	/* 0 = off */
	char *slowlog;
	long queue_timeout_ms;		/* 0 = off */
	long read_timeout_ms;		/* FastCGI read timeout per connection */
	long keepalive_timeout_ms;	/* idle kept-alive FastCGI connection */
};

/* The whole configuration: the main file plus every pool of every site file. */
struct conf {
	char *file;			/* the main file */
	char *error_log;		/* NULL or "stderr" = stderr */
	char *log_level;		/* error | warning | notice | debug */
	char *pid_file;			/* NULL = none */
	char *include_dir;		/* every *.conf in it is a site file */
	char *status_socket;		/* NULL = none */
	char *status_owner;
	char *status_group;
	int status_mode;
	char **status_allow_users;	/* extra users allowed on the status socket */
	long process_control_timeout_ms;	/* graceful stop bound */
	int emergency_restart_threshold;
	long emergency_restart_interval_ms;
	char *worker_binary;		/* path of fcgi-pm-worker, NULL = next to fcgi-pm */

	struct pool_conf *pools;
	size_t npools;
};

/*
 * Parse FILE and every *.conf in its include_dir.  On success returns a
 * newly allocated struct conf.  On failure returns NULL after writing one
 * message per error as "FILE:LINE: option 'NAME': what is wrong" to ERRBUF
 * (size ERRLEN, may be NULL); the caller exits with EX_CONFIG_STATUS.
 */
struct conf *conf_load(const char *file, char *errbuf, size_t errlen);
void conf_free(struct conf *c);
const struct pool_conf *conf_find_pool(const struct conf *c, const char *name);
const char *pm_mode_name(enum pm_mode m);

/* ------------------------------------------------------------------- log.c */

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_NOTICE, LOG_LVL_DEBUG };

/*
 * One line per event: "[25-Nov-2026 18:40:00.123] WARNING: [pool P] pid N: msg".
 * POOL and PID may be NULL / 0 for master-wide events.  Lines go to stderr
 * until log_open() names a file.
 */
int log_open(const char *path);		/* NULL or "stderr" = stderr; -1 on error */
int log_reopen(void);			/* for USR1 / reopen-logs */
void log_set_level(enum log_level l);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level l, const char *pool, pid_t pid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define log_error(...)		log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...)	log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...)		log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_debug(...)		log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
