"""nginx in front of the Django test site (tests/apps/webserver_site):
  - etc/nginx/django-site.conf, fastcgi_pass to the pool's unix socket,
    at "/" and at "/app" (the pool's script_name);
  - etc/nginx/django-site-upstream.conf, an upstream of two pools on TCP
    (loopback) with keepalive and fastcgi_keep_conn on, at "/" and at "/app"
    (nginx's own fastcgi_split_path_info): connections are reused."""
import os
import time

import harness
from harness import concurrent
import wscommon
from wscommon import STATIC_DIR

render_upstream = wscommon.render_upstream


def start_unix(cls, mount):
    cls.tmp = harness.make_tmpdir("nginx-unix")
    opts = {"script_name": mount} if mount else {}
    cls.pm = harness.FcgiPm(cls.tmp, [wscommon.mysite_pool(**opts)]).start()
    cls.ng = harness.Nginx(cls.tmp)
    site = cls.ng.add_site(cls.pm.socket("mysite"), static_dir=STATIC_DIR)
    cls.ng.start()
    cls.port = site.port
    cls.prefix = mount
    harness.wait_http(cls.port, mount + "/echo/ready")


def start_tcp(cls, mount):
    cls.tmp = harness.make_tmpdir("nginx-tcp")
    cls.pool_ports = [harness.free_port(), harness.free_port()]
    pools = [wscommon.mysite_pool("mysite%d" % i, listen="127.0.0.1:%d" % p,
                                  env={"MYSITE_HOST_TAG": "pool%d" % i})
             for i, p in enumerate(cls.pool_ports)]
    cls.pm = harness.FcgiPm(cls.tmp, pools).start()
    cls.ng = wscommon.NginxText(cls.tmp)
    site = cls.ng.add_text_site(lambda port: render_upstream(
        port, ["127.0.0.1:%d" % p for p in cls.pool_ports], mount))
    cls.ng.start()
    cls.port = site.port
    cls.prefix = mount
    harness.wait_http(cls.port, mount + "/echo/ready")


class UnixAtRoot(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_unix(cls, "")


class UnixUnderAppScriptName(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_unix(cls, "/app")


class KeepAliveChecks:
    def conns(self):
        out = set()
        for p in self.pool_ports:
            out |= {(p,) + c for c in wscommon.tcp_conns(p)}
        return out

    def test_both_pools_serve(self):
        tags = {self.echo(self.prefix + "/echo/t%d" % i)["host_tag"] for i in range(8)}
        self.assertEqual(tags, {"pool0", "pool1"})

    def test_connections_are_kept_and_reused(self):
        for i in range(4):
            self.echo(self.prefix + "/echo/warm%d" % i)
        before = self.conns()
        self.assertTrue(before, "no FastCGI connection kept open after the requests")
        for i in range(20):
            self.echo(self.prefix + "/echo/k%d" % i)
        time.sleep(0.2)
        after = self.conns()
        # sequential requests from one nginx worker: the same connections,
        # at most `keepalive 8` of them (worker_processes 1)
        self.assertEqual(before, after)
        self.assertLessEqual(len(after), 8, after)

    def test_kept_connections_do_not_pin_threads(self):
        # 16 at once: nginx opens more connections than the pools have
        # threads (2 x 2 each) and keeps 8 idle; the next requests must
        # still be served promptly.
        res = concurrent(lambda i: self.req("GET", self.prefix + "/echo/b%d" % i, timeout=20),
                         [(i,) for i in range(32)], threads=16)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        t0 = time.monotonic()
        for i in range(10):
            self.echo(self.prefix + "/echo/after%d" % i, timeout=10)
        self.assertLess(time.monotonic() - t0, 5)


class TcpKeepAliveAtRoot(KeepAliveChecks, wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_tcp(cls, "")


class TcpKeepAliveUnderApp(KeepAliveChecks, wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_tcp(cls, "/app")


if __name__ == "__main__":
    harness.main()
