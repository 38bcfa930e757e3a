"""wscommon - what the web-server tests share (test_nginx.py, test_lighttpd.py,
test_apache.py, test_caddy.py, test_scaleout.py).

  - the test Django site tests/apps/webserver_site (package `mysite`) as a pool;
  - render(): an etc/ snippet with documented placeholder values replaced,
    each found exactly the expected number of times, so the file users copy
    is the file that is tested;
  - WebServer: a private lighttpd / apache2 / caddy (own config, logs and pid
    file in the test's temp dir, loopback ports), stopped by PID;
  - SiteChecks: the same battery for every server and mount point: GET,
    POST form, 10 MB upload (raw and multipart), 10 MB download, SCRIPT_NAME /
    PATH_INFO / reverse(), static files served by the web server.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import unittest
import urllib.parse

import harness
from harness import HarnessError, Pool, Proc, get, http, post, post_form, concurrent

SITE_ROOT = os.path.join(harness.APPS, "webserver_site")
STATIC_DIR = os.path.join(SITE_ROOT, "mysite", "static")
ETC = os.path.join(harness.SRC, "etc")
MB10 = 10 * 1024 * 1024

sys.path.insert(0, SITE_ROOT)
from mysite import data as site_data      # noqa: E402  (pure Python, no Django)

_DIGEST_CACHE = {}


def download_digest(size):
    if size not in _DIGEST_CACHE:
        _DIGEST_CACHE[size] = site_data.digest(size)
    return _DIGEST_CACHE[size]


def mysite_pool(name="mysite", **kw):
    """A pool serving tests/apps/webserver_site (Django, mysite.settings)."""
    env = {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    env.update(kw.pop("env", {}))
    kw.setdefault("max_children", 2)
    kw.setdefault("threads", 2)
    return Pool(name, "mysite.wsgi:application", python_path=[SITE_ROOT], chdir=SITE_ROOT,
                env=env, **kw)


def render(path, replacements):
    """The text of PATH with each (old, new[, count]) replaced; OLD must occur
    exactly COUNT (default 1) times, or the snippet drifted from the test."""
    with open(path) as f:
        text = f.read()
    for rep in replacements:
        old, new = rep[0], rep[1]
        count = rep[2] if len(rep) > 2 else 1
        n = text.count(old)
        if n != count:
            raise HarnessError("%s: expected %d x %r, found %d" % (path, count, old, n))
        text = text.replace(old, new)
    return text


def which(name, *extra):
    p = shutil.which(name)
    if p:
        return p
    for e in extra:
        if os.access(e, os.X_OK):
            return e
    return None


def tcp_conns(port, host="127.0.0.1"):
    """Established TCP connections to HOST:PORT in this network namespace,
    as a set of the client ends' (ip, port), from /proc/net/tcp."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, st = fields[1], fields[2], fields[3]
            if st == "01" and remote == want:
                ip_hex, port_hex = local.split(":")
                ip = ".".join(str(int(ip_hex[i:i + 2], 16)) for i in (6, 4, 2, 0))
                out.add((ip, int(port_hex, 16)))
    return out


UPSTREAM_SNIPPET = os.path.join(ETC, "nginx", "django-site-upstream.conf")


def render_upstream(port, servers, mount="", listen_host="127.0.0.1"):
    """etc/nginx/django-site-upstream.conf for the app servers SERVERS
    (two "host:port"), nginx listening on LISTEN_HOST:PORT, the site at
    MOUNT ("" or "/app")."""
    reps = [("server 10.0.0.11:9001 ", "server %s " % servers[0]),
            ("server 10.0.0.12:9001 ", "server %s " % servers[1]),
            ("listen 127.0.0.1:8080;", "listen %s:%d;" % (listen_host, port)),
            ("alias /srv/mysite/static/;", "alias %s/;" % STATIC_DIR)]
    if mount:
        reps += [("    location / {", "    location %s/ {" % mount),
                 ("fastcgi_split_path_info ^()(.*)$;",
                  "fastcgi_split_path_info ^(%s)(/.*)$;" % mount)]
    return render(UPSTREAM_SNIPPET, reps)


# --------------------------------------------------------- web servers

