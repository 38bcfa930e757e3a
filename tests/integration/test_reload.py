"""test_reload - reloads and rolling restarts that drop nothing.

A bounded client loop runs through a real nginx (etc/nginx/django-site.conf
in front of tests/apps/hello) while the configuration changes under it
(`fcgi-pm reload`, SIGHUP) and while the workers roll (`fcgi-pm restart`,
SIGUSR2): every response must be a 200 with the right body.  A broken
configuration is refused and the running pools keep serving; pools come
and go; a changed listen address gets a new socket.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import hello_pool, wait_until, get, FCGI_PM
import fcgiclient as fc


def cli(pm, *args, conf=None, timeout=60):
    p = subprocess.run([FCGI_PM, "-c", conf or pm.conf] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def status(pm, pool=None, full=False):
    args = ["status"] + ([pool] if pool else []) + ["--json"] + (["--full"] if full else [])
    rc, out, err = cli(pm, *args)
    if rc != 0:
        raise harness.HarnessError("status failed (%d): %s" % (rc, err))
    return json.loads(out)


def fcgi_env(addr, name):
    """The value of the pool's env NAME, asked straight over FastCGI."""
    s = fc.connect(addr, timeout=30)
    try:
        fc.request(s, params={"SCRIPT_NAME": "", "PATH_INFO": "/env",
                              "QUERY_STRING": "name=" + name})
        out, _, _, _ = fc.response(s)
    finally:
        s.close()
    return out.partition(b"\r\n\r\n")[2].decode()


# A worker-side race at SIGQUIT, fixed (embed/fcgi.c, GracefulStop below):
# a connection the stopping worker had accepted but whose request had not
# arrived yet (nginx writes just after connect) was closed, so nginx
# answered 502 "writev() failed (32: Broken pipe) while sending request to
# upstream".  The message stays to point at it if it comes back.
# (A listen-socket wake-up (EPOLLEXCLUSIVE) taken by a worker that is
# leaving is the master's to fix: it pokes the socket, see DESIGN.md.)
WORKER_STOP_RACE = ("if nginx's error.log says 'Broken pipe while sending request to "
                    "upstream', a stopping worker closed a connection it had accepted "
                    "before its request arrived (embed/fcgi.c)")


class Load:
    """Client threads looping GET /load?t=T&i=I through nginx until stopped
    (at most MAX_REQUESTS each); every answer is checked."""
    MAX_REQUESTS = 4000

    def __init__(self, port, threads=3):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, t):
        for i in range(self.MAX_REQUESTS):
            if self.stop.is_set():
                return
            path = "/load?t=%d&i=%d" % (t, i)
            try:
                r = get(self.port, path, timeout=30)
                body = r.json() if r.status == 200 else None
                good = body is not None and body["REQUEST_URI"] == path
            except Exception as e:      # connection refused, reset, bad JSON...
                r, good = e, False
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failures.append((path, repr(r)[:300]))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return self.ok, self.failures

    def wait_more(self, n, timeout=60):
        start = self.ok
        wait_until(lambda: self.ok >= start + n or self.failures, timeout,
                   what="%d more requests" % n)


class ReloadCase(harness.TestCase):
    def start(self, pools, nginx=True):
        self.status_sock = os.path.join(self.tmp, "status.sock")
        self.pm = self.fcgi_pm(pools, main_options={"status_socket": self.status_sock})
        self.pm.wait_workers()
        wait_until(lambda: harness.can_connect(self.status_sock), 10, what="the status socket")
        if nginx:
            ng = self.nginx()
            self.site = ng.add_site(self.pm.socket(pools[0].name))
            ng.start()
            harness.wait_http(self.site.port, "/x")
        return self.pm

    def rewrite(self, *pools):
        """Write a new set of site files (one per pool), as an operator would."""
        for f in os.listdir(self.pm.sites_dir):
            os.unlink(os.path.join(self.pm.sites_dir, f))
        self.pm.pools = {p.name: p for p in pools}
        for p in pools:
            if p.listen is None:
                p.listen = os.path.join(self.tmp, "%s.sock" % p.name)
        self.pm.site_files = None
        self.pm.write_config()


