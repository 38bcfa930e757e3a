"""The listening sockets the master owns: `$pool` in listen, unix socket
mode, a TCP pool behind nginx, stale socket files, and a second master
that must not steal a running one's socket."""
import os
import socket
import stat

import harness
from harness import FcgiPm, Pool, Raw, get, hello_pool, free_port


class Sockets(harness.TestCase):

    def test_dollar_pool_expands_in_listen(self):
        pool = hello_pool(listen=os.path.join(self.tmp, "$pool.sock"))
        pm = self.fcgi_pm([pool], start=False)
        pm.pools["hello"].listen = os.path.join(self.tmp, "hello.sock")   # what to wait for
        pm.start()
        self.assertTrue(stat.S_ISSOCK(os.stat(os.path.join(self.tmp, "hello.sock")).st_mode))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "$pool.sock")))

    def test_unix_socket_gets_listen_mode(self):
        pm = self.fcgi_pm([hello_pool("a"), hello_pool("b", listen_mode=Raw("0600"))])
        self.assertEqual(stat.S_IMODE(os.stat(pm.socket("a")).st_mode), 0o660)
        self.assertEqual(stat.S_IMODE(os.stat(pm.socket("b")).st_mode), 0o600)

    def test_unix_socket_gets_listen_owner_and_group(self):
        if not harness.IS_ROOT:
            self.skipTest("needs root to give the socket away")
        import pwd
        import grp
        nobody = pwd.getpwnam("nobody")
        nogroup = grp.getgrnam("nogroup")
        pm = self.fcgi_pm([hello_pool(listen_owner="nobody", listen_group="nogroup")])
        st = os.stat(pm.socket("hello"))
        self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nogroup.gr_gid))

    def test_tcp_pool_behind_nginx(self):
        port = free_port()
        pm = self.fcgi_pm([hello_pool(listen="127.0.0.1:%d" % port)])
        ng = self.nginx()
        site = ng.add_site(("127.0.0.1", port))
        ng.start()
        r = harness.wait_http(site.port, "/tcp?x=1")
        self.assertEqual(r.json()["QUERY_STRING"], "x=1")

    def test_stale_socket_file_is_replaced(self):
        path = os.path.join(self.tmp, "hello.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()                           # a leftover of a crashed master
        pm = self.fcgi_pm([hello_pool(listen=path)])
        ng = self.nginx()
        site = ng.add_site(pm.socket("hello"))
        ng.start()
        harness.wait_http(site.port, "/")

    def test_second_master_does_not_steal_a_live_socket(self):
        first = self.fcgi_pm([hello_pool()])
        ino = os.stat(first.socket("hello")).st_ino
        other = os.path.join(self.tmp, "second")
        os.mkdir(other)
        second = FcgiPm(other, [hello_pool(listen=first.socket("hello"))])
        self._own(second)
        second.start(wait=False)
        rc = second.wait(15)
        self.assertIsNotNone(rc, "second master kept running on a busy socket")
        self.assertNotEqual(rc, 0)
        self.assertTrue(first.proc.running())
        self.assertEqual(os.stat(first.socket("hello")).st_ino, ino, "socket file replaced")
        ng = self.nginx()
        site = ng.add_site(first.socket("hello"))
        ng.start()
        harness.wait_http(site.port, "/")


if __name__ == "__main__":
    harness.main()
