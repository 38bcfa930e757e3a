/*
 * conf.c - the configuration: the main file, the site files of its
 * include_dir, libconfuse option tables with their defaults, value parsers
 * and validators, and the copy into the plain structs of fcgi-pm.h.
 *
 * Every file is read into memory and its comments are blanked out (newlines
 * kept) before libconfuse sees it: libconfuse 3.3 counts each '#' comment
 * line as three lines and each '//' line as two, and an operator must be
 * sent to the line their editor shows.  The same pass records the line on
 * which each top-level `pool NAME {` opens, which libconfuse does not keep.
 *
 * Each file gets its own cfg_t, freed before the next file is read; site
 * files use a schema holding only `pool` sections.  Errors are collected as
 * "FILE:LINE: option 'NAME': what is wrong" lines; one bad site file does not
 * stop the others from being checked.
 *
 * conf_load() looks at nothing outside the files (so the unit tests need no
 * particular system); conf_check_system() is the second pass that looks up
 * users, groups and paths, at the lines the validators recorded.
 */
#include <arpa/inet.h>
#include <confuse.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcgi-pm.h"

#define MAX_FILE_SIZE	(4 << 20)	/* a config file larger than this is a mistake */
#define MAX_DURATION_MS	((long)INT_MAX)	/* ~596h: fits every int timer downstream */
#define MAX_SIZE	(1L << 50)	/* 1024T: leaves room for rounding downstream */
#define MAX_POOL_NAME	64
#define UNIX_PATH_MAX	108		/* sizeof(sun_path) */
/*
 * rlimit_core = unlimited.  LONG_MAX bytes is no limit in practice, so a
 * caller that passes the value straight to setrlimit(2) does the right thing.
 */
#define CONF_UNLIMITED	LONG_MAX

/*
 * The line an option's value (element IDX of a list) was read on.  libconfuse
 * keeps no line per value, but its validators run while cfg->line is that
 * line; SEC is the section being parsed (the same cfg_t the copy reads).
 */
struct opt_line {
	cfg_t *sec;
	const char *name;		/* libconfuse's, valid until cfg_free */
	unsigned int idx;
	int line;
};

/*
 * The state of one conf_load() call.  libconfuse callbacks get no user
 * pointer, so the loader of the parse in progress is reachable through `cur`;
 * the parser is not reentrant anyway (global flex state).
 */
struct loader {
	char *errbuf;
	size_t errlen;
	size_t used;
	int nerr;
	bool oom;

	const char *file;		/* the file being parsed */
	bool site;			/* a site file: pools only */
	int *pool_lines;		/* line of each top-level `pool`, in order */
	size_t npool_lines;
	int include_dir_line;
	int open_quote_line;		/* a quote never closed starts here */
	int open_brace_line;		/* a '{' never closed is here */
	struct stat main_st;		/* the main file, not to be read twice */
	struct opt_line *opt_lines;	/* of the file being parsed */
	size_t nopt_lines;
	const char *text;		/* its text, comments blanked, while parsed */
};

static struct loader *cur;

