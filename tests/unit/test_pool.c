/*
 * test_pool.c - the pool policy without a process: pool_decide() and the
 * spawn backoff, fed with snapshots and times.
 */
#include <check.h>
#include <string.h>

#include "fcgi-pm/fcgi-pm.h"

static struct pool_conf pc;
static struct pool_view v;
static struct pool_actions act;

static void
setup(void)
{
	memset(&pc, 0, sizeof(pc));
	pc.name = "t";
	pc.pm = PM_STATIC;
	pc.max_children = 4;
	memset(&v, 0, sizeof(v));
	v.now_ms = 1000000;
	v.free_slots = 8;
}

START_TEST(static_pool_starts_max_children)
{
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 4);
}
END_TEST

START_TEST(static_pool_replaces_only_what_is_missing)
{
	v.active = 3;
	v.free_slots = 5;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
	v.active = 4;
	v.free_slots = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
}
END_TEST

START_TEST(ending_workers_do_not_count_so_a_restart_overlaps)
{
	/* after USR2: four old workers finishing, none active yet */
	v.ending = 4;
	v.free_slots = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 4);
}
END_TEST

START_TEST(spawn_is_capped_by_free_slots)
{
	v.ending = 6;
	v.free_slots = 2;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 2);
}
END_TEST

START_TEST(stopping_pool_spawns_nothing)
{
	v.stopping = true;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
}
END_TEST

START_TEST(backoff_waits_then_sends_one_probe)
{
	ck_assert(backoff_failure(&v.backoff, v.now_ms, v.now_ms - 50));
	v.now_ms += 50;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	v.now_ms += 50;			/* the 100 ms step is over */
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
	/* while the probe is young, nothing more */
	v.active = 1;
	v.probing = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
}
END_TEST

START_TEST(backoff_doubles_up_to_the_cap)
{
	struct backoff b = { 0 };
	uint64_t now = 5000;
	long expect = POOL_BACKOFF_MIN_MS;
	int steps = 0;

	for (;;) {
		ck_assert(backoff_failure(&b, now, now - 10));
		ck_assert_int_eq(b.delay_ms, expect);
		ck_assert_uint_eq(b.until_ms, now + (uint64_t)expect);
		if (expect == POOL_BACKOFF_MAX_MS)
			break;
		expect = expect * 2 > POOL_BACKOFF_MAX_MS ? POOL_BACKOFF_MAX_MS : expect * 2;
		now = b.until_ms + 5;	/* the probe started after the step, died at once */
		steps++;
	}
	ck_assert_int_eq(steps, 9);	/* 0.1 0.2 ... 25.6 30 s */
	ck_assert(backoff_failure(&b, now + 40000, now + 30000));
	ck_assert_int_eq(b.delay_ms, POOL_BACKOFF_MAX_MS);
}
END_TEST

START_TEST(a_batch_dying_together_is_one_step)
{
	struct backoff b = { 0 };

	/* four workers started at t=1000 die at 1010, 1011, 1012, 1013 */
	ck_assert(backoff_failure(&b, 1010, 1000));
	ck_assert(!backoff_failure(&b, 1011, 1000));
	ck_assert(!backoff_failure(&b, 1012, 1000));
	ck_assert(!backoff_failure(&b, 1013, 1000));
	ck_assert_int_eq(b.delay_ms, POOL_BACKOFF_MIN_MS);
}
END_TEST

START_TEST(backoff_resets_once_a_worker_stays_up)
{
	struct backoff b = { 0 };

	backoff_failure(&b, 1000, 900);
	backoff_failure(&b, 1200, 1110);
	ck_assert_int_eq(b.delay_ms, 2 * POOL_BACKOFF_MIN_MS);
	/* a worker from before the step proves nothing */
	ck_assert(!backoff_recovered(&b, 1000 + POOL_HEALTHY_MS + 500, 900));
	/* the probe started at 1400 is not old enough yet */
	ck_assert(!backoff_recovered(&b, 1400 + POOL_HEALTHY_MS - 1, 1400));
	ck_assert(backoff_recovered(&b, 1400 + POOL_HEALTHY_MS, 1400));
	ck_assert_int_eq(b.delay_ms, 0);
	/* healthy again: a pool spawns all it misses */
	v.backoff = b;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 4);
	/* and the next failure starts over at the minimum */
	ck_assert(backoff_failure(&b, 50000, 49000));
	ck_assert_int_eq(b.delay_ms, POOL_BACKOFF_MIN_MS);
}
END_TEST

START_TEST(backoff_is_not_held_back_by_workers_from_before_it)
{
	/* two workers started together; one is SIGKILLed young, the other lives */
	ck_assert(backoff_failure(&v.backoff, v.now_ms, v.now_ms - 500));
	v.active = 3;
	v.probing = 0;		/* the survivors were started before the step */
	v.now_ms += POOL_BACKOFF_MIN_MS;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("decide");
	TCase *tb = tcase_create("backoff");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, static_pool_starts_max_children);
	tcase_add_test(tc, static_pool_replaces_only_what_is_missing);
	tcase_add_test(tc, ending_workers_do_not_count_so_a_restart_overlaps);
	tcase_add_test(tc, spawn_is_capped_by_free_slots);
	tcase_add_test(tc, stopping_pool_spawns_nothing);
	tcase_add_test(tb, backoff_is_not_held_back_by_workers_from_before_it);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tb, setup, NULL);
	tcase_add_test(tb, backoff_waits_then_sends_one_probe);
	tcase_add_test(tb, backoff_doubles_up_to_the_cap);
	tcase_add_test(tb, a_batch_dying_together_is_one_step);
	tcase_add_test(tb, backoff_resets_once_a_worker_stays_up);
	suite_add_tcase(s, tb);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
