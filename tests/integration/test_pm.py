"""The process manager end to end (real fcgi-pm, real nginx, tests/apps/pm):
ondemand goes 0 -> N -> 0, dynamic keeps its spares between min_spare and
max_spare while the load rises and falls, request_terminate_timeout cuts a
request off, request_slowlog_timeout writes the Python stack of the slow
view, max_requests (+ jitter) and max_rss recycle workers without a failed
request, max_children reached is logged once per episode, queue_timeout 503s
are counted.

Counts come from the pool's summary line, logged when the master stops:
"served N requests, Q answered 503 by queue_timeout, S slow, T terminated;
max_children reached M times; at most B workers busy"."""
import os
import re
import signal
import threading
import time

import fcgiclient
import harness
from harness import Pool, Raw, concurrent, get, wait_until

APP = os.path.join(harness.APPS, "pm")
SUMMARY = (r"\[pool pm\] served (\d+) requests, (\d+) answered 503 by queue_timeout, "
           r"(\d+) slow, (\d+) terminated; max_children reached (\d+) times; "
           r"at most (\d+) workers busy")


def pm_pool(**kw):
    return Pool("pm", "pmapp:application", python_path=[APP], **kw)


class PmCase(harness.TestCase):

    def start(self, **kw):
        self.pm = self.fcgi_pm([pm_pool(**kw)])
        self.ng = self.nginx()
        self.site = self.ng.add_site(self.pm.socket("pm"))
        self.ng.start()
        return self.pm

    def workers(self):
        return self.pm.worker_pids("pm")

    def get(self, path, timeout=60):
        return get(self.site.port, path, timeout=timeout)

    def summary(self):
        """Stop the master gracefully (a worker counts a request just after
        it answered it: SIGTERM could beat that); return its summary counts
        as a dict."""
        self.assertEqual(self.pm.stop(signal.SIGQUIT), 0)
        m = re.search(SUMMARY, self.pm.log())
        self.assertIsNotNone(m, "no summary line in the log")
        keys = ("served", "queue_timeouts", "slow", "terminated", "max_children_reached",
                "max_busy")
        return dict(zip(keys, (int(x) for x in m.groups())))

    def in_background(self, paths, threads=8):
        """GET every path of PATHS concurrently in a thread; returns
        (thread, results list filled when it ends)."""
        out = []

        def run():
            out.extend(concurrent(lambda p: self.get(p), [(p,) for p in paths], threads))
        t = threading.Thread(target=run)
        t.start()
        return t, out

    def kept_request(self, sock, path):
        """PATH on the kept FastCGI connection SOCK: the pid that answered."""
        fcgiclient.request(sock, params={"PATH_INFO": path, "REQUEST_URI": path},
                           keep=True)
        return self.kept_response(sock)

    def kept_response(self, sock):
        """The answer of pmapp on SOCK (status 200, protocol status 0): its pid."""
        out, err, app, proto = fcgiclient.response(sock)
        self.assertEqual(proto, 0)
        self.assertIn(b"200 OK", out.split(b"\r\n", 1)[0])
        return int(out.rsplit(b"\r\n\r\n", 1)[1])

    def assert_all_200(self, results):
        bad = [r if isinstance(r, Exception) else (r.status, r.text[:200])
               for r in results if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])


