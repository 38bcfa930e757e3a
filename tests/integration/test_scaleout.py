"""Scale-out: two "hosts", each running fcgi-pm with the same Django site
(tests/apps/webserver_site) on TCP, behind one nginx whose `upstream` lists
both (etc/nginx/django-site-upstream.conf, verbatim but for addresses).

The hosts are network namespaces on this machine, each joined to a third
namespace, where nginx runs, by a veth pair:

    web ns: nginx on 127.0.0.1:8080     10.N.1.1 --veth-- 10.N.1.2  host1 ns: fcgi-pm, pool on 10.N.1.2:9001
            (+ 10.N.1.3, an intruder)   10.N.2.1 --veth-- 10.N.2.2  host2 ns: fcgi-pm, pool on 10.N.2.2:9001

Every address and port exists only inside these namespaces (unique names
per run, deleted at the end, even on failure); the test talks to them from
threads that entered a namespace (setns), so no traffic leaves them.
Needs root and `ip netns`: skipped otherwise.
"""
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

import harness
from harness import HarnessError, Pool, Proc, Raw
import fcgiclient as fc
import wscommon

IP = shutil.which("ip") or "/usr/sbin/ip"
CLONE_NEWNET = 0x40000000
POOL_PORT = 9001
WEB_PORT = 8080
_libc = ctypes.CDLL(None, use_errno=True)


# ------------------------------------------------------------- namespaces