class WebServer:
    """A web server we start in the foreground with our own config in
    TMP/NAME/, ready when every port in PORTS accepts.  Subclasses write
    the config (write_config) and give the command line (argv)."""

    name = "server"
    binary = None

    def __init__(self, tmp, ports=1):
        self.tmp = tmp
        self.dir = os.path.join(tmp, self.name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.ports = [harness.free_port() for _ in range(ports)]
        self.proc = None
        self.error_log = os.path.join(self.dir, "error.log")
        self.stdout_log = os.path.join(self.dir, "stdout.log")

    @property
    def port(self):
        return self.ports[0]

    def env(self):
        return None

    def start(self, timeout=20, attempts=3):
        if self.binary is None or not os.access(self.binary, os.X_OK):
            raise unittest.SkipTest("%s is not installed" % self.name)
        for attempt in range(attempts):
            self.write_config()
            self.proc = Proc(self.argv(), self.stdout_log, self.name, env=self.env(),
                             cwd=self.dir)
            harness._unregister(self.proc)
            harness._register(self)
            try:
                harness.wait_until(self._ready, timeout, what="%s to listen" % self.name)
                return self
            except HarnessError:
                text = harness.tail(self.error_log) + "\n" + harness.tail(self.stdout_log)
                self.stop()
                if ("in use" in text or "EADDRINUSE" in text) and attempt + 1 < attempts:
                    self.ports = [harness.free_port() for _ in self.ports]
                    continue
                raise HarnessError("%s did not start:\n%s" % (self.name, text))
        raise HarnessError("%s: no free port" % self.name)

    def _ready(self):
        if not self.proc.running():
            raise HarnessError("%s exited" % self.name)
        return all(harness.can_connect(("127.0.0.1", p)) for p in self.ports)

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, 10)
        harness._unregister(self)

    def cleanup(self):
        self.stop()

    def logs(self):
        return [("%s error log" % self.name, self.error_log),
                ("%s output" % self.name, self.stdout_log)]


class Lighttpd(WebServer):
    """lighttpd -D -f TMP/lighttpd/lighttpd.conf: a main config of our own
    (port, pid file, logs, upload dir) that includes SNIPPET_TEXT."""

    name = "lighttpd"
    binary = which("lighttpd", "/usr/sbin/lighttpd")

    def __init__(self, tmp, snippet_text_fn):
        super().__init__(tmp)
        self.snippet_text_fn = snippet_text_fn      # port -> text
        self.conf = os.path.join(self.dir, "lighttpd.conf")

    def write_config(self):
        docroot = os.path.join(self.dir, "htdocs")
        uploads = os.path.join(self.dir, "uploads")
        for d in (docroot, uploads):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(self.dir, "site.conf"), "w") as f:
            f.write(self.snippet_text_fn(self.port))
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/wscommon.py\n")
            f.write('server.modules = ( "mod_access", "mod_accesslog" )\n')
            f.write('server.bind = "127.0.0.1"\n')
            f.write('server.port = %d\n' % self.port)
            f.write('server.document-root = "%s"\n' % docroot)
            f.write('server.pid-file = "%s"\n' % os.path.join(self.dir, "lighttpd.pid"))
            f.write('server.errorlog = "%s"\n' % self.error_log)
            f.write('accesslog.filename = "%s"\n' % os.path.join(self.dir, "access.log"))
            f.write('server.upload-dirs = ( "%s" )\n' % uploads)
            f.write('mimetype.assign = ( ".css" => "text/css", ".json" => "application/json" )\n')
            f.write('include "site.conf"\n')

    def argv(self):
        return [self.binary, "-D", "-f", self.conf]


APACHE_MODULES = "/usr/lib/apache2/modules"


