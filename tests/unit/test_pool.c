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
	v.idlest = -1;
	v.spawn_rate = 1;
}

/* php-fpm's www.conf numbers, scaled down: 8 children, 2..4 spare, start 3 */
static void
setup_dynamic(void)
{
	setup();
	pc.pm = PM_DYNAMIC;
	pc.max_children = 8;
	pc.min_spare = 2;
	pc.max_spare = 4;
	pc.start_servers = 3;
	pc.max_spawn_rate = 32;
	v.free_slots = 16;
	v.scale_due = true;
}

static void
setup_ondemand(void)
{
	setup();
	pc.pm = PM_ONDEMAND;
	pc.max_children = 4;
	pc.max_spawn_rate = 32;
	pc.process_idle_timeout_ms = 10000;
	v.free_slots = 8;
	v.scale_due = true;
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

START_TEST(static_pool_reports_max_children_only_when_a_connection_waits)
{
	v.active = 4;
	v.busy = 4;
	v.free_slots = 4;
	pool_decide(&pc, &v, &act);
	ck_assert(!act.max_children_reached);
	v.pending = 1;
	pool_decide(&pc, &v, &act);
	ck_assert(act.max_children_reached);
	ck_assert_int_eq(act.spawn, 0);
	/* a free thread will take it */
	v.free_threads = 1;
	pool_decide(&pc, &v, &act);
	ck_assert(!act.max_children_reached);
	/* so will a worker still starting (the pool's first connection) */
	v.free_threads = 0;
	v.busy = 3;
	v.starting = 1;
	pool_decide(&pc, &v, &act);
	ck_assert(!act.max_children_reached);
}
END_TEST

START_TEST(dynamic_pool_starts_start_servers)
{
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 3);
	ck_assert_int_eq(act.stop_slot, -1);
	ck_assert(!act.watch_listen);
}
END_TEST

START_TEST(dynamic_pool_scales_only_on_its_step)
{
	v.active = 3;
	v.busy = 3;
	v.scale_due = false;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert_int_eq(act.spawn_rate, 1);
	v.scale_due = true;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);		/* rate 1 */
	ck_assert_int_eq(act.spawn_rate, 2);
}
END_TEST

START_TEST(dynamic_spawn_rate_doubles_up_to_max_spawn_rate)
{
	int expect[] = { 1, 2, 4, 8, 8, 8 };

	pc.max_children = 100;
	pc.min_spare = 60;
	pc.max_spare = 80;
	pc.max_spawn_rate = 8;
	v.free_slots = 200;
	v.active = 10;
	v.busy = 10;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		pool_decide(&pc, &v, &act);
		ck_assert_int_eq(act.spawn, expect[i]);
		/* the new ones are busy at once: spares stay short */
		v.active += act.spawn;
		v.busy += act.spawn;
		v.spawn_rate = act.spawn_rate;
	}
	ck_assert_int_eq(v.spawn_rate, 8);
}
END_TEST

START_TEST(dynamic_spawn_rate_falls_back_once_spares_suffice)
{
	v.active = 6;
	v.busy = 4;
	v.idle = 2;
	v.idlest = 1;
	v.spawn_rate = 16;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert_int_eq(act.stop_slot, -1);
	ck_assert_int_eq(act.spawn_rate, 1);
}
END_TEST

START_TEST(dynamic_spawns_only_the_missing_spares)
{
	v.active = 5;
	v.busy = 4;
	v.idle = 1;
	v.spawn_rate = 8;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);		/* min_spare 2 - 1 idle */
}
END_TEST

START_TEST(dynamic_counts_starting_workers_as_spare)
{
	/* a slow app import must not make every step start more */
	v.active = 5;
	v.busy = 3;
	v.starting = 2;
	v.spawn_rate = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
}
END_TEST

START_TEST(dynamic_stops_the_idlest_above_max_spare_one_per_step)
{
	v.active = 6;
	v.busy = 1;
	v.idle = 5;
	v.idlest = 3;
	v.idlest_ms = 500;
	v.spawn_rate = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, 3);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert_int_eq(act.spawn_rate, 1);
	/* exactly max_spare idle: keep them */
	v.idle = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
	/* and nothing between steps */
	v.idle = 5;
	v.scale_due = false;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
}
END_TEST

