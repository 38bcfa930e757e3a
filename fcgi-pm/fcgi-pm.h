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

	/*
	 * Where the options conf_check_system() checks against the system
	 * were set, 0 when not set; python_path's is its first entry's.
	 */
	struct {
		int listen_owner, listen_group, user, group, chdir, virtualenv,
		    python_path, slowlog;
	} lines;
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
	struct {			/* lines in the main file, 0 = not set */
		int status_owner, status_group, status_allow_users, worker_binary;
	} lines;

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
/*
 * Check what conf_load() leaves to the system: users and groups resolve,
 * chdir is a directory, virtualenv a virtualenv, worker_binary an executable
 * file, slowlog's directory exists.  Returns 0, or -1 if C cannot run here
 * (the caller exits with EX_CONFIG_STATUS, or keeps the running
 * configuration on reload).  Errors and warnings ("...: warning: ...", e.g.
 * a python_path entry that does not exist) go to ERRBUF one per line, as
 * "FILE:LINE: option 'NAME': what is wrong"; print it even on success.
 */
int conf_check_system(const struct conf *c, char *errbuf, size_t errlen);
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

/* ------------------------------------------------------------------ loop.c */

/*
 * The master's single-threaded event loop: epoll over registered fds, the
 * master's signals as events (a signalfd: no handler ever runs), and a
 * periodic tick (a timerfd).  Callbacks never block.
 */
typedef void loop_fd_cb(int fd, uint32_t events, void *arg);
typedef void loop_signal_cb(int signo);
typedef void loop_tick_cb(uint64_t now_ms);

int loop_init(loop_signal_cb *on_signal, loop_tick_cb *on_tick, long tick_ms);
int loop_watch(int fd, uint32_t events, loop_fd_cb *cb, void *arg);
void loop_unwatch(int fd);
int loop_run(void);			/* until loop_exit(); -1 if epoll fails */
void loop_exit(void);
void loop_free(void);
uint64_t loop_now_ms(void);		/* CLOCK_MONOTONIC, milliseconds */

/* ------------------------------------------------------------------ sock.c */

/* A parsed `listen` value. */
struct listen_addr {
	int family;			/* AF_UNIX, AF_INET, AF_INET6, AF_UNSPEC = resolve host */
	char path[108];			/* AF_UNIX: sizeof(sun_path) */
	char host[256];			/* TCP: "" = every address */
	unsigned port;
};

/* A pool's listening socket, created and owned by the master. */
struct listen_sock {
	int fd;				/* -1 when closed */
	struct listen_addr addr;
	dev_t dev;			/* AF_UNIX: the socket file we bound, so we */
	ino_t ino;			/* unlink it only if it is still ours */
	bool activated;			/* passed by systemd (activate.c): never unlinked */
};

int sock_parse(const char *s, struct listen_addr *a, char *err, size_t errlen);
int sock_open(struct listen_sock *ls, const struct pool_conf *pc);
void sock_close(struct listen_sock *ls);
/*
 * Is someone listening on the unix socket PATH?  1 yes, 0 no (stale or
 * absent), -1 when PATH is not a socket or cannot be checked (errno set).
 * Used before taking over a path, so a second instance never steals it.
 */
int sock_unix_in_use(const char *path);
int sock_queue(const struct listen_sock *ls, unsigned *len, unsigned *max);
const char *sock_name(const struct listen_addr *a, char *buf, size_t len);

/* -------------------------------------------------------------- activate.c */

/* Listening sockets passed by systemd ($LISTEN_PID, $LISTEN_FDS from fd 3). */
int activate_init(void);
int activate_take(const struct listen_addr *a, const char *pool);
void activate_release(int fd);
void activate_report_unused(void);

/* ------------------------------------------------------------ scoreboard.c */

struct sb_header;
struct sb_slot;
struct sb_thread;

/* A pool's scoreboard as the master holds it. */
struct scoreboard {
	int fd;				/* memfd, CLOEXEC; -1 when closed */
	struct sb_header *hdr;		/* MAP_SHARED */
	size_t size;
};