class Ondemand(PmCase):

    def test_ondemand_goes_from_zero_to_n_and_back_to_zero(self):
        self.start(pm=Raw("ondemand"), max_children=3, process_idle_timeout=Raw("1s"))
        time.sleep(1.0)
        self.assertEqual(self.workers(), [], "ondemand starts no worker")
        # three requests at once: each needs a worker of its own
        t, results = self.in_background(["/sleep?s=3"] * 3)
        try:
            peak = wait_until(lambda: (lambda w: w if len(w) == 3 else None)(self.workers()),
                              30, what="3 workers for 3 concurrent requests")
        finally:
            t.join(90)
        self.assert_all_200(results)
        self.assertEqual(len({r.headers["x-pid"] for r in results}), 3)
        # idle past process_idle_timeout: stopped one by one, down to none
        wait_until(lambda: not self.workers(), 60, what="the pool back to 0 workers")
        log = self.pm.log()
        for pid in peak:
            self.assertRegex(log, r"worker %d idle for [\d.]+s, more than "
                             r"process_idle_timeout \(1\.0s\): stopping it" % pid)
        # and again from zero
        self.assertEqual(self.get("/pid").status, 200)
        self.assertEqual(len(self.workers()), 1)
        s = self.summary()
        self.assertEqual(s["served"], 4)
        self.assertEqual(s["max_busy"], 3)

    def test_ondemand_master_does_not_spin_on_a_waiting_connection(self):
        # one worker, busy: a second connection waits in the queue; the
        # master must not wake for it in a loop
        self.start(pm=Raw("ondemand"), max_children=1, process_idle_timeout=Raw("10s"))
        t, results = self.in_background(["/sleep?s=4", "/pid"], threads=2)
        try:
            wait_until(lambda: self.workers(), 30, what="a worker")
            time.sleep(1.0)
            before = cpu_seconds(self.pm.pid)
            time.sleep(2.0)
            used = cpu_seconds(self.pm.pid) - before
        finally:
            t.join(60)
        self.assert_all_200(results)
        self.assertLess(used, 0.5, "the master used %.2fs of CPU in 2s" % used)


class OndemandBackoff(PmCase):

    def test_ondemand_app_that_cannot_import_backs_off_with_a_connection_waiting(self):
        # a connection waits on the socket while every worker dies at import:
        # the master must neither spin on the socket nor spawn in a loop
        pool = Pool("pm", "broken:application", python_path=[os.path.join(harness.APPS, "wsgi")],
                    pm=Raw("ondemand"), max_children=2, process_idle_timeout=Raw("10s"))
        self.pm = self.fcgi_pm([pool])
        sock = fcgiclient.connect(self.pm.socket("pm"), timeout=30)
        try:
            fcgiclient.request(sock, params={"PATH_INFO": "/", "REQUEST_URI": "/"})
            self.pm.wait_log(r"workers fail within \d+s of starting; next attempt in", 20)
            time.sleep(1.0)
            before = cpu_seconds(self.pm.pid)
            starts = self.pm.log().count("started in slot")
            time.sleep(4.0)
            used = cpu_seconds(self.pm.pid) - before
            more = self.pm.log().count("started in slot") - starts
        finally:
            sock.close()
        self.assertLess(used, 0.5, "the master used %.2fs of CPU in 4s" % used)
        # 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s ...: a handful of probes, not a loop
        self.assertLessEqual(more, 6, "workers started in 4s of backoff: %d" % more)
        self.assertIn("RuntimeError: broken at import time", self.pm.log())


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Dynamic(PmCase):

    def test_dynamic_keeps_spares_between_min_and_max_as_load_rises_and_falls(self):
        self.start(pm=Raw("dynamic"), max_children=6, start_servers=1, min_spare=1,
                   max_spare=2)
        harness.wait_http(self.site.port, "/pid")
        self.assertEqual(len(self.workers()), 1)
        # rising: 4 requests busy for a while -> 4 busy + 1..2 spare
        t, results = self.in_background(["/sleep?s=10"] * 4)
        try:
            grown = wait_until(lambda: (lambda w: w if len(w) >= 5 else None)(
                self.workers()), 30, what="4 busy workers plus a spare")
            time.sleep(2.5)        # a few scaling steps with the load steady
            steady = self.workers()
        finally:
            t.join(90)
        self.assert_all_200(results)
        self.assertGreaterEqual(len(steady), 5)
        self.assertLessEqual(len(steady), 6)
        # falling: 5-6 idle, max_spare 2 -> stopped down to 2, one per step
        wait_until(lambda: len(self.workers()) == 2, 30, what="2 workers (max_spare)")
        time.sleep(2.5)
        self.assertEqual(len(self.workers()), 2, "idle workers stay at max_spare")
        self.assertRegex(self.pm.log(), r"idle workers, more than max_spare \(2\): "
                         r"stopping worker \d+")
        self.assertGreaterEqual(len(grown), 5)


