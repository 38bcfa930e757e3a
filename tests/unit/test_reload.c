/*
 * test_reload.c - what a reload does, without a process: reload_plan()
 * from running pool_confs to a new configuration, the change test behind
 * it, and the pace of a rolling restart (reload_roll_quota).
 */
#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "fcgi-pm/fcgi-pm.h"

static struct pool_conf a, b, c, na, nb, nd;
static struct conf nc;
static struct pool_conf newpools[4];
static struct reload_plan plan;
static char err[256];

static void
base(struct pool_conf *p, char *name, char *listen)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
	p->listen = listen;
	p->module = "app:application";
	p->pm = PM_STATIC;
	p->max_children = 4;
	p->threads = 1;
	p->umask = -1;
	p->rlimit_core = -1;
}

static void
setup(void)
{
	base(&a, "a", "/run/a.sock");
	base(&b, "b", "127.0.0.1:9001");
	base(&c, "c", "/run/c.sock");
	na = a;
	nb = b;
	base(&nd, "d", "/run/d.sock");
	memset(&nc, 0, sizeof(nc));
	memset(&plan, 0, sizeof(plan));
	err[0] = '\0';
}

static void
teardown(void)
{
	reload_plan_free(&plan);
}

/* the new configuration: the given pools in order */
static void
new_conf(int n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		newpools[i] = *va_arg(ap, struct pool_conf *);
	va_end(ap);
	nc.pools = newpools;
	nc.npools = (size_t)n;
}

static const struct reload_step *
step_for(const char *name, const struct pool_conf *const *old)
{
	for (size_t i = 0; i < plan.nsteps; i++) {
		const struct reload_step *s = &plan.steps[i];
		const char *n = s->new >= 0 ? nc.pools[s->new].name : old[s->old]->name;

		if (strcmp(n, name) == 0)
			return s;
	}
	return NULL;
}

