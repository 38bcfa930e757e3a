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


def start(cls, mount):
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
            ('ProxyPass / "unix:/run/fcgi-pm/mysite.sock|fcgi://localhost/"',
             'ProxyPass %s/ "unix:%s|fcgi://localhost/"' % (mount, sock))])
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


if __name__ == "__main__":
    harness.main()
