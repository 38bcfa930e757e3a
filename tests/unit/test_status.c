/*
 * test_status.c - the status pages from hand-made snapshots: php-fpm's
 * text and JSON fields, escaping, the Prometheus and OpenMetrics text
 * formats (the strict checks live in the integration test's parser; these
 * pin the exact lines), and the growable buffer.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi-pm/fcgi-pm.h"

#define T0_US	1700000000000000ULL	/* 2023-11-14 22:13:20 UTC */

static struct status_snapshot snap;
static struct status_pool pool;
static struct status_worker workers[2];
static struct buf out;

static void
setup(void)
{
	setenv("TZ", "UTC", 1);
	memset(&snap, 0, sizeof(snap));
	memset(&pool, 0, sizeof(pool));
	memset(workers, 0, sizeof(workers));
	memset(&out, 0, sizeof(out));
	strcpy(pool.name, "catalog");
	pool.pm = "dynamic";
	pool.state = POOL_RUNNING;
	pool.start_us = T0_US;
	pool.accepted = 1234;
	pool.listen_queue = 3;
	pool.max_listen_queue = 7;
	pool.listen_queue_len = 511;
	pool.idle = 1;
	pool.active = 1;
	pool.total = 2;
	pool.max_active = 2;
	pool.max_children = 4;
	pool.max_children_reached = 5;
	pool.slow_requests = 6;
	pool.queue_timeouts = 8;
	pool.dropped = 9;
	workers[0].pid = 4242;
	workers[0].state = WORKER_ST_RUNNING;
	workers[0].start_us = T0_US + 10000000;
	workers[0].requests = 600;
	workers[0].in_request = true;
	workers[0].busy_threads = 1;
	workers[0].duration_us = 2500000;
	strcpy(workers[0].method, "POST");
	strcpy(workers[0].uri, "/cart?\"x\"\\y");
	workers[0].content_length = 99;
	workers[0].rss_bytes = 50 << 20;
	workers[1].pid = 4243;
	workers[1].state = WORKER_ST_IDLE;
	workers[1].start_us = T0_US + 10000000;
	workers[1].requests = 634;
	workers[1].duration_us = 1500;
	strcpy(workers[1].method, "GET");
	strcpy(workers[1].uri, "/");
	workers[1].last_cpu_pct = 12.5;
	workers[1].last_memory_bytes = 40 << 20;
	workers[1].rss_bytes = 41 << 20;
	pool.workers = workers;
	pool.nworkers = 2;
	snap.now_us = T0_US + 100000000;	/* 100 s later */
	snap.pools = &pool;
	snap.npools = 1;
}

static void
teardown(void)
{
	buf_free(&out);
}

START_TEST(text_has_php_fpm_fields)
{
	ck_assert_int_eq(status_render(&snap, STATUS_TEXT, false, true, &out), 0);
	ck_assert_str_eq(out.data,
	    "pool:                 catalog\n"
	    "process manager:      dynamic\n"
	    "start time:           14/Nov/2023:22:13:20 +0000\n"
	    "start since:          100\n"
	    "accepted conn:        1234\n"
	    "listen queue:         3\n"
	    "max listen queue:     7\n"
	    "listen queue len:     511\n"
	    "idle processes:       1\n"
	    "active processes:     1\n"
	    "total processes:      2\n"
	    "max active processes: 2\n"
	    "max children reached: 5\n"
	    "slow requests:        6\n"
	    "queue timeouts:       8\n"
	    "dropped requests (client gone): 9\n");
}
END_TEST

START_TEST(text_full_lists_every_worker)
{
	ck_assert_int_eq(status_render(&snap, STATUS_TEXT, true, true, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data,
	    "\n************************\n"
	    "pid:                  4242\n"
	    "state:                Running\n"
	    "start time:           14/Nov/2023:22:13:30 +0000\n"
	    "start since:          90\n"
	    "requests:             600\n"
	    "request duration:     2500000\n"
	    "request method:       POST\n"
	    "request URI:          /cart?\"x\"\\y\n"
	    "content length:       99\n"
	    "last request cpu:     0.00\n"
	    "last request memory:  0\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "pid:                  4243\n"
	    "state:                Idle\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "last request cpu:     12.50\n"
	    "last request memory:  41943040\n"));
}
END_TEST

START_TEST(json_one_pool_is_php_fpm_object)
{
	ck_assert_int_eq(status_render(&snap, STATUS_JSON, false, true, &out), 0);
	ck_assert_str_eq(out.data, "{\"pool\":\"catalog\",\"process manager\":\"dynamic\","
	    "\"start time\":1700000000,\"start since\":100,\"accepted conn\":1234,"
	    "\"listen queue\":3,\"max listen queue\":7,\"listen queue len\":511,"
	    "\"idle processes\":1,\"active processes\":1,\"total processes\":2,"
	    "\"max active processes\":2,\"max children reached\":5,\"slow requests\":6,"
	    "\"queue timeouts\":8,\"dropped requests (client gone)\":9,"
	    "\"draining\":false}\n");
}
END_TEST

START_TEST(json_every_pool_and_escapes)
{
	strcpy(workers[1].uri, "/a\nb\x01");
	ck_assert_int_eq(status_render(&snap, STATUS_JSON, true, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data, "{\"pools\":[{\"pool\":\"catalog\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"request uri\":\"/cart?\\\"x\\\"\\\\y\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"request uri\":\"/a\\u000ab\\u0001\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"processes\":[{\"pid\":4242,"
	    "\"state\":\"Running\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"last request memory\":41943040"));
	ck_assert_str_eq(out.data + out.len - 3, "]}\n");
}
END_TEST

