/*
 * test_conf.c - conf_load(): every directive's valid and invalid values,
 * durations and sizes, $pool expansion, include_dir handling, and the
 * exact text, file and line of every kind of error; conf_check_system():
 * users, groups and paths against this system, at the options' lines.
 *
 * Most cases write their config into a fresh temporary directory; the
 * fixtures under tests/unit/conf/ and the shipped examples under etc/ are
 * loaded as they are.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcgi-pm.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static char tmp[64];			/* this test's directory */
static char errbuf[16384];
static struct conf *loaded;		/* freed by teardown */

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_conf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	errbuf[0] = '\0';
	loaded = NULL;
}

static void
teardown(void)
{
	conf_free(loaded);
	loaded = NULL;
	chmod(tmp, 0700);
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* TMP/REL, in one of a few rotating buffers. */
static const char *
path(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int i;
	char *b = bufs[i++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", tmp, rel);
	return b;
}

/* Write TEXT to TMP/REL, creating the directories on the way. */
static const char *
put(const char *rel, const char *text)
{
	const char *p = path(rel);
	char dir[PATH_MAX], *slash;
	FILE *fp;

	snprintf(dir, sizeof(dir), "%s", p);
	for (slash = dir + strlen(tmp) + 1; (slash = strchr(slash, '/')) != NULL; slash++) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	ck_assert_ptr_nonnull(fp = fopen(p, "w"));
	fputs(text, fp);
	fclose(fp);
	return p;
}

static struct conf *
load_file(const char *file)
{
	conf_free(loaded);
	errbuf[0] = '\0';
	loaded = conf_load(file, errbuf, sizeof(errbuf));
	return loaded;
}

/* Load TMP/main.conf holding TEXT; it must succeed. */
static struct conf *
ok_main(const char *text)
{
	struct conf *c = load_file(put("main.conf", text));

	ck_assert_msg(c != NULL, "conf_load failed: %s", errbuf);
	ck_assert_str_eq(errbuf, "");
	return c;
}

/*
 * The line "TMP/REL_MSG" must be in errbuf; a REL_MSG ending in "..." need
 * only start a line.
 */
static void
expect_error(const char *rel_msg)
{
	char want[PATH_MAX + 1024];
	size_t n = strlen(rel_msg);

	if (n >= 3 && strcmp(rel_msg + n - 3, "...") == 0)
		snprintf(want, sizeof(want), "%s/%.*s", tmp, (int)(n - 3), rel_msg);
	else
		snprintf(want, sizeof(want), "%s/%s\n", tmp, rel_msg);
	ck_assert_msg(strstr(errbuf, want) != NULL, "want:\n%sgot:\n%s", want, errbuf);
}

/* Load TMP/main.conf holding TEXT; it must fail with error REL_MSG. */
static void
fail_main(const char *text, const char *rel_msg)
{
	ck_assert_msg(load_file(put("main.conf", text)) == NULL,
	    "conf_load accepted:\n%s", text);
	ck_assert_msg(errbuf[0] != '\0', "no message");
	expect_error(rel_msg);
}

/* A valid pool, opening on line 1, whose body BODY starts on line 5. */
#define POOL_HEAD	"pool web {\n" \
			"  listen = \"/run/web.sock\"\n" \
			"  module = \"web.wsgi:application\"\n" \
			"  max_children = 4\n"

static char *
pool_text(const char *body)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf), POOL_HEAD "%s\n}\n", body);
	return buf;
}

/* The single pool of a main file holding POOL_HEAD + BODY. */
static const struct pool_conf *
pool_with(const char *body)
{
	struct conf *c = ok_main(pool_text(body));

	ck_assert_uint_eq(c->npools, 1);
	return &c->pools[0];
}

/* Like pool_with(), but loading must fail with REL_MSG. */
static void
pool_fails(const char *body, const char *rel_msg)
{
	fail_main(pool_text(body), rel_msg);
}

static long
duration_of(const char *value)
{
	char body[256];

	snprintf(body, sizeof(body), "  request_terminate_timeout = %s", value);
	return pool_with(body)->request_terminate_timeout_ms;
}

static long
size_of(const char *value)
{
	char body[256];

	snprintf(body, sizeof(body), "  max_rss = %s", value);
	return pool_with(body)->max_rss;
}

/* ====================================================== main file, globals */

START_TEST(pool_in_main_file_gets_documented_defaults)
{
	struct conf *c = ok_main(pool_text(""));
	const struct pool_conf *p = &c->pools[0];

	ck_assert_str_eq(c->file, path("main.conf"));
	ck_assert_ptr_null(c->error_log);
	ck_assert_str_eq(c->log_level, "notice");
	ck_assert_ptr_null(c->pid_file);
	ck_assert_ptr_null(c->include_dir);
	ck_assert_ptr_null(c->status_socket);
	ck_assert_ptr_null(c->status_owner);
	ck_assert_ptr_null(c->status_group);
	ck_assert_int_eq(c->status_mode, 0600);
	ck_assert_ptr_nonnull(c->status_allow_users);
	ck_assert_ptr_null(c->status_allow_users[0]);
	ck_assert_int_eq(c->process_control_timeout_ms, 10000);
	ck_assert_int_eq(c->emergency_restart_threshold, 0);
	ck_assert_int_eq(c->emergency_restart_interval_ms, 0);
	ck_assert_ptr_null(c->worker_binary);

	ck_assert_str_eq(p->name, "web");
	ck_assert_str_eq(p->file, path("main.conf"));
	ck_assert_int_eq(p->line, 1);
	ck_assert_str_eq(p->listen, "/run/web.sock");
	ck_assert_ptr_null(p->listen_owner);
	ck_assert_ptr_null(p->listen_group);
	ck_assert_int_eq(p->listen_mode, 0660);
	ck_assert_int_eq(p->listen_backlog, 511);
	ck_assert_ptr_null(p->listen_allowed_clients);
	ck_assert_ptr_null(p->user);
	ck_assert_ptr_null(p->group);
	ck_assert(!p->allow_root);
	ck_assert_int_eq(p->umask, -1);
	ck_assert_ptr_null(p->chdir);
	ck_assert_ptr_nonnull(p->env);
	ck_assert_ptr_null(p->env[0]);
	ck_assert(p->clear_env);
	ck_assert_int_eq(p->rlimit_files, 0);
	ck_assert_int_eq(p->rlimit_core, -1);
	ck_assert(p->catch_workers_output);
	ck_assert_str_eq(p->module, "web.wsgi:application");
	ck_assert_ptr_null(p->virtualenv);
	ck_assert_ptr_nonnull(p->python_path);
	ck_assert_ptr_null(p->python_path[0]);
	ck_assert_ptr_null(p->script_name);
	ck_assert(!p->preload);
	ck_assert_int_eq(p->pm, PM_STATIC);
	ck_assert_int_eq(p->max_children, 4);
	ck_assert_int_eq(p->start_servers, 4);
	ck_assert_int_eq(p->max_spawn_rate, 32);
	ck_assert_int_eq(p->process_idle_timeout_ms, 10000);
	ck_assert_int_eq(p->threads, 1);
	ck_assert_int_eq(p->max_requests, 0);
	ck_assert_int_eq(p->max_requests_jitter, 0);
	ck_assert_int_eq(p->max_rss, 0);
	ck_assert_int_eq(p->request_terminate_timeout_ms, 0);
	ck_assert_int_eq(p->request_slowlog_timeout_ms, 0);
	ck_assert_ptr_null(p->slowlog);
	ck_assert_int_eq(p->queue_timeout_ms, 0);
	ck_assert_int_eq(p->read_timeout_ms, 30000);
	ck_assert_int_eq(p->keepalive_timeout_ms, 60000);
}
END_TEST

START_TEST(global_directives_are_copied)
{
	struct conf *c = ok_main(
	    "error_log = \"/var/log/fcgi-pm/error.log\"\n"
	    "log_level = debug\n"
	    "pid_file = \"/run/fcgi-pm.pid\"\n"
	    "status_socket = \"/run/fcgi-pm/status.sock\"\n"
	    "status_owner = \"root\"\n"
	    "status_group = \"adm\"\n"
	    "status_mode = 0660\n"
	    "status_allow_users = {\"alice\", \"bob\"}\n"
	    "process_control_timeout = 2500ms\n"
	    "emergency_restart_threshold = 10\n"
	    "emergency_restart_interval = 1m\n"
	    "worker_binary = \"/usr/lib/fcgi-pm/fcgi-pm-worker\"\n"
	    "pool a { listen = \":9000\"  module = \"a\"  max_children = 1 }\n");

	ck_assert_str_eq(c->error_log, "/var/log/fcgi-pm/error.log");
	ck_assert_str_eq(c->log_level, "debug");
	ck_assert_str_eq(c->pid_file, "/run/fcgi-pm.pid");
	ck_assert_str_eq(c->status_socket, "/run/fcgi-pm/status.sock");
	ck_assert_str_eq(c->status_owner, "root");
	ck_assert_str_eq(c->status_group, "adm");
	ck_assert_int_eq(c->status_mode, 0660);
	ck_assert_str_eq(c->status_allow_users[0], "alice");
	ck_assert_str_eq(c->status_allow_users[1], "bob");
	ck_assert_ptr_null(c->status_allow_users[2]);
	ck_assert_int_eq(c->process_control_timeout_ms, 2500);
	ck_assert_int_eq(c->emergency_restart_threshold, 10);
	ck_assert_int_eq(c->emergency_restart_interval_ms, 60000);
	ck_assert_str_eq(c->worker_binary, "/usr/lib/fcgi-pm/fcgi-pm-worker");
}
END_TEST

START_TEST(error_log_may_be_stderr)
{
	ck_assert_str_eq(ok_main("error_log = stderr\n" POOL_HEAD "}\n")->error_log, "stderr");
}
END_TEST

START_TEST(every_log_level_is_accepted)
{
	static const char *const levels[] = { "error", "warning", "notice", "debug" };
	char text[9000];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "log_level = %s\n%s", levels[i], pool_text(""));
		ck_assert_str_eq(ok_main(text)->log_level, levels[i]);
	}
}
END_TEST

START_TEST(unknown_log_level_is_refused)
{
	fail_main("\nlog_level = info\n",
	    "main.conf:2: option 'log_level': 'info' is not error, warning, notice or debug");
}
END_TEST

START_TEST(status_mode_out_of_range_is_refused)
{
	fail_main("status_mode = 01777\n",
	    "main.conf:1: option 'status_mode': invalid mode '01777' (octal, 0 to 0777, e.g. 0660)");
}
END_TEST

START_TEST(relative_pid_file_is_refused)
{
	fail_main("pid_file = \"run/x.pid\"\n",
	    "main.conf:1: option 'pid_file': 'run/x.pid' is not an absolute path");
}
END_TEST

START_TEST(relative_status_socket_and_worker_binary_are_refused)
{
	fail_main("status_socket = \"s.sock\"\n",
	    "main.conf:1: option 'status_socket': 's.sock' is not an absolute path");
	fail_main("worker_binary = \"fcgi-pm-worker\"\n",
	    "main.conf:1: option 'worker_binary': 'fcgi-pm-worker' is not an absolute path");
}
END_TEST

START_TEST(empty_status_allow_users_entry_is_refused)
{
	fail_main("status_allow_users = {\"alice\", \"\"}\n",
	    "main.conf:1: option 'status_allow_users': must not be empty");
}
END_TEST