def ip(*args, check=True):
    p = subprocess.run([IP] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    if check and p.returncode != 0:
        raise HarnessError("ip %s: %s" % (" ".join(args), p.stdout.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def in_netns(ns, fn, *args, timeout=60):
    """FN(*ARGS) on a fresh thread that entered network namespace NS
    (setns affects that thread only); returns its result or raises."""
    out = {}

    def run():
        try:
            fd = os.open("/run/netns/%s" % ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns(%s): %s" % (ns, os.strerror(e)))
            finally:
                os.close(fd)
            out["v"] = fn(*args)
        except BaseException as e:          # handed to the caller
            out["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise HarnessError("in_netns(%s): %r still running after %ss" % (ns, fn, timeout))
    if "e" in out:
        raise out["e"]
    return out.get("v")


class Topology:
    """Three namespaces (web, host1, host2), two veth pairs, addresses.
    cleanup() deletes them; registered with the harness before any process,
    so it runs after every process in them was stopped."""

    def __init__(self):
        if not harness.IS_ROOT:
            raise unittest.SkipTest("needs root (ip netns)")
        if not os.access(IP, os.X_OK):
            raise unittest.SkipTest("no ip(8) (iproute2)")
        tag = "%06x" % random.getrandbits(24)
        self.tag = tag
        self.net = 200 + random.randrange(50)
        self.web = "fcgipm-%s-web" % tag
        self.hosts = ["fcgipm-%s-h1" % tag, "fcgipm-%s-h2" % tag]
        self.created = []
        self.nginx_addr = ["10.%d.%d.1" % (self.net, i + 1) for i in range(2)]
        self.host_addr = ["10.%d.%d.2" % (self.net, i + 1) for i in range(2)]
        self.intruder_addr = "10.%d.1.3" % self.net
        harness._register(self)
        try:
            self._build()
        except HarnessError as e:
            self.cleanup()
            if not self.created:
                raise unittest.SkipTest("ip netns unavailable: %s" % e)
            raise

    def _build(self):
        for ns in [self.web] + self.hosts:
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        for i, host in enumerate(self.hosts):
            a, b = "fpw%s%d" % (self.tag, i), "fph%s%d" % (self.tag, i)
            ip("link", "add", a, "type", "veth", "peer", "name", b)
            try:
                ip("link", "set", a, "netns", self.web)
                ip("link", "set", b, "netns", host)
            except HarnessError:
                ip("link", "del", a, check=False)
                raise
            ip("-n", self.web, "addr", "add", self.nginx_addr[i] + "/24", "dev", a)
            ip("-n", host, "addr", "add", self.host_addr[i] + "/24", "dev", b)
            ip("-n", self.web, "link", "set", a, "up")
            ip("-n", host, "link", "set", b, "up")
        # a second address on the web side of link 1: a client that is not nginx
        ip("-n", self.web, "addr", "add", self.intruder_addr + "/24", "dev", "fpw%s0" % self.tag)
        # wait for the links (and duplicate address detection on v4: none)
        for i, host in enumerate(self.hosts):
            harness.wait_until(lambda: "state UP" in ip("-n", host, "link", "show", "fph%s%d"
                                                        % (self.tag, i)) or
                               "LOWER_UP" in ip("-n", host, "link", "show", "fph%s%d"
                                                % (self.tag, i)),
                               10, what="veth %d up" % i)

    def cleanup(self):
        harness._unregister(self)
        for ns in reversed(self.created):
            ip("netns", "del", ns, check=False)
        self.created = []

    def logs(self):
        return []


class NsFcgiPm(harness.FcgiPm):
    """fcgi-pm started inside namespace NS (`ip netns exec` execs it in
    place, so the PID is fcgi-pm's own)."""

    def __init__(self, ns, *a, **kw):
        self.ns = ns
        super().__init__(*a, **kw)

    def start(self, wait=True, timeout=20):
        self.proc = Proc([IP, "netns", "exec", self.ns, harness.FCGI_PM, "-F", "-c", self.conf],
                         self.log_path, "fcgi-pm")
        harness._unregister(self.proc)
        harness._register(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        def ready():
            if not self.proc.running():
                raise HarnessError("fcgi-pm exited with status %s during start-up:\n%s"
                                   % (self.proc.p.returncode, harness.tail(self.log_path)))
            return all(in_netns(self.ns, harness.can_connect, self.address(n))
                       for n in self.pools)
        harness.wait_until(ready, timeout, interval=0.1, what="fcgi-pm in %s" % self.ns)


class NsNginx(wscommon.NginxText):
    """nginx inside namespace NS, listening on its 127.0.0.1."""

    def __init__(self, ns, tmp):
        self.ns = ns
        super().__init__(tmp)

    def start(self, timeout=15, attempts=1):
        if not os.access(harness.NGINX, os.X_OK):
            raise unittest.SkipTest("nginx is not installed")
        self.write_config()
        self.proc = Proc([IP, "netns", "exec", self.ns, harness.NGINX, "-e", self.error_log,
                          "-p", self.prefix + "/", "-c", self.conf, "-g", "daemon off;"],
                         os.path.join(self.prefix, "stderr.log"), "nginx")
        harness._unregister(self.proc)
        harness._register(self)
        harness.wait_until(self._ready, timeout, interval=0.1, what="nginx in %s" % self.ns)
        return self

    def _ready(self):
        if not self.proc.running():
            raise HarnessError("nginx exited:\n%s" % harness.tail(self.error_log))
        return all(in_netns(self.ns, harness.can_connect, ("127.0.0.1", s.port))
                   for s in self.sites)


# ------------------------------------------------------------ the setup

def build(cls, allowed_clients=True):
    """Namespaces, fcgi-pm on both hosts, nginx in the web namespace."""
    cls.topo = Topology()
    cls.tmp = harness.make_tmpdir("scaleout")
    cls.pms = []
    for i, ns in enumerate(cls.topo.hosts):
        d = os.path.join(cls.tmp, "host%d" % (i + 1))
        os.makedirs(d)
        os.chmod(d, 0o755)
        opts = {}
        if allowed_clients:
            opts["listen_allowed_clients"] = [cls.topo.nginx_addr[i]]
        pool = wscommon.mysite_pool(listen="%s:%d" % (cls.topo.host_addr[i], POOL_PORT),
                                    env={"MYSITE_HOST_TAG": "host%d" % (i + 1)}, **opts)
        cls.pms.append(NsFcgiPm(ns, d, [pool]).start())
    cls.pm = cls.pms[0]
    cls.ng = NsNginx(cls.topo.web, cls.tmp)
    servers = ["%s:%d" % (a, POOL_PORT) for a in cls.topo.host_addr]
    site = cls.ng.add_text_site(lambda port: wscommon.render_upstream(port, servers))
    site.port = WEB_PORT        # inside the web namespace: nobody else there
    cls.ng.start()
    cls.port = WEB_PORT
    wait_ns_http(cls.topo.web, WEB_PORT, "/echo/ready")


def ns_http(ns, method, port, path, body=None, headers=None, timeout=60):
    """harness.http() from inside namespace NS."""
    def conn():
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock = in_netns(ns, conn)
    t0 = time.monotonic()
    import http.client as httpclient
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.sock = sock
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        resp = harness.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                                time.monotonic() - t0)
        resp.header_list = r.getheaders()
        return resp
    finally:
        c.close()


def wait_ns_http(ns, port, path, timeout=30):
    last = [None]

    def ok():
        try:
            r = ns_http(ns, "GET", port, path, timeout=5)
        except OSError as e:
            last[0] = e
            return None
        last[0] = r
        return r.status == 200
    try:
        harness.wait_until(ok, timeout, interval=0.2, what="GET %s in %s" % (path, ns))
    except HarnessError as e:
        raise HarnessError("%s (last: %r)" % (e, last[0]))


def fcgi_probe(src, dst, timeout=5):
    """From source address SRC, one FastCGI GET to DST (host, port).
    Returns ("answered", status line) or ("closed", bytes received before
    the close) or ("refused", errno text)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        try:
            s.connect(dst)
        except OSError as e:
            return ("refused", str(e))
        try:
            fc.request(s, params={"REQUEST_METHOD": "GET", "REQUEST_URI": "/echo/probe",
                                  "SCRIPT_NAME": "", "PATH_INFO": "/echo/probe",
                                  "SERVER_NAME": "probe", "SERVER_PORT": "80",
                                  "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "probe"})
            out = b""
            while True:
                t, rid, c = fc.read_record(s)
                if t == fc.STDOUT:
                    out += c
                if t == fc.END:
                    return ("answered", out.split(b"\r\n", 1)[0].decode("latin-1"))
        except (EOFError, ConnectionError, socket.timeout) as e:
            return ("closed", repr(e))
    finally:
        s.close()


class ScaleOutChecks(wscommon.SiteChecks):
    """The web-server battery, through nginx in the web namespace."""

    def req(self, method, path, body=None, headers=None, timeout=60):
        return ns_http(self.topo.web, method, self.port, path, body=body, headers=headers,
                       timeout=timeout)

    def tags(self, n, path="/echo/t%d"):
        out = []
        for i in range(n):
            r = self.req("GET", path % i, timeout=20)
            self.assertEqual(r.status, 200, r)
            out.append(r.json()["host_tag"])
        return out


class TwoHosts(ScaleOutChecks, wscommon.ClassCase):
    """Both hosts up, each pool with listen_allowed_clients = nginx's address."""

    @classmethod
    def setUpClass(cls):
        build(cls, allowed_clients=True)

    def test_requests_reach_both_hosts(self):
        tags = self.tags(12)
        self.assertEqual(set(tags), {"host1", "host2"}, tags)

    def test_pools_listen_only_inside_their_namespace(self):
        # the addresses do not exist in the root namespace (checked with
        # ip(8), not by connecting: that would leave the machine)
        root = ip("-o", "addr", "show")
        for a in self.topo.host_addr + self.topo.nginx_addr:
            self.assertNotIn(" %s/" % a, root)
        self.assertTrue(in_netns(self.topo.hosts[0], harness.can_connect,
                                 (self.topo.host_addr[0], POOL_PORT)))

    def test_listen_allowed_clients_reaches_the_workers(self):
        # what fcgi-pm does today with the list: FCGI_WEB_SERVER_ADDRS, the
        # FastCGI convention, in every worker's environment
        for i, pm in enumerate(self.pms):
            pids = pm.wait_workers(count=2)
            for pid in pids:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
                self.assertIn(("FCGI_WEB_SERVER_ADDRS=%s" % self.topo.nginx_addr[i]).encode(),
                              env, "worker %d of host%d" % (pid, i + 1))

    def test_allowed_client_is_served_directly(self):
        res = in_netns(self.topo.web, fcgi_probe, self.topo.nginx_addr[0],
                       (self.topo.host_addr[0], POOL_PORT))
        self.assertEqual(res[0], "answered", res)
        self.assertIn("200", res[1])

    def test_listen_allowed_clients_refuses_and_logs_others(self):
        # 10.N.1.3 is on nginx's link but not in host1's listen_allowed_clients:
        # closed at once, nothing served, and host1's log names the peer.
        res = in_netns(self.topo.web, fcgi_probe, self.topo.intruder_addr,
                       (self.topo.host_addr[0], POOL_PORT))
        self.assertNotEqual(res[0], "answered",
                            "a peer not in listen_allowed_clients was served: %r" % (res,))
        self.pms[0].wait_log(r"%s" % self.topo.intruder_addr.replace(".", r"\."), timeout=5)
        # and nginx, which is allowed, still is
        self.assertEqual(self.req("GET", "/echo/after-intruder").status, 200)


class AllowedClientsConfig(harness.TestCase):
    """listen_allowed_clients in the configuration (no namespaces needed)."""

    def write(self, listen, clients):
        pm = harness.FcgiPm(self.tmp, [wscommon.mysite_pool(
            listen=listen, listen_allowed_clients=clients)])
        return pm.conf

    def test_accepted_for_a_tcp_pool(self):
        rc, out = harness.fcgi_pm_check(self.write("127.0.0.1:%d" % harness.free_port(),
                                                   ["127.0.0.1", "10.0.0.10", "::1"]))
        self.assertEqual(rc, 0, out)

    def test_refused_for_a_unix_socket_pool(self):
        rc, out = harness.fcgi_pm_check(self.write(os.path.join(self.tmp, "s.sock"),
                                                   ["127.0.0.1"]))
        self.assertEqual(rc, harness.EX_CONFIG, out)
        self.assertIn("listen_allowed_clients", out)

    def test_not_an_address_is_refused(self):
        rc, out = harness.fcgi_pm_check(self.write("127.0.0.1:%d" % harness.free_port(),
                                                   ["nginx.example.com"]))
        self.assertEqual(rc, harness.EX_CONFIG, out)
        self.assertIn("listen_allowed_clients", out)


class Failover(ScaleOutChecks, wscommon.ClassCase):
    """One host's fcgi-pm stops: nginx fails over to the other."""

    @classmethod
    def setUpClass(cls):
        build(cls, allowed_clients=False)

    # the battery belongs to TwoHosts
    test_download_10mb = test_upload_10mb_raw = test_upload_10mb_multipart = None
    test_get_percent_encoded_path = test_mount_point_itself = None
    test_static_file_from_web_server = test_concurrent_gets = None

    def test_failover_when_one_host_stops(self):
        self.assertEqual(set(self.tags(8)), {"host1", "host2"})
        pid = self.pms[0].pid
        rc = self.pms[0].stop(signal.SIGTERM, timeout=15)       # by PID
        self.assertFalse(harness.pid_alive(pid))
        self.assertFalse(in_netns(self.topo.hosts[0], harness.can_connect,
                                  (self.topo.host_addr[0], POOL_PORT)),
                         "host1's pool still accepts after its fcgi-pm stopped (rc %s)" % rc)
        # the first request after the stop is a POST: host1 refuses the
        # connection before anything was sent, so nginx may (and does) pass
        # even a POST on to host2
        r = self.req("POST", "/echo/form", body=urllib.parse.urlencode({"a": "1"}).encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["post"], {"a": ["1"]})
        self.assertEqual(r.json()["host_tag"], "host2")
        # every request still succeeds, all from host2
        tags = self.tags(20, "/echo/f%d")
        self.assertEqual(set(tags), {"host2"})
        # and under concurrency
        res = harness.concurrent(lambda i: self.req("GET", "/echo/c%d" % i, timeout=20),
                                 [(i,) for i in range(24)], threads=6)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        # host1 comes back: after fail_timeout (10s) nginx uses it again
        d = self.pms[0].tmp
        self.pms[0] = NsFcgiPm(self.topo.hosts[0], d, list(self.pms[0].pools.values())).start()
        harness.wait_until(lambda: "host1" in self.tags(4, "/echo/back%d"), 20, interval=0.5,
                           what="nginx to use host1 again")


if __name__ == "__main__":
    harness.main()
