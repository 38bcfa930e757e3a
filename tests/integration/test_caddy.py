"""Caddy 2 (reverse_proxy with the fastcgi transport) in front of the Django
test site (tests/apps/webserver_site), through etc/caddy/django-site.caddy,
mounted at "/" and at "/app"."""
import os

import harness
import wscommon
from wscommon import ETC, STATIC_DIR

SNIPPET = os.path.join(ETC, "caddy", "django-site.caddy")


def start(cls, mount):
    cls.tmp = harness.make_tmpdir("caddy")
    cls.pm = harness.FcgiPm(cls.tmp, [wscommon.mysite_pool()]).start()
    sock = cls.pm.socket("mysite")

    def snippet(port):
        reps = [("mysite.example.com {", "http://127.0.0.1:%d {\n\tbind 127.0.0.1" % port),
                ("root * /srv/mysite/static", "root * %s" % STATIC_DIR),
                ("reverse_proxy unix//run/fcgi-pm/mysite.sock {",
                 "reverse_proxy unix/%s {" % sock)]
        if mount:
            reps += [("\thandle {", "\thandle_path %s/* {" % mount),
                     ('env SCRIPT_NAME ""', 'env SCRIPT_NAME "%s"' % mount)]
        return wscommon.render(SNIPPET, reps)
    cls.ws = wscommon.Caddy(cls.tmp, snippet).start()
    cls.port = cls.ws.port
    cls.prefix = mount
    harness.wait_http(cls.port, mount + "/echo/ready")


class AtRoot(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start(cls, "")


class UnderApp(wscommon.SiteChecks, wscommon.ClassCase):
    @classmethod
    def setUpClass(cls):
        start(cls, "/app")


class RepeatedUploads(wscommon.ClassCase):
    """Caddy's fastcgi transport opens a connection per request (no
    FCGI_KEEP_CONN) and writes the closing empty STDIN record after the
    body; the worker must not close the connection before it arrived
    (Caddy then answers 502 "write unix ...: broken pipe")."""

    @classmethod
    def setUpClass(cls):
        start(cls, "")

    def test_uploads_answered(self):
        statuses = []
        for i in range(40):
            body = os.urandom(1024 * 1024 if i % 4 else wscommon.MB10)
            r = harness.post(self.port, "/upload/", body, timeout=60)
            statuses.append(r.status)
        self.assertEqual(statuses, [200] * 40)


if __name__ == "__main__":
    harness.main()