START_TEST(dynamic_is_capped_by_max_children)
{
	v.active = 7;
	v.busy = 7;
	v.spawn_rate = 8;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
	ck_assert(!act.max_children_reached);	/* room for one more */
	v.active = 8;
	v.busy = 8;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(act.max_children_reached);
	ck_assert_int_eq(act.spawn_rate, 1);
	/* the flag holds between steps too, so the episode is not reset */
	v.scale_due = false;
	pool_decide(&pc, &v, &act);
	ck_assert(act.max_children_reached);
	/* enough spares at the cap: not reached */
	v.busy = 6;
	v.idle = 2;
	pool_decide(&pc, &v, &act);
	ck_assert(!act.max_children_reached);
}
END_TEST

START_TEST(dynamic_backoff_starts_one_probe_not_start_servers)
{
	ck_assert(backoff_failure(&v.backoff, v.now_ms - 200, v.now_ms - 300));
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
	v.active = 1;
	v.starting = 1;
	v.probing = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
}
END_TEST

START_TEST(ondemand_starts_with_no_worker_and_watches)
{
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(act.watch_listen);
}
END_TEST

START_TEST(ondemand_spawns_for_a_waiting_connection)
{
	v.pending = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
	ck_assert(!act.max_children_reached);
}
END_TEST

START_TEST(ondemand_leaves_a_connection_to_a_free_thread)
{
	v.active = 1;
	v.idle = 1;
	v.free_threads = 1;
	v.pending = 3;
	v.scale_due = false;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(!act.watch_listen);
}
END_TEST

START_TEST(ondemand_does_not_watch_while_a_worker_starts)
{
	/* the pending connection is the starting worker's: no busy loop */
	v.active = 1;
	v.starting = 1;
	v.pending = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(!act.watch_listen);
	/* more waiting than it can take: one more */
	v.pending = 2;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
}
END_TEST

START_TEST(ondemand_sizes_a_burst_by_threads_and_spawn_rate)
{
	pc.max_children = 64;
	pc.threads = 4;
	pc.max_spawn_rate = 3;
	v.free_slots = 128;
	v.pending = 9;		/* 3 workers of 4 threads */
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 3);
	v.pending = 40;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 3);		/* max_spawn_rate */
	pc.max_spawn_rate = 32;
	pc.max_children = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 4);		/* max_children */
}
END_TEST

START_TEST(ondemand_reports_max_children_and_stops_watching)
{
	v.active = 4;
	v.busy = 4;
	v.pending = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(act.max_children_reached);
	ck_assert(!act.watch_listen);
}
END_TEST

START_TEST(ondemand_stops_a_worker_idle_past_process_idle_timeout)
{
	v.active = 2;
	v.busy = 1;
	v.idle = 1;
	v.free_threads = 1;
	v.idlest = 5;
	v.idlest_ms = 9999;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
	v.idlest_ms = 10000;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, 5);
	v.scale_due = false;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
}
END_TEST

START_TEST(ondemand_goes_from_zero_to_n_and_back_to_zero)
{
	int slots[4];

	/* a burst of 4 connections: 4 workers, none of them before */
	v.pending = 4;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 4);
	/* they start, take the connections, finish them, go idle */
	v.active = 4;
	v.pending = 0;
	v.idle = 4;
	v.free_threads = 4;
	for (int i = 0; i < 4; i++)
		slots[i] = i;
	v.idlest_ms = 1000;
	v.idlest = slots[0];
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
	ck_assert_int_eq(act.spawn, 0);
	/* past the timeout, one per step until none is left */
	v.idlest_ms = 10000;
	for (int i = 0; i < 4; i++) {
		v.idlest = slots[i];
		pool_decide(&pc, &v, &act);
		ck_assert_int_eq(act.stop_slot, slots[i]);
		ck_assert_int_eq(act.spawn, 0);
		v.active--;
		v.idle--;
		v.free_threads--;
		v.ending++;
	}
	v.idlest = -1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.stop_slot, -1);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(act.watch_listen);
}
END_TEST