class Timeouts(PmCase):

    def test_request_past_request_terminate_timeout_is_cut_off_and_logged(self):
        self.start(max_children=1, request_terminate_timeout=Raw("2s"))
        first = self.get("/pid").text.strip()
        r = self.get("/sleep?s=40", timeout=30)
        self.assertEqual(r.status, 502)        # nginx: the worker closed on it
        m = self.pm.wait_log(r"worker (\d+): request 'GET /sleep\?s=40' has been running "
                             r"for (\d+\.\d)s, more than request_terminate_timeout \(2s\): "
                             r"killing it", 10)
        self.assertEqual(m.group(1), first)
        self.assertGreaterEqual(float(m.group(2)), 2.0)
        self.pm.wait_log(r"worker %s exited on signal 9 \(SIGKILL\)" % first, 10)
        # replaced, and serving
        r = harness.wait_http(self.site.port, "/pid")
        self.assertNotEqual(r.text.strip(), first)
        self.assertEqual(self.summary()["terminated"], 1)

    def test_slow_request_writes_the_python_stack_to_the_slowlog(self, **options):
        slowlog = os.path.join(self.tmp, "pm.slow.log")
        self.start(max_children=1, threads=2, slowlog=slowlog,
                   request_slowlog_timeout=Raw("1s"), **options)
        pid = self.get("/pid").text.strip()
        # the request goes on and succeeds
        r = self.get("/sleep?s=3")
        self.assertEqual(r.status, 200)
        r = self.get("/spin?s=3")
        self.assertEqual(r.status, 200)
        self.pm.wait_log(r"worker %s: request 'GET /spin\?s=3' has been running for "
                         r"[\d.]+s, more than request_slowlog_timeout \(1s\)" % pid, 5)
        text = wait_until(lambda: (lambda t: t if "pm_spinning_view" in t else None)(
            open(slowlog).read()), 10, what="the slowlog to hold pm_spinning_view")
        # header: date, pool, pid, the request line and how long it ran
        self.assertRegex(text, r"\[\d{2}-\w{3}-\d{4} \d{2}:\d{2}:\d{2}\]  \[pool pm\] pid %s\n"
                         r"request: GET /sleep\?s=3, running for [\d.]+s "
                         r"\(request_slowlog_timeout 1s\), thread \d \(Thread 0x[0-9a-f]{16} "
                         r"below\)" % pid)
        # faulthandler's dump, naming the function each view was in
        self.assertRegex(text, r'File ".*pmapp\.py", line \d+ in pm_sleeping_view')
        self.assertRegex(text, r'File ".*pmapp\.py", line \d+ in pm_spinning_view')
        # the thread each header names is the one in the view
        heads = list(re.finditer(r"request: GET /(\w+).*Thread (0x[0-9a-f]{16}) below", text))
        self.assertEqual([h.group(1) for h in heads], ["sleep", "spin"])
        for h, nxt in zip(heads, heads[1:] + [None]):
            entry = text[h.end():nxt.start() if nxt else len(text)]
            stack = entry[entry.index("hread " + h.group(2)):]
            stack = stack[:stack.find("hread 0x", 8)] if "hread 0x" in stack[8:] else stack
            self.assertIn("pm_%sing_view" % ("sleep" if h.group(1) == "sleep" else "spinn"),
                          stack, "the stack of the thread the header names")
        # once per request
        self.assertEqual(text.count("request: GET"), 2)
        self.assertEqual(self.summary()["slow"], 2)

    def test_slowlog_works_for_workers_forked_by_preload(self):
        self.test_slow_request_writes_the_python_stack_to_the_slowlog(preload=True)

    def test_queue_timeout_answers_503_and_counts_them(self):
        self.start(max_children=1, queue_timeout=Raw("1s"))
        self.assertEqual(self.get("/pid").status, 200)
        t, results = self.in_background(["/sleep?s=3"])
        time.sleep(0.5)         # the slow one first
        waiting = concurrent(lambda p: self.get(p), [("/pid",)] * 3, threads=3)
        t.join(60)
        self.assert_all_200(results)
        self.assertEqual([r.status for r in waiting], [503] * 3, repr(waiting))
        self.assertEqual(self.get("/pid").status, 200)
        self.pm.wait_log(r"waited \d+ ms in the queue, more than queue_timeout "
                         r"\(1000 ms\): answered 503", 5)
        s = self.summary()
        self.assertEqual(s["queue_timeouts"], 3)
        self.assertEqual(s["served"], 6)