class UnderLoad(ReloadCase):
    def test_reload_of_a_changed_pool_under_load_drops_nothing(self):
        pm = self.start([hello_pool(max_children=2, env={"GEN": "1"})])
        before = set(pm.worker_pids("hello"))
        load = Load(self.site.port)
        try:
            load.wait_more(30)
            self.rewrite(hello_pool(max_children=3, env={"GEN": "2"}))
            rc, out, err = cli(pm, "reload")
            self.assertEqual(rc, 0, err)
            self.assertIn("pool hello: changed, rolling its workers", out)
            self.assertIn("0 added, 0 removed, 1 changed, 0 unchanged", out)
            wait_until(lambda: (lambda w: len(w) == 3 and not (set(w) & before))(
                pm.worker_pids("hello")), 30, what="three new workers")
            pm.wait_log(r"\[pool hello\] drained", 30)
            load.wait_more(30)
        finally:
            ok, failures = load.finish()
        self.assertEqual(failures, [], "%d requests failed during the reload; %s"
                         % (len(failures), WORKER_STOP_RACE))
        self.assertGreater(ok, 60)
        self.assertEqual(fcgi_env(pm.socket("hello"), "GEN"), "2")
        # the old workers go once two new ones are ready; the third may still load
        s = wait_until(lambda: (lambda s: s if s["total processes"] == 3 else None)(
            status(pm, "hello")), 30, what="three ready workers")
        # the counters carry over the replaced pool's requests
        self.assertGreaterEqual(s["accepted conn"], ok)

    def test_rolling_restart_under_load_keeps_capacity(self):
        pm = self.start([hello_pool(max_children=2)])
        # both workers ready first (wait_workers counts processes): on a
        # loaded machine one may still load the app when the roll starts,
        # and the capacity check below would blame the roll for it
        wait_until(lambda: status(pm, "hello")["total processes"] == 2, 30,
                   what="two ready workers")
        load = Load(self.site.port)
        low = []
        try:
            load.wait_more(30)
            for n, how in enumerate(("cli", "usr2")):
                before = set(pm.worker_pids("hello"))
                if how == "cli":
                    rc, out, err = cli(pm, "restart")
                    self.assertEqual(rc, 0, err)
                else:
                    pm.signal(signal.SIGUSR2)
                # while it rolls, ready workers never fall below max_children
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    s = status(pm, "hello", full=True)
                    serving = [p for p in s["processes"]
                               if p["state"] in ("Idle", "Running", "Reading headers")]
                    if len(serving) < 2:
                        low.append(s)
                    if not (set(pm.worker_pids("hello")) & before) and \
                            len(pm.worker_pids("hello")) == 2:
                        break
                    time.sleep(0.02)
                else:
                    self.fail("%s: the workers were not replaced within 30s" % how)
                # The old workers can be gone a tick before the master logs
                # the roll done; a second restart started in between would
                # be merged into it ("4 workers replaced").  Each roll must
                # log its own line.
                wait_until(lambda: pm.log().count(
                    "rolling restart done: 2 workers replaced") == n + 1, 30,
                    what="%s: the restart's \"rolling restart done\" line" % how)
                load.wait_more(20)
        finally:
            ok, failures = load.finish()
        self.assertEqual(failures, [], "%d requests failed during rolling restarts; %s"
                         % (len(failures), WORKER_STOP_RACE))
        self.assertEqual(low, [], "fewer than 2 ready workers during a roll")
        log = pm.log()
        self.assertIn("its replacement is ready; telling it to finish", log)
        self.assertEqual(log.count("rolling restart done: 2 workers replaced"), 2, log)

    def test_sighup_reload_adds_and_removes_pools_under_load(self):
        pm = self.start([hello_pool(max_children=2)])
        load = Load(self.site.port, threads=2)
        try:
            hello_pids = set(pm.worker_pids("hello"))
            self.rewrite(hello_pool(max_children=2), hello_pool("extra", max_children=1))
            pm.signal(signal.SIGHUP)
            wait_until(lambda: harness.can_connect(pm.socket("extra")), 20,
                       what="the added pool's socket")
            self.assertEqual(fcgi_env(pm.socket("extra"), "NONE"), "")
            self.assertEqual(set(pm.worker_pids("hello")), hello_pids,
                             "an unchanged pool was restarted")
            self.rewrite(hello_pool(max_children=2))
            pm.signal(signal.SIGHUP)
            pm.wait_log(r"\[pool extra\] drained", 20)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "extra.sock")))
            self.assertEqual(set(pm.worker_pids("hello")), hello_pids)
            load.wait_more(20)
        finally:
            ok, failures = load.finish()
        self.assertEqual(failures, [])