START_TEST(unchanged_pools_are_kept)
{
	const struct pool_conf *old[] = { &a, &b };

	new_conf(2, &na, &nb);
	ck_assert_int_eq(reload_plan(old, 2, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_uint_eq(plan.nsteps, 2);
	ck_assert_int_eq(plan.kept, 2);
	ck_assert_int_eq(step_for("a", old)->action, RELOAD_KEEP);
	ck_assert_int_eq(step_for("b", old)->new, 1);
}
END_TEST

START_TEST(added_removed_and_changed)
{
	const struct pool_conf *old[] = { &a, &b, &c };

	na.max_children = 8;
	new_conf(3, &nd, &nb, &na);
	ck_assert_int_eq(reload_plan(old, 3, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(plan.added, 1);
	ck_assert_int_eq(plan.removed, 1);
	ck_assert_int_eq(plan.rolled, 1);
	ck_assert_int_eq(plan.kept, 1);
	ck_assert_int_eq(step_for("a", old)->action, RELOAD_ROLL);
	ck_assert_int_eq(step_for("a", old)->new, 2);
	ck_assert(step_for("a", old)->same_listen);
	ck_assert_int_eq(step_for("c", old)->action, RELOAD_REMOVE);
	ck_assert_int_eq(step_for("d", old)->action, RELOAD_ADD);
	ck_assert_int_eq(step_for("d", old)->old, -1);
	ck_assert_int_eq(step_for("b", old)->action, RELOAD_KEEP);
}
END_TEST

START_TEST(a_new_listen_address_gets_a_new_socket)
{
	const struct pool_conf *old[] = { &a };

	na.listen = "/run/a2.sock";
	new_conf(1, &na);
	ck_assert_int_eq(reload_plan(old, 1, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(step_for("a", old)->action, RELOAD_ROLL);
	ck_assert(!step_for("a", old)->same_listen);
}
END_TEST

START_TEST(the_same_address_spelled_differently_keeps_the_socket)
{
	const struct pool_conf *old[] = { &a, &b };

	na.listen = "unix:/run/a.sock";
	nb.listen = "127.0.0.1:9001";
	ck_assert(reload_same_listen(&a, &na));
	b.listen = "9001";
	nb.listen = "*:9001";
	ck_assert(reload_same_listen(&b, &nb));
	nb.listen = "127.0.0.1:9002";
	ck_assert(!reload_same_listen(&b, &nb));
	/* an unchanged pool whose address is written another way is not rolled */
	b.listen = "127.0.0.1:9001";
	nb.listen = "127.0.0.1:9001";
	new_conf(2, &na, &nb);
	ck_assert_int_eq(reload_plan(old, 2, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(plan.kept, 2);
}
END_TEST

START_TEST(moving_a_pool_to_another_file_changes_nothing)
{
	a.file = "/etc/fcgi-pm/sites.d/a.conf";
	a.line = 3;
	na.file = "/etc/fcgi-pm/sites.d/all.conf";
	na.line = 40;
	ck_assert(!reload_pool_changed(&a, &na));
}
END_TEST

START_TEST(every_kind_of_directive_counts_as_a_change)
{
	char *env1[] = { "A=1", NULL }, *env2[] = { "A=2", NULL }, *empty[] = { NULL };

	na.module = "other:app";
	ck_assert(reload_pool_changed(&a, &na));
	na = a;
	na.env = env1;
	ck_assert(reload_pool_changed(&a, &na));
	a.env = env1;
	ck_assert(!reload_pool_changed(&a, &na));
	na.env = env2;
	ck_assert(reload_pool_changed(&a, &na));
	/* an empty list is no list */
	a.env = NULL;
	na.env = empty;
	ck_assert(!reload_pool_changed(&a, &na));
	na = a;
	na.user = "www";
	ck_assert(reload_pool_changed(&a, &na));
	na = a;
	na.request_slowlog_timeout_ms = 5000;
	ck_assert(reload_pool_changed(&a, &na));
	na = a;
	na.pm = PM_DYNAMIC;
	ck_assert(reload_pool_changed(&a, &na));
	na = a;
	na.threads = 4;
	ck_assert(reload_pool_changed(&a, &na));
	na = a;
	na.listen_mode = 0666;
	ck_assert(reload_pool_changed(&a, &na));
}
END_TEST

/*
 * A directive added to struct pool_conf must be compared in
 * reload_pool_changed(), or a reload silently ignores it: this size is
 * the reminder.  Add the field there (and a case above), then update it.
 */
START_TEST(reload_compares_every_pool_conf_field)
{
	/* 320: file, line and lines (where options were set) are not compared */
	ck_assert_msg(sizeof(struct pool_conf) == 320, "struct pool_conf is %zu bytes, "
	    "not 320: compare the new field in reload.c's reload_pool_changed() and "
	    "update this test", sizeof(struct pool_conf));
}
END_TEST

START_TEST(only_one_pool_leaves_the_others_alone)
{
	const struct pool_conf *old[] = { &a, &b, &c };

	na.max_children = 8;
	nb.max_children = 8;
	new_conf(3, &na, &nb, &nd);	/* c removed, d added: neither is "a" */
	ck_assert_int_eq(reload_plan(old, 3, &nc, "a", &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(step_for("a", old)->action, RELOAD_ROLL);
	ck_assert_int_eq(plan.rolled, 1);
	ck_assert_int_eq(plan.added + plan.removed + plan.kept, 0);
	ck_assert_ptr_null(step_for("d", old));
	for (size_t i = 0; i < plan.nsteps; i++) {
		if (plan.steps[i].old == 1 || plan.steps[i].old == 2)
			ck_assert_int_eq(plan.steps[i].action, RELOAD_IGNORE);
	}
}
END_TEST

START_TEST(only_a_new_pool_adds_it)
{
	const struct pool_conf *old[] = { &a };

	new_conf(2, &na, &nd);
	ck_assert_int_eq(reload_plan(old, 1, &nc, "d", &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(plan.added, 1);
	ck_assert_int_eq(step_for("a", old)->action, RELOAD_IGNORE);
}
END_TEST

START_TEST(only_an_unknown_pool_is_an_error)
{
	const struct pool_conf *old[] = { &a };

	new_conf(1, &na);
	ck_assert_int_eq(reload_plan(old, 1, &nc, "zzz", &plan, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "no pool named zzz, neither running nor in the configuration");
}
END_TEST

START_TEST(draining_pools_are_left_out)
{
	/* a NULL entry: a pool already draining from an earlier reload */
	const struct pool_conf *old[] = { NULL, &a };

	new_conf(1, &na);
	ck_assert_int_eq(reload_plan(old, 2, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_uint_eq(plan.nsteps, 1);
	ck_assert_int_eq(plan.steps[0].old, 1);
	ck_assert_int_eq(plan.steps[0].action, RELOAD_KEEP);
}
END_TEST

START_TEST(an_empty_configuration_removes_everything)
{
	const struct pool_conf *old[] = { &a, &b };

	new_conf(0);
	ck_assert_int_eq(reload_plan(old, 2, &nc, NULL, &plan, err, sizeof(err)), 0);
	ck_assert_int_eq(plan.removed, 2);
}
END_TEST

START_TEST(roll_quota_keeps_capacity)
{
	/* 4 old serving, nothing new ready: none goes */
	ck_assert_int_eq(reload_roll_quota(4, 4, 0, 4, false), 0);
	/* one new ready: one old goes */
	ck_assert_int_eq(reload_roll_quota(4, 4, 1, 3, false), 1);
	/* already told one; still one ready: nothing more */
	ck_assert_int_eq(reload_roll_quota(4, 3, 1, 3, false), 0);
	ck_assert_int_eq(reload_roll_quota(4, 3, 3, 1, false), 2);
	/* all ready: the rest go */
	ck_assert_int_eq(reload_roll_quota(4, 2, 4, 0, false), 2);
	/* nothing left to do */
	ck_assert_int_eq(reload_roll_quota(4, 0, 4, 0, false), 0);
}
END_TEST

START_TEST(roll_quota_new_code_that_never_starts_keeps_the_old_workers)
{
	/* the new workers died (import error): none ready, none starting */
	ck_assert_int_eq(reload_roll_quota(4, 4, 0, 0, false), 0);
}
END_TEST

START_TEST(roll_quota_fewer_new_workers_than_old)
{
	/* a dynamic pool starts 2 (start_servers) where 4 ran: once they are ready */
	ck_assert_int_eq(reload_roll_quota(4, 4, 1, 1, false), 1);
	ck_assert_int_eq(reload_roll_quota(4, 3, 2, 0, false), 3);
	/* ondemand starts none: the old ones go at once */
	ck_assert_int_eq(reload_roll_quota(4, 4, 0, 0, true), 4);
}
END_TEST

static Suite *
reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tp = tcase_create("plan");
	TCase *tq = tcase_create("roll");

	tcase_add_checked_fixture(tp, setup, teardown);
	tcase_add_test(tp, unchanged_pools_are_kept);
	tcase_add_test(tp, added_removed_and_changed);
	tcase_add_test(tp, a_new_listen_address_gets_a_new_socket);
	tcase_add_test(tp, the_same_address_spelled_differently_keeps_the_socket);
	tcase_add_test(tp, moving_a_pool_to_another_file_changes_nothing);
	tcase_add_test(tp, every_kind_of_directive_counts_as_a_change);
	tcase_add_test(tp, reload_compares_every_pool_conf_field);
	tcase_add_test(tp, only_one_pool_leaves_the_others_alone);
	tcase_add_test(tp, only_a_new_pool_adds_it);
	tcase_add_test(tp, only_an_unknown_pool_is_an_error);
	tcase_add_test(tp, draining_pools_are_left_out);
	tcase_add_test(tp, an_empty_configuration_removes_everything);
	suite_add_tcase(s, tp);
	tcase_add_test(tq, roll_quota_keeps_capacity);
	tcase_add_test(tq, roll_quota_new_code_that_never_starts_keeps_the_old_workers);
	tcase_add_test(tq, roll_quota_fewer_new_workers_than_old);
	suite_add_tcase(s, tq);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(reload_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
