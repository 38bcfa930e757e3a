/*
 * test_log.c - the master's log line format, level filtering and reopen.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm/fcgi-pm.h"

static char path[64];

static void
setup(void)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_log.XXXXXX");
	ck_assert_int_ne(fd = mkstemp(path), -1);
	close(fd);
	ck_assert_int_eq(log_open(path), 0);
	log_set_level(LOG_LVL_NOTICE);
}

static void
teardown(void)
{
	log_open(NULL);
	unlink(path);
}

static char *
contents(const char *p)
{
	static char buf[8192];
	FILE *f = fopen(p, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
assert_matches(const char *s, const char *re)
{
	regex_t rx;

	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
	ck_assert_msg(regexec(&rx, s, 0, NULL, 0) == 0, "/%s/ not in:\n%s", re, s);
	regfree(&rx);
}

START_TEST(line_has_time_level_pool_and_pid)
{
	log_warning("catalog", 4242, "worker exited on signal %d", 9);
	log_notice(NULL, 0, "master line");
	log_notice("catalog", 0, "pool line");
	assert_matches(contents(path), "^\\[[0-9]{2}-[A-Z][a-z]{2}-[0-9]{4} "
	    "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}\\] WARNING: \\[pool catalog\\] "
	    "pid 4242: worker exited on signal 9$");
	assert_matches(contents(path), "\\] NOTICE: master line$");
	assert_matches(contents(path), "\\] NOTICE: \\[pool catalog\\] pool line$");
}
END_TEST

START_TEST(lines_below_log_level_are_dropped)
{
	enum log_level l;

	log_debug(NULL, 0, "not shown");
	log_set_level(LOG_LVL_DEBUG);
	log_debug(NULL, 0, "shown");
	ck_assert_ptr_null(strstr(contents(path), "not shown"));
	ck_assert_ptr_nonnull(strstr(contents(path), "DEBUG: shown"));
	ck_assert_int_eq(log_level_parse("Warning", &l), 0);
	ck_assert_int_eq(l, LOG_LVL_WARNING);
	ck_assert_int_eq(log_level_parse("loud", &l), -1);
}
END_TEST

START_TEST(long_line_is_cut_but_still_one_line)
{
	char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error(NULL, 0, "%s", big);
	log_error(NULL, 0, "next");
	assert_matches(contents(path), "x\n\\[.*\\] ERROR: next$");
}
END_TEST

START_TEST(reopen_follows_a_rotated_file)
{
	char rotated[80];

	snprintf(rotated, sizeof(rotated), "%s.1", path);
	log_notice(NULL, 0, "before");
	ck_assert_int_eq(rename(path, rotated), 0);
	ck_assert_int_eq(log_reopen(), 0);
	log_notice(NULL, 0, "after");
	ck_assert_ptr_nonnull(strstr(contents(rotated), "before"));
	ck_assert_ptr_null(strstr(contents(rotated), "after"));
	ck_assert_ptr_nonnull(strstr(contents(path), "after"));
	unlink(rotated);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, line_has_time_level_pool_and_pid);
	tcase_add_test(tc, lines_below_log_level_are_dropped);
	tcase_add_test(tc, long_line_is_cut_but_still_one_line);
	tcase_add_test(tc, reopen_follows_a_rotated_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