/* A consistent copy of one slot (without its threads). */
struct sb_slot_view {
	uint32_t state;
	int32_t pid;
	uint32_t generation;
	uint64_t start_us;
	uint64_t rss_kb;
	uint64_t requests;
	uint64_t queue_timeouts;	/* requests answered 503 by queue_timeout */
	uint64_t peer_gone;		/* requests dropped unrun: web server gone */
};

int sb_create(struct scoreboard *sb, const char *pool, uint32_t nslots, uint32_t nthreads);
void sb_destroy(struct scoreboard *sb);
void sb_slot_assign(struct scoreboard *sb, uint32_t slot);
void sb_slot_release(struct scoreboard *sb, uint32_t slot);
void sb_slot_read(const struct scoreboard *sb, uint32_t slot, struct sb_slot_view *out);
int sb_thread_read(const struct scoreboard *sb, uint32_t slot, uint32_t thread,
    struct sb_thread *out);

/* ---------------------------------------------------------------- worker.c */

struct pool;

/* One worker process as the master tracks it: one per scoreboard slot. */
struct worker {
	struct pool *pool;
	pid_t pid;			/* 0 = slot free */
	int slot;
	int out_fd;			/* read end of the stdout/stderr pipe, -1 when closed */
	uint64_t started_ms;		/* loop_now_ms() at fork */
	bool ending;			/* told to stop (QUIT/TERM): do not count it */
	bool retiring;			/* a rolling restart replaces it: SIGQUIT once
					   a new worker is ready (pools_roll) */
	bool killed;			/* SIGKILL sent */
	int stop_signal;		/* SIGQUIT or SIGTERM, the last one sent */
	uint64_t stop_ms;		/* when it was first told to stop */
	uint64_t kill_at_ms;		/* when ending: SIGKILL if still alive then */
	size_t linelen;
	char line[2048];		/* partial output line */
};

int worker_find_binary(const char *configured, char *out, size_t outlen);
int worker_spawn(struct worker *w, const char *binary);
int worker_spawn_preload(struct pool *p, int *ctl_fd);
long worker_max_requests(const struct pool_conf *pc);
void worker_signal(struct worker *w, int signo);
void worker_stop(struct worker *w, int signo, long bound_ms, uint64_t now);
void worker_drain(struct worker *w);
void worker_close_output(struct worker *w);

/* ------------------------------------------------------------------ pool.c */

enum pool_state { POOL_NEW, POOL_RUNNING, POOL_STOPPING, POOL_STOPPED };

/* Exponential spawn backoff for a pool whose workers keep dying young. */
struct backoff {
	long delay_ms;			/* 0 = healthy */
	uint64_t step_ms;		/* when the current step began */
	uint64_t until_ms;		/* no spawn before this */
};

/*
 * A pool's counters since it started (the status page's); requests and
 * queue timeouts of live workers are in the scoreboard: pool_counters()
 * adds them up.
 */
struct pool_stats {
	uint64_t accepted;		/* requests served by workers already reaped */
	uint64_t queue_timeouts;	/* 503s by queue_timeout, reaped workers */
	uint64_t peer_gone;		/* requests dropped unrun, reaped workers */
	uint64_t max_active;		/* most workers busy at once */
	uint64_t max_children_reached;	/* episodes: a connection waited, no worker free */
	uint64_t slow_requests;		/* passed request_slowlog_timeout */
	uint64_t terminated_requests;	/* passed request_terminate_timeout */
};