class Apache(WebServer):
    """apache2 -f TMP/apache/httpd.conf -DFOREGROUND: our own main config
    (mpm_event, the modules a site needs from /usr/lib/apache2/modules,
    Listen on a loopback port) that includes SNIPPET_TEXT."""

    name = "apache"
    binary = which("apache2", "/usr/sbin/apache2")
    modules = ("mpm_event", "authz_core", "alias", "mime", "proxy", "proxy_fcgi")

    def __init__(self, tmp, snippet_text_fn):
        super().__init__(tmp)
        self.snippet_text_fn = snippet_text_fn
        self.conf = os.path.join(self.dir, "httpd.conf")

    def env(self):
        e = dict(os.environ)
        # what /etc/apache2/envvars would set; our config names every path
        e.update({"APACHE_RUN_DIR": self.dir, "APACHE_LOCK_DIR": self.dir,
                  "APACHE_LOG_DIR": self.dir, "APACHE_PID_FILE": os.path.join(self.dir, "pid")})
        return e

    def write_config(self):
        with open(os.path.join(self.dir, "site.conf"), "w") as f:
            f.write(self.snippet_text_fn(self.port))
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/wscommon.py\n")
            f.write('ServerRoot "%s"\n' % self.dir)
            f.write("ServerName localhost\n")
            for m in self.modules:
                f.write("LoadModule %s_module %s/mod_%s.so\n" % (m, APACHE_MODULES, m))
            f.write("Listen 127.0.0.1:%d\n" % self.port)
            f.write('PidFile "%s"\n' % os.path.join(self.dir, "httpd.pid"))
            f.write('DefaultRuntimeDir "%s"\n' % self.dir)
            f.write('Mutex file:%s default\n' % self.dir)
            f.write('ErrorLog "%s"\n' % self.error_log)
            f.write("LogLevel info\n")
            f.write('LogFormat "%h %l %u %t \\"%r\\" %>s %b" common\n')
            f.write('CustomLog "%s" common\n' % os.path.join(self.dir, "access.log"))
            if harness.IS_ROOT:
                # apache2 never serves as root: its children run as www-data
                f.write("User www-data\nGroup www-data\n")
            f.write("StartServers 1\nServerLimit 1\nThreadsPerChild 16\nMaxRequestWorkers 16\n")
            f.write('TypesConfig /etc/mime.types\n' if os.path.exists("/etc/mime.types") else "")
            f.write('<Directory />\n  Require all denied\n</Directory>\n')
            f.write('Include "%s"\n' % os.path.join(self.dir, "site.conf"))

    def argv(self):
        return [self.binary, "-f", self.conf, "-DFOREGROUND"]

    def stop(self):
        # apache2 -DFOREGROUND: TERM stops the parent and its children
        super().stop()


class Caddy(WebServer):
    """caddy run with a Caddyfile of our own (admin endpoint off, data and
    config dirs in the temp dir) that imports SNIPPET_TEXT."""

    name = "caddy"
    binary = which("caddy", "/usr/bin/caddy")

    def __init__(self, tmp, snippet_text_fn):
        super().__init__(tmp)
        self.snippet_text_fn = snippet_text_fn
        self.conf = os.path.join(self.dir, "Caddyfile")
        self.error_log = self.stdout_log

    def env(self):
        e = dict(os.environ)
        e.update({"HOME": self.dir, "XDG_DATA_HOME": os.path.join(self.dir, "data"),
                  "XDG_CONFIG_HOME": os.path.join(self.dir, "config")})
        return e

    def write_config(self):
        with open(os.path.join(self.dir, "site.caddy"), "w") as f:
            f.write(self.snippet_text_fn(self.port))
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/wscommon.py\n")
            f.write("{\n  admin off\n  auto_https off\n"
                    "  storage file_system %s\n}\n" % os.path.join(self.dir, "storage"))
            f.write("import %s\n" % os.path.join(self.dir, "site.caddy"))

    def argv(self):
        return [self.binary, "run", "--config", self.conf, "--adapter", "caddyfile"]

    def logs(self):
        return [("caddy output", self.stdout_log)]


class NginxText(harness.Nginx):
    """harness.Nginx whose sites are server blocks rendered by a function of
    the port (for snippets other than etc/nginx/django-site.conf)."""

    def add_text_site(self, text_fn):
        s = harness.Site(None, None, None, harness.free_port())
        s.text_fn = text_fn
        self.sites.append(s)
        return s

    def write_config(self):
        sites, self.sites = self.sites, []
        try:
            harness.Nginx.write_config(self)        # the main file, no site
        finally:
            self.sites = sites
        with open(self.conf) as f:
            text = f.read().rstrip()
        assert text.endswith("}")
        lines = [text[:-1]]
        for i, s in enumerate(self.sites):
            with open(os.path.join(self.prefix, "site%d.conf" % i), "w") as f:
                f.write(s.text_fn(s.port))
            lines.append("  include site%d.conf;" % i)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n}\n")


# --------------------------------------------------------------- checks

def multipart(fields, files):
    """(body, content type) of a multipart/form-data request."""
    boundary = "fcgipm-%s" % os.urandom(8).hex()
    out = []
    for k, v in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" %
                    (boundary, k)).encode() + v.encode("utf-8") + b"\r\n")
    for k, fname, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (boundary, k, fname))
                   .encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=%s" % boundary