class Recycling(PmCase):

    def test_max_requests_with_jitter_recycles_without_failed_requests(self):
        self.start(max_children=2, max_requests=5, max_requests_jitter=3)
        harness.wait_http(self.site.port, "/pid")
        limits = {}

        def note_limits():
            for pid in self.workers():
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if b"--max-requests" in argv:
                    limits[pid] = int(argv[argv.index(b"--max-requests") + 1])
        results = []
        for _ in range(12):
            note_limits()
            results += concurrent(lambda p: self.get(p), [("/pid",)] * 5, threads=4)
        self.assert_all_200(results)
        served = {}
        for r in results:
            served[int(r.headers["x-pid"])] = served.get(int(r.headers["x-pid"]), 0) + 1
        self.assertGreater(len(served), 4, "workers were recycled: %r" % served)
        for pid, limit in limits.items():
            self.assertTrue(5 <= limit <= 8, "max_requests 5 + jitter 0..3: %d" % limit)
        self.assertGreater(len(set(limits.values())), 1, "jitter varies: %r" % limits)
        # every worker that left served exactly its own limit
        log = self.pm.log()
        for m in re.finditer(r"worker (\d+) exited with status 0 after [\d.]+s, (\d+) "
                             r"requests", log):
            pid, n = int(m.group(1)), int(m.group(2))
            if pid in limits:
                self.assertEqual(n, limits[pid], "worker %d" % pid)
        self.assertIn("served max_requests", log)

    def test_max_rss_recycles_a_grown_worker_without_failed_requests(self):
        self.start(max_children=2, max_rss=Raw("120M"))
        harness.wait_http(self.site.port, "/pid")
        grown = self.get("/grow?mb=150")
        self.assertEqual(grown.status, 200)
        pid = int(grown.headers["x-pid"])
        self.pm.wait_log(r"RSS \d+ KB exceeds max_rss \(\d+ KB\)", 10)
        self.pm.wait_log(r"worker %d exited with status 0" % pid, 15)
        results = concurrent(lambda p: self.get(p), [("/pid",)] * 20, threads=4)
        self.assert_all_200(results)
        self.assertNotIn(pid, {int(r.headers["x-pid"]) for r in results})
        wait_until(lambda: len(self.workers()) == 2, 20, what="a replacement")


class KeptAlive(PmCase):
    """A thread waiting for the next request on a kept-alive FastCGI
    connection (fastcgi_keep_conn on) is idle: no request timeout applies,
    and ondemand stops its worker after process_idle_timeout."""

    def test_no_request_timeout_applies_to_an_idle_kept_connection(self):
        self.start(max_children=1, request_terminate_timeout=Raw("1s"),
                   keepalive_timeout=Raw("30s"))
        sock = fcgiclient.connect(self.pm.socket("pm"), timeout=30)
        try:
            first = self.kept_request(sock, "/pid")
            time.sleep(3.0)         # idle on the kept connection, 3 x the timeout
            self.assertEqual(self.workers(), [first])
            self.assertEqual(self.kept_request(sock, "/pid"), first)
        finally:
            sock.close()
        self.assertNotIn("killing it", self.pm.log())

    def test_ondemand_stops_a_worker_idle_on_a_kept_connection(self):
        self.start(pm=Raw("ondemand"), max_children=1, process_idle_timeout=Raw("1s"),
                   keepalive_timeout=Raw("60s"))
        sock = fcgiclient.connect(self.pm.socket("pm"), timeout=30)
        try:
            pid = self.kept_request(sock, "/pid")
            self.pm.wait_log(r"worker %d idle for [\d.]+s, more than process_idle_timeout"
                             % pid, 20)
            wait_until(lambda: not self.workers(), 20, what="the worker to leave")
            # its graceful stop closed the idle kept connection
            self.assertEqual(sock.recv(1), b"")
        finally:
            sock.close()