/* A pool at run time: its configuration, socket, scoreboard and workers. */
struct pool {
	const struct pool_conf *conf;
	enum pool_state state;
	struct listen_sock sock;
	struct scoreboard sb;
	int slowlog_fd;			/* O_APPEND, passed to workers; -1 = none */
	int handoff[2];			/* the workers' socket pair for passing kept
					 * connections (fcgi.c); -1 = none */
	uid_t uid;			/* workers' identity when the master is root */
	gid_t gid;
	gid_t *groups;
	int ngroups;
	bool drop_privileges;
	struct worker *workers;		/* nslots of them, indexed by scoreboard slot */
	int nslots;
	struct backoff backoff;
	long control_timeout_ms;	/* QUIT -> KILL bound */
	const char *binary;		/* fcgi-pm-worker */

	/* preload = yes (preload.c) */
	struct worker preload;		/* the process workers are forked from; pid 0 = none */
	int preload_ctl;		/* its control socket, -1 = none */
	bool preload_ready;		/* it loaded the app and takes commands */
	bool preload_replace;		/* a restart: stop the old workers once it is ready */

	/* scaling state (pool_decide's memory between calls) */
	int spawn_rate;			/* php-fpm's idle spawn rate: 1, 2, 4 .. max_spawn_rate */
	uint64_t last_scale_ms;		/* the last spare/idle maintenance step */
	bool listen_watched;		/* ondemand: the master waits for a connection */
	bool max_children_warned;	/* this episode was logged (until a worker is idle) */
	uint64_t *slow_marks;		/* [slot * nthreads + thread]: req_start_us
					   already written to the slowlog */
	struct pool_stats stats;

	/* status and reloads (status.c, reload.c) */
	uint64_t start_us;		/* CLOCK_REALTIME when the pool opened */
	unsigned max_listen_queue;	/* the longest listen queue seen */
	int roll_total;			/* workers a rolling restart replaces */
	int stuck_ticks;		/* ticks with a listen queue beside idle workers */
};

/* What the policy sees of a pool: a snapshot with no pointers into live state. */
struct pool_view {
	uint64_t now_ms;
	int active;			/* live workers not told to stop */
	int ending;			/* told to stop, not yet reaped */
	int starting;			/* active, still loading the app */
	int idle;			/* active and ready, every thread idle */
	int busy;			/* active and ready, some thread on a request */
	int free_threads;		/* idle threads of active ready workers */
	int pending;			/* connections waiting in the listen queue */
	int probing;			/* active workers started in the current backoff
					   step and not yet past POOL_HEALTHY_MS */
	int free_slots;
	bool stopping;
	bool scale_due;			/* POOL_SCALE_MS since the last scaling step */
	int spawn_rate;			/* the current idle spawn rate (>= 1) */
	int idlest;			/* slot of the worker idle longest, -1 none */
	uint64_t idlest_ms;		/* for how long */
	struct backoff backoff;
};

/* What the policy wants done now. */
struct pool_actions {
	int spawn;			/* start this many workers */
	int stop_slot;			/* stop this idle worker gracefully, -1 none */
	int spawn_rate;			/* the idle spawn rate from now on */
	bool max_children_reached;	/* more were needed than max_children allows */
	bool watch_listen;		/* ondemand: wake up when a connection waits */
};

#define POOL_HEALTHY_MS		10000	/* dying younger is a failure; this old resets the backoff */
#define POOL_BACKOFF_MIN_MS	100
#define POOL_BACKOFF_MAX_MS	30000
#define POOL_TERM_KILL_MS	3000	/* TERM -> KILL bound for a fast stop */
#define POOL_SCALE_MS		1000	/* php-fpm's idle server maintenance period */
/* the pools array's size: room for pools a reload adds, as it never moves */
#define POOLS_CAPACITY(n)	((n) * 3 + 32)

void pool_decide(const struct pool_conf *pc, const struct pool_view *v,
    struct pool_actions *a);
bool backoff_failure(struct backoff *b, uint64_t now_ms, uint64_t worker_started_ms);
bool backoff_recovered(struct backoff *b, uint64_t now_ms, uint64_t worker_started_ms);

