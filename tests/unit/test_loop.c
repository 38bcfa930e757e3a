/*
 * test_loop.c - the event loop: signals arrive as events (no handler runs),
 * fd callbacks, the tick, and an fd unwatched by an earlier callback of the
 * same batch is not called.
 */
#include <sys/epoll.h>

#include <check.h>
#include <signal.h>
#include <unistd.h>

#include "fcgi-pm/fcgi-pm.h"

static int signals_seen[4], ticks, reads;
static int pipes[2][2];

static void
on_signal(int signo)
{
	if (signo == SIGUSR1)
		signals_seen[0]++;
	else if (signo == SIGHUP)
		signals_seen[1]++;
	if (signals_seen[0] && signals_seen[1])
		loop_exit();
}

static void
on_tick(uint64_t now)
{
	(void)now;
	if (++ticks == 3)
		loop_exit();
}

START_TEST(signals_arrive_as_events)
{
	ck_assert_int_eq(loop_init(on_signal, on_tick, 60000), 0);
	raise(SIGUSR1);		/* blocked: queued for the signalfd, no handler */
	raise(SIGHUP);
	ck_assert_int_eq(loop_run(), 0);
	ck_assert_int_eq(signals_seen[0], 1);
	ck_assert_int_eq(signals_seen[1], 1);
	loop_free();
}
END_TEST

START_TEST(tick_repeats)
{
	uint64_t t0 = loop_now_ms();

	ck_assert_int_eq(loop_init(on_signal, on_tick, 20), 0);
	ck_assert_int_eq(loop_run(), 0);
	ck_assert_int_eq(ticks, 3);
	ck_assert_uint_ge(loop_now_ms() - t0, 55);
	loop_free();
}
END_TEST

static void
on_read(int fd, uint32_t events, void *arg)
{
	char c;

	(void)events;
	ck_assert_int_eq(read(fd, &c, 1), 1);
	reads++;
	/* whichever pipe comes first closes the other, whose event is pending too */
	if (arg != NULL) {
		int *other = arg;

		loop_unwatch(other[0]);
		close(other[0]);
		close(other[1]);
	}
	loop_exit();
}

START_TEST(unwatched_fd_is_not_called_in_the_same_batch)
{
	ck_assert_int_eq(loop_init(on_signal, on_tick, 60000), 0);
	ck_assert_int_eq(pipe(pipes[0]), 0);
	ck_assert_int_eq(pipe(pipes[1]), 0);
	ck_assert_int_eq(loop_watch(pipes[0][0], EPOLLIN, on_read, pipes[1]), 0);
	ck_assert_int_eq(loop_watch(pipes[1][0], EPOLLIN, on_read, pipes[0]), 0);
	ck_assert_int_eq(write(pipes[0][1], "a", 1), 1);
	ck_assert_int_eq(write(pipes[1][1], "b", 1), 1);
	ck_assert_int_eq(loop_run(), 0);
	ck_assert_int_eq(reads, 1);
	loop_free();
}
END_TEST

static Suite *
loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("events");

	tcase_add_test(tc, signals_arrive_as_events);
	tcase_add_test(tc, tick_repeats);
	tcase_add_test(tc, unwatched_fd_is_not_called_in_the_same_batch);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(loop_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