class GracefulStop(ReloadCase):
    """A worker told to finish (SIGQUIT, as a rolling restart does) still
    serves the connections it accepted whose request had not come yet."""

    def stop_one(self, first):
        pm = self.start([hello_pool(max_children=1, env={"GEN": "q"})], nginx=False)
        [pid] = pm.worker_pids("hello")
        raw = fc.rec(fc.BEGIN, 1, b"\0\1\0\0\0\0\0\0") + fc.params_records(
            1, {"SCRIPT_NAME": "", "PATH_INFO": "/env", "QUERY_STRING": "name=GEN",
                "REQUEST_METHOD": "GET"}) + fc.stdin_records(1, b"")
        s = fc.connect(pm.socket("hello"), timeout=30)
        try:
            s.sendall(raw[:first])
            # let the worker accept and park it (its first wait is 2 ms)
            time.sleep(0.3)
            os.kill(pid, signal.SIGQUIT)
            # give a worker that would drop it time to do so
            time.sleep(0.3)
            s.sendall(raw[first:])
            out, _, _, _ = fc.response(s)
        finally:
            s.close()
        self.assertTrue(out.startswith(b"Status: 200"), out[:80])
        self.assertEqual(out.partition(b"\r\n\r\n")[2], b"q")
        # and the worker is done after it
        wait_until(lambda: pid not in pm.worker_pids("hello"), 30,
                   what="the stopped worker to exit")

    def test_silent_connection_accepted_before_sigquit_is_served(self):
        self.stop_one(0)

    def test_incomplete_request_at_sigquit_is_served(self):
        self.stop_one(20)


class Refused(ReloadCase):
    def test_a_broken_configuration_keeps_the_old_pools_serving(self):
        pm = self.start([hello_pool(max_children=2)])
        before = pm.worker_pids("hello")
        good_conf = os.path.join(self.tmp, "good-copy.conf")
        with open(pm.conf) as f:
            text = f.read()
        good_dir = os.path.join(self.tmp, "good.d")
        with open(good_conf, "w") as f:    # the CLI finds the socket through it
            f.write(text.replace(pm.sites_dir, good_dir))
        os.makedirs(good_dir)
        with open(os.path.join(pm.sites_dir, "hello.conf")) as src, \
                open(os.path.join(good_dir, "hello.conf"), "w") as dst:
            dst.write(src.read())
        with open(os.path.join(pm.sites_dir, "hello.conf"), "a") as f:
            f.write("pool broken {\n  max_children = many\n")
        load = Load(self.site.port, threads=2)
        try:
            rc, out, err = cli(pm, "reload", conf=good_conf)
            self.assertEqual(rc, 1, out + err)
            self.assertIn("the configuration has errors; the running one is kept", err)
            self.assertIn("hello.conf", err)
            pm.wait_log(r"reload refused: .*hello\.conf")
            pm.signal(signal.SIGHUP)
            wait_until(lambda: pm.log().count("the running configuration is kept") >= 2, 10,
                       what="the SIGHUP reload refused too")
            # the CLI with the broken file itself: a warning, and the daemon's answer
            rc, out, err = cli(pm, "reload")
            self.assertEqual(rc, 1, out + err)
            self.assertIn("warning: the configuration has the errors above", err)
            self.assertIn("the running one is kept", err)
            rc, out, err = cli(pm, "status", "--json")
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["pools"][0]["total processes"], 2)
            load.wait_more(20)
        finally:
            ok, failures = load.finish()
        self.assertEqual(failures, [])
        self.assertEqual(pm.worker_pids("hello"), before, "workers changed")
        self.assertTrue(pm.proc.running())
        self.assertEqual(status(pm, "hello")["total processes"], 2)


    def test_new_code_that_cannot_import_leaves_the_old_workers_serving(self):
        pm = self.start([hello_pool(max_children=2)])
        before = pm.worker_pids("hello")
        self.rewrite(harness.Pool("hello", "no_such_module_at_all:application", max_children=2))
        load = Load(self.site.port, threads=2)
        try:
            rc, out, err = cli(pm, "reload")
            self.assertEqual(rc, 0, err)
            pm.wait_log(r"the application failed to import", 20)
            pm.wait_log(r"next attempt in", 20)
            load.wait_more(30)
        finally:
            ok, failures = load.finish()
        self.assertEqual(failures, [])
        for pid in before:
            self.assertTrue(harness.pid_alive(pid), "an old worker was stopped")
        self.assertNotIn("its replacement is ready", pm.log())