int pools_open(struct pool **pools, const struct conf *c, const char *binary);
int pools_start(struct pool *pools, size_t n);
int pools_reap(struct pool *pools, size_t n);
void pools_tick(struct pool *pools, size_t n, uint64_t now_ms);
void pools_stop(struct pool *pools, size_t n, bool graceful);
void pools_restart(struct pool *pools, size_t n, bool reset_backoff);
void pool_signal_all(struct pool *p, int signo, long bound_ms, uint64_t now_ms);
bool pools_stopped(const struct pool *pools, size_t n);
void pools_close(struct pool *pools, size_t n);
void pool_counters(const struct pool *p, struct pool_stats *out);
int pool_create(struct pool *p, const struct pool_conf *pc, const struct conf *c,
    const char *binary, struct listen_sock *take);
void pool_destroy(struct pool *p);
bool pool_unused(const struct pool *p);
void pool_retire(struct pool *p);
void pools_roll(struct pool *pools, size_t n, uint64_t now);

/* --------------------------------------------------------------- preload.c */

/*
 * preload = yes: a pool's preload process imports the app once and forks
 * the workers (pool.c calls these; embed/preload.c is the other side).
 */
void preload_init(struct pool *p);
bool preload_ready(struct pool *p, uint64_t now_ms);
int preload_fork(struct pool *p, struct worker *w);
bool preload_reaped(struct pool *p, int status, uint64_t now_ms);
void preload_tick(struct pool *p, uint64_t now_ms);
void preload_stop(struct pool *p, int signo, long bound_ms, uint64_t now_ms);
void preload_restart(struct pool *p, uint64_t now_ms);
void preload_close(struct pool *p);

/* ---------------------------------------------------------------- notify.c */

/*
 * sd_notify(3) for Type=notify, without libsystemd: READY=1, RELOADING=1,
 * STOPPING=1, MAINPID=, STATUS= datagrams to $NOTIFY_SOCKET.  No-ops when
 * it is unset.
 */
int notify_init(void);
bool notify_enabled(void);
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_ready(const struct pool *pools, size_t n, uint64_t now_ms);
int notify_reloading(void);
void notify_status(const struct pool *pools, size_t n, uint64_t now_ms, bool force);
const char *notify_status_text(const struct pool *pools, size_t n, char *buf, size_t len);


/* ---------------------------------------------------------------- status.c */

/* A growable string: the status pages are built in one before being sent. */
struct buf {
	char *data;			/* NUL-terminated, NULL while empty */
	size_t len, cap;
	bool failed;			/* out of memory: the content is incomplete */
};