static void loader_error(struct loader *ld, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void loader_warning(struct loader *ld, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------ messages */

/* Append one "FILE:LINE: message" line to the error buffer. */
static void
loader_vmsg(struct loader *ld, const char *file, int line, const char *fmt,
    va_list ap)
{
	char msg[1024];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (ld->errbuf == NULL || ld->errlen == 0 || ld->used + 1 >= ld->errlen)
		return;
	if (line > 0)
		n = snprintf(ld->errbuf + ld->used, ld->errlen - ld->used,
		    "%s:%d: %s\n", file, line, msg);
	else
		n = snprintf(ld->errbuf + ld->used, ld->errlen - ld->used,
		    "%s: %s\n", file, msg);
	if (n < 0)
		return;
	ld->used += (size_t)n;
	if (ld->used >= ld->errlen)
		ld->used = ld->errlen - 1;	/* truncated, still terminated */
}

static void
loader_error(struct loader *ld, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	ld->nerr++;
	va_start(ap, fmt);
	loader_vmsg(ld, file, line, fmt, ap);
	va_end(ap);
}

/* A message that does not make the configuration fail. */
static void
loader_warning(struct loader *ld, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	loader_vmsg(ld, file, line, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------- value parsers (CFG_*_CB) */

/* Inclusive bounds of integer options; options not listed take any long >= 0. */
static const struct {
	const char *name;
	long min, max;
} int_ranges[] = {
	{ "listen_backlog",		1, 65535 },
	{ "rlimit_files",		0, 1 << 30 },
	{ "max_children",		1, 4096 },
	{ "start_servers",		1, 4096 },
	{ "min_spare",			1, 4096 },
	{ "max_spare",			1, 4096 },
	{ "max_spawn_rate",		1, 1024 },
	{ "threads",			1, 256 },
	{ "max_requests",		0, 1000000000 },	/* + jitter fits a long */
	{ "max_requests_jitter",	0, 1000000000 },
	{ "emergency_restart_threshold", 0, 1000000 },
};

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* An integer within its row of int_ranges[]. */
static int
parse_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *name = cfg_opt_name(opt);
	long min = 0, max = LONG_MAX, n;
	const char *s = value;
	size_t i;

	for (i = 0; i < sizeof(int_ranges) / sizeof(int_ranges[0]); i++)
		if (strcmp(int_ranges[i].name, name) == 0) {
			min = int_ranges[i].min;
			max = int_ranges[i].max;
		}
	if (*s == '-' && all_digits(s + 1)) {
		cfg_error(cfg, "option '%s': %s is negative (allowed: %ld to %ld)",
		    name, value, min, max);
		return -1;
	}
	if (!all_digits(s)) {
		cfg_error(cfg, "option '%s': '%s' is not a whole number", name, value);
		return -1;
	}
	errno = 0;
	n = strtol(s, NULL, 10);
	if (errno == ERANGE || n < min || n > max) {
		cfg_error(cfg, "option '%s': %s is out of range (allowed: %ld to %ld)",
		    name, value, min, max);
		return -1;
	}
	*(long *)result = n;
	return 0;
}

/*
 * Bounds of durations, in ms; others take 0..MAX_DURATION_MS.  The worker's
 * timeouts are passed on its command line, which takes 1ms..24h.
 */
static const struct {
	const char *name;
	long min, max;
} duration_ranges[] = {
	{ "read_timeout",	1, 86400000 },
	{ "keepalive_timeout",	1, 86400000 },
	{ "queue_timeout",	0, 86400000 },
};

/* MS as the shortest exact duration: "250ms", "30s", "24h". */
static const char *
fmt_duration(long ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%ldh", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%ldm", ms / 60000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, len, "%lds", ms / 1000);
	else
		snprintf(buf, len, "%ldms", ms);
	return buf;
}

/* "250ms", "30s", "5m", "1h", "1d"; a bare number is seconds.  Result in ms. */
static int
parse_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const struct { const char *unit; long ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char *name = cfg_opt_name(opt);
	const char *end = value;
	long long n = 0;
	size_t i;

	if (*value == '-') {
		cfg_error(cfg, "option '%s': duration '%s' is negative", name, value);
		return -1;
	}
	while (isdigit((unsigned char)*end)) {
		n = n * 10 + (*end++ - '0');
		if (n > MAX_DURATION_MS)	/* stop before long long overflows */
			goto toolarge;
	}
	if (end == value)
		goto bad;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	if (n > MAX_DURATION_MS / units[i].ms)
		goto toolarge;
	n *= units[i].ms;
	for (i = 0; i < sizeof(duration_ranges) / sizeof(duration_ranges[0]); i++) {
		char lo[32], hi[32];

		if (strcmp(duration_ranges[i].name, name) != 0)
			continue;
		if (n < duration_ranges[i].min || n > duration_ranges[i].max) {
			cfg_error(cfg, "option '%s': %s is out of range (allowed: %s to %s)",
			    name, value, fmt_duration(duration_ranges[i].min, lo, sizeof(lo)),
			    fmt_duration(duration_ranges[i].max, hi, sizeof(hi)));
			return -1;
		}
	}
	*(long *)result = (long)n;
	return 0;
bad:
	cfg_error(cfg, "option '%s': invalid duration '%s' (use e.g. 250ms, 30s, 5m, 1h; "
	    "a bare number is seconds)", name, value);
	return -1;
toolarge:
	cfg_error(cfg, "option '%s': duration '%s' is too large (at most %ldh)",
	    name, value, MAX_DURATION_MS / 3600000);
	return -1;
}

/* "4096", "64K", "512M", "2G", "1T" (optionally "KB"...), in bytes. */
static int
parse_size(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *name = cfg_opt_name(opt);
	const char *end = value;
	long long n = 0, mult;

	if (strcmp(name, "rlimit_core") == 0 && strcasecmp(value, "unlimited") == 0) {
		*(long *)result = CONF_UNLIMITED;
		return 0;
	}
	if (*value == '-') {
		cfg_error(cfg, "option '%s': size '%s' is negative", name, value);
		return -1;
	}
	while (isdigit((unsigned char)*end)) {
		if (n > (LONG_MAX - (*end - '0')) / 10)
			goto toolarge;
		n = n * 10 + (*end++ - '0');
	}
	if (end == value)
		goto bad;
	switch (toupper((unsigned char)*end)) {
	case '\0':	mult = 1; break;
	case 'K':	mult = 1LL << 10; break;
	case 'M':	mult = 1LL << 20; break;
	case 'G':	mult = 1LL << 30; break;
	case 'T':	mult = 1LL << 40; break;
	default:	goto bad;
	}
	if (*end != '\0' && end[1] != '\0' &&
	    !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
		goto bad;
	if (n > MAX_SIZE / mult)
		goto toolarge;
	*(long *)result = (long)(n * mult);
	return 0;
bad:
	cfg_error(cfg, "option '%s': invalid size '%s' (use e.g. 4096, 64K, 512M, 2G)",
	    name, value);
	return -1;
toolarge:
	cfg_error(cfg, "option '%s': size '%s' is too large (at most %ldT)", name,
	    value, MAX_SIZE >> 40);
	return -1;
}

/* A file mode, always octal as in chmod(1): "0660", "660". */
static int
parse_mode(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *s;
	long n = 0;

	for (s = value; *s >= '0' && *s <= '7'; s++) {
		n = n * 8 + (*s - '0');
		if (n > 0777)
			break;
	}
	if (s == value || *s != '\0' || n > 0777) {
		cfg_error(cfg, "option '%s': invalid mode '%s' (octal, 0 to 0777, e.g. 0660)",
		    cfg_opt_name(opt), value);
		return -1;
	}
	*(long *)result = n;
	return 0;
}

static int
parse_pm(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (strcmp(value, "static") == 0)
		*(long *)result = PM_STATIC;
	else if (strcmp(value, "dynamic") == 0)
		*(long *)result = PM_DYNAMIC;
	else if (strcmp(value, "ondemand") == 0)
		*(long *)result = PM_ONDEMAND;
	else {
		cfg_error(cfg, "option '%s': '%s' is not static, dynamic or ondemand",
		    cfg_opt_name(opt), value);
		return -1;
	}
	return 0;
}

/* libconfuse's own boolean parser does not say what it got. */
static int
parse_bool(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*(cfg_bool_t *)result = cfg_true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*(cfg_bool_t *)result = cfg_false;
			return 0;
		}
	}
	cfg_error(cfg, "option '%s': '%s' is not a boolean (use yes or no)",
	    cfg_opt_name(opt), value);
	return -1;
}

/* ------------------------------------------------------- string validators */

/* The value just parsed: for lists, validators run once per element. */
static const char *
last_str(cfg_opt_t *opt)
{
	return cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
}

/*
 * Record the line of the value just parsed, for conf_check_system()'s
 * messages.  Called by the validators of every option it checks.
 */
static void
note_line(cfg_t *cfg, cfg_opt_t *opt)
{
	struct opt_line *l;

	if (cur == NULL)
		return;
	l = realloc(cur->opt_lines, (cur->nopt_lines + 1) * sizeof(*l));
	if (l == NULL) {
		cur->oom = true;
		return;
	}
	cur->opt_lines = l;
	l += cur->nopt_lines++;
	l->sec = cfg;
	l->name = cfg_opt_name(opt);
	l->idx = cfg_opt_size(opt) - 1;
	l->line = cfg->line;
}

/* Line of option NAME of SEC (of its first element for a list), 0 if unset. */
static int
opt_line(const struct loader *ld, cfg_t *sec, const char *name)
{
	int line = 0;
	size_t i;

	/* the last record wins: a scalar set twice keeps its last value */
	for (i = 0; i < ld->nopt_lines; i++)
		if (ld->opt_lines[i].sec == sec && ld->opt_lines[i].idx == 0 &&
		    strcmp(ld->opt_lines[i].name, name) == 0)
			line = ld->opt_lines[i].line;
	return line;
}

static int
validate_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = last_str(opt);

	if (strcmp(v, "error") && strcmp(v, "warning") && strcmp(v, "notice") &&
	    strcmp(v, "debug")) {
		cfg_error(cfg, "option '%s': '%s' is not error, warning, notice or debug",
		    cfg_opt_name(opt), v);
		return -1;
	}
	return 0;
}

static int
validate_nonempty(cfg_t *cfg, cfg_opt_t *opt)
{
	note_line(cfg, opt);
	if (*last_str(opt) == '\0') {
		cfg_error(cfg, "option '%s': must not be empty", cfg_opt_name(opt));
		return -1;
	}
	return 0;
}

static int
validate_abspath(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = last_str(opt);

	note_line(cfg, opt);
	if (v[0] != '/') {
		cfg_error(cfg, "option '%s': '%s' is not an absolute path",
		    cfg_opt_name(opt), v);
		return -1;
	}
	return 0;
}

static int
validate_include_dir(cfg_t *cfg, cfg_opt_t *opt)
{
	if (validate_nonempty(cfg, opt) == -1)
		return -1;
	if (cur)
		cur->include_dir_line = cfg->line;
	return 0;
}

/*
 * Split a TCP listen address "host:port", "[v6]:port" or ":port" into host
 * (without brackets, "" for any) and port.  Returns 0, or -1 with WHY set.
 */
static int
split_hostport(const char *addr, char *host, size_t hostlen, long *port,
    const char **why)
{
	const char *colon, *h = addr;
	size_t hl;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (rb == NULL || rb[1] != ':') {
			*why = "an IPv6 address is written [addr]:port";
			return -1;
		}
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL) {
			*why = "use an absolute unix socket path or host:port";
			return -1;
		}
		if (memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
			*why = "an IPv6 address is written [addr]:port";
			return -1;
		}
		hl = (size_t)(colon - addr);
	}
	if (hl >= hostlen) {
		*why = "the host name is too long";
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (strpbrk(host, " \t/") != NULL) {
		*why = "use an absolute unix socket path or host:port";
		return -1;
	}
	if (!all_digits(colon + 1) || strlen(colon + 1) > 5 ||
	    (*port = strtol(colon + 1, NULL, 10)) < 1 || *port > 65535) {
		*why = "the port must be 1 to 65535";
		return -1;
	}
	return 0;
}

/*
 * A listen address as sock.c takes it: "/path" or "unix:/path", "host:port",
 * "[v6]:port", ":port" or "*:port" (every address), or a bare port.
 */