class HandOff(PmCase):
    """A kept connection that becomes readable while its worker's only
    thread is busy goes to a worker waiting idle, not into a queue behind
    the busy one (fcgi.c's watcher, fcgi_watch())."""

    def kept_sockets_on_one_worker(self, n, tries=40):
        """N kept connections whose first request the same worker served:
        (that worker's pid, [sock, ...])."""
        by_pid = {}
        for _ in range(tries):
            s = fcgiclient.connect(self.pm.socket("pm"), timeout=30)
            by_pid.setdefault(self.kept_request(s, "/pid"), []).append(s)
            pid, socks = max(by_pid.items(), key=lambda kv: len(kv[1]))
            if len(socks) >= n:
                for other in by_pid.values():
                    for s in other:
                        if s not in socks[:n]:
                            s.close()
                return pid, socks[:n]
        self.fail("no worker took %d of %d connections" % (n, tries))

    def test_request_behind_a_slow_one_is_served_by_the_idle_worker(self):
        # the case users meet: a slow view holds the worker's only thread,
        # and nginx sends the next request on a kept connection of that worker
        self.start(max_children=2, keepalive_timeout=Raw("60s"))
        a, (slow, fast) = self.kept_sockets_on_one_worker(2)
        fcgiclient.request(slow, params={"PATH_INFO": "/sleep", "REQUEST_URI": "/sleep",
                                         "QUERY_STRING": "s=3"}, keep=True)
        time.sleep(0.3)
        t0 = time.monotonic()
        pid = self.kept_request(fast, "/pid")
        waited = time.monotonic() - t0
        self.assertNotEqual(pid, a)
        self.assertLess(waited, 1.5)        # not the 2.7 s left of the slow one
        self.assertEqual(self.kept_response(slow), a)
        # both connections go on, wherever they live now
        self.assertIn(self.kept_request(slow, "/pid"), self.workers())
        self.assertIn(self.kept_request(fast, "/pid"), self.workers())
        slow.close()
        fast.close()

    def test_the_pair_is_not_inherited_by_programs_the_app_runs(self):
        self.start(max_children=2)
        r = self.get("/inheritable")
        self.assertEqual(r.status, 200)
        fds = [int(x) for x in r.text.split()]
        # the scoreboard (3) and CHILD_FD_HANDOFF_TX/RX (6, 7) in fcgi-pm/worker.c
        for fd in (3, 6, 7):
            self.assertNotIn(fd, fds)
        self.assertIn("--handoff 6:7", open("/proc/%d/cmdline" % self.workers()[0])
                      .read().replace("\0", " "))

    def test_ready_kept_connection_goes_to_an_idle_worker(self):
        self.start(max_children=2, keepalive_timeout=Raw("60s"))
        a, (k0, k1, k2) = self.kept_sockets_on_one_worker(3)
        b = [p for p in self.workers() if p != a]
        self.assertEqual(len(b), 1)
        t0 = time.monotonic()
        # A's only thread sleeps on k0; k1 and k2 become ready behind it
        for k in (k0, k1, k2):
            fcgiclient.request(k, params={"PATH_INFO": "/sleep", "REQUEST_URI": "/sleep",
                                          "QUERY_STRING": "s=1"}, keep=True)
            time.sleep(0.1)
        pids = [self.kept_response(k) for k in (k0, k1, k2)]
        elapsed = time.monotonic() - t0
        # k1 or k2 went to B, which was idle: 2 s instead of 3 s in a row on A
        self.assertEqual(pids[0], a)
        self.assertEqual(sorted(pids[1:]), sorted([a, b[0]]))
        self.assertLess(elapsed, 2.8)
        # the connection moved with its request: its next one is served too
        for k in (k1, k2):
            self.assertIn(self.kept_request(k, "/pid"), (a, b[0]))
            k.close()
        k0.close()


class MaxChildren(PmCase):

    def test_max_children_reached_is_logged_once_per_episode(self):
        self.start(max_children=1)
        harness.wait_http(self.site.port, "/pid")
        rx = r"WARNING: \[pool pm\] max_children \(1\) reached: every worker is busy " \
             r"and connections are waiting; consider raising max_children"
        for episode in (1, 2):
            results = concurrent(lambda p: self.get(p), [("/sleep?s=1",)] * 4, threads=4)
            self.assert_all_200(results)
            self.assertEqual(len(re.findall(rx, self.pm.log())), episode)
            time.sleep(1.0)     # idle, nothing waiting: the episode is over
        self.assertEqual(self.summary()["max_children_reached"], 2)


if __name__ == "__main__":
    harness.main()