START_TEST(negative_emergency_restart_threshold_is_refused)
{
	fail_main("emergency_restart_threshold = -1\n",
	    "main.conf:1: option 'emergency_restart_threshold': -1 is negative (allowed: 0 to 1000000)");
}
END_TEST

START_TEST(missing_main_file_is_an_error)
{
	ck_assert_ptr_null(load_file(path("nope.conf")));
	expect_error("nope.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(file_with_a_nul_byte_is_an_error)
{
	FILE *fp = fopen(path("main.conf"), "w");

	ck_assert_ptr_nonnull(fp);
	fwrite("log_level = debug\n\0\n", 1, 21, fp);
	fclose(fp);
	ck_assert_ptr_null(load_file(path("main.conf")));
	expect_error("main.conf: file contains a NUL byte");
}
END_TEST

START_TEST(huge_file_is_an_error)
{
	FILE *fp = fopen(path("main.conf"), "w");
	int i;

	ck_assert_ptr_nonnull(fp);
	for (i = 0; i < 5 * 1024; i++)
		fprintf(fp, "#%01022d\n", 0);
	fclose(fp);
	ck_assert_ptr_null(load_file(path("main.conf")));
	expect_error("main.conf: file is too large (over 4 MiB)");
}
END_TEST

START_TEST(main_file_that_is_a_directory_is_an_error)
{
	ck_assert_ptr_null(load_file(tmp));
	ck_assert_msg(strstr(errbuf, "Is a directory") != NULL, "got: %s", errbuf);
}
END_TEST

START_TEST(no_pool_at_all_is_an_error)
{
	fail_main("log_level = debug\n",
	    "main.conf: no pool defined (add a 'pool NAME { ... }' section here or a site file to include_dir)");
	fail_main("", "main.conf: no pool defined (add a 'pool NAME { ... }' section here or a site file to include_dir)");
}
END_TEST

START_TEST(unknown_global_option_names_file_line_and_option)
{
	fail_main("log_level = debug\n\nbogus = 1\n",
	    "main.conf:3: option 'bogus': unknown option");
}
END_TEST

START_TEST(unknown_pool_option_names_file_line_and_option)
{
	pool_fails("  workers = 4", "main.conf:5: option 'workers': unknown option in a pool section");
}
END_TEST

START_TEST(php_fpm_names_get_a_hint)
{
	pool_fails("  pm.max_children = 4",
	    "main.conf:5: option 'pm.max_children': unknown option (fcgi-pm calls it 'max_children')");
	pool_fails("  pm.min_spare_servers = 1",
	    "main.conf:5: option 'pm.min_spare_servers': unknown option (fcgi-pm calls it 'min_spare')");
	pool_fails("  pm.max_spare_servers = 3",
	    "main.conf:5: option 'pm.max_spare_servers': unknown option (fcgi-pm calls it 'max_spare')");
	pool_fails("  listen.owner = www-data",
	    "main.conf:5: option 'listen.owner': unknown option (fcgi-pm calls it 'listen_owner')");
}
END_TEST

START_TEST(missing_equal_sign_is_reported)
{
	fail_main("log_level debug\n",
	    "main.conf:1: option 'log_level': missing '=' after the option name");
}
END_TEST

START_TEST(unclosed_quote_names_the_line_it_opens_on)
{
	fail_main("# x\npool web {\n  listen = \"/run/web.sock\"\n  module = \"a\n}\n",
	    "main.conf:4: syntax error: the string that starts on this line has no closing quote");
	fail_main("pool web {\n  listen = '/run/web.sock\n}\n",
	    "main.conf:2: syntax error: the string that starts on this line has no closing quote");
}
END_TEST

START_TEST(unclosed_pool_section_is_an_error)
{
	/* libconfuse 3.3 alone accepts this file */
	fail_main("# x\n" POOL_HEAD, "main.conf:2: syntax error: the '{' on this line is never closed");
}
END_TEST

START_TEST(stray_closing_brace_is_a_syntax_error)
{
	fail_main(POOL_HEAD "}\n}\n", "main.conf:6: syntax error: unexpected closing brace");
}
END_TEST

START_TEST(pool_without_name_or_brace_is_explained)
{
	fail_main("\npool {\n}\n", "main.conf:2: option 'pool': missing the pool name (pool NAME { ... })");
	fail_main("pool web\n  listen = \":1\"\n}\n", "main.conf:2: option 'pool': missing '{' after the pool name");
}
END_TEST

START_TEST(pool_directive_outside_a_pool_is_explained)
{
	fail_main("max_children = 4\n",
	    "main.conf:1: option 'max_children': allowed only inside a pool section (pool NAME { ... })");
}
END_TEST

START_TEST(list_value_for_a_single_value_option_is_a_syntax_error)
{
	/* libconfuse says "unexpected token '{'"; the option is found on the line */
	pool_fails("  user = {\"a\", \"b\"}",
	    "main.conf:5: option 'user': takes a single value, not a list");
	pool_fails("  threads = {1, 2}",
	    "main.conf:5: option 'threads': takes a single value, not a list");
	fail_main("\nworker_binary = { \"/bin/sh\" }\n",
	    "main.conf:2: option 'worker_binary': takes a single value, not a list");
	/* a list option before it on the same line is not the one */
	pool_fails("  env = {\"A=1\"}  listen = {\"/a.sock\"}",
	    "main.conf:5: option 'listen': takes a single value, not a list");
	/* the '{' on the next line: no option to name */
	pool_fails("  user =\n {\"a\"}", "main.conf:6: syntax error: unexpected token '{'");
}
END_TEST

START_TEST(errbuf_may_be_null_or_tiny)
{
	char small[16];

	put("main.conf", "bogus = 1\n");
	ck_assert_ptr_null(conf_load(path("main.conf"), NULL, 0));
	memset(small, 'x', sizeof(small));
	ck_assert_ptr_null(conf_load(path("main.conf"), small, sizeof(small)));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert(strncmp(small, tmp, sizeof(small) - 1) == 0);
}
END_TEST

START_TEST(conf_find_pool_and_pm_mode_name)
{
	struct conf *c = ok_main(
	    "pool a { listen = \":9001\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \":9002\"  module = \"b\"  max_children = 1  pm = ondemand }\n");

	ck_assert_ptr_eq(conf_find_pool(c, "b"), &c->pools[1]);
	ck_assert_ptr_eq(conf_find_pool(c, "a"), &c->pools[0]);
	ck_assert_ptr_null(conf_find_pool(c, "c"));
	ck_assert_ptr_null(conf_find_pool(NULL, "a"));
	ck_assert_str_eq(pm_mode_name(PM_STATIC), "static");
	ck_assert_str_eq(pm_mode_name(PM_DYNAMIC), "dynamic");
	ck_assert_str_eq(pm_mode_name(PM_ONDEMAND), "ondemand");
	conf_free(NULL);
}
END_TEST

START_TEST(every_directive_refuses_a_bad_value_at_its_line)
{
	static const struct { const char *text, *msg; } globals[] = {
		{ "error_log = \"\"", "option 'error_log': must not be empty" },
		{ "status_owner = \"\"", "option 'status_owner': must not be empty" },
		{ "status_group = \"\"", "option 'status_group': must not be empty" },
		{ "process_control_timeout = soon", "option 'process_control_timeout': invalid duration 'soon' (use e.g. 250ms, 30s, 5m, 1h; a bare number is seconds)" },
		{ "emergency_restart_interval = -5s", "option 'emergency_restart_interval': duration '-5s' is negative" },
		{ "emergency_restart_threshold = 1000001", "option 'emergency_restart_threshold': 1000001 is out of range (allowed: 0 to 1000000)" },
		{ "include_dir = \"\"", "option 'include_dir': must not be empty" },
	};
	static const struct { const char *text, *msg; } pools[] = {
		{ "script_name = \"\"", "option 'script_name': must not be empty" },
		{ "slowlog = \"\"", "option 'slowlog': must not be empty" },
		{ "listen_group = \"\"", "option 'listen_group': must not be empty" },
		{ "start_servers = 0", "option 'start_servers': 0 is out of range (allowed: 1 to 4096)" },
		{ "max_spare = 4097", "option 'max_spare': 4097 is out of range (allowed: 1 to 4096)" },
		{ "process_idle_timeout = 10 s", "option 's': unknown option in a pool section" },
		{ "request_slowlog_timeout = 1.5", "option 'request_slowlog_timeout': invalid duration '1.5' (use e.g. 250ms, 30s, 5m, 1h; a bare number is seconds)" },
		{ "allow_root = si", "option 'allow_root': 'si' is not a boolean (use yes or no)" },
		{ "catch_workers_output = 2", "option 'catch_workers_output': '2' is not a boolean (use yes or no)" },
		{ "max_requests_jitter = -3", "option 'max_requests_jitter': -3 is negative (allowed: 0 to 1000000000)" },
		{ "rlimit_core = lots", "option 'rlimit_core': invalid size 'lots' (use e.g. 4096, 64K, 512M, 2G)" },
	};
	char text[512], want[512];
	size_t i;

	for (i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
		snprintf(text, sizeof(text), "# x\n\n%s\n", globals[i].text);
		snprintf(want, sizeof(want), "main.conf:3: %s", globals[i].msg);
		fail_main(text, want);
	}
	for (i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		snprintf(text, sizeof(text), "  %s", pools[i].text);
		snprintf(want, sizeof(want), "main.conf:5: %s", pools[i].msg);
		pool_fails(text, want);
	}
}
END_TEST

/* ============================================================ line numbers */

START_TEST(line_is_right_after_hash_comments)
{
	/* libconfuse 3.3 alone says line 11 here */
	fail_main("# c1\n# c2\n# c3\nlog_level = debug\nbogus = 2\n",
	    "main.conf:5: option 'bogus': unknown option");
}
END_TEST

START_TEST(line_is_right_after_slash_comments)
{
	fail_main("// c1\n// c2\nlog_level = debug\nbogus = 2\n",
	    "main.conf:4: option 'bogus': unknown option");
}
END_TEST

START_TEST(line_is_right_after_trailing_and_block_comments)
{
	fail_main("log_level = debug # trailing\n"
	    "/* a block\n   comment with a quote ' and a # */\n"
	    "error_log = stderr // trailing\n"
	    "bogus = 2\n",
	    "main.conf:5: option 'bogus': unknown option");
}
END_TEST

START_TEST(line_is_right_after_multiline_string)
{
	fail_main("error_log = \"a\nb # not a comment\n\"\n#c\nbogus = 2\n",
	    "main.conf:5: option 'bogus': unknown option");
}
END_TEST

START_TEST(pool_line_is_where_the_section_opens_after_comments)
{
	fail_main("# comment\n# comment\n\npool web {\n  # inside\n  listen = \"/x.sock\"\n}\n",
	    "main.conf:4: pool 'web': option 'module' is required (e.g. \"mysite.wsgi:application\")");
	ck_assert_ptr_null(load_file(put("main.conf",
	    "// c\npool\n  web\n  {\n}\n")));
	expect_error("main.conf:2: pool 'web': option 'listen' is required (a unix socket path or host:port)");
}
END_TEST

START_TEST(hash_and_slashes_inside_quotes_are_kept)
{
	const struct pool_conf *p = pool_with(
	    "  env = {\"A=x#y\", 'B=http://h/p', \"C=/* no comment */\", 'D=it\\'s # x'}");

	ck_assert_str_eq(p->env[0], "A=x#y");
	ck_assert_str_eq(p->env[1], "B=http://h/p");
	ck_assert_str_eq(p->env[2], "C=/* no comment */");
	ck_assert_str_eq(p->env[3], "D=it's # x");
	ck_assert_ptr_null(p->env[4]);
}
END_TEST

START_TEST(comment_lines_in_pool_keep_option_lines)
{
	pool_fails("  # one\n  // two\n  /* three */\n  threads = 0",
	    "main.conf:8: option 'threads': 0 is out of range (allowed: 1 to 256)");
}
END_TEST

/* ============================================================ include_dir */

START_TEST(include_dir_loads_sorted_conf_files_relative_to_main_file)
{
	struct conf *c;

	put("etc/sites.d/20-b.conf", "pool b { listen = \":9002\"  module = \"b\"  max_children = 1 }\n");
	put("etc/sites.d/10-a.conf", "pool a { listen = \":9001\"  module = \"a\"  max_children = 1 }\n");
	put("etc/sites.d/30-c.conf", "# empty site file\n");
	put("etc/sites.d/b.conf.bak", "bogus\n");
	put("etc/sites.d/.#10-a.conf", "bogus\n");
	put("etc/sites.d/README", "bogus\n");
	mkdir(path("etc/sites.d/dir.conf"), 0755);
	c = load_file(put("etc/main.conf", "include_dir = \"sites.d\"\n"));
	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_str_eq(c->include_dir, path("etc/sites.d"));
	ck_assert_uint_eq(c->npools, 2);
	ck_assert_str_eq(c->pools[0].name, "a");
	ck_assert_str_eq(c->pools[0].file, path("etc/sites.d/10-a.conf"));
	ck_assert_int_eq(c->pools[0].line, 1);
	ck_assert_str_eq(c->pools[1].name, "b");
}
END_TEST

START_TEST(include_dir_holding_the_main_file_skips_it)
{
	struct conf *c;

	put("etc/site.conf", "pool b { listen = \":9002\"  module = \"b\"  max_children = 1 }\n");
	c = load_file(put("etc/main.conf", "include_dir = \".\"\n"
	    "pool a { listen = \":9001\"  module = \"a\"  max_children = 1 }\n"));
	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_uint_eq(c->npools, 2);
	ck_assert_str_eq(c->pools[1].name, "b");
}
END_TEST

START_TEST(main_file_pools_come_before_site_pools)
{
	struct conf *c;

	put("sites.d/a.conf", "pool site { listen = \":9002\"  module = \"b\"  max_children = 1 }\n");
	c = ok_main("include_dir = \"sites.d\"\n"
	    "pool main { listen = \":9001\"  module = \"a\"  max_children = 1 }\n");
	ck_assert_uint_eq(c->npools, 2);
	ck_assert_str_eq(c->pools[0].name, "main");
	ck_assert_str_eq(c->pools[1].name, "site");
}
END_TEST

START_TEST(absolute_include_dir_is_kept)
{
	char text[PATH_MAX + 64];
	struct conf *c;

	put("abs/x.conf", "pool x { listen = \":9002\"  module = \"b\"  max_children = 1 }\n");
	snprintf(text, sizeof(text), "include_dir = \"%s\"\n", path("abs"));
	c = load_file(put("sub/main.conf", text));
	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_str_eq(c->include_dir, path("abs"));
	ck_assert_uint_eq(c->npools, 1);
}
END_TEST

START_TEST(missing_include_dir_names_main_file_and_line)
{
	fail_main("# sites\n\ninclude_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "main.conf:3: option 'include_dir': cannot read directory '...");
	ck_assert_msg(strstr(errbuf, "/sites.d': No such file or directory\n") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(include_dir_that_is_a_file_is_an_error)
{
	put("sites.d", "not a directory\n");
	fail_main("include_dir = \"sites.d\"\n",
	    "main.conf:1: option 'include_dir': cannot read directory '...");
	ck_assert_msg(strstr(errbuf, "/sites.d': Not a directory\n") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(unreadable_include_dir_is_an_error)
{
	if (geteuid() == 0)
		return;		/* root reads it anyway: the file case covers it */
	mkdir(path("sites.d"), 0);
	fail_main("include_dir = \"sites.d\"\n",
	    "main.conf:1: option 'include_dir': cannot read directory '...");
	ck_assert_msg(strstr(errbuf, "Permission denied") != NULL, "%s", errbuf);
	chmod(path("sites.d"), 0700);
}
END_TEST

START_TEST(empty_include_dir_value_is_refused)
{
	fail_main("include_dir = \"\"\n", "main.conf:1: option 'include_dir': must not be empty");
}
END_TEST

START_TEST(dangling_site_file_symlink_is_an_error)
{
	mkdir(path("sites.d"), 0755);
	ck_assert_int_eq(symlink(path("gone"), path("sites.d/a.conf")), 0);
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(global_directive_in_site_file_is_an_error_naming_that_file)
{
	put("sites.d/a.conf", "# a site\n\npid_file = \"/run/x.pid\"\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf:3: option 'pid_file': global directive not allowed in a site "
	    "file (only pool sections; move it to the main file)");
}
END_TEST

START_TEST(unknown_top_level_option_in_site_file_is_unknown)
{
	put("sites.d/a.conf", "bogus = 1\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf:1: option 'bogus': unknown option");
}
END_TEST

START_TEST(site_file_errors_name_site_file_and_line_after_comments)
{
	put("sites.d/shop.conf", "# Shop\n# owner: team\n// x\npool shop {\n"
	    "  listen = \"/run/shop.sock\"\n  pm = turbo\n}\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/shop.conf:6: option 'pm': 'turbo' is not static, dynamic or ondemand");
}
END_TEST

START_TEST(errors_in_several_site_files_are_all_reported)
{
	put("sites.d/a.conf", "pool a {\n  threads = 0\n}\n");
	put("sites.d/b.conf", "\npool b {\n  max_rss = 12Q\n}\n");
	put("sites.d/c.conf", "pool c { listen = \":9003\"  module = \"c\"  max_children = 1 }\n");
	fail_main("include_dir = \"sites.d\"\nbogus = 1\n", "main.conf:2: option 'bogus': unknown option");
	ck_assert_ptr_null(strstr(errbuf, "a.conf"));	/* the main file stops the rest */

	fail_main("include_dir = \"sites.d\"\n",
	    "sites.d/a.conf:2: option 'threads': 0 is out of range (allowed: 1 to 256)");
	expect_error("sites.d/b.conf:3: option 'max_rss': invalid size '12Q' (use e.g. 4096, 64K, 512M, 2G)");
	ck_assert(strstr(errbuf, "a.conf") < strstr(errbuf, "b.conf"));
}
END_TEST

START_TEST(duplicate_pool_across_files_names_both_places)
{
	put("sites.d/a.conf", "# first\npool shop { listen = \":9001\"  module = \"a\"  max_children = 1 }\n");
	put("sites.d/b.conf", "\n\n# copy\npool shop { listen = \":9002\"  module = \"a\"  max_children = 1 }\n");
	fail_main("include_dir = \"sites.d\"\n", "sites.d/b.conf:4: pool 'shop': duplicate pool name, first defined at ...");
	ck_assert_msg(strstr(errbuf, "/sites.d/a.conf:2\n") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(duplicate_pool_between_main_and_site_file)
{
	put("sites.d/a.conf", "pool web { listen = \":9001\"  module = \"a\"  max_children = 1 }\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf:1: pool 'web': duplicate pool name, first defined at ...");
	ck_assert_msg(strstr(errbuf, "/main.conf:2\n") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(duplicate_pool_in_one_file_names_both_lines)
{
	char want[PATH_MAX + 200];

	fail_main("# x\n" POOL_HEAD "}\n# again\npool web {\n}\n",
	    "main.conf:8: pool 'web': duplicate pool name, first defined at ...");
	snprintf(want, sizeof(want), "first defined at %s:2\n", path("main.conf"));
	ck_assert_msg(strstr(errbuf, want) != NULL, "%s", errbuf);
}
END_TEST

START_TEST(invalid_duplicate_pool_is_still_reported_as_duplicate)
{
	put("sites.d/a.conf", "pool web {\n}\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf:1: pool 'web': duplicate pool name, first defined at ...");
}
END_TEST

START_TEST(two_pools_on_one_unix_socket_name_both)
{
	put("sites.d/a.conf", "\npool b { listen = \"/run/web.sock\"  module = \"a\"  max_children = 1 }\n");
	fail_main("include_dir = \"sites.d\"\n" POOL_HEAD "}\n",
	    "sites.d/a.conf:2: pool 'b': listen address '/run/web.sock' is already used by pool 'web' (...");
	ck_assert_msg(strstr(errbuf, "/main.conf:2)\n") != NULL, "%s", errbuf);
}
END_TEST

START_TEST(two_pools_on_one_tcp_port_name_both)
{
	fail_main("pool a { listen = \"127.0.0.1:9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"127.0.0.1:9000\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'b': listen address '127.0.0.1:9000' is already used by pool 'a' (...");
}
END_TEST

START_TEST(wildcard_address_conflicts_with_any_host_on_its_port)
{
	fail_main("pool a { listen = \"9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"127.0.0.1:9000\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'b': listen address '127.0.0.1:9000' is already used by pool 'a' (...");
	fail_main("pool a { listen = \"unix:/run/a.sock\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"/run/a.sock\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'b': listen address '/run/a.sock' is already used by pool 'a' (...");
	fail_main("pool a { listen = \"*:9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"[::1]:9000\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'b': listen address '[::1]:9000' is already used by pool 'a' (...");
	fail_main("pool a { listen = \"[::1]:9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"0.0.0.0:9000\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'b': listen address '0.0.0.0:9000' is already used by pool 'a' (...");
}
END_TEST

START_TEST(different_hosts_or_ports_do_not_conflict)
{
	struct conf *c = ok_main(
	    "pool a { listen = \"127.0.0.1:9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool b { listen = \"127.0.0.2:9000\"  module = \"a\"  max_children = 1 }\n"
	    "pool c { listen = \"127.0.0.1:9001\"  module = \"a\"  max_children = 1 }\n"
	    "pool d { listen = \"/run/9000\"  module = \"a\"  max_children = 1 }\n");

	ck_assert_uint_eq(c->npools, 4);
}
END_TEST

START_TEST(fixture_tree_loads)
{
	struct conf *c = load_file(SRCDIR "/tests/unit/conf/good/fcgi-pm.conf");
	const struct pool_conf *p;

	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_str_eq(c->include_dir, SRCDIR "/tests/unit/conf/good/sites.d");
	ck_assert_uint_eq(c->npools, 4);
	ck_assert_str_eq(c->pools[0].name, "default");
	ck_assert_str_eq(c->pools[1].name, "archive");
	ck_assert_int_eq(c->pools[1].line, 2);
	ck_assert_str_eq(c->pools[2].name, "archive-admin");
	ck_assert_int_eq(c->pools[2].line, 8);
	ck_assert_int_eq(c->pools[2].pm, PM_ONDEMAND);
	ck_assert_int_eq(c->pools[2].start_servers, 0);
	p = &c->pools[3];
	ck_assert_str_eq(p->name, "catalog");
	ck_assert_str_eq(p->listen, "/run/fcgi-pm/catalog.sock");
	ck_assert_str_eq(p->user, "catalog");
	ck_assert_str_eq(p->chdir, "/srv/catalog");
	ck_assert_str_eq(p->virtualenv, "/srv/catalog/venv");
	ck_assert_str_eq(p->python_path[0], "/srv/catalog/src");
	ck_assert_int_eq(p->pm, PM_DYNAMIC);
	ck_assert_int_eq(p->start_servers, 3);
}
END_TEST

START_TEST(design_sketch_loads)
{
	struct conf *c = load_file(SRCDIR "/tests/unit/conf/design-sketch.conf");

	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_int_eq(c->pools[0].line, 9);
	ck_assert_int_eq(c->pools[0].pm, PM_DYNAMIC);
	ck_assert_int_eq(c->pools[0].request_slowlog_timeout_ms, 5000);
}
END_TEST

START_TEST(shipped_example_configuration_loads)
{
	struct conf *c = load_file(SRCDIR "/etc/fcgi-pm.conf");
	const struct pool_conf *p;

	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_ptr_nonnull(p = conf_find_pool(c, "example"));
	ck_assert_str_eq(p->file, SRCDIR "/etc/sites.d/example.conf");
	ck_assert_ptr_nonnull(strstr(p->module, "wsgi"));
}
END_TEST

/* ======================================================= pool directives */

START_TEST(listen_accepts_unix_tcp_v6_and_bare_port)
{
	ck_assert_str_eq(pool_with("  listen = \"/run/fcgi-pm/a.sock\"")->listen, "/run/fcgi-pm/a.sock");
	ck_assert_str_eq(pool_with("  listen = \"127.0.0.1:9000\"")->listen, "127.0.0.1:9000");
	ck_assert_str_eq(pool_with("  listen = \"localhost:9000\"")->listen, "localhost:9000");
	ck_assert_str_eq(pool_with("  listen = \"[::1]:9000\"")->listen, "[::1]:9000");
	ck_assert_str_eq(pool_with("  listen = \":9000\"")->listen, ":9000");
	ck_assert_str_eq(pool_with("  listen = 9000")->listen, ":9000");
	ck_assert_str_eq(pool_with("  listen = \"1\"")->listen, ":1");
	ck_assert_str_eq(pool_with("  listen = \":65535\"")->listen, ":65535");
	ck_assert_str_eq(pool_with("  listen = \"*:9000\"")->listen, "*:9000");
	ck_assert_str_eq(pool_with("  listen = \"unix:/run/$pool.sock\"")->listen, "/run/web.sock");
}
END_TEST

START_TEST(listen_refuses_bad_addresses)
{
	pool_fails("  listen = \"web.sock\"", "main.conf:5: option 'listen': invalid address 'web.sock': use an absolute unix socket path or host:port");
	pool_fails("  listen = \"127.0.0.1:99999\"", "main.conf:5: option 'listen': invalid address '127.0.0.1:99999': the port must be 1 to 65535");
	pool_fails("  listen = \"127.0.0.1:0\"", "main.conf:5: option 'listen': invalid address '127.0.0.1:0': the port must be 1 to 65535");
	pool_fails("  listen = \"127.0.0.1:http\"", "main.conf:5: option 'listen': invalid address '127.0.0.1:http': the port must be 1 to 65535");
	pool_fails("  listen = \"::1:9000\"", "main.conf:5: option 'listen': invalid address '::1:9000': an IPv6 address is written [addr]:port");
	pool_fails("  listen = \"[::1]9000\"", "main.conf:5: option 'listen': invalid address '[::1]9000': an IPv6 address is written [addr]:port");
	pool_fails("  listen = \"[]:9000\"", "main.conf:5: option 'listen': invalid address '[]:9000': the part in brackets is not an IPv6 address");
	pool_fails("  listen = \"[127.0.0.1]:9000\"", "main.conf:5: option 'listen': invalid address '[127.0.0.1]:9000': the part in brackets is not an IPv6 address");
	pool_fails("  listen = \"unix:run/web.sock\"", "main.conf:5: option 'listen': invalid address 'unix:run/web.sock': a unix socket path must be absolute");
	pool_fails("  listen = \"\"", "main.conf:5: option 'listen': invalid address '': use an absolute unix socket path or host:port");
	{
		char body[512], want[512];

		snprintf(body, sizeof(body), "  listen = \"%0300d:80\"", 0);
		snprintf(want, sizeof(want), "main.conf:5: option 'listen': invalid address "
		    "'%0300d:80': the host name is too long", 0);
		pool_fails(body, want);
	}
	pool_fails("  listen = \"a b:80\"", "main.conf:5: option 'listen': invalid address 'a b:80': use an absolute unix socket path or host:port");
	pool_fails("  listen = 0", "main.conf:5: option 'listen': invalid address '0': the port must be 1 to 65535");
	pool_fails("  listen = 70000", "main.conf:5: option 'listen': invalid address '70000': the port must be 1 to 65535");
}
END_TEST

START_TEST(listen_is_required)
{
	fail_main("pool web {\n  module = \"a\"\n  max_children = 1\n}\n",
	    "main.conf:1: pool 'web': option 'listen' is required (a unix socket path or host:port)");
}
END_TEST

START_TEST(listen_unix_path_too_long_after_pool_expansion)
{
	char body[512], want[512];

	snprintf(body, sizeof(body), "  listen = \"/%0100d/$pool.sock\"", 0);
	snprintf(want, sizeof(want), "main.conf:1: pool 'web': option 'listen': unix socket path "
	    "'/%0100d/web.sock' is too long (110 bytes, at most 107)", 0);
	pool_fails(body, want);
}
END_TEST

START_TEST(listen_owner_group_mode_backlog)
{
	const struct pool_conf *p = pool_with("  listen_owner = \"www-data\"\n  listen_group = www-data\n"
	    "  listen_mode = 0600\n  listen_backlog = 4096");

	ck_assert_str_eq(p->listen_owner, "www-data");
	ck_assert_str_eq(p->listen_group, "www-data");
	ck_assert_int_eq(p->listen_mode, 0600);
	ck_assert_int_eq(p->listen_backlog, 4096);
	ck_assert_int_eq(pool_with("  listen_mode = 660")->listen_mode, 0660);
	ck_assert_int_eq(pool_with("  listen_mode = 0")->listen_mode, 0);
	ck_assert_int_eq(pool_with("  listen_mode = \"0777\"")->listen_mode, 0777);
	ck_assert_int_eq(pool_with("  listen_backlog = 1")->listen_backlog, 1);
	ck_assert_int_eq(pool_with("  listen_backlog = 65535")->listen_backlog, 65535);
}
END_TEST

START_TEST(listen_mode_and_backlog_refuse_bad_values)
{
	pool_fails("  listen_mode = 0999", "main.conf:5: option 'listen_mode': invalid mode '0999' (octal, 0 to 0777, e.g. 0660)");
	pool_fails("  listen_mode = 1000", "main.conf:5: option 'listen_mode': invalid mode '1000' (octal, 0 to 0777, e.g. 0660)");
	pool_fails("  listen_mode = rw", "main.conf:5: option 'listen_mode': invalid mode 'rw' (octal, 0 to 0777, e.g. 0660)");
	pool_fails("  listen_mode = -1", "main.conf:5: option 'listen_mode': invalid mode '-1' (octal, 0 to 0777, e.g. 0660)");
	pool_fails("  listen_mode = \"\"", "main.conf:5: option 'listen_mode': invalid mode '' (octal, 0 to 0777, e.g. 0660)");
	pool_fails("  listen_backlog = 0", "main.conf:5: option 'listen_backlog': 0 is out of range (allowed: 1 to 65535)");
	pool_fails("  listen_backlog = 65536", "main.conf:5: option 'listen_backlog': 65536 is out of range (allowed: 1 to 65535)");
	pool_fails("  listen_backlog = -1", "main.conf:5: option 'listen_backlog': -1 is negative (allowed: 1 to 65535)");
	pool_fails("  listen_backlog = many", "main.conf:5: option 'listen_backlog': 'many' is not a whole number");
	pool_fails("  listen_owner = \"\"", "main.conf:5: option 'listen_owner': must not be empty");
}
END_TEST

START_TEST(listen_allowed_clients_are_ip_addresses_for_tcp_only)
{
	const struct pool_conf *p = pool_with("  listen = \"0.0.0.0:9000\"\n"
	    "  listen_allowed_clients = {\"127.0.0.1\", \"::1\", \"10.1.2.3\"}");

	ck_assert_str_eq(p->listen_allowed_clients[0], "127.0.0.1");
	ck_assert_str_eq(p->listen_allowed_clients[1], "::1");
	ck_assert_str_eq(p->listen_allowed_clients[2], "10.1.2.3");
	ck_assert_ptr_null(p->listen_allowed_clients[3]);
	pool_fails("  listen = \":9000\"\n  listen_allowed_clients = {\"127.0.0.1\",\n \"example.com\"}",
	    "main.conf:7: option 'listen_allowed_clients': 'example.com' is not an IPv4 or IPv6 address");
	pool_fails("  listen_allowed_clients = {\"127.0.0.1\"}",
	    "main.conf:1: pool 'web': option 'listen_allowed_clients' applies to TCP addresses only, "
	    "and listen is the unix socket '/run/web.sock'");
}
END_TEST

START_TEST(user_group_chdir_are_copied)
{
	const struct pool_conf *p = pool_with("  user = \"shop\"\n  group = \"www-data\"\n  chdir = \"/srv/shop\"");

	ck_assert_str_eq(p->user, "shop");
	ck_assert_str_eq(p->group, "www-data");
	ck_assert_str_eq(p->chdir, "/srv/shop");
	ck_assert_str_eq(pool_with("  chdir = /srv/unquoted/path")->chdir, "/srv/unquoted/path");
	ck_assert_str_eq(pool_with("  chdir = /srv/x//comment")->chdir, "/srv/x");
	pool_fails("  chdir = \"srv\"", "main.conf:5: option 'chdir': 'srv' is not an absolute path");
	pool_fails("  user = \"\"", "main.conf:5: option 'user': must not be empty");
	pool_fails("  group = \"\"", "main.conf:5: option 'group': must not be empty");
}
END_TEST

START_TEST(user_root_needs_allow_root)
{
	pool_fails("  user = \"root\"",
	    "main.conf:1: pool 'web': user 'root' is refused: workers would run as root (set allow_root = yes if you mean it)");
	pool_fails("  user = \"0\"",
	    "main.conf:1: pool 'web': user '0' is refused: workers would run as root (set allow_root = yes if you mean it)");
	ck_assert(pool_with("  user = \"root\"\n  allow_root = yes")->allow_root);
	ck_assert_str_eq(pool_with("  user = \"rooty\"")->user, "rooty");
}
END_TEST

START_TEST(umask_is_octal)
{
	ck_assert_int_eq(pool_with("  umask = 022")->umask, 022);
	ck_assert_int_eq(pool_with("  umask = 0077")->umask, 077);
	ck_assert_int_eq(pool_with("  umask = 0")->umask, 0);
	pool_fails("  umask = 0888", "main.conf:5: option 'umask': invalid mode '0888' (octal, 0 to 0777, e.g. 0660)");
}
END_TEST

START_TEST(env_entries_are_key_value)
{
	const struct pool_conf *p = pool_with("  env = {\"DJANGO_SETTINGS_MODULE=shop.settings\", \"EMPTY=\", "
	    "\"_X1=a=b\"}");

	ck_assert_str_eq(p->env[0], "DJANGO_SETTINGS_MODULE=shop.settings");
	ck_assert_str_eq(p->env[1], "EMPTY=");
	ck_assert_str_eq(p->env[2], "_X1=a=b");
	ck_assert_ptr_null(p->env[3]);
}
END_TEST

START_TEST(env_refuses_bad_entries)
{
	pool_fails("  env = {\"A=1\",\n  \"NOVALUE\"}", "main.conf:6: option 'env': 'NOVALUE' is not KEY=VALUE");
	pool_fails("  env = {\"1X=1\"}", "main.conf:5: option 'env': '1X' is not a valid variable name (letters, digits and '_', not starting with a digit)");
	pool_fails("  env = {\"=1\"}", "main.conf:5: option 'env': '' is not a valid variable name (letters, digits and '_', not starting with a digit)");
	pool_fails("  env = {\"A-B=1\"}", "main.conf:5: option 'env': 'A-B' is not a valid variable name (letters, digits and '_', not starting with a digit)");
	pool_fails("  env = {\"A=1\", \"B=2\", \"A=3\"}", "main.conf:5: option 'env': variable 'A' is set twice");
}
END_TEST

START_TEST(env_append_with_plus_equal)
{
	const struct pool_conf *p = pool_with("  env = {\"A=1\"}\n  env += {\"B=2\"}");

	ck_assert_str_eq(p->env[0], "A=1");
	ck_assert_str_eq(p->env[1], "B=2");
	ck_assert_ptr_null(p->env[2]);
}
END_TEST

START_TEST(booleans_accept_yes_no_true_false_on_off)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "\"yes\"" };
	static const char *const no[] = { "no", "false", "off", "0", "No" };
	char body[128];
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(body, sizeof(body), "  preload = %s\n  allow_root = %s", yes[i], yes[i]);
		ck_assert(pool_with(body)->preload);
		ck_assert(pool_with(body)->allow_root);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(body, sizeof(body), "  clear_env = %s\n  catch_workers_output = %s", no[i], no[i]);
		ck_assert(!pool_with(body)->clear_env);
		ck_assert(!pool_with(body)->catch_workers_output);
	}
	pool_fails("  preload = maybe", "main.conf:5: option 'preload': 'maybe' is not a boolean (use yes or no)");
	pool_fails("  clear_env = 2", "main.conf:5: option 'clear_env': '2' is not a boolean (use yes or no)");
}
END_TEST

START_TEST(rlimits)
{
	ck_assert_int_eq(pool_with("  rlimit_files = 65536")->rlimit_files, 65536);
	ck_assert_int_eq(pool_with("  rlimit_core = 0")->rlimit_core, 0);
	ck_assert_int_eq(pool_with("  rlimit_core = 64M")->rlimit_core, 64L << 20);
	ck_assert_int_eq(pool_with("  rlimit_core = unlimited")->rlimit_core, LONG_MAX);
	pool_fails("  rlimit_files = -1", "main.conf:5: option 'rlimit_files': -1 is negative (allowed: 0 to 1073741824)");
	pool_fails("  rlimit_files = 1073741825", "main.conf:5: option 'rlimit_files': 1073741825 is out of range (allowed: 0 to 1073741824)");
	pool_fails("  rlimit_core = -1", "main.conf:5: option 'rlimit_core': size '-1' is negative");
	pool_fails("  max_rss = unlimited", "main.conf:5: option 'max_rss': invalid size 'unlimited' (use e.g. 4096, 64K, 512M, 2G)");
}
END_TEST

START_TEST(module_forms)
{
	ck_assert_str_eq(pool_with("  module = \"shop.wsgi:application\"")->module, "shop.wsgi:application");
	ck_assert_str_eq(pool_with("  module = \"shop.wsgi\"")->module, "shop.wsgi");
	ck_assert_str_eq(pool_with("  module = wsgi")->module, "wsgi");
	ck_assert_str_eq(pool_with("  module = \"app:App.wsgi_app\"")->module, "app:App.wsgi_app");
	ck_assert_str_eq(pool_with("  module = \"$pool.wsgi:application\"")->module, "web.wsgi:application");
}
END_TEST

START_TEST(module_refuses_bad_forms)
{
	static const char *const bad[] = { "shop.wsgi:", ":app", "1shop", "a..b", "a.b:c:d",
	    "shop/wsgi.py", "a b", "", "shop.wsgi:create_app()" };
	char body[128], want[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "  module = \"%s\"", bad[i]);
		snprintf(want, sizeof(want), "main.conf:5: option 'module': '%s' is not "
		    "'package.module:callable' or 'package.module'", bad[i]);
		pool_fails(body, want);
	}
	fail_main("pool web {\n  listen = \"/x\"\n  max_children = 1\n}\n",
	    "main.conf:1: pool 'web': option 'module' is required (e.g. \"mysite.wsgi:application\")");
}
END_TEST

START_TEST(python_side_paths)
{
	const struct pool_conf *p = pool_with("  virtualenv = \"/srv/web/venv\"\n"
	    "  python_path = {\"/srv/web/src\", \"/srv/web/lib\"}\n  script_name = \"/shop\"");

	ck_assert_str_eq(p->virtualenv, "/srv/web/venv");
	ck_assert_str_eq(p->python_path[0], "/srv/web/src");
	ck_assert_str_eq(p->python_path[1], "/srv/web/lib");
	ck_assert_ptr_null(p->python_path[2]);
	ck_assert_str_eq(p->script_name, "/shop");
	pool_fails("  virtualenv = \"venv\"", "main.conf:5: option 'virtualenv': 'venv' is not an absolute path");
	pool_fails("  python_path = {\"\"}", "main.conf:5: option 'python_path': must not be empty");
}
END_TEST

START_TEST(pm_static_starts_max_children)
{
	const struct pool_conf *p = pool_with("  pm = static\n  max_children = 7");

	ck_assert_int_eq(p->pm, PM_STATIC);
	ck_assert_int_eq(p->start_servers, 7);
}
END_TEST

START_TEST(pm_ondemand_starts_none_and_needs_idle_timeout)
{
	const struct pool_conf *p = pool_with("  pm = ondemand\n  process_idle_timeout = 30s");

	ck_assert_int_eq(p->pm, PM_ONDEMAND);
	ck_assert_int_eq(p->start_servers, 0);
	ck_assert_int_eq(p->process_idle_timeout_ms, 30000);
	pool_fails("  pm = ondemand\n  process_idle_timeout = 0",
	    "main.conf:1: pool 'web': process_idle_timeout (0ms) must be greater than 0 with pm = ondemand");
}
END_TEST

START_TEST(pm_refuses_unknown_mode)
{
	pool_fails("  pm = turbo", "main.conf:5: option 'pm': 'turbo' is not static, dynamic or ondemand");
	pool_fails("  pm = Static", "main.conf:5: option 'pm': 'Static' is not static, dynamic or ondemand");
}
END_TEST

START_TEST(max_children_range_and_required)
{
	ck_assert_int_eq(pool_with("  max_children = 1")->max_children, 1);
	ck_assert_int_eq(pool_with("  max_children = 4096")->max_children, 4096);
	pool_fails("  max_children = 0", "main.conf:5: option 'max_children': 0 is out of range (allowed: 1 to 4096)");
	pool_fails("  max_children = 4097", "main.conf:5: option 'max_children': 4097 is out of range (allowed: 1 to 4096)");
	pool_fails("  max_children = 99999999999999999999999", "main.conf:5: option 'max_children': 99999999999999999999999 is out of range (allowed: 1 to 4096)");
	pool_fails("  max_children = 4.5", "main.conf:5: option 'max_children': '4.5' is not a whole number");
	pool_fails("  max_children = 0x10", "main.conf:5: option 'max_children': '0x10' is not a whole number");
	fail_main("\npool web {\n  listen = \"/x\"\n  module = \"a\"\n}\n",
	    "main.conf:2: pool 'web': option 'max_children' is required (1 to 4096)");
}
END_TEST

START_TEST(pm_dynamic_computes_start_servers_like_php_fpm)
{
	const struct pool_conf *p = pool_with("  pm = dynamic\n  max_children = 20\n  min_spare = 2\n  max_spare = 7");

	ck_assert_int_eq(p->pm, PM_DYNAMIC);
	ck_assert_int_eq(p->min_spare, 2);
	ck_assert_int_eq(p->max_spare, 7);
	ck_assert_int_eq(p->start_servers, 4);	/* 2 + (7 - 2) / 2 */
	p = pool_with("  pm = dynamic\n  max_children = 20\n  min_spare = 2\n  max_spare = 7\n  start_servers = 7");
	ck_assert_int_eq(p->start_servers, 7);
	p = pool_with("  pm = dynamic\n  max_children = 1\n  min_spare = 1\n  max_spare = 1");
	ck_assert_int_eq(p->start_servers, 1);
}
END_TEST

START_TEST(pm_dynamic_without_spare_settings_gets_defaults)
{
	const struct pool_conf *p = pool_with("  pm = dynamic\n  max_children = 8");

	ck_assert_int_eq(p->min_spare, 1);
	ck_assert_int_eq(p->max_spare, 4);		/* max_children / 2 */
	ck_assert_int_eq(p->start_servers, 2);		/* 1 + (4 - 1) / 2 */
	p = pool_with("  pm = dynamic\n  max_children = 1");
	ck_assert_int_eq(p->min_spare, 1);
	ck_assert_int_eq(p->max_spare, 1);
	ck_assert_int_eq(p->start_servers, 1);
	p = pool_with("  pm = dynamic\n  max_children = 20\n  min_spare = 12");
	ck_assert_int_eq(p->max_spare, 12);		/* never below min_spare */
	ck_assert_int_eq(p->start_servers, 12);
	p = pool_with("  pm = dynamic\n  max_children = 20\n  max_spare = 3");
	ck_assert_int_eq(p->min_spare, 1);
	ck_assert_int_eq(p->start_servers, 2);
}
END_TEST

START_TEST(pm_dynamic_cross_field_errors_name_the_pool)
{
	pool_fails("  pm = dynamic\n  min_spare = 5",
	    "main.conf:1: pool 'web': min_spare (5) and max_spare (5) cannot be greater than max_children (4)");
	pool_fails("  pm = dynamic\n  start_servers = 3",
	    "main.conf:1: pool 'web': start_servers (3) must not be less than min_spare (1) and not greater than max_spare (2)");
	pool_fails("  pm = dynamic\n  min_spare = 0\n  max_spare = 2",
	    "main.conf:6: option 'min_spare': 0 is out of range (allowed: 1 to 4096)");
	pool_fails("  pm = dynamic\n  min_spare = 1\n  max_spare = 5",
	    "main.conf:1: pool 'web': min_spare (1) and max_spare (5) cannot be greater than max_children (4)");
	pool_fails("  pm = dynamic\n  min_spare = 3\n  max_spare = 2",
	    "main.conf:1: pool 'web': max_spare (2) must not be less than min_spare (3)");
	pool_fails("  pm = dynamic\n  min_spare = 2\n  max_spare = 3\n  start_servers = 1",
	    "main.conf:1: pool 'web': start_servers (1) must not be less than min_spare (2) and not greater than max_spare (3)");
	pool_fails("  pm = dynamic\n  min_spare = 2\n  max_spare = 3\n  start_servers = 4",
	    "main.conf:1: pool 'web': start_servers (4) must not be less than min_spare (2) and not greater than max_spare (3)");
}
END_TEST

START_TEST(spare_settings_are_ignored_outside_dynamic)
{
	const struct pool_conf *p = pool_with("  pm = static\n  min_spare = 3\n  max_spare = 2");

	ck_assert_int_eq(p->start_servers, 4);
}
END_TEST

START_TEST(spawn_rate_threads_requests)
{
	const struct pool_conf *p = pool_with("  max_spawn_rate = 8\n  threads = 256\n"
	    "  max_requests = 5000\n  max_requests_jitter = 500");

	ck_assert_int_eq(p->max_spawn_rate, 8);
	ck_assert_int_eq(p->threads, 256);
	ck_assert_int_eq(p->max_requests, 5000);
	ck_assert_int_eq(p->max_requests_jitter, 500);
	pool_fails("  threads = 0", "main.conf:5: option 'threads': 0 is out of range (allowed: 1 to 256)");
	pool_fails("  threads = 257", "main.conf:5: option 'threads': 257 is out of range (allowed: 1 to 256)");
	pool_fails("  max_spawn_rate = 0", "main.conf:5: option 'max_spawn_rate': 0 is out of range (allowed: 1 to 1024)");
	pool_fails("  max_requests = -1", "main.conf:5: option 'max_requests': -1 is negative (allowed: 0 to 1000000000)");
	pool_fails("  max_requests_jitter = 1000000001", "main.conf:5: option 'max_requests_jitter': 1000000001 is out of range (allowed: 0 to 1000000000)");
	pool_fails("  max_requests_jitter = x", "main.conf:5: option 'max_requests_jitter': 'x' is not a whole number");
}
END_TEST

START_TEST(timeouts_and_slowlog)
{
	const struct pool_conf *p = pool_with("  request_terminate_timeout = 60s\n"
	    "  request_slowlog_timeout = 5s\n  slowlog = \"/var/log/fcgi-pm/$pool.slow.log\"\n"
	    "  queue_timeout = 250ms\n  read_timeout = 10\n  keepalive_timeout = 1ms\n"
	    "  process_idle_timeout = 2m");

	ck_assert_int_eq(p->request_terminate_timeout_ms, 60000);
	ck_assert_int_eq(p->request_slowlog_timeout_ms, 5000);
	ck_assert_str_eq(p->slowlog, "/var/log/fcgi-pm/web.slow.log");
	ck_assert_int_eq(p->queue_timeout_ms, 250);
	ck_assert_int_eq(p->read_timeout_ms, 10000);
	ck_assert_int_eq(p->keepalive_timeout_ms, 1);
	ck_assert_int_eq(p->process_idle_timeout_ms, 120000);
	ck_assert_int_eq(pool_with("  queue_timeout = 0")->queue_timeout_ms, 0);
	ck_assert_int_eq(pool_with("  queue_timeout = 24h")->queue_timeout_ms, 86400000);
}
END_TEST

START_TEST(worker_timeouts_are_bounded_to_what_the_worker_takes)
{
	pool_fails("  read_timeout = 0", "main.conf:5: option 'read_timeout': 0 is out of range (allowed: 1ms to 24h)");
	pool_fails("  keepalive_timeout = 0ms", "main.conf:5: option 'keepalive_timeout': 0ms is out of range (allowed: 1ms to 24h)");
	pool_fails("  queue_timeout = 86401s", "main.conf:5: option 'queue_timeout': 86401s is out of range (allowed: 0ms to 24h)");
	pool_fails("  read_timeout = 2d", "main.conf:5: option 'read_timeout': 2d is out of range (allowed: 1ms to 24h)");
	ck_assert_int_eq(pool_with("  request_terminate_timeout = 2d")->request_terminate_timeout_ms, 172800000);
}
END_TEST

START_TEST(slowlog_timeout_without_slowlog_is_an_error)
{
	pool_fails("  request_slowlog_timeout = 5s",
	    "main.conf:1: pool 'web': option 'request_slowlog_timeout' is set but 'slowlog' is not (the file slow requests are logged to)");
	ck_assert_ptr_null(pool_with("  request_slowlog_timeout = 0")->slowlog);
}
END_TEST

START_TEST(durations_units)
{
	ck_assert_int_eq(duration_of("0"), 0);
	ck_assert_int_eq(duration_of("30"), 30000);
	ck_assert_int_eq(duration_of("250ms"), 250);
	ck_assert_int_eq(duration_of("30s"), 30000);
	ck_assert_int_eq(duration_of("5m"), 300000);
	ck_assert_int_eq(duration_of("1h"), 3600000);
	ck_assert_int_eq(duration_of("2d"), 172800000);
	ck_assert_int_eq(duration_of("\"45s\""), 45000);
	ck_assert_int_eq(duration_of("0ms"), 0);
	ck_assert_int_eq(duration_of("596h"), 596L * 3600000);
	ck_assert_int_eq(duration_of("2147483647ms"), 2147483647L);
	ck_assert_int_eq(duration_of("007s"), 7000);
}
END_TEST

START_TEST(durations_refuse_bad_and_huge_values)
{
#define BAD_DURATION(v)	"main.conf:5: option 'request_terminate_timeout': invalid duration '" v \
	"' (use e.g. 250ms, 30s, 5m, 1h; a bare number is seconds)"
#define HUGE_DURATION(v) "main.conf:5: option 'request_terminate_timeout': duration '" v "' is too large (at most 596h)"
	pool_fails("  request_terminate_timeout = 1.5s", BAD_DURATION("1.5s"));
	pool_fails("  request_terminate_timeout = 10x", BAD_DURATION("10x"));
	pool_fails("  request_terminate_timeout = ms", BAD_DURATION("ms"));
	pool_fails("  request_terminate_timeout = 5S", BAD_DURATION("5S"));
	pool_fails("  request_terminate_timeout = \"\"", BAD_DURATION(""));
	pool_fails("  request_terminate_timeout = \" 5s\"", BAD_DURATION(" 5s"));
	pool_fails("  request_terminate_timeout = 5sec", BAD_DURATION("5sec"));
	pool_fails("  request_terminate_timeout = \"30 seconds\"", BAD_DURATION("30 seconds"));
	pool_fails("  request_terminate_timeout = -1s", "main.conf:5: option 'request_terminate_timeout': duration '-1s' is negative");
	pool_fails("  request_terminate_timeout = 597h", HUGE_DURATION("597h"));
	pool_fails("  request_terminate_timeout = 25d", HUGE_DURATION("25d"));
	pool_fails("  request_terminate_timeout = 2147483648ms", HUGE_DURATION("2147483648ms"));
	pool_fails("  request_terminate_timeout = 99999999999999999999999999h", HUGE_DURATION("99999999999999999999999999h"));
	pool_fails("  request_terminate_timeout = 9223372036854775808", HUGE_DURATION("9223372036854775808"));
	/* two tokens: libconfuse sees an option called 'seconds' */
	pool_fails("  request_terminate_timeout = 30 seconds", "main.conf:5: option 'seconds': unknown option in a pool section");
#undef BAD_DURATION
#undef HUGE_DURATION
}
END_TEST

START_TEST(sizes_units)
{
	ck_assert_int_eq(size_of("0"), 0);
	ck_assert_int_eq(size_of("4096"), 4096);
	ck_assert_int_eq(size_of("64K"), 64L << 10);
	ck_assert_int_eq(size_of("64k"), 64L << 10);
	ck_assert_int_eq(size_of("64KB"), 64L << 10);
	ck_assert_int_eq(size_of("512M"), 512L << 20);
	ck_assert_int_eq(size_of("512mb"), 512L << 20);
	ck_assert_int_eq(size_of("2G"), 2L << 30);
	ck_assert_int_eq(size_of("1T"), 1L << 40);
	ck_assert_int_eq(size_of("1024T"), 1L << 50);
	ck_assert_int_eq(size_of("1125899906842624"), 1L << 50);
}
END_TEST

START_TEST(sizes_refuse_bad_and_huge_values)
{
#define BAD_SIZE(v)	"main.conf:5: option 'max_rss': invalid size '" v "' (use e.g. 4096, 64K, 512M, 2G)"
#define HUGE_SIZE(v)	"main.conf:5: option 'max_rss': size '" v "' is too large (at most 1024T)"
	pool_fails("  max_rss = 12Q", BAD_SIZE("12Q"));
	pool_fails("  max_rss = 1.5G", BAD_SIZE("1.5G"));
	pool_fails("  max_rss = M", BAD_SIZE("M"));
	pool_fails("  max_rss = 1MiB", BAD_SIZE("1MiB"));
	pool_fails("  max_rss = 1KBB", BAD_SIZE("1KBB"));
	pool_fails("  max_rss = -1", "main.conf:5: option 'max_rss': size '-1' is negative");
	pool_fails("  max_rss = 1025T", HUGE_SIZE("1025T"));
	pool_fails("  max_rss = 1048577G", HUGE_SIZE("1048577G"));
	pool_fails("  max_rss = 1125899906842625", HUGE_SIZE("1125899906842625"));
	pool_fails("  max_rss = 9223372036854775807", HUGE_SIZE("9223372036854775807"));
	pool_fails("  max_rss = 9223372036854775808", HUGE_SIZE("9223372036854775808"));
	pool_fails("  max_rss = 99999999999999999999999999999G", HUGE_SIZE("99999999999999999999999999999G"));
#undef BAD_SIZE
#undef HUGE_SIZE
}
END_TEST

/* ============================================= $pool and quoting behaviour */

START_TEST(pool_variable_expands_in_every_string_and_list_entry)
{
	struct conf *c = ok_main("pool shop {\n"
	    "  listen = \"/run/fcgi-pm/$pool.sock\"\n"
	    "  listen_owner = \"$pool\"\n  listen_group = \"www-$pool\"\n"
	    "  user = \"$pool\"\n  group = \"$pool\"\n  chdir = \"/srv/$pool\"\n"
	    "  env = {\"APP=$pool\", \"TWICE=$pool-$pool\"}\n"
	    "  module = \"$pool.wsgi:application\"\n  virtualenv = \"/srv/$pool/venv\"\n"
	    "  python_path = {\"/srv/$pool/src\", \"/opt/common\"}\n"
	    "  script_name = \"/$pool\"\n  max_children = 1\n"
	    "  request_slowlog_timeout = 1s\n  slowlog = \"/var/log/$pool.slow\"\n"
	    "}\n");
	const struct pool_conf *p = &c->pools[0];

	ck_assert_str_eq(p->listen, "/run/fcgi-pm/shop.sock");
	ck_assert_str_eq(p->listen_owner, "shop");
	ck_assert_str_eq(p->listen_group, "www-shop");
	ck_assert_str_eq(p->user, "shop");
	ck_assert_str_eq(p->group, "shop");
	ck_assert_str_eq(p->chdir, "/srv/shop");
	ck_assert_str_eq(p->env[0], "APP=shop");
	ck_assert_str_eq(p->env[1], "TWICE=shop-shop");
	ck_assert_str_eq(p->module, "shop.wsgi:application");
	ck_assert_str_eq(p->virtualenv, "/srv/shop/venv");
	ck_assert_str_eq(p->python_path[0], "/srv/shop/src");
	ck_assert_str_eq(p->python_path[1], "/opt/common");
	ck_assert_str_eq(p->script_name, "/shop");
	ck_assert_str_eq(p->slowlog, "/var/log/shop.slow");
}
END_TEST

START_TEST(pool_variable_in_single_quotes_expands_too)
{
	ck_assert_str_eq(pool_with("  chdir = '/srv/$pool'")->chdir, "/srv/web");
	ck_assert_str_eq(pool_with("  chdir = '/srv/$poolx'")->chdir, "/srv/webx");
}
END_TEST

START_TEST(double_quotes_expand_environment_single_quotes_do_not)
{
	const struct pool_conf *p;

	setenv("FCGI_PM_TEST_VAR", "expanded", 1);
	unsetenv("FCGI_PM_TEST_UNSET");
	p = pool_with("  env = {\"A=${FCGI_PM_TEST_VAR}\", 'B=${FCGI_PM_TEST_VAR}', "
	    "\"C=${FCGI_PM_TEST_UNSET}\", \"D=${FCGI_PM_TEST_UNSET:-dflt}\", 'SECRET_KEY=a$b${c}'}");
	ck_assert_str_eq(p->env[0], "A=expanded");
	ck_assert_str_eq(p->env[1], "B=${FCGI_PM_TEST_VAR}");
	ck_assert_str_eq(p->env[2], "C=");
	ck_assert_str_eq(p->env[3], "D=dflt");
	ck_assert_str_eq(p->env[4], "SECRET_KEY=a$b${c}");
	unsetenv("FCGI_PM_TEST_VAR");
}
END_TEST

START_TEST(pool_names_are_restricted)
{
	struct conf *c = ok_main("pool \"a.b_c-D9\" { listen = \":9001\"  module = \"a\"  max_children = 1 }\n");

	ck_assert_str_eq(c->pools[0].name, "a.b_c-D9");
	fail_main("\npool \"a b\" { listen = \":9001\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:2: pool 'a b': invalid pool name (1 to 64 letters, digits, '.', '_' or '-')");
	fail_main("pool \"\" { listen = \":9001\"  module = \"a\"  max_children = 1 }\n",
	    "main.conf:1: pool '': invalid pool name (1 to 64 letters, digits, '.', '_' or '-')");
}
END_TEST

/* ==================================================================== main */

/* ============================================ conf_check_system() */

/* Load TMP/main.conf holding TEXT (it must parse); conf_check_system()'s rc. */
static int
check_main(const char *text)
{
	struct conf *c = ok_main(text);

	return conf_check_system(c, errbuf, sizeof(errbuf));
}

/* A pool of main.conf opening on line 1 whose BODY starts on line 5. */
static int
check_pool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
check_pool(const char *fmt, ...)
{
	char body[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	return check_main(pool_text(body));
}

START_TEST(parse_alone_does_not_look_at_the_system)
{
	/* conf_load() stays testable anywhere: none of these exist */
	const struct pool_conf *p = pool_with("  user = \"no-such-user-fcgipm\"\n"
	    "  group = \"no-such-group-fcgipm\"\n  chdir = \"/no/such/dir\"\n"
	    "  virtualenv = \"/no/such/venv\"\n  slowlog = \"/no/such/slow.log\"");

	ck_assert_str_eq(p->user, "no-such-user-fcgipm");
	ck_assert_str_eq(p->chdir, "/no/such/dir");
}
END_TEST

START_TEST(option_lines_are_recorded)
{
	const struct pool_conf *p;
	struct conf *c;

	c = ok_main("# comment lines count as the editor shows them\n"
	    "worker_binary = \"/bin/sh\"\n"
	    "status_owner = \"root\"\n"
	    "\n"
	    "status_group = \"root\"\n"
	    "status_allow_users = {\"root\",\n"
	    "    \"nobody\"}\n"
	    "pool a {\n"
	    "  listen = \"/run/a.sock\"\n"		/* 9 */
	    "  module = \"a:app\"\n"
	    "  max_children = 1\n"
	    "  user = \"web\"  # inline comment\n"
	    "  group = \"web\"\n"
	    "  listen_owner = \"root\"\n"
	    "  listen_group = \"root\"\n"		/* 15 */
	    "  chdir = \"/\"\n"
	    "  virtualenv = \"/v\"\n"
	    "  python_path = {\"/a\", \"/b\"}\n"
	    "  slowlog = \"/tmp/$pool.log\"\n"
	    "}\n"					/* 20 */
	    "pool b {\n"
	    "  listen = \"/run/b.sock\"\n"
	    "  module = \"b:app\"\n"
	    "  max_children = 1\n"
	    "  chdir = \"/tmp\"\n"			/* 25 */
	    "}\n");
	ck_assert_int_eq(c->lines.worker_binary, 2);
	ck_assert_int_eq(c->lines.status_owner, 3);
	ck_assert_int_eq(c->lines.status_group, 5);
	ck_assert_int_eq(c->lines.status_allow_users, 6);
	p = &c->pools[0];
	ck_assert_int_eq(p->lines.user, 12);
	ck_assert_int_eq(p->lines.group, 13);
	ck_assert_int_eq(p->lines.listen_owner, 14);
	ck_assert_int_eq(p->lines.listen_group, 15);
	ck_assert_int_eq(p->lines.chdir, 16);
	ck_assert_int_eq(p->lines.virtualenv, 17);
	ck_assert_int_eq(p->lines.python_path, 18);
	ck_assert_int_eq(p->lines.slowlog, 19);
	p = &c->pools[1];
	ck_assert_int_eq(p->lines.chdir, 25);
	ck_assert_int_eq(p->lines.user, 0);		/* not set */
	ck_assert_int_eq(p->lines.virtualenv, 0);
}
END_TEST

START_TEST(option_lines_in_site_files)
{
	struct conf *c;

	put("sites/a.conf", "pool a {\n  listen = \"/run/a.sock\"\n  module = \"a:app\"\n"
	    "  max_children = 1\n  chdir = \"/a\"\n}\n");
	put("sites/b.conf", "# b\n\npool b {\n  listen = \"/run/b.sock\"\n  module = \"b:app\"\n"
	    "  max_children = 1\n}\npool c {\n  listen = \"/run/c.sock\"\n"
	    "  module = \"c:app\"\n  max_children = 1\n\n  chdir = \"/c\"\n}\n");
	c = ok_main("include_dir = \"sites\"\n");
	ck_assert_uint_eq(c->npools, 3);
	ck_assert_int_eq(c->pools[0].lines.chdir, 5);
	ck_assert_int_eq(c->pools[1].lines.chdir, 0);
	ck_assert_int_eq(c->pools[2].lines.chdir, 13);
	ck_assert_int_eq(conf_check_system(c, errbuf, sizeof(errbuf)), -1);
	expect_error("sites/a.conf:5: option 'chdir': '/a' does not exist");
	expect_error("sites/b.conf:13: option 'chdir': '/c' does not exist");
}
END_TEST

START_TEST(a_system_that_has_everything_passes)
{
	char text[4096];

	mkdir(path("venv"), 0755);
	mkdir(path("venv/bin"), 0755);
	put("venv/pyvenv.cfg", "home = /usr/bin\n");
	snprintf(text, sizeof(text), "worker_binary = \"/bin/sh\"\nstatus_owner = \"root\"\n"
	    "status_group = \"root\"\nstatus_allow_users = {\"root\"}\n"
	    "pool web {\n  listen = \"/run/web.sock\"\n  module = \"web:app\"\n"
	    "  max_children = 1\n  user = \"root\"\n  group = \"root\"\n  allow_root = yes\n"
	    "  listen_owner = \"root\"\n  listen_group = \"root\"\n  chdir = \"%s\"\n"
	    "  virtualenv = \"%s\"\n  python_path = {\"%s\"}\n  slowlog = \"%s/slow.log\"\n}\n",
	    tmp, path("venv"), tmp, tmp);
	ck_assert_int_eq(check_main(text), 0);
	ck_assert_str_eq(errbuf, "");
}
END_TEST

START_TEST(users_and_groups_must_resolve)
{
	ck_assert_int_eq(check_pool("  user = \"no-such-user-fcgipm\""), -1);
	expect_error("main.conf:5: option 'user': no such user 'no-such-user-fcgipm'");
	ck_assert_int_eq(check_pool("  group = \"no-such-group-fcgipm\""), -1);
	expect_error("main.conf:5: option 'group': no such group 'no-such-group-fcgipm'");
	ck_assert_int_eq(check_pool("  listen_owner = \"no-such-user-fcgipm\""), -1);
	expect_error("main.conf:5: option 'listen_owner': no such user 'no-such-user-fcgipm'");
	ck_assert_int_eq(check_pool("  listen_group = \"no-such-group-fcgipm\""), -1);
	expect_error("main.conf:5: option 'listen_group': no such group 'no-such-group-fcgipm'");
	ck_assert_int_eq(check_main("status_owner = \"no-such-user-fcgipm\"\n"
	    "status_group = \"no-such-group-fcgipm\"\n"
	    "status_allow_users = {\"root\", \"no-such-user-fcgipm\"}\n"
	    "pool web {\n  listen = \"/run/web.sock\"\n  module = \"web:app\"\n"
	    "  max_children = 1\n}\n"), -1);
	expect_error("main.conf:1: option 'status_owner': no such user 'no-such-user-fcgipm'");
	expect_error("main.conf:2: option 'status_group': no such group 'no-such-group-fcgipm'");
	expect_error("main.conf:3: option 'status_allow_users': no such user 'no-such-user-fcgipm'");
}
END_TEST

START_TEST(numeric_ids_as_pool_c_takes_them)
{
	/* php-fpm and pool.c: a uid without a passwd entry, with a group */
	ck_assert_int_eq(check_pool("  user = \"4242\"\n  group = \"4243\""), 0);
	ck_assert_int_eq(check_pool("  user = \"4242\""), -1);
	expect_error("main.conf:5: option 'user': uid 4242 has no passwd entry, so set "
	    "group as well");
	ck_assert_int_eq(check_pool("  user = \"0\"\n  group = \"0\"\n  allow_root = yes"), 0);
	ck_assert_int_eq(check_pool("  user = \"0\"\n  allow_root = yes"), -1);	/* as pool.c */
	/* sock.c and control.c look socket owners up by name only */
	ck_assert_int_eq(check_pool("  listen_owner = \"4242\""), -1);
	expect_error("main.conf:5: option 'listen_owner': no such user '4242'");
	ck_assert_int_eq(check_pool("  listen_group = \"4243\""), -1);
	expect_error("main.conf:5: option 'listen_group': no such group '4243'");
}
END_TEST

START_TEST(chdir_must_be_a_directory)
{
	ck_assert_int_eq(check_pool("  chdir = \"%s\"", path("nope")), -1);
	expect_error("main.conf:5: option 'chdir': '...");
	ck_assert(strstr(errbuf, "/nope' does not exist\n") != NULL);
	ck_assert_int_eq(check_pool("  chdir = \"%s\"", put("file", "")), -1);
	expect_error("main.conf:5: option 'chdir': '...");
	ck_assert(strstr(errbuf, "/file' is not a directory\n") != NULL);
	ck_assert_int_eq(check_pool("  chdir = \"%s\"", tmp), 0);
}
END_TEST

START_TEST(virtualenv_needs_pyvenv_cfg_and_bin)
{
	ck_assert_int_eq(check_pool("  virtualenv = \"%s\"", path("venv")), -1);
	expect_error("main.conf:5: option 'virtualenv': '...");
	ck_assert(strstr(errbuf, "/venv' does not exist\n") != NULL);
	mkdir(path("venv"), 0755);
	ck_assert_int_eq(check_pool("  virtualenv = \"%s\"", path("venv")), -1);
	ck_assert(strstr(errbuf, "/venv' is not a virtualenv: no pyvenv.cfg in it") != NULL);
	put("venv/pyvenv.cfg", "home = /usr/bin\n");
	ck_assert_int_eq(check_pool("  virtualenv = \"%s\"", path("venv")), -1);
	ck_assert(strstr(errbuf, "/venv' is not a virtualenv: it has no bin/ directory\n") != NULL);
	mkdir(path("venv/bin"), 0755);
	ck_assert_int_eq(check_pool("  virtualenv = \"%s\"", path("venv")), 0);
	ck_assert_int_eq(check_pool("  virtualenv = \"%s\"", path("venv/pyvenv.cfg")), -1);
	ck_assert(strstr(errbuf, "/pyvenv.cfg' is not a directory\n") != NULL);
}
END_TEST

START_TEST(worker_binary_must_be_an_executable_file)
{
	char text[PATH_MAX + 8192 + 64];	/* + pool_text() */

	snprintf(text, sizeof(text), "\nworker_binary = \"%s\"\n%s", path("nope"),
	    pool_text(""));
	ck_assert_int_eq(check_main(text), -1);
	expect_error("main.conf:2: option 'worker_binary': '...");
	ck_assert(strstr(errbuf, "/nope' does not exist\n") != NULL);
	snprintf(text, sizeof(text), "\nworker_binary = \"%s\"\n%s", put("plain", ""),
	    pool_text(""));
	chmod(path("plain"), 0644);
	ck_assert_int_eq(check_main(text), -1);		/* X_OK wants an x bit, even for root */
	ck_assert(strstr(errbuf, "/plain' is not executable: ") != NULL);
	snprintf(text, sizeof(text), "\nworker_binary = \"%s\"\n%s", tmp, pool_text(""));
	ck_assert_int_eq(check_main(text), -1);
	ck_assert(strstr(errbuf, "' is not a file\n") != NULL);
	snprintf(text, sizeof(text), "\nworker_binary = \"/bin/sh\"\n%s", pool_text(""));
	ck_assert_int_eq(check_main(text), 0);
}
END_TEST

START_TEST(slowlog_directory_must_exist)
{
	ck_assert_int_eq(check_pool("  slowlog = \"%s/$pool.log\"", path("nope")), -1);
	expect_error("main.conf:5: option 'slowlog': directory '...");
	ck_assert(strstr(errbuf, "/nope/web.log' does not exist\n") != NULL);
	ck_assert_int_eq(check_pool("  slowlog = \"%s/$pool.log\"", tmp), 0);
	ck_assert_int_eq(check_pool("  slowlog = \"web.log\""), 0);	/* the working directory */
	ck_assert_int_eq(check_pool("  slowlog = \"/web.log\""), 0);
}
END_TEST

START_TEST(missing_python_path_entry_only_warns)
{
	ck_assert_int_eq(check_pool("  python_path = {\"%s\", \"%s\"}", tmp, path("nope")), 0);
	expect_error("main.conf:5: option 'python_path': warning: '...");
	ck_assert(strstr(errbuf, "/nope': No such file or directory (Python skips it)\n") != NULL);
	ck_assert_ptr_null(strstr(errbuf, "\n/"));	/* one line only */
}
END_TEST

START_TEST(every_system_error_is_reported_at_once)
{
	ck_assert_int_eq(check_pool("  user = \"no-such-user-fcgipm\"\n  chdir = \"/no/such\"\n"
	    "  virtualenv = \"/no/venv\""), -1);
	expect_error("main.conf:5: option 'user': no such user 'no-such-user-fcgipm'");
	expect_error("main.conf:6: option 'chdir': '/no/such' does not exist");
	expect_error("main.conf:7: option 'virtualenv': '/no/venv' does not exist");
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("main");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, pool_in_main_file_gets_documented_defaults);
	tcase_add_test(tc, global_directives_are_copied);
	tcase_add_test(tc, error_log_may_be_stderr);
	tcase_add_test(tc, every_log_level_is_accepted);
	tcase_add_test(tc, unknown_log_level_is_refused);
	tcase_add_test(tc, status_mode_out_of_range_is_refused);
	tcase_add_test(tc, relative_pid_file_is_refused);
	tcase_add_test(tc, relative_status_socket_and_worker_binary_are_refused);
	tcase_add_test(tc, empty_status_allow_users_entry_is_refused);
	tcase_add_test(tc, negative_emergency_restart_threshold_is_refused);
	tcase_add_test(tc, missing_main_file_is_an_error);
	tcase_add_test(tc, main_file_that_is_a_directory_is_an_error);
	tcase_add_test(tc, file_with_a_nul_byte_is_an_error);
	tcase_add_test(tc, huge_file_is_an_error);
	tcase_add_test(tc, no_pool_at_all_is_an_error);
	tcase_add_test(tc, unknown_global_option_names_file_line_and_option);
	tcase_add_test(tc, unknown_pool_option_names_file_line_and_option);
	tcase_add_test(tc, php_fpm_names_get_a_hint);
	tcase_add_test(tc, missing_equal_sign_is_reported);
	tcase_add_test(tc, unclosed_quote_names_the_line_it_opens_on);
	tcase_add_test(tc, unclosed_pool_section_is_an_error);
	tcase_add_test(tc, stray_closing_brace_is_a_syntax_error);
	tcase_add_test(tc, pool_without_name_or_brace_is_explained);
	tcase_add_test(tc, pool_directive_outside_a_pool_is_explained);
	tcase_add_test(tc, list_value_for_a_single_value_option_is_a_syntax_error);
	tcase_add_test(tc, errbuf_may_be_null_or_tiny);
	tcase_add_test(tc, conf_find_pool_and_pm_mode_name);
	tcase_add_test(tc, every_directive_refuses_a_bad_value_at_its_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("lines");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, line_is_right_after_hash_comments);
	tcase_add_test(tc, line_is_right_after_slash_comments);
	tcase_add_test(tc, line_is_right_after_trailing_and_block_comments);
	tcase_add_test(tc, line_is_right_after_multiline_string);
	tcase_add_test(tc, pool_line_is_where_the_section_opens_after_comments);
	tcase_add_test(tc, hash_and_slashes_inside_quotes_are_kept);
	tcase_add_test(tc, comment_lines_in_pool_keep_option_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("include");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, include_dir_loads_sorted_conf_files_relative_to_main_file);
	tcase_add_test(tc, include_dir_holding_the_main_file_skips_it);
	tcase_add_test(tc, main_file_pools_come_before_site_pools);
	tcase_add_test(tc, absolute_include_dir_is_kept);
	tcase_add_test(tc, missing_include_dir_names_main_file_and_line);
	tcase_add_test(tc, include_dir_that_is_a_file_is_an_error);
	tcase_add_test(tc, unreadable_include_dir_is_an_error);
	tcase_add_test(tc, empty_include_dir_value_is_refused);
	tcase_add_test(tc, dangling_site_file_symlink_is_an_error);
	tcase_add_test(tc, global_directive_in_site_file_is_an_error_naming_that_file);
	tcase_add_test(tc, unknown_top_level_option_in_site_file_is_unknown);
	tcase_add_test(tc, site_file_errors_name_site_file_and_line_after_comments);
	tcase_add_test(tc, errors_in_several_site_files_are_all_reported);
	tcase_add_test(tc, duplicate_pool_across_files_names_both_places);
	tcase_add_test(tc, duplicate_pool_between_main_and_site_file);
	tcase_add_test(tc, duplicate_pool_in_one_file_names_both_lines);
	tcase_add_test(tc, invalid_duplicate_pool_is_still_reported_as_duplicate);
	tcase_add_test(tc, two_pools_on_one_unix_socket_name_both);
	tcase_add_test(tc, two_pools_on_one_tcp_port_name_both);
	tcase_add_test(tc, wildcard_address_conflicts_with_any_host_on_its_port);
	tcase_add_test(tc, different_hosts_or_ports_do_not_conflict);
	tcase_add_test(tc, fixture_tree_loads);
	tcase_add_test(tc, design_sketch_loads);
	tcase_add_test(tc, shipped_example_configuration_loads);
	suite_add_tcase(s, tc);

	tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, listen_accepts_unix_tcp_v6_and_bare_port);
	tcase_add_test(tc, listen_refuses_bad_addresses);
	tcase_add_test(tc, listen_is_required);
	tcase_add_test(tc, listen_unix_path_too_long_after_pool_expansion);
	tcase_add_test(tc, listen_owner_group_mode_backlog);
	tcase_add_test(tc, listen_mode_and_backlog_refuse_bad_values);
	tcase_add_test(tc, listen_allowed_clients_are_ip_addresses_for_tcp_only);
	tcase_add_test(tc, user_group_chdir_are_copied);
	tcase_add_test(tc, user_root_needs_allow_root);
	tcase_add_test(tc, umask_is_octal);
	tcase_add_test(tc, env_entries_are_key_value);
	tcase_add_test(tc, env_refuses_bad_entries);
	tcase_add_test(tc, env_append_with_plus_equal);
	tcase_add_test(tc, booleans_accept_yes_no_true_false_on_off);
	tcase_add_test(tc, rlimits);
	tcase_add_test(tc, module_forms);
	tcase_add_test(tc, module_refuses_bad_forms);
	tcase_add_test(tc, python_side_paths);
	tcase_add_test(tc, pm_static_starts_max_children);
	tcase_add_test(tc, pm_ondemand_starts_none_and_needs_idle_timeout);
	tcase_add_test(tc, pm_refuses_unknown_mode);
	tcase_add_test(tc, max_children_range_and_required);
	tcase_add_test(tc, pm_dynamic_computes_start_servers_like_php_fpm);
	tcase_add_test(tc, pm_dynamic_without_spare_settings_gets_defaults);
	tcase_add_test(tc, pm_dynamic_cross_field_errors_name_the_pool);
	tcase_add_test(tc, spare_settings_are_ignored_outside_dynamic);
	tcase_add_test(tc, spawn_rate_threads_requests);
	tcase_add_test(tc, timeouts_and_slowlog);
	tcase_add_test(tc, slowlog_timeout_without_slowlog_is_an_error);
	tcase_add_test(tc, worker_timeouts_are_bounded_to_what_the_worker_takes);
	tcase_add_test(tc, pool_names_are_restricted);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, durations_units);
	tcase_add_test(tc, durations_refuse_bad_and_huge_values);
	tcase_add_test(tc, sizes_units);
	tcase_add_test(tc, sizes_refuse_bad_and_huge_values);
	tcase_add_test(tc, pool_variable_expands_in_every_string_and_list_entry);
	tcase_add_test(tc, pool_variable_in_single_quotes_expands_too);
	tcase_add_test(tc, double_quotes_expand_environment_single_quotes_do_not);
	suite_add_tcase(s, tc);

	tc = tcase_create("system");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, parse_alone_does_not_look_at_the_system);
	tcase_add_test(tc, option_lines_are_recorded);
	tcase_add_test(tc, option_lines_in_site_files);
	tcase_add_test(tc, a_system_that_has_everything_passes);
	tcase_add_test(tc, users_and_groups_must_resolve);
	tcase_add_test(tc, numeric_ids_as_pool_c_takes_them);
	tcase_add_test(tc, chdir_must_be_a_directory);
	tcase_add_test(tc, virtualenv_needs_pyvenv_cfg_and_bin);
	tcase_add_test(tc, worker_binary_must_be_an_executable_file);
	tcase_add_test(tc, slowlog_directory_must_exist);
	tcase_add_test(tc, missing_python_path_entry_only_warns);
	tcase_add_test(tc, every_system_error_is_reported_at_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