START_TEST(json_no_pools_is_an_empty_list)
{
	snap.npools = 0;
	ck_assert_int_eq(status_render(&snap, STATUS_JSON, true, false, &out), 0);
	ck_assert_str_eq(out.data, "{\"pools\":[]}\n");
}
END_TEST

START_TEST(prometheus_pool_series)
{
	ck_assert_int_eq(status_render(&snap, STATUS_PROMETHEUS, false, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data,
	    "# TYPE fcgipm_accepted_connections_total counter\n"
	    "fcgipm_accepted_connections_total{pool=\"catalog\"} 1234\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "fcgipm_listen_queue{pool=\"catalog\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_max_listen_queue{pool=\"catalog\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_start_time_seconds{pool=\"catalog\"} 1700000000.000000\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_max_children_reached_total{pool=\"catalog\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "# TYPE fcgipm_queue_timeouts_total counter\n"
	    "fcgipm_queue_timeouts_total{pool=\"catalog\"} 8\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "# TYPE fcgipm_dropped_requests_total counter\n"
	    "fcgipm_dropped_requests_total{pool=\"catalog\"} 9\n"));
	ck_assert_ptr_null(strstr(out.data, "fcgipm_worker"));
	ck_assert_ptr_null(strstr(out.data, "# EOF"));
}
END_TEST

START_TEST(prometheus_worker_series)
{
	ck_assert_int_eq(status_render(&snap, STATUS_PROMETHEUS, true, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_state{pool=\"catalog\",pid=\"4242\",state=\"Running\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_state{pool=\"catalog\",pid=\"4242\",state=\"Idle\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_requests_total{pool=\"catalog\",pid=\"4243\"} 634\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_request_duration_seconds{pool=\"catalog\",pid=\"4242\"} "
	    "2.500000\n"));
	/* an idle worker's current request lasts 0, not its last one's duration */
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_request_duration_seconds{pool=\"catalog\",pid=\"4243\"} "
	    "0.000000\n"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_worker_rss_bytes{pool=\"catalog\",pid=\"4243\"} 42991616\n"));
}
END_TEST

START_TEST(openmetrics_names_counter_families_without_total)
{
	ck_assert_int_eq(status_render(&snap, STATUS_OPENMETRICS, true, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data,
	    "# TYPE fcgipm_accepted_connections counter\n"
	    "fcgipm_accepted_connections_total{pool=\"catalog\"} 1234\n"));
	ck_assert_ptr_null(strstr(out.data, "# TYPE fcgipm_accepted_connections_total"));
	ck_assert_ptr_nonnull(strstr(out.data,
	    "# TYPE fcgipm_dropped_requests counter\n"
	    "fcgipm_dropped_requests_total{pool=\"catalog\"} 9\n"));
	ck_assert_str_eq(out.data + out.len - 6, "# EOF\n");
	ck_assert_str_eq(status_content_type(STATUS_OPENMETRICS),
	    "application/openmetrics-text; version=1.0.0; charset=utf-8");
}
END_TEST

START_TEST(prometheus_escapes_label_values)
{
	strcpy(pool.name, "a\"b\\c");
	ck_assert_int_eq(status_render(&snap, STATUS_PROMETHEUS, false, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data,
	    "fcgipm_idle_processes{pool=\"a\\\"b\\\\c\"} 1\n"));
}
END_TEST

START_TEST(text_separates_pools_and_marks_draining)
{
	struct status_pool two[2];

	two[0] = pool;
	two[1] = pool;
	strcpy(two[1].name, "blog");
	two[1].state = POOL_STOPPING;
	snap.pools = two;
	snap.npools = 2;
	ck_assert_int_eq(status_render(&snap, STATUS_TEXT, false, false, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data, "dropped requests (client gone): 9\n\npool:"
	    "                 blog\n"));
	ck_assert_ptr_nonnull(strstr(out.data, "pool state:           draining\n"));
}
END_TEST

START_TEST(worker_state_names)
{
	ck_assert_str_eq(status_worker_state_name(WORKER_ST_READING), "Reading headers");
	ck_assert_str_eq(status_worker_state_name(WORKER_ST_STARTING), "Starting");
	ck_assert_str_eq(status_worker_state_name(WORKER_ST_ENDING), "Ending");
	ck_assert_str_eq(status_worker_state_name((enum worker_status_state)99), "Unknown");
}
END_TEST

START_TEST(buf_grows_past_its_first_chunks)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(buf_printf(&out, "%d:%s;", i, big), 0);
	ck_assert_uint_eq(out.len, 100 * (sizeof(big) - 1) + 390);
	ck_assert_uint_eq(strlen(out.data), out.len);
	ck_assert(!out.failed);
	ck_assert_ptr_nonnull(strstr(out.data, "99:xxx"));
}
END_TEST

static Suite *
status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("render");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, text_has_php_fpm_fields);
	tcase_add_test(tc, text_full_lists_every_worker);
	tcase_add_test(tc, json_one_pool_is_php_fpm_object);
	tcase_add_test(tc, json_every_pool_and_escapes);
	tcase_add_test(tc, json_no_pools_is_an_empty_list);
	tcase_add_test(tc, prometheus_pool_series);
	tcase_add_test(tc, prometheus_worker_series);
	tcase_add_test(tc, openmetrics_names_counter_families_without_total);
	tcase_add_test(tc, prometheus_escapes_label_values);
	tcase_add_test(tc, text_separates_pools_and_marks_draining);
	tcase_add_test(tc, worker_state_names);
	tcase_add_test(tc, buf_grows_past_its_first_chunks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(status_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
