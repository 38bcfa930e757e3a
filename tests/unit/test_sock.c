/*
 * test_sock.c - listen addresses (pure parsing) and the listening sockets
 * themselves: a live socket is never stolen, a stale one is replaced, the
 * listen queue is readable.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-pm/fcgi-pm.h"

static struct listen_addr a;
static char err[256];

START_TEST(parse_unix_path)
{
	ck_assert_int_eq(sock_parse("/run/fcgi-pm/catalog.sock", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_str_eq(a.path, "/run/fcgi-pm/catalog.sock");
	ck_assert_int_eq(sock_parse("unix:/tmp/x.sock", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.path, "/tmp/x.sock");
}
END_TEST

START_TEST(parse_unix_path_too_long_is_refused)
{
	char path[200];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(sock_parse(path, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "longer than 107"));
}
END_TEST

START_TEST(parse_ipv4_host_port)
{
	ck_assert_int_eq(sock_parse("127.0.0.1:9001", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_uint_eq(a.port, 9001);
}
END_TEST

START_TEST(parse_hostname_is_resolved_later)
{
	ck_assert_int_eq(sock_parse("localhost:9001", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_UNSPEC);
	ck_assert_str_eq(a.host, "localhost");
	ck_assert_uint_eq(a.port, 9001);
}
END_TEST

START_TEST(parse_ipv6_in_brackets)
{
	ck_assert_int_eq(sock_parse("[::1]:9002", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_uint_eq(a.port, 9002);
	ck_assert_int_eq(sock_parse("[::]:9002", &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.host, "::");
}
END_TEST

START_TEST(parse_any_address_forms)
{
	const char *forms[] = { ":9003", "*:9003", "9003" };

	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(sock_parse(forms[i], &a, err, sizeof(err)), 0);
		ck_assert_int_eq(a.family, AF_INET);
		ck_assert_str_eq(a.host, "");
		ck_assert_uint_eq(a.port, 9003);
	}
}
END_TEST

START_TEST(parse_bad_addresses_are_refused)
{
	const char *bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:90x", "::1:9000", "[::1]", "[::1]9000", "[nothost]:9000",
		"[]:9000", "relative.sock", ":-1", "host:+80",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(sock_parse(bad[i], &a, err, sizeof(err)) == -1,
		    "'%s' was accepted", bad[i]);
		ck_assert_msg(err[0] != '\0', "no message for '%s'", bad[i]);
	}
	ck_assert_int_eq(sock_parse(NULL, &a, err, sizeof(err)), -1);
}
END_TEST

START_TEST(name_formats_like_the_config)
{
	char buf[300];

	sock_parse("[::1]:9002", &a, err, sizeof(err));
	ck_assert_str_eq(sock_name(&a, buf, sizeof(buf)), "[::1]:9002");
	sock_parse(":9003", &a, err, sizeof(err));
	ck_assert_str_eq(sock_name(&a, buf, sizeof(buf)), "*:9003");
	sock_parse("/x.sock", &a, err, sizeof(err));
	ck_assert_str_eq(sock_name(&a, buf, sizeof(buf)), "/x.sock");
}
END_TEST

static char dir[64];
static char path[256];
static struct pool_conf pc;

static void
setup_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_sock.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/p.sock", dir);
	memset(&pc, 0, sizeof(pc));
	pc.name = "t";
	pc.listen = path;
	pc.listen_mode = 0640;
	pc.listen_backlog = 16;
}

static void
teardown_dir(void)
{
	unlink(path);
	rmdir(dir);
}

START_TEST(unix_socket_gets_mode_and_is_removed_on_close)
{
	struct listen_sock ls;
	struct stat st;

	ck_assert_int_eq(sock_open(&ls, &pc), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	sock_close(&ls);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(live_unix_socket_is_not_stolen)
{
	struct listen_sock first, second;

	ck_assert_int_eq(sock_open(&first, &pc), 0);
	ck_assert_int_eq(sock_open(&second, &pc), -1);
	/* the refused attempt left the live socket's file alone */
	ck_assert_int_eq(access(path, F_OK), 0);
	sock_close(&first);
}
END_TEST

START_TEST(stale_unix_socket_is_replaced)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listen_sock ls;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	/* a socket file nobody listens on: what a crashed master leaves */
	strcpy(sun.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ck_assert_int_eq(sock_open(&ls, &pc), 0);
	sock_close(&ls);
}
END_TEST

START_TEST(regular_file_in_the_way_is_not_removed)
{
	struct listen_sock ls;
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(sock_open(&ls, &pc), -1);
	ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(unix_listen_queue_counts_waiting_connections)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listen_sock ls;
	unsigned len = 99, max = 0;
	int c[3];

	ck_assert_int_eq(sock_open(&ls, &pc), 0);
	ck_assert_int_eq(sock_queue(&ls, &len, &max), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(max, 16);
	strcpy(sun.sun_path, path);
	for (int i = 0; i < 3; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_eq(connect(c[i], (struct sockaddr *)&sun, sizeof(sun)), 0);
	}
	ck_assert_int_eq(sock_queue(&ls, &len, &max), 0);
	ck_assert_uint_eq(len, 3);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	sock_close(&ls);
}
END_TEST

START_TEST(tcp_listen_queue_is_readable)
{
	struct listen_sock ls;
	unsigned len = 99, max = 0;

	pc.listen = "127.0.0.1:0";	/* refused: port 0 */
	ck_assert_int_eq(sock_open(&ls, &pc), -1);
	for (unsigned port = 19300; port < 19400; port++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
		pc.listen = addr;
		if (sock_open(&ls, &pc) == 0)
			break;
	}
	ck_assert_int_ne(ls.fd, -1);
	ck_assert_int_eq(sock_queue(&ls, &len, &max), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(max, 16);
	sock_close(&ls);
}
END_TEST

static Suite *
sock_suite(void)
{
	Suite *s = suite_create("sock");
	TCase *tc = tcase_create("parse");
	TCase *tf = tcase_create("open");

	tcase_add_test(tc, parse_unix_path);
	tcase_add_test(tc, parse_unix_path_too_long_is_refused);
	tcase_add_test(tc, parse_ipv4_host_port);
	tcase_add_test(tc, parse_hostname_is_resolved_later);
	tcase_add_test(tc, parse_ipv6_in_brackets);
	tcase_add_test(tc, parse_any_address_forms);
	tcase_add_test(tc, parse_bad_addresses_are_refused);
	tcase_add_test(tc, name_formats_like_the_config);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tf, setup_dir, teardown_dir);
	tcase_add_test(tf, unix_socket_gets_mode_and_is_removed_on_close);
	tcase_add_test(tf, live_unix_socket_is_not_stolen);
	tcase_add_test(tf, stale_unix_socket_is_replaced);
	tcase_add_test(tf, regular_file_in_the_way_is_not_removed);
	tcase_add_test(tf, unix_listen_queue_counts_waiting_connections);
	tcase_add_test(tf, tcp_listen_queue_is_readable);
	suite_add_tcase(s, tf);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sock_suite());
	int failed;

	/* sock.c logs its refusals; keep them out of the TAP stream */
	log_set_level(LOG_LVL_ERROR);
	log_open("/dev/null");
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
