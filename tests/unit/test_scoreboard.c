/*
 * test_scoreboard.c - the master's side of the shared-memory scoreboard:
 * the header a worker checks, slot assignment and release, consistent
 * reads, and the memfd really being shared.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <check.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm/fcgi-pm.h"
#include "fcgi-pm/scoreboard.h"

START_TEST(header_describes_the_layout)
{
	struct scoreboard sb;

	ck_assert_int_eq(sb_create(&sb, "t", 6, 4), 0);
	ck_assert_uint_eq(sb.hdr->magic, SB_MAGIC);
	ck_assert_uint_eq(sb.hdr->version, SB_VERSION);
	ck_assert_uint_eq(sb.hdr->nslots, 6);
	ck_assert_uint_eq(sb.hdr->nthreads, 4);
	ck_assert_uint_eq(sb.hdr->slot_size, sb_slot_size(4));
	ck_assert_uint_eq(sb.size, sb_total_size(6, 4));
	ck_assert_int_eq(lseek(sb.fd, 0, SEEK_END), (off_t)sb.size);
	sb_destroy(&sb);
	ck_assert_int_eq(sb.fd, -1);
}
END_TEST

START_TEST(assign_bumps_generation_and_clears_the_last_worker)
{
	struct scoreboard sb;
	struct sb_slot_view v;
	struct sb_thread t;
	struct sb_slot *s;

	ck_assert_int_eq(sb_create(&sb, "t", 2, 2), 0);
	sb_slot_read(&sb, 1, &v);
	ck_assert_uint_eq(v.state, SB_WORKER_FREE);
	sb_slot_assign(&sb, 1);
	sb_slot_read(&sb, 1, &v);
	ck_assert_uint_eq(v.state, SB_WORKER_STARTING);
	ck_assert_uint_eq(v.generation, 1);
	ck_assert_uint_gt(v.start_us, 0);

	/* a worker leaves traces, then exits and is reaped */
	s = sb_slot_at(sb.hdr, 1);
	s->pid = 4242;
	s->state = SB_WORKER_READY;
	atomic_store(&s->requests, 7);
	s->threads[1].requests = 7;
	strcpy(s->threads[1].req_uri, "/old");
	sb_slot_release(&sb, 1);
	sb_slot_read(&sb, 1, &v);
	ck_assert_uint_eq(v.state, SB_WORKER_FREE);
	ck_assert_int_eq(v.pid, 0);

	sb_slot_assign(&sb, 1);
	sb_slot_read(&sb, 1, &v);
	ck_assert_uint_eq(v.generation, 2);
	ck_assert_uint_eq(v.requests, 0);
	ck_assert_int_eq(sb_thread_read(&sb, 1, 1, &t), 0);
	ck_assert_uint_eq(t.requests, 0);
	ck_assert_str_eq(t.req_uri, "");
	/* slot 0 was never touched */
	sb_slot_read(&sb, 0, &v);
	ck_assert_uint_eq(v.generation, 0);
	ck_assert_int_eq(sb_thread_read(&sb, 2, 0, &t), -1);
	ck_assert_int_eq(sb_thread_read(&sb, 0, 2, &t), -1);
	sb_destroy(&sb);
}
END_TEST

START_TEST(a_worker_mapping_the_fd_writes_what_the_master_reads)
{
	struct scoreboard sb;
	struct sb_slot_view v;
	pid_t pid;
	int st;

	ck_assert_int_eq(sb_create(&sb, "t", 2, 1), 0);
	sb_slot_assign(&sb, 0);
	if ((pid = fork()) == 0) {
		/* as fcgi-pm-worker does: map the inherited fd on its own */
		struct sb_header *h = mmap(NULL, sb.size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, sb.fd, 0);
		struct sb_slot *s = sb_slot_at(h, 0);

		sb_write_begin(&s->seq);
		s->pid = getpid();
		s->state = SB_WORKER_READY;
		s->rss_kb = 12345;
		sb_write_end(&s->seq);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	sb_slot_read(&sb, 0, &v);
	ck_assert_int_eq(v.pid, pid);
	ck_assert_uint_eq(v.state, SB_WORKER_READY);
	ck_assert_uint_eq(v.rss_kb, 12345);
	sb_destroy(&sb);
}
END_TEST

START_TEST(a_writer_that_died_mid_update_does_not_hang_the_reader)
{
	struct scoreboard sb;
	struct sb_slot_view v;
	struct sb_slot *s;

	ck_assert_int_eq(sb_create(&sb, "t", 1, 1), 0);
	s = sb_slot_at(sb.hdr, 0);
	sb_write_begin(&s->seq);	/* odd forever */
	s->pid = 99;
	sb_slot_read(&sb, 0, &v);
	ck_assert_int_eq(v.pid, 99);
	sb_destroy(&sb);
}
END_TEST

static Suite *
scoreboard_suite(void)
{
	Suite *s = suite_create("scoreboard");
	TCase *tc = tcase_create("master");

	tcase_add_test(tc, header_describes_the_layout);
	tcase_add_test(tc, assign_bumps_generation_and_clears_the_last_worker);
	tcase_add_test(tc, a_worker_mapping_the_fd_writes_what_the_master_reads);
	tcase_add_test(tc, a_writer_that_died_mid_update_does_not_hang_the_reader);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(scoreboard_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