class Sockets(ReloadCase):
    def test_a_new_listen_address_gets_a_new_socket(self):
        pm = self.start([hello_pool(max_children=1)], nginx=False)
        old = pm.socket("hello")
        new = os.path.join(self.tmp, "moved.sock")
        self.rewrite(hello_pool(max_children=1, listen=new))
        rc, out, err = cli(pm, "reload")
        self.assertEqual(rc, 0, err)
        wait_until(lambda: harness.can_connect(new), 20, what="the new socket")
        self.assertEqual(fcgi_env(new, "NONE"), "")
        pm.wait_log(r"\[pool hello\] drained", 30)
        self.assertFalse(os.path.exists(old), "the old socket file is left")

    def test_kept_address_never_refuses_a_connection(self):
        """Connect straight to the pool's unix socket in a tight loop while
        the pool is replaced: the socket is handed over, never closed."""
        pm = self.start([hello_pool(max_children=1, env={"GEN": "1"})], nginx=False)
        path = pm.socket("hello")
        refused = []
        stop = threading.Event()

        def hammer():
            for _ in range(20000):
                if stop.is_set():
                    return
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(path)
                except OSError as e:
                    refused.append(e)
                finally:
                    s.close()
                time.sleep(0.002)
        ino = os.stat(path).st_ino
        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        try:
            self.rewrite(hello_pool(max_children=1, env={"GEN": "2"},
                                    listen_mode=harness.Raw("0666")))
            rc, out, err = cli(pm, "reload")
            self.assertEqual(rc, 0, err)
            self.assertIn("changed", out)
            pm.wait_log(r"\[pool hello\] drained", 30)
            wait_until(lambda: fcgi_env(path, "GEN") == "2", 20, what="the new workers")
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(refused, [])
        st = os.stat(path)
        self.assertEqual(st.st_ino, ino, "the socket file was replaced")
        self.assertEqual(st.st_mode & 0o777, 0o666, "the new listen_mode was not applied")

    def test_reload_of_one_pool_leaves_the_others(self):
        pm = self.start([hello_pool("a", max_children=1), hello_pool("b", max_children=1)],
                        nginx=False)
        a_pids, b_pids = pm.worker_pids("a"), pm.worker_pids("b")
        self.rewrite(hello_pool("a", max_children=1, env={"X": "1"}),
                     hello_pool("b", max_children=1, env={"X": "1"}))
        rc, out, err = cli(pm, "reload", "a")
        self.assertEqual(rc, 0, err)
        self.assertIn("pool a: changed", out)
        self.assertNotIn("pool b", out)
        # ask once the old worker is gone: a connection that arrives while a
        # worker stops can wait for the next one (see WORKER_STOP_RACE)
        pm.wait_log(r"\[pool a\] drained", 30)
        self.assertEqual(fcgi_env(pm.socket("a"), "X"), "1")
        self.assertEqual(pm.worker_pids("b"), b_pids)
        self.assertEqual(fcgi_env(pm.socket("b"), "X"), "")
        self.assertNotEqual(pm.worker_pids("a"), a_pids)
        rc, out, err = cli(pm, "reload", "nosuch")
        self.assertEqual(rc, 1)
        self.assertIn("no pool named nosuch", err)
        # then the rest
        rc, out, err = cli(pm, "reload")
        self.assertEqual(rc, 0, err)
        self.assertIn("1 changed, 1 unchanged", out)
        pm.wait_log(r"\[pool b\] drained", 30)
        self.assertEqual(fcgi_env(pm.socket("b"), "X"), "1")


if __name__ == "__main__":
    harness.main()