class SiteChecks:
    """Mixin for a harness.TestCase class whose setUpClass sets:
      cls.port    the web server's port (loopback)
      cls.prefix  the mount point: "" (site at /) or "/app"
      cls.pm      the FcgiPm (its log must not show static requests)
    and optionally cls.host (default 127.0.0.1), cls.static (False: the
    snippet serves no static files)."""

    host = "127.0.0.1"
    prefix = ""
    static = True

    def req(self, method, path, body=None, headers=None, timeout=60):
        return http(method, self.port, path, body=body, headers=headers, timeout=timeout,
                    host=self.host)

    def echo(self, path, **kw):
        r = self.req("GET", path, **kw)
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers.get("content-type", ""), r)
        return r.json()

    def test_get_script_name_path_info(self):
        p = self.prefix
        info = self.echo(p + "/echo/a/b?x=1&y=%C3%A9&x=2")
        self.assertEqual(info["method"], "GET")
        self.assertEqual(info["script_name"], p, info)
        self.assertEqual(info["path_info"], "/echo/a/b", info)
        self.assertEqual(info["path"], p + "/echo/a/b", info)
        self.assertEqual(info["rest"], "a/b")
        self.assertEqual(info["reverse"], p + "/echo/x", info)
        self.assertEqual(info["get"], {"x": ["1", "2"], "y": ["\u00e9"]}, info)
        self.assertTrue(info["absolute_uri"].endswith(p + "/echo/a/b?x=1&y=%C3%A9&x=2"), info)

    def test_get_percent_encoded_path(self):
        p = self.prefix
        info = self.echo(p + "/echo/a%20b/%C3%A9t%C3%A9")
        self.assertEqual(info["script_name"], p, info)
        self.assertEqual(info["rest"], "a b/\u00e9t\u00e9", info)
        self.assertEqual(info["path"], p + "/echo/a b/\u00e9t\u00e9", info)

    def test_mount_point_itself(self):
        # Django answers at SCRIPT_NAME + "/" (no route: its own 404 page)
        p = self.prefix
        r = self.req("GET", p + "/")
        self.assertEqual(r.status, 404, r)
        self.assertIn("text/html", r.headers.get("content-type", ""), r)

    def test_post_form(self):
        fields = [("name", "Zo\u00eb"), ("tags", "a"), ("tags", "b & c"), ("empty", "")]
        r = self.req("POST", self.prefix + "/echo/form?q=1",
                     body=urllib.parse.urlencode(fields).encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        info = r.json()
        self.assertEqual(info["method"], "POST")
        self.assertEqual(info["path_info"], "/echo/form")
        self.assertEqual(info["get"], {"q": ["1"]})
        self.assertEqual(info["post"], {"name": ["Zo\u00eb"], "tags": ["a", "b & c"],
                                        "empty": [""]}, info)

    def test_upload_10mb_raw(self):
        body = os.urandom(MB10)
        r = self.req("POST", self.prefix + "/upload/", body=body,
                     headers={"Content-Type": "application/octet-stream"}, timeout=120)
        self.assertEqual(r.status, 200, r)
        info = r.json()
        self.assertEqual(info["kind"], "raw")
        self.assertEqual(info["size"], MB10, info)
        self.assertEqual(info["sha256"], hashlib.sha256(body).hexdigest())

    def test_upload_10mb_multipart(self):
        data = os.urandom(MB10)
        body, ctype = multipart([("title", "caf\u00e9")], [("file", "blob.bin", data)])
        r = self.req("POST", self.prefix + "/upload/", body=body,
                     headers={"Content-Type": ctype}, timeout=120)
        self.assertEqual(r.status, 200, r)
        info = r.json()
        self.assertEqual(info["kind"], "multipart", info)
        self.assertEqual(info["name"], "blob.bin")
        self.assertEqual(info["size"], MB10, info)
        self.assertEqual(info["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(info["post"], {"title": ["caf\u00e9"]})

    def test_download_10mb(self):
        r = self.req("GET", self.prefix + "/download/", timeout=120)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.body), MB10)
        want = download_digest(MB10)
        self.assertEqual(r.headers.get("x-sha256"), want)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), want)

    def test_concurrent_gets(self):
        res = concurrent(lambda i: self.req("GET", self.prefix + "/echo/c%d" % i, timeout=30),
                         [(i,) for i in range(24)], threads=6)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        self.assertEqual(sorted(r.json()["rest"] for r in res),
                         sorted("c%d" % i for i in range(24)))

    def test_static_file_from_web_server(self):
        if not self.static:
            self.skipTest("this snippet serves no static files")
        r = self.req("GET", "/static/mysite/style.css")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"served by the web server", r.body)
        self.assertNotIn("/static/", self.pm.log())


class ClassCase(harness.TestCase):
    """A TestCase whose fixtures are class-wide (setUpClass): no per-test
    temp dir; everything is stopped after the class."""

    def setUp(self):
        pass

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()