START_TEST(ondemand_backoff_does_not_watch_until_the_probe_may_start)
{
	ck_assert(backoff_failure(&v.backoff, v.now_ms, v.now_ms - 50));
	v.pending = 1;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert(!act.watch_listen);
	v.now_ms += POOL_BACKOFF_MIN_MS;
	v.pending = 3;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 1);
}
END_TEST

START_TEST(stopping_pool_neither_spawns_stops_nor_watches)
{
	pc.pm = PM_ONDEMAND;
	pc.process_idle_timeout_ms = 1;
	v.stopping = true;
	v.pending = 5;
	v.idlest = 0;
	v.idlest_ms = 50000;
	v.scale_due = true;
	pool_decide(&pc, &v, &act);
	ck_assert_int_eq(act.spawn, 0);
	ck_assert_int_eq(act.stop_slot, -1);
	ck_assert(!act.watch_listen);
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("decide");
	TCase *tb = tcase_create("backoff");
	TCase *td = tcase_create("dynamic");
	TCase *to = tcase_create("ondemand");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, static_pool_starts_max_children);
	tcase_add_test(tc, static_pool_replaces_only_what_is_missing);
	tcase_add_test(tc, ending_workers_do_not_count_so_a_restart_overlaps);
	tcase_add_test(tc, spawn_is_capped_by_free_slots);
	tcase_add_test(tc, stopping_pool_spawns_nothing);
	tcase_add_test(tc, stopping_pool_neither_spawns_stops_nor_watches);
	tcase_add_test(tc, static_pool_reports_max_children_only_when_a_connection_waits);
	tcase_add_test(tb, backoff_is_not_held_back_by_workers_from_before_it);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tb, setup, NULL);
	tcase_add_test(tb, backoff_waits_then_sends_one_probe);
	tcase_add_test(tb, backoff_doubles_up_to_the_cap);
	tcase_add_test(tb, a_batch_dying_together_is_one_step);
	tcase_add_test(tb, backoff_resets_once_a_worker_stays_up);
	suite_add_tcase(s, tb);

	tcase_add_checked_fixture(td, setup_dynamic, NULL);
	tcase_add_test(td, dynamic_pool_starts_start_servers);
	tcase_add_test(td, dynamic_pool_scales_only_on_its_step);
	tcase_add_test(td, dynamic_spawn_rate_doubles_up_to_max_spawn_rate);
	tcase_add_test(td, dynamic_spawn_rate_falls_back_once_spares_suffice);
	tcase_add_test(td, dynamic_spawns_only_the_missing_spares);
	tcase_add_test(td, dynamic_counts_starting_workers_as_spare);
	tcase_add_test(td, dynamic_stops_the_idlest_above_max_spare_one_per_step);
	tcase_add_test(td, dynamic_is_capped_by_max_children);
	tcase_add_test(td, dynamic_backoff_starts_one_probe_not_start_servers);
	suite_add_tcase(s, td);

	tcase_add_checked_fixture(to, setup_ondemand, NULL);
	tcase_add_test(to, ondemand_starts_with_no_worker_and_watches);
	tcase_add_test(to, ondemand_spawns_for_a_waiting_connection);
	tcase_add_test(to, ondemand_leaves_a_connection_to_a_free_thread);
	tcase_add_test(to, ondemand_does_not_watch_while_a_worker_starts);
	tcase_add_test(to, ondemand_sizes_a_burst_by_threads_and_spawn_rate);
	tcase_add_test(to, ondemand_reports_max_children_and_stops_watching);
	tcase_add_test(to, ondemand_stops_a_worker_idle_past_process_idle_timeout);
	tcase_add_test(to, ondemand_goes_from_zero_to_n_and_back_to_zero);
	tcase_add_test(to, ondemand_backoff_does_not_watch_until_the_probe_may_start);
	suite_add_tcase(s, to);
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
