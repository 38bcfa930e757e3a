"""lighttpd in front of the Django test site (tests/apps/webserver_site):
mod_fastcgi to an fcgi-pm pool socket (etc/lighttpd/django-site.conf) and
lighttpd spawning fcgi-pm-worker itself (etc/lighttpd/django-site-bin-path.conf),
each mounted at "/" and at "/app"."""
import os

import harness
import wscommon
from wscommon import ETC, STATIC_DIR, SITE_ROOT

SOCKET_SNIPPET = os.path.join(ETC, "lighttpd", "django-site.conf")
BIN_PATH_SNIPPET = os.path.join(ETC, "lighttpd", "django-site-bin-path.conf")


def start_socket_mode(cls, mount):
    cls.tmp = harness.make_tmpdir("lighttpd")
    cls.pm = harness.FcgiPm(cls.tmp, [wscommon.mysite_pool()]).start()
    sock = cls.pm.socket("mysite")

    def snippet(port):
        return wscommon.render(SOCKET_SNIPPET, [
            ('"/run/fcgi-pm/mysite.sock"', '"%s"' % sock),
            ('"/srv/mysite/static/"', '"%s/"' % STATIC_DIR),
            ('"/" => ((', '"%s" => ((' % (mount or "/"))])
    cls.ws = wscommon.Lighttpd(cls.tmp, snippet).start()
    cls.port = cls.ws.port
    cls.prefix = mount
    harness.wait_http(cls.port, mount + "/echo/ready")


class NoPool:
    """Stands in for cls.pm when no fcgi-pm runs: the worker's log."""

    def __init__(self, path):
        self.path = path

    def log(self):
        return harness.tail(self.path, 100000)


def start_bin_path_mode(cls, mount):
    cls.tmp = harness.make_tmpdir("lighttpd-bin")
    sock = os.path.join(cls.tmp, "mysite.sock")

    def snippet(port):
        return wscommon.render(BIN_PATH_SNIPPET, [
            ("/usr/sbin/fcgi-pm-worker", harness.FCGI_PM_WORKER),
            ("--python-path /srv/mysite --chdir /srv/mysite",
             "--python-path %s --chdir %s" % (SITE_ROOT, SITE_ROOT)),
            ('"/run/lighttpd/mysite.sock"', '"%s"' % sock),
            ('"/srv/mysite/static/"', '"%s/"' % STATIC_DIR),
            ('"/" => ((', '"%s" => ((' % (mount or "/"))])
    cls.ws = wscommon.Lighttpd(cls.tmp, snippet).start()
    cls.pm = NoPool(cls.ws.error_log)
    cls.port = cls.ws.port
    cls.prefix = mount
    harness.wait_http(cls.port, mount + "/echo/ready")


class SocketAtRoot(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_socket_mode(cls, "")


class SocketUnderApp(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_socket_mode(cls, "/app")


class BinPathAtRoot(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_bin_path_mode(cls, "")

    def test_lighttpd_spawned_the_workers(self):
        kids = harness.children_of(self.ws.proc.pid)
        workers = [pid for pid, argv in kids if argv and argv[0] == harness.FCGI_PM_WORKER]
        self.assertEqual(len(workers), 2, kids)
        pids = {self.echo("/echo/p%d" % i)["pid"] for i in range(20)}
        self.assertTrue(pids <= set(workers), (pids, workers))


class BinPathUnderApp(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start_bin_path_mode(cls, "/app")


if __name__ == "__main__":
    harness.main()