int buf_add(struct buf *b, const char *s, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

enum status_format { STATUS_TEXT, STATUS_JSON, STATUS_PROMETHEUS, STATUS_OPENMETRICS };

/* A worker's state as php-fpm's status page names it. */
enum worker_status_state {
	WORKER_ST_STARTING, WORKER_ST_IDLE, WORKER_ST_READING, WORKER_ST_RUNNING,
	WORKER_ST_ENDING,
};

/* One worker's row of the status page (`full`). */
struct status_worker {
	pid_t pid;
	enum worker_status_state state;
	uint64_t start_us;		/* CLOCK_REALTIME */
	uint64_t requests;
	bool in_request;		/* the request columns are the current request's */
	int busy_threads;		/* threads reading or running a request */
	uint64_t duration_us;		/* current request so far, else the last one's */
	char method[16];
	char uri[256];
	uint64_t content_length;
	double last_cpu_pct;		/* last request's CPU time / its duration */
	uint64_t last_memory_bytes;	/* worker's peak RSS after the last request */
	uint64_t rss_bytes;		/* current RSS */
};

/* One pool's line of the status page, php-fpm's fields. */
struct status_pool {
	char name[64];
	const char *pm;			/* static string */
	enum pool_state state;
	uint64_t start_us;		/* CLOCK_REALTIME */
	uint64_t accepted;		/* requests accepted since the pool started */
	unsigned listen_queue, max_listen_queue, listen_queue_len;
	int idle, active, total, max_active, max_children;
	uint64_t max_children_reached, slow_requests;
	uint64_t queue_timeouts;	/* 503s: waited past queue_timeout */
	uint64_t dropped;		/* dropped unrun: the web server had closed */
	struct status_worker *workers;	/* full only */
	size_t nworkers;
};

struct status_snapshot {
	uint64_t now_us;		/* CLOCK_REALTIME */
	pid_t master_pid;
	struct status_pool *pools;
	size_t npools;
};

int status_collect(struct pool *pools, size_t n, const char *only, bool full,
    struct status_snapshot *s);
void status_sample(struct pool *pools, size_t n);
void status_free(struct status_snapshot *s);
int status_render(const struct status_snapshot *s, enum status_format f, bool full,
    bool one_pool, struct buf *b);
const char *status_content_type(enum status_format f);
const char *status_worker_state_name(enum worker_status_state st);

/* --------------------------------------------------------------- control.c */

/*
 * What the status socket asks of the master (main.c implements them): each
 * returns 0 or -1 and may write a message for the client into MSG.
 */
struct control_ops {
	int (*reload)(const char *pool, struct buf *msg);
	int (*restart)(const char *pool, struct buf *msg);
	int (*stop)(bool graceful, struct buf *msg);
	int (*reopen_logs)(struct buf *msg);
	/* the pools to show, for status */
	void (*pools)(struct pool **pools, size_t *n);
};

int control_open(const struct conf *c, const struct control_ops *ops);
void control_close(void);
void control_tick(uint64_t now_ms);
bool control_same(const struct conf *a, const struct conf *b);

/* ------------------------------------------------------------------- ctl.c */

int ctl_status(const struct conf *c, int argc, char **argv);
int ctl_reload(const struct conf *c, int argc, char **argv);
int ctl_restart(const struct conf *c, int argc, char **argv);
int ctl_stop(const struct conf *c, int argc, char **argv);
int ctl_reopen_logs(const struct conf *c, int argc, char **argv);
int ctl_conf_fallback(const char *file, struct conf *c);

/* ---------------------------------------------------------------- reload.c */

enum reload_action {
	RELOAD_KEEP,			/* unchanged: the pool adopts the new pool_conf */
	RELOAD_ROLL,			/* changed: a new pool replaces it, old workers drain */
	RELOAD_REMOVE,			/* gone from the configuration: drain and stop */
	RELOAD_ADD,			/* new: start it */
	RELOAD_IGNORE,			/* not the pool asked for: leave it as it runs */
};

/* One step of a reload plan. */
struct reload_step {
	enum reload_action action;
	int old;			/* index into the running pools, -1 for ADD */
	int new;			/* index into the new conf's pools, -1 for REMOVE/IGNORE */
	bool same_listen;		/* ROLL: the listening socket carries over */
};

struct reload_plan {
	struct reload_step *steps;
	size_t nsteps;
	int added, removed, rolled, kept;
};

int reload_plan(const struct pool_conf *const *old, size_t nold, const struct conf *nc,
    const char *only, struct reload_plan *plan, char *err, size_t errlen);
void reload_plan_free(struct reload_plan *plan);
int reload_roll_quota(int old_total, int old_serving, int new_ready, int new_starting,
    bool ondemand);
int reload_apply(struct pool *pools, size_t *npools, size_t capacity, const struct conf *nc,
    const char *only, const char *binary, struct buf *msg);
void reload_sweep(struct pool *pools, size_t npools);
bool reload_pool_changed(const struct pool_conf *a, const struct pool_conf *b);
bool reload_same_listen(const struct pool_conf *a, const struct pool_conf *b);

/* ------------------------------------------------------ small shared helpers */

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* Wall-clock time in microseconds (what the scoreboard records). */
static inline uint64_t
realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Is S a decimal user or group id ("33"), as php-fpm accepts?  Its value in *ID. */
static inline bool
numeric_id(const char *s, unsigned long *id)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*id = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *id < (unsigned long)(uid_t)-1;
}

#endif