static int
validate_listen(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = last_str(opt), *why = NULL;
	unsigned char in6[sizeof(struct in6_addr)];
	char host[256];
	long port;

	if (strncmp(v, "unix:", 5) == 0 && v[5] != '/')
		why = "a unix socket path must be absolute";
	else if (v[0] == '/' || strncmp(v, "unix:", 5) == 0)
		return 0;		/* length checked once $pool is expanded */
	else if (all_digits(v)) {
		if (strlen(v) > 5 || (port = strtol(v, NULL, 10)) < 1 || port > 65535)
			why = "the port must be 1 to 65535";
	} else if (split_hostport(v, host, sizeof(host), &port, &why) == 0 &&
	    v[0] == '[' && inet_pton(AF_INET6, host, in6) != 1)
		why = "the part in brackets is not an IPv6 address";
	if (why != NULL) {
		cfg_error(cfg, "option '%s': invalid address '%s': %s",
		    cfg_opt_name(opt), v, why);
		return -1;
	}
	return 0;
}

static int
validate_client(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = last_str(opt);
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1) {
		cfg_error(cfg, "option '%s': '%s' is not an IPv4 or IPv6 address",
		    cfg_opt_name(opt), v);
		return -1;
	}
	return 0;
}

static bool
is_identifier(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* "a.b.c": identifiers separated by single dots. */
static bool
is_dotted(const char *s, size_t len)
{
	const char *end = s + len, *dot;

	for (;;) {
		dot = memchr(s, '.', (size_t)(end - s));
		if (!is_identifier(s, (size_t)((dot ? dot : end) - s)))
			return false;
		if (dot == NULL)
			return true;
		s = dot + 1;
	}
}

static char *expand_pool(struct loader *, const char *, const char *);

/* "package.module:callable" or "package.module", once `$pool` is expanded. */
static int
validate_module(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = last_str(opt);
	char *x = cur && cfg_title(cfg) ? expand_pool(cur, v, cfg_title(cfg)) : NULL;
	const char *m = x ? x : v;
	const char *colon = strchr(m, ':');
	size_t mlen = colon ? (size_t)(colon - m) : strlen(m);
	bool ok = is_dotted(m, mlen) && (!colon || is_dotted(colon + 1, strlen(colon + 1)));

	free(x);
	if (!ok) {
		cfg_error(cfg, "option '%s': '%s' is not 'package.module:callable' "
		    "or 'package.module'", cfg_opt_name(opt), v);
		return -1;
	}
	return 0;
}

static int
validate_env(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned int n = cfg_opt_size(opt), i;
	const char *v = last_str(opt);
	const char *eq = strchr(v, '=');

	if (eq == NULL) {
		cfg_error(cfg, "option '%s': '%s' is not KEY=VALUE", cfg_opt_name(opt), v);
		return -1;
	}
	if (!is_identifier(v, (size_t)(eq - v))) {
		cfg_error(cfg, "option '%s': '%.*s' is not a valid variable name "
		    "(letters, digits and '_', not starting with a digit)",
		    cfg_opt_name(opt), (int)(eq - v), v);
		return -1;
	}
	for (i = 0; i + 1 < n; i++) {
		const char *o = cfg_opt_getnstr(opt, i);

		if (strncmp(o, v, (size_t)(eq - v) + 1) == 0) {
			cfg_error(cfg, "option '%s': variable '%.*s' is set twice",
			    cfg_opt_name(opt), (int)(eq - v), v);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ option tables */

#define POOL_FLAGS	(CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

/* Defaults are in the table; durations in ms, sizes in bytes. */
static cfg_opt_t pool_opts[] = {
	CFG_STR("listen", NULL, CFGF_NODEFAULT),
	CFG_STR("listen_owner", NULL, CFGF_NODEFAULT),
	CFG_STR("listen_group", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("listen_mode", 0660, CFGF_NONE, parse_mode),
	CFG_INT_CB("listen_backlog", 511, CFGF_NONE, parse_int),
	CFG_STR_LIST("listen_allowed_clients", "{}", CFGF_NONE),

	CFG_STR("user", NULL, CFGF_NODEFAULT),
	CFG_STR("group", NULL, CFGF_NODEFAULT),
	CFG_BOOL_CB("allow_root", cfg_false, CFGF_NONE, parse_bool),
	CFG_INT_CB("umask", -1, CFGF_NONE, parse_mode),
	CFG_STR("chdir", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("env", "{}", CFGF_NONE),
	CFG_BOOL_CB("clear_env", cfg_true, CFGF_NONE, parse_bool),
	CFG_INT_CB("rlimit_files", 0, CFGF_NONE, parse_int),
	CFG_INT_CB("rlimit_core", -1, CFGF_NONE, parse_size),
	CFG_BOOL_CB("catch_workers_output", cfg_true, CFGF_NONE, parse_bool),

	CFG_STR("module", NULL, CFGF_NODEFAULT),
	CFG_STR("virtualenv", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("python_path", "{}", CFGF_NONE),
	CFG_STR("script_name", NULL, CFGF_NODEFAULT),
	CFG_BOOL_CB("preload", cfg_false, CFGF_NONE, parse_bool),

	CFG_INT_CB("pm", PM_STATIC, CFGF_NONE, parse_pm),
	CFG_INT_CB("max_children", 0, CFGF_NODEFAULT, parse_int),
	CFG_INT_CB("start_servers", 0, CFGF_NODEFAULT, parse_int),	/* computed */
	CFG_INT_CB("min_spare", 0, CFGF_NODEFAULT, parse_int),	/* computed */
	CFG_INT_CB("max_spare", 0, CFGF_NODEFAULT, parse_int),	/* computed */
	CFG_INT_CB("max_spawn_rate", 32, CFGF_NONE, parse_int),
	CFG_INT_CB("process_idle_timeout", 10000, CFGF_NONE, parse_duration),
	CFG_INT_CB("threads", 1, CFGF_NONE, parse_int),
	CFG_INT_CB("max_requests", 0, CFGF_NONE, parse_int),
	CFG_INT_CB("max_requests_jitter", 0, CFGF_NONE, parse_int),
	CFG_INT_CB("max_rss", 0, CFGF_NONE, parse_size),

	CFG_INT_CB("request_terminate_timeout", 0, CFGF_NONE, parse_duration),
	CFG_INT_CB("request_slowlog_timeout", 0, CFGF_NONE, parse_duration),
	CFG_STR("slowlog", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("queue_timeout", 0, CFGF_NONE, parse_duration),
	CFG_INT_CB("read_timeout", 30000, CFGF_NONE, parse_duration),
	CFG_INT_CB("keepalive_timeout", 60000, CFGF_NONE, parse_duration),
	CFG_END()
};

static cfg_opt_t main_opts[] = {
	CFG_STR("error_log", NULL, CFGF_NODEFAULT),
	CFG_STR("log_level", "notice", CFGF_NONE),
	CFG_STR("pid_file", NULL, CFGF_NODEFAULT),
	CFG_STR("include_dir", NULL, CFGF_NODEFAULT),
	CFG_STR("status_socket", NULL, CFGF_NODEFAULT),
	CFG_STR("status_owner", NULL, CFGF_NODEFAULT),
	CFG_STR("status_group", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("status_mode", 0600, CFGF_NONE, parse_mode),
	CFG_STR_LIST("status_allow_users", "{}", CFGF_NONE),
	CFG_INT_CB("process_control_timeout", 10000, CFGF_NONE, parse_duration),
	CFG_INT_CB("emergency_restart_threshold", 0, CFGF_NONE, parse_int),
	CFG_INT_CB("emergency_restart_interval", 0, CFGF_NONE, parse_duration),
	CFG_STR("worker_binary", NULL, CFGF_NODEFAULT),
	CFG_SEC("pool", pool_opts, POOL_FLAGS),
	CFG_END()
};

/* A site file may hold pools and nothing else. */
static cfg_opt_t site_opts[] = {
	CFG_SEC("pool", pool_opts, POOL_FLAGS),
	CFG_END()
};

/* Validators run after each value, at the line it is on. */
static const struct {
	const char *path;
	cfg_validate_callback_t fn;
} validators[] = {
	{ "log_level",			validate_log_level },
	{ "include_dir",		validate_include_dir },
	{ "error_log",			validate_nonempty },
	{ "pid_file",			validate_abspath },
	{ "status_socket",		validate_abspath },
	{ "status_owner",		validate_nonempty },
	{ "status_group",		validate_nonempty },
	{ "status_allow_users",		validate_nonempty },
	{ "worker_binary",		validate_abspath },
	{ "pool|listen",		validate_listen },
	{ "pool|listen_owner",		validate_nonempty },
	{ "pool|listen_group",		validate_nonempty },
	{ "pool|listen_allowed_clients", validate_client },
	{ "pool|user",			validate_nonempty },
	{ "pool|group",			validate_nonempty },
	{ "pool|chdir",			validate_abspath },
	{ "pool|env",			validate_env },
	{ "pool|module",		validate_module },
	{ "pool|virtualenv",		validate_abspath },
	{ "pool|python_path",		validate_nonempty },
	{ "pool|script_name",		validate_nonempty },
	{ "pool|slowlog",		validate_nonempty },
};

static bool
is_option(cfg_opt_t *opts, const char *name)
{
	for (; opts->type != CFGT_NONE; opts++)
		if (strcmp(opts->name, name) == 0)
			return true;
	return false;
}

/* Is NAME an option of OPTS that takes one value (no list, no section)? */
static bool
is_single_value(cfg_opt_t *opts, const char *name)
{
	for (; opts->type != CFGT_NONE; opts++)
		if (strcmp(opts->name, name) == 0)
			return opts->type != CFGT_SEC && !(opts->flags & CFGF_LIST);
	return false;
}

/*
 * php-fpm users will write php-fpm's names; tell them ours.  Returns the
 * fcgi-pm name for NAME, or NULL.
 */
static const char *
php_fpm_alias(const char *name, char *buf, size_t len)
{
	const char *s = name;
	size_t i;

	if (strcmp(name, "pm.min_spare_servers") == 0)
		return "min_spare";
	if (strcmp(name, "pm.max_spare_servers") == 0)
		return "max_spare";
	if (strncmp(s, "pm.", 3) == 0)
		s += 3;
	if (strlen(s) >= len)
		return NULL;
	for (i = 0; s[i]; i++)
		buf[i] = s[i] == '.' ? '_' : s[i];
	buf[i] = '\0';
	if (strcmp(buf, name) != 0 && (is_option(pool_opts, buf) ||
	    is_option(main_opts, buf)))
		return buf;
	return NULL;
}

/* Line where the top-level pool number I opens, or 0 if the scan missed it. */
static int
pool_line(size_t i)
{
	return i < cur->npool_lines ? cur->pool_lines[i] : 0;
}

/*
 * The option written as `NAME = {` (or `+=`) on LINE of the file being
 * parsed, into NAME (size LEN); false if there is none.  libconfuse's
 * "unexpected token '{'" for a list given to a single-value option does not
 * say which option it was parsing.
 */
static bool
list_option_on_line(const struct loader *ld, int line, char *name, size_t len)
{
	const char *p = ld->text, *end, *b, *q, *e;
	int n;

	if (p == NULL || line < 1)
		return false;
	for (n = 1; n < line; p++) {
		if (*p == '\0')
			return false;
		if (*p == '\n')
			n++;
	}
	if ((end = strchr(p, '\n')) == NULL)
		end = p + strlen(p);
	for (b = p; b < end && (b = memchr(b, '{', (size_t)(end - b))) != NULL; b++) {
		for (q = b; q > p && isblank((unsigned char)q[-1]); q--)
			;
		if (q == p || q[-1] != '=')
			continue;
		if (--q > p && q[-1] == '+')
			q--;
		while (q > p && isblank((unsigned char)q[-1]))
			q--;
		for (e = q; q > p && (isalnum((unsigned char)q[-1]) || q[-1] == '_' ||
		    q[-1] == '.'); q--)
			;
		if (q == e || (size_t)(e - q) >= len)
			continue;
		memcpy(name, q, (size_t)(e - q));
		name[e - q] = '\0';
		/* `a = {"x"}  b = {"y"}` on one line: the list option is fine */
		if (is_single_value(pool_opts, name) || is_single_value(main_opts, name))
			return true;
	}
	return false;
}

/* Two `pool NAME` sections with one name in one file: name both lines. */
static void
report_duplicate_title(cfg_t *cfg, const char *name)
{
	unsigned int i, n = cfg ? cfg_size(cfg, "pool") : 0;
	int first = 0;

	for (i = 0; i < n; i++)
		if (strcmp(cfg_title(cfg_getnsec(cfg, "pool", i)), name) == 0)
			first = pool_line(i);
	loader_error(cur, cur->file, pool_line(n) ? pool_line(n) : cfg->line,
	    "pool '%s': duplicate pool name, first defined at %s:%d",
	    name, cur->file, first);
}

/*
 * libconfuse error function: every message goes to the loader as
 * "FILE:LINE: option 'NAME': what is wrong".  Our own parsers and validators
 * already speak that way; libconfuse's messages are rephrased.
 */
static void
conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[512], name[128], alias[128];
	const char *a;
	int line = cfg ? cfg->line : 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cur == NULL)
		return;
	if (sscanf(msg, "no such option '%127[^']'", name) == 1) {
		if (cur->site && cfg && strcmp(cfg->name, "root") == 0 &&
		    is_option(main_opts, name))
			loader_error(cur, cur->file, line, "option '%s': global directive "
			    "not allowed in a site file (only pool sections; move it to the "
			    "main file)", name);
		else if (cfg && strcmp(cfg->name, "root") == 0 && is_option(pool_opts, name))
			loader_error(cur, cur->file, line, "option '%s': allowed only "
			    "inside a pool section (pool NAME { ... })", name);
		else if ((a = php_fpm_alias(name, alias, sizeof(alias))) != NULL)
			loader_error(cur, cur->file, line,
			    "option '%s': unknown option (fcgi-pm calls it '%s')", name, a);
		else if (cfg && strcmp(cfg->name, "pool") == 0)
			loader_error(cur, cur->file, line,
			    "option '%s': unknown option in a pool section", name);
		else
			loader_error(cur, cur->file, line, "option '%s': unknown option", name);
	} else if (sscanf(msg, "found duplicate title '%127[^']'", name) == 1) {
		report_duplicate_title(cfg, name);
	} else if (sscanf(msg, "missing equal sign after option '%127[^']'", name) == 1) {
		loader_error(cur, cur->file, line, "option '%s': missing '=' after the "
		    "option name", name);
	} else if (sscanf(msg, "missing title for section '%127[^']'", name) == 1) {
		loader_error(cur, cur->file, line, "option '%s': missing the pool name "
		    "(pool NAME { ... })", name);
	} else if (sscanf(msg, "missing opening brace for section '%127[^']'", name) == 1) {
		loader_error(cur, cur->file, line, "option '%s': missing '{' after the "
		    "pool name", name);
	} else if ((strcmp(msg, "premature end of file") == 0 ||
	    strcmp(msg, "unterminated string constant") == 0) && cur->open_quote_line) {
		loader_error(cur, cur->file, cur->open_quote_line, "syntax error: "
		    "the string that starts on this line has no closing quote");
	} else if (strcmp(msg, "unexpected token '{'") == 0 &&
	    list_option_on_line(cur, line, name, sizeof(name))) {
		loader_error(cur, cur->file, line, "option '%s': takes a single value, "
		    "not a list", name);
	} else if (strncmp(msg, "unexpected ", 11) == 0 || strcmp(msg, "premature end of file") == 0) {
		loader_error(cur, cur->file, line, "syntax error: %s", msg);
	} else
		loader_error(cur, cur->file, line, "%s", msg);
}

/* ------------------------------------------------------- reading a file */

/* Unquoted-string characters of libconfuse's lexer ('/' checked apart). */
static bool
is_word_char(const char *p)
{
	if (p[0] == '/')
		return p[1] != '/' && p[1] != '*';
	return p[0] != '\0' && strchr(" #\"'\t\n\r={}()+,*", p[0]) == NULL;
}

static int
record_pool_line(struct loader *ld, int line)
{
	int *l = realloc(ld->pool_lines, (ld->npool_lines + 1) * sizeof(*l));

	if (l == NULL) {
		ld->oom = true;
		return -1;
	}
	ld->pool_lines = l;
	ld->pool_lines[ld->npool_lines++] = line;
	return 0;
}

/*
 * Blank out the comments of BUF in place, keeping every newline so that
 * libconfuse counts lines right, and record the line of each top-level
 * `pool` keyword.  Follows libconfuse's lexer: outside quotes '#' and '//'
 * start a comment to the end of the line and '/' '*' one to '*' '/'; in
 * both kinds of quotes a backslash escapes the next character.
 */
static void
scan_file(struct loader *ld, char *buf)
{
	char *p = buf, *w, *q;
	int line = 1, depth = 0;
	char quote;

	while (*p != '\0') {
		if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p != '\0' && *p != '\n')
				*p++ = ' ';
		} else if (p[0] == '/' && p[1] == '*') {
			*p++ = ' ';
			*p++ = ' ';
			while (*p != '\0' && !(p[0] == '*' && p[1] == '/')) {
				if (*p == '\n')
					line++;
				else
					*p = ' ';
				p++;
			}
			if (*p != '\0') {
				*p++ = ' ';
				*p++ = ' ';
			}
		} else if (*p == '"' || *p == '\'') {
			quote = *p++;
			ld->open_quote_line = line;
			while (*p != '\0' && *p != quote) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (*p == '\n')
					line++;
				p++;
			}
			if (*p != '\0') {
				ld->open_quote_line = 0;
				p++;
			}
		} else if (*p == '{') {
			if (depth++ == 0)
				ld->open_brace_line = line;
			p++;
		} else if (*p == '}') {
			if (depth > 0 && --depth == 0)
				ld->open_brace_line = 0;
			p++;
		} else if (is_word_char(p)) {
			for (w = p; is_word_char(p); p++)
				;
			if (depth > 0 || p - w != 4 || memcmp(w, "pool", 4) != 0)
				continue;
			for (q = p; *q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'; q++)
				;
			if (*q != '=' && *q != '+')	/* `pool = x` is no section */
				record_pool_line(ld, line);
		} else
			p++;
	}
}

/* Read FILE whole into a NUL-terminated buffer, or report why not. */
static char *
read_file(struct loader *ld, const char *file)
{
	FILE *fp;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;
	int saved;

	if ((fp = fopen(file, "r")) == NULL) {
		loader_error(ld, file, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > MAX_FILE_SIZE + 8192) {
				loader_error(ld, file, 0, "file is too large (over %d MiB)",
				    MAX_FILE_SIZE >> 20);
				goto fail;
			}
			if ((nbuf = realloc(buf, cap)) == NULL) {
				ld->oom = true;
				goto fail;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len - 1, fp);
		len += n;
	} while (n > 0);
	if (ferror(fp)) {
		saved = errno;
		loader_error(ld, file, 0, "cannot read: %s", strerror(saved));
		goto fail;
	}
	fclose(fp);
	buf[len] = '\0';
	if (strlen(buf) != len) {
		loader_error(ld, file, 0, "file contains a NUL byte");
		free(buf);
		return NULL;
	}
	return buf;
fail:
	fclose(fp);
	free(buf);
	return NULL;
}

/*
 * Parse FILE with the main or the site schema.  Returns the cfg_t (the
 * caller frees it), or NULL after reporting every error found.
 */
static cfg_t *
parse_file(struct loader *ld, const char *file, bool site)
{
	cfg_t *cfg;
	char *buf;
	size_t i;
	int rc, nerr = ld->nerr;

	if ((buf = read_file(ld, file)) == NULL)
		return NULL;
	ld->file = file;
	ld->site = site;
	ld->npool_lines = 0;
	ld->include_dir_line = 0;
	ld->open_quote_line = 0;
	ld->open_brace_line = 0;
	ld->nopt_lines = 0;
	scan_file(ld, buf);
	if (ld->open_brace_line && !ld->open_quote_line) {
		/* libconfuse 3.3 accepts a section left open at the end of file */
		loader_error(ld, file, ld->open_brace_line, "syntax error: the '{' "
		    "on this line is never closed");
		free(buf);
		return NULL;
	}

	if ((cfg = cfg_init(site ? site_opts : main_opts, CFGF_NONE)) == NULL) {
		ld->oom = true;
		free(buf);
		return NULL;
	}
	cfg_set_error_function(cfg, conf_errfunc);
	for (i = 0; i < sizeof(validators) / sizeof(validators[0]); i++)
		if (!site || strncmp(validators[i].path, "pool|", 5) == 0)
			cfg_set_validate_func(cfg, validators[i].path, validators[i].fn);

	cur = ld;
	ld->text = buf;
	rc = *buf ? cfg_parse_buf(cfg, buf) : CFG_SUCCESS;	/* fmemopen refuses 0 bytes */
	ld->text = NULL;
	cur = NULL;
	free(buf);
	if (rc != CFG_SUCCESS) {
		if (ld->nerr == nerr)
			loader_error(ld, file, 0, "parse error");
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* --------------------------------------------------- copy into structs */

static char *
xstrdup(struct loader *ld, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		ld->oom = true;
	return d;
}

/* S with every "$pool" replaced by POOL (php-fpm style); NULL stays NULL. */
static char *
expand_pool(struct loader *ld, const char *s, const char *pool)
{
	const char *p, *hit;
	size_t n = 0, plen = strlen(pool);
	char *d, *o;

	if (s == NULL)
		return NULL;
	for (p = s; (hit = strstr(p, "$pool")) != NULL; p = hit + 5)
		n++;
	if ((d = malloc(strlen(s) + n * plen + 1)) == NULL) {
		ld->oom = true;
		return NULL;
	}
	for (o = d, p = s; (hit = strstr(p, "$pool")) != NULL; p = hit + 5) {
		memcpy(o, p, (size_t)(hit - p));
		o += hit - p;
		memcpy(o, pool, plen);
		o += plen;
	}
	strcpy(o, p);
	return d;
}

static void
free_list(char **l)
{
	size_t i;

	for (i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

/*
 * The list option NAME of SEC as a NULL-terminated array, `$pool` expanded
 * when POOL is set.  An empty list gives NULL if EMPTY_IS_NULL, else {NULL}.
 */
static char **
copy_list(struct loader *ld, cfg_t *sec, const char *name, const char *pool,
    bool empty_is_null)
{
	unsigned int n = cfg_size(sec, name), i;
	char **l;

	if (n == 0 && empty_is_null)
		return NULL;
	if ((l = calloc(n + 1, sizeof(*l))) == NULL) {
		ld->oom = true;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const char *v = cfg_getnstr(sec, name, i);

		l[i] = pool ? expand_pool(ld, v, pool) : xstrdup(ld, v);
		if (l[i] == NULL) {
			free_list(l);
			return NULL;
		}
	}
	return l;
}

static void
pool_conf_free(struct pool_conf *p)
{
	free(p->name);
	free(p->file);
	free(p->listen);
	free(p->listen_owner);
	free(p->listen_group);
	free_list(p->listen_allowed_clients);
	free(p->user);
	free(p->group);
	free(p->chdir);
	free_list(p->env);
	free(p->module);
	free(p->virtualenv);
	free_list(p->python_path);
	free(p->script_name);
	free(p->slowlog);
}

static bool
valid_pool_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > MAX_POOL_NAME)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

static bool
is_root_user(const char *u)
{
	return u && (strcmp(u, "root") == 0 ||
	    (all_digits(u) && strtol(u, NULL, 10) == 0));
}

/*
 * Copy pool section SEC, opened at FILE:LINE, into P and run the cross-field
 * checks php-fpm runs.  Returns 0, or -1 after reporting (P then holds what
 * was copied; the caller frees it).
 */
static int
pool_copy(struct loader *ld, cfg_t *sec, const char *file, int line,
    struct pool_conf *p)
{
	const char *name = cfg_title(sec);
	int nerr = ld->nerr;

#define STR(f)		p->f = expand_pool(ld, cfg_getstr(sec, #f), name)
#define FAIL(...)	loader_error(ld, file, line, __VA_ARGS__)
	p->name = xstrdup(ld, name);
	p->file = xstrdup(ld, file);
	p->line = line;
	if (!valid_pool_name(name))
		FAIL("pool '%s': invalid pool name (1 to %d letters, digits, '.', '_' "
		    "or '-')", name, MAX_POOL_NAME);

	STR(listen);
	STR(listen_owner);
	STR(listen_group);
	p->listen_mode = (int)cfg_getint(sec, "listen_mode");
	p->listen_backlog = (int)cfg_getint(sec, "listen_backlog");
	p->listen_allowed_clients = copy_list(ld, sec, "listen_allowed_clients",
	    name, true);
	STR(user);
	STR(group);
	p->allow_root = cfg_getbool(sec, "allow_root");
	p->umask = (int)cfg_getint(sec, "umask");
	STR(chdir);
	p->env = copy_list(ld, sec, "env", name, false);
	p->clear_env = cfg_getbool(sec, "clear_env");
	p->rlimit_files = cfg_getint(sec, "rlimit_files");
	p->rlimit_core = cfg_getint(sec, "rlimit_core");
	p->catch_workers_output = cfg_getbool(sec, "catch_workers_output");
	STR(module);
	STR(virtualenv);
	p->python_path = copy_list(ld, sec, "python_path", name, false);
	STR(script_name);
	p->preload = cfg_getbool(sec, "preload");
	p->pm = (enum pm_mode)cfg_getint(sec, "pm");
	p->max_children = (int)cfg_getint(sec, "max_children");
	p->start_servers = (int)cfg_getint(sec, "start_servers");
	p->min_spare = (int)cfg_getint(sec, "min_spare");
	p->max_spare = (int)cfg_getint(sec, "max_spare");
	p->max_spawn_rate = (int)cfg_getint(sec, "max_spawn_rate");
	p->process_idle_timeout_ms = cfg_getint(sec, "process_idle_timeout");
	p->threads = (int)cfg_getint(sec, "threads");
	p->max_requests = cfg_getint(sec, "max_requests");
	p->max_requests_jitter = cfg_getint(sec, "max_requests_jitter");
	p->max_rss = cfg_getint(sec, "max_rss");
	p->request_terminate_timeout_ms = cfg_getint(sec, "request_terminate_timeout");
	p->request_slowlog_timeout_ms = cfg_getint(sec, "request_slowlog_timeout");
	STR(slowlog);
	p->queue_timeout_ms = cfg_getint(sec, "queue_timeout");
	p->read_timeout_ms = cfg_getint(sec, "read_timeout");
	p->keepalive_timeout_ms = cfg_getint(sec, "keepalive_timeout");
#undef STR
#define LINE(f)		p->lines.f = opt_line(ld, sec, #f)
	LINE(listen_owner);
	LINE(listen_group);
	LINE(user);
	LINE(group);
	LINE(chdir);
	LINE(virtualenv);
	LINE(python_path);
	LINE(slowlog);
#undef LINE
	if (ld->oom)
		return -1;

	if (p->listen && strncmp(p->listen, "unix:", 5) == 0)
		memmove(p->listen, p->listen + 5, strlen(p->listen + 5) + 1);
	if (p->listen == NULL)
		FAIL("pool '%s': option 'listen' is required (a unix socket path or "
		    "host:port)", name);
	else if (p->listen[0] == '/' && strlen(p->listen) >= UNIX_PATH_MAX)
		FAIL("pool '%s': option 'listen': unix socket path '%s' is too long "
		    "(%zu bytes, at most %d)", name, p->listen, strlen(p->listen),
		    UNIX_PATH_MAX - 1);
	else if (all_digits(p->listen)) {	/* php-fpm's bare port: all addresses */
		char *l = malloc(strlen(p->listen) + 2);

		if (l == NULL) {
			ld->oom = true;
			return -1;
		}
		l[0] = ':';
		strcpy(l + 1, p->listen);
		free(p->listen);
		p->listen = l;
	}
	if (p->listen && p->listen[0] == '/' && p->listen_allowed_clients)
		FAIL("pool '%s': option 'listen_allowed_clients' applies to TCP "
		    "addresses only, and listen is the unix socket '%s'", name, p->listen);
	if (p->module == NULL)
		FAIL("pool '%s': option 'module' is required (e.g. "
		    "\"mysite.wsgi:application\")", name);
	if (is_root_user(p->user) && !p->allow_root)
		FAIL("pool '%s': user '%s' is refused: workers would run as root "
		    "(set allow_root = yes if you mean it)", name, p->user);
	if (p->request_slowlog_timeout_ms > 0 && p->slowlog == NULL)
		FAIL("pool '%s': option 'request_slowlog_timeout' is set but 'slowlog' "
		    "is not (the file slow requests are logged to)", name);

	if (cfg_size(sec, "max_children") == 0) {
		FAIL("pool '%s': option 'max_children' is required (1 to 4096)", name);
		return -1;
	}
	switch (p->pm) {
	case PM_STATIC:
		p->start_servers = p->max_children;
		break;
	case PM_ONDEMAND:
		p->start_servers = 0;
		if (p->process_idle_timeout_ms <= 0)
			FAIL("pool '%s': process_idle_timeout (%ldms) must be greater than "
			    "0 with pm = ondemand", name, p->process_idle_timeout_ms);
		break;
	case PM_DYNAMIC:
		/*
		 * php-fpm insists on both; defaults that pass the checks
		 * below let a minimal pool say just `pm = dynamic`.
		 */
		if (cfg_size(sec, "min_spare") == 0)
			p->min_spare = 1;
		if (cfg_size(sec, "max_spare") == 0)
			p->max_spare = p->max_children / 2 > p->min_spare ?
			    p->max_children / 2 : p->min_spare;
		if (p->min_spare > p->max_children || p->max_spare > p->max_children) {
			FAIL("pool '%s': min_spare (%d) and max_spare (%d) cannot be "
			    "greater than max_children (%d)", name, p->min_spare,
			    p->max_spare, p->max_children);
			break;
		}
		if (p->max_spare < p->min_spare) {
			FAIL("pool '%s': max_spare (%d) must not be less than min_spare (%d)",
			    name, p->max_spare, p->min_spare);
			break;
		}
		if (cfg_size(sec, "start_servers") == 0)
			p->start_servers = p->min_spare + (p->max_spare - p->min_spare) / 2;
		else if (p->start_servers < p->min_spare || p->start_servers > p->max_spare)
			FAIL("pool '%s': start_servers (%d) must not be less than min_spare "
			    "(%d) and not greater than max_spare (%d)", name,
			    p->start_servers, p->min_spare, p->max_spare);
		break;
	}
#undef FAIL
	return ld->nerr == nerr ? 0 : -1;
}

static bool
is_any_host(const char *h)
{
	return *h == '\0' || strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 ||
	    strcmp(h, "::") == 0;
}

/* Would binding A and B collide?  A wildcard host takes its port on all. */
static bool
listen_conflict(const char *a, const char *b)
{
	char ha[256], hb[256];
	const char *why;
	long pa, pb;

	if (strcmp(a, b) == 0)
		return true;
	if (a[0] == '/' || b[0] == '/')
		return false;
	if (split_hostport(a, ha, sizeof(ha), &pa, &why) == -1 ||
	    split_hostport(b, hb, sizeof(hb), &pb, &why) == -1 || pa != pb)
		return false;
	return strcmp(ha, hb) == 0 || is_any_host(ha) || is_any_host(hb);
}

/*
 * Add P to C if VALID and its name and address are free; P is moved or
 * freed.  A pool that failed its own checks is still checked for a taken
 * name: a copy-pasted site file is the likely cause of both.
 */
static void
conf_add_pool(struct loader *ld, struct conf *c, struct pool_conf *p, bool valid)
{
	struct pool_conf *np;
	size_t i;
	int nerr = ld->nerr;

	for (i = 0; i < c->npools; i++) {
		const struct pool_conf *q = &c->pools[i];

		if (strcmp(q->name, p->name) == 0)
			loader_error(ld, p->file, p->line, "pool '%s': duplicate pool "
			    "name, first defined at %s:%d", p->name, q->file, q->line);
		else if (valid && listen_conflict(q->listen, p->listen))
			loader_error(ld, p->file, p->line, "pool '%s': listen address "
			    "'%s' is already used by pool '%s' (%s:%d)", p->name,
			    p->listen, q->name, q->file, q->line);
	}
	if (!valid || ld->nerr != nerr)
		goto drop;
	if ((np = realloc(c->pools, (c->npools + 1) * sizeof(*np))) == NULL) {
		ld->oom = true;
		goto drop;
	}
	c->pools = np;
	c->pools[c->npools++] = *p;
	return;
drop:
	pool_conf_free(p);
}

/* Copy every pool section of CFG, parsed from FILE, into C. */
static void
copy_pools(struct loader *ld, struct conf *c, cfg_t *cfg, const char *file)
{
	unsigned int i, n = cfg_size(cfg, "pool");

	for (i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(cfg, "pool", i);
		struct pool_conf p;

		int ok;

		memset(&p, 0, sizeof(p));
		ok = pool_copy(ld, sec, file, i < ld->npool_lines ?
		    ld->pool_lines[i] : sec->line, &p) == 0;
		if (p.name == NULL || p.file == NULL)
			pool_conf_free(&p);	/* out of memory, reported */
		else
			conf_add_pool(ld, c, &p, ok);
	}
}

/* include_dir as written, made relative to the main file's directory. */
static char *
resolve_include_dir(struct loader *ld, const char *main_file, const char *dir)
{
	const char *slash = strrchr(main_file, '/');
	char *d;

	if (dir[0] == '/' || slash == NULL)
		return xstrdup(ld, dir);
	if (asprintf(&d, "%.*s/%s", (int)(slash - main_file), main_file, dir) == -1) {
		ld->oom = true;
		return NULL;
	}
	return d;
}

static void
copy_globals(struct loader *ld, struct conf *c, cfg_t *cfg)
{
	c->error_log = xstrdup(ld, cfg_getstr(cfg, "error_log"));
	c->log_level = xstrdup(ld, cfg_getstr(cfg, "log_level"));
	c->pid_file = xstrdup(ld, cfg_getstr(cfg, "pid_file"));
	if (cfg_getstr(cfg, "include_dir"))
		c->include_dir = resolve_include_dir(ld, c->file,
		    cfg_getstr(cfg, "include_dir"));
	c->status_socket = xstrdup(ld, cfg_getstr(cfg, "status_socket"));
	c->status_owner = xstrdup(ld, cfg_getstr(cfg, "status_owner"));
	c->status_group = xstrdup(ld, cfg_getstr(cfg, "status_group"));
	c->status_mode = (int)cfg_getint(cfg, "status_mode");
	c->status_allow_users = copy_list(ld, cfg, "status_allow_users", NULL, false);
	c->process_control_timeout_ms = cfg_getint(cfg, "process_control_timeout");
	c->emergency_restart_threshold = (int)cfg_getint(cfg,
	    "emergency_restart_threshold");
	c->emergency_restart_interval_ms = cfg_getint(cfg, "emergency_restart_interval");
	c->worker_binary = xstrdup(ld, cfg_getstr(cfg, "worker_binary"));
	c->lines.status_owner = opt_line(ld, cfg, "status_owner");
	c->lines.status_group = opt_line(ld, cfg, "status_group");
	c->lines.status_allow_users = opt_line(ld, cfg, "status_allow_users");
	c->lines.worker_binary = opt_line(ld, cfg, "worker_binary");
}

/* Site files: "*.conf", not hidden (editors leave ".#x.conf" behind). */
static int
is_site_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* Byte order, not the locale's: the same files load in the same order anywhere. */
static int
cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Parse every site file of C->include_dir, named at main file line LINE.
 * The main file itself is skipped, should include_dir be its own directory.
 */
static void
load_include_dir(struct loader *ld, struct conf *c, int line)
{
	struct dirent **ents;
	struct stat st;
	char *path;
	cfg_t *cfg;
	int n, i;

	if ((n = scandir(c->include_dir, &ents, is_site_file, cmp_names)) == -1) {
		loader_error(ld, c->file, line, "option 'include_dir': cannot read "
		    "directory '%s': %s", c->include_dir, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		if (asprintf(&path, "%s/%s", c->include_dir, ents[i]->d_name) == -1) {
			ld->oom = true;
			path = NULL;
		} else if (stat(path, &st) == 0 && (S_ISDIR(st.st_mode) ||
		    (st.st_dev == ld->main_st.st_dev && st.st_ino == ld->main_st.st_ino))) {
			;	/* a directory called x.conf, or the main file */
		} else if ((cfg = parse_file(ld, path, true)) != NULL) {
			copy_pools(ld, c, cfg, path);
			cfg_free(cfg);
		}
		free(path);
		free(ents[i]);
	}
	free(ents);
}

/* ------------------------------------------------------------- interface */

/*
 * Parse FILE and the site files of its include_dir into a new struct conf,
 * which the caller frees with conf_free().  On any error returns NULL, with
 * one "FILE:LINE: ..." line per error in ERRBUF (always NUL-terminated when
 * ERRLEN > 0; may be NULL).  Not reentrant: libconfuse's parser has global
 * state, so call it from the main thread only.
 */
struct conf *
conf_load(const char *file, char *errbuf, size_t errlen)
{
	struct loader ld;
	struct conf *c;
	cfg_t *cfg;

	memset(&ld, 0, sizeof(ld));
	ld.errbuf = errbuf;
	ld.errlen = errlen;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->file = strdup(file)) == NULL) {
		free(c);
		loader_error(&ld, file, 0, "out of memory");
		return NULL;
	}
	if ((cfg = parse_file(&ld, file, false)) != NULL) {
		int include_line = ld.include_dir_line;

		if (stat(file, &ld.main_st) == -1)
			memset(&ld.main_st, 0, sizeof(ld.main_st));

		copy_globals(&ld, c, cfg);
		copy_pools(&ld, c, cfg, file);
		cfg_free(cfg);
		if (c->include_dir)
			load_include_dir(&ld, c, include_line);
	}
	if (ld.nerr == 0 && !ld.oom && c->npools == 0)
		loader_error(&ld, file, 0, "no pool defined (add a 'pool NAME { ... }' "
		    "section here or a site file to include_dir)");
	if (ld.oom)
		loader_error(&ld, file, 0, "out of memory");
	free(ld.pool_lines);
	free(ld.opt_lines);
	if (ld.nerr > 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* Free C and everything in it; NULL is fine. */
void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->npools; i++)
		pool_conf_free(&c->pools[i]);
	free(c->pools);
	free(c->file);
	free(c->error_log);
	free(c->log_level);
	free(c->pid_file);
	free(c->include_dir);
	free(c->status_socket);
	free(c->status_owner);
	free(c->status_group);
	free_list(c->status_allow_users);
	free(c->worker_binary);
	free(c);
}

/* The pool called NAME in C, or NULL. */
const struct pool_conf *
conf_find_pool(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; c && i < c->npools; i++)
		if (strcmp(c->pools[i].name, name) == 0)
			return &c->pools[i];
	return NULL;
}

/* "static", "dynamic" or "ondemand", as written in the configuration. */
const char *
pm_mode_name(enum pm_mode m)
{
	switch (m) {
	case PM_STATIC:		return "static";
	case PM_DYNAMIC:	return "dynamic";
	case PM_ONDEMAND:	return "ondemand";
	}
	return "unknown";
}

/* ------------------------------------------------- the system check */

/*
 * stat PATH for a check.  Returns 0, or -1 after reporting why not, unless
 * it cannot be told: a path the checking user may not search (EACCES) is
 * left to the start, whose workers may run as someone who can.
 */
static int
check_stat(struct loader *ld, const char *file, int line, const char *opt,
    const char *path, struct stat *st, bool *unknown)
{
	*unknown = false;
	if (stat(path, st) == 0)
		return 0;
	if (errno == EACCES) {
		*unknown = true;
		return -1;
	}
	if (errno == ENOENT || errno == ENOTDIR)
		loader_error(ld, file, line, "option '%s': '%s' does not exist", opt, path);
	else
		loader_error(ld, file, line, "option '%s': '%s': %s", opt, path,
		    strerror(errno));
	return -1;
}

/* OPT = PATH must be an existing directory. */
static void
check_dir(struct loader *ld, const char *file, int line, const char *opt,
    const char *path)
{
	struct stat st;
	bool unknown;

	if (check_stat(ld, file, line, opt, path, &st, &unknown) == 0 &&
	    !S_ISDIR(st.st_mode))
		loader_error(ld, file, line, "option '%s': '%s' is not a directory",
		    opt, path);
}

/* A virtualenv as the worker takes it: a directory with pyvenv.cfg and bin/. */
static void
check_virtualenv(struct loader *ld, const char *file, int line, const char *path)
{
	struct stat st;
	char sub[PATH_MAX];
	bool unknown;

	if (check_stat(ld, file, line, "virtualenv", path, &st, &unknown) == -1)
		return;
	if (!S_ISDIR(st.st_mode)) {
		loader_error(ld, file, line, "option 'virtualenv': '%s' is not a "
		    "directory", path);
		return;
	}
	snprintf(sub, sizeof(sub), "%s/pyvenv.cfg", path);
	if (stat(sub, &st) == 0 ? !S_ISREG(st.st_mode) : errno != EACCES) {
		loader_error(ld, file, line, "option 'virtualenv': '%s' is not a "
		    "virtualenv: no pyvenv.cfg in it (python3 -m venv %s makes one)",
		    path, path);
		return;
	}
	snprintf(sub, sizeof(sub), "%s/bin", path);
	if (stat(sub, &st) == 0 ? !S_ISDIR(st.st_mode) : errno != EACCES)
		loader_error(ld, file, line, "option 'virtualenv': '%s' is not a "
		    "virtualenv: it has no bin/ directory", path);
}

/* The directory a log file PATH is created in must exist. */
static void
check_parent_dir(struct loader *ld, const char *file, int line, const char *opt,
    const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;

	if (slash == NULL)
		return;		/* the working directory */
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (stat(dir, &st) == 0 ? !S_ISDIR(st.st_mode) : errno != EACCES)
		loader_error(ld, file, line, "option '%s': directory '%s' of '%s' "
		    "does not exist", opt, dir, path);
}

/*
 * A user name that must resolve.  NUMERIC_OK: a decimal uid is taken
 * without a passwd entry when HAVE_GROUP (pool.c's rule for `user`: the
 * group then cannot come from the entry); listen_owner and status_owner
 * are names only, as sock.c and control.c look them up.
 */
static void
check_user(struct loader *ld, const char *file, int line, const char *opt,
    const char *name, bool numeric_ok, bool have_group)
{
	unsigned long id;

	if (getpwnam(name) != NULL)
		return;
	if (numeric_ok && numeric_id(name, &id)) {
		if (!have_group)
			loader_error(ld, file, line, "option '%s': uid %s has no passwd "
			    "entry, so set group as well", opt, name);
		return;
	}
	loader_error(ld, file, line, "option '%s': no such user '%s'", opt, name);
}

static void
check_group(struct loader *ld, const char *file, int line, const char *opt,
    const char *name, bool numeric_ok)
{
	unsigned long id;

	if (getgrnam(name) != NULL || (numeric_ok && numeric_id(name, &id)))
		return;
	loader_error(ld, file, line, "option '%s': no such group '%s'", opt, name);
}

static void
check_pool_system(struct loader *ld, const struct pool_conf *p)
{
	const char *f = p->file;
	size_t i;

	/* an option set has its line; the pool's line is the fallback */
#define AT(o)	(p->lines.o ? p->lines.o : p->line)
	if (p->listen_owner)
		check_user(ld, f, AT(listen_owner), "listen_owner", p->listen_owner,
		    false, false);
	if (p->listen_group)
		check_group(ld, f, AT(listen_group), "listen_group", p->listen_group,
		    false);
	if (p->user)
		check_user(ld, f, AT(user), "user", p->user, true, p->group != NULL);
	if (p->group)
		check_group(ld, f, AT(group), "group", p->group, true);
	if (p->chdir)
		check_dir(ld, f, AT(chdir), "chdir", p->chdir);
	if (p->virtualenv)
		check_virtualenv(ld, f, AT(virtualenv), p->virtualenv);
	if (p->slowlog)
		check_parent_dir(ld, f, AT(slowlog), "slowlog", p->slowlog);
	/*
	 * Python itself skips a sys.path entry that does not exist, and a
	 * directory may be deployed after the check: a warning, not a refusal.
	 */
	for (i = 0; p->python_path && p->python_path[i]; i++) {
		struct stat st;

		if (stat(p->python_path[i], &st) == -1 && errno != EACCES)
			loader_warning(ld, f, AT(python_path), "option 'python_path': "
			    "warning: '%s': %s (Python skips it)", p->python_path[i],
			    strerror(errno));
	}
#undef AT
}

/*
 * The second pass: what conf_load() leaves to the system (fcgi-pm.h).
 * Checked as the user who runs it; a path that user may not search is not
 * refused.  Reentrant, unlike conf_load().
 */
int
conf_check_system(const struct conf *c, char *errbuf, size_t errlen)
{
	struct loader ld;
	struct stat st;
	bool unknown;
	size_t i;

	memset(&ld, 0, sizeof(ld));
	ld.errbuf = errbuf;
	ld.errlen = errlen;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (c->status_owner)
		check_user(&ld, c->file, c->lines.status_owner, "status_owner",
		    c->status_owner, false, false);
	if (c->status_group)
		check_group(&ld, c->file, c->lines.status_group, "status_group",
		    c->status_group, false);
	for (i = 0; c->status_allow_users && c->status_allow_users[i]; i++)
		check_user(&ld, c->file, c->lines.status_allow_users,
		    "status_allow_users", c->status_allow_users[i], false, false);
	if (c->worker_binary && check_stat(&ld, c->file, c->lines.worker_binary,
	    "worker_binary", c->worker_binary, &st, &unknown) == 0) {
		if (!S_ISREG(st.st_mode))
			loader_error(&ld, c->file, c->lines.worker_binary, "option "
			    "'worker_binary': '%s' is not a file", c->worker_binary);
		else if (access(c->worker_binary, X_OK) == -1)
			loader_error(&ld, c->file, c->lines.worker_binary, "option "
			    "'worker_binary': '%s' is not executable: %s",
			    c->worker_binary, strerror(errno));
	}
	for (i = 0; i < c->npools; i++)
		check_pool_system(&ld, &c->pools[i]);
	return ld.nerr > 0 ? -1 : 0;
}
