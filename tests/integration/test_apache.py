"""Apache httpd (apache2 -f OUR.conf -DFOREGROUND, modules from
/usr/lib/apache2/modules) with mod_proxy_fcgi in front of the Django test
site (tests/apps/webserver_site), through etc/apache/django-site.conf,
mounted at "/" and at "/app" (the pool's script_name)."""
import os

import harness
from harness import Raw
import wscommon
from wscommon import ETC, STATIC_DIR

SNIPPET = os.path.join(ETC, "apache", "django-site.conf")


def start(cls, mount, reuse=True):
    cls.tmp = harness.make_tmpdir("apache")
    opts = {}
    if mount:
        opts["script_name"] = mount
    if harness.IS_ROOT:
        # apache2's children run as www-data (as the snippet says)
        opts.update(listen_owner="www-data", listen_mode=Raw("0660"))
    cls.pm = harness.FcgiPm(cls.tmp, [wscommon.mysite_pool(**opts)]).start()
    sock = cls.pm.socket("mysite")

    def snippet(port):
        return wscommon.render(SNIPPET, [
            ("<VirtualHost *:80>", "<VirtualHost 127.0.0.1:%d>" % port),
            ("/srv/mysite/static/", STATIC_DIR + "/", 2),
            ('ProxyPass / "unix:/run/fcgi-pm/mysite.sock|fcgi://localhost/" enablereuse=on',
             'ProxyPass %s/ "unix:%s|fcgi://localhost/"%s'
             % (mount, sock, " enablereuse=on" if reuse else ""))])
    cls.ws = wscommon.Apache(cls.tmp, snippet).start()
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


class WithoutEnablereuse(wscommon.ClassCase):
    """The snippet without enablereuse=on: Apache opens a connection per
    request and does not set FCGI_KEEP_CONN.  It streams the body and sends
    the closing empty STDIN record last; the worker must not close the
    connection before it arrived (Apache then answers 503 "Error dispatching
    request ... (sending empty stdin)" although the app answered)."""

    @classmethod
    def setUpClass(cls):
        start(cls, "", reuse=False)

    def test_uploads_answered(self):
        statuses = []
        for i in range(20):
            body = os.urandom(wscommon.MB10 if i % 2 else 1024 * 1024)
            r = harness.post(self.port, "/upload/", body, timeout=60)
            statuses.append(r.status)
            if r.status == 200:
                self.assertEqual(r.json()["size"], len(body))
        self.assertEqual(statuses, [200] * 20)

    def test_get_and_post_form(self):
        for i in range(20):
            r = harness.post_form(self.port, "/echo/f%d" % i, {"a": str(i)})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["post"], {"a": [str(i)]})


if __name__ == "__main__":
    harness.main()
