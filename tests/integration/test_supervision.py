"""The master supervising its workers: a SIGKILLed worker is replaced while
the pool keeps answering, SIGQUIT lets in-flight requests finish, SIGTERM
stops at once, and the master cleans up its socket and pid file."""
import os
import signal
import threading
import time

import harness
from harness import Raw, get, hello_pool, pid_alive, wait_until


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Supervision(harness.TestCase):

    def start(self, workers=2, **kw):
        self.pm = self.fcgi_pm([hello_pool(max_children=workers, **kw)])
        self.ng = self.nginx()
        self.site = self.ng.add_site(self.pm.socket("hello"))
        self.ng.start()
        harness.wait_http(self.site.port, "/")
        return self.pm.wait_workers("hello", workers)

    def test_pid_file_holds_the_master_pid(self):
        self.start()
        with open(self.pm.pid_file) as f:
            self.assertEqual(int(f.read().strip()), self.pm.pid)

    def test_log_lines_have_time_level_pool_and_pid(self):
        workers = self.start(workers=2)
        self.pm.stop()
        lines = self.pm.log().splitlines()
        self.assertTrue(lines)
        rx = r"^\[\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}\.\d{3}\] (ERROR|WARNING|NOTICE|DEBUG): "
        for line in lines:
            self.assertRegex(line, rx)
        for pid in workers:
            self.assertRegex(self.pm.log(), r"(?m)%s\[pool hello\] .*\b%d\b" % (rx[1:], pid))

    def test_sigkilled_worker_is_replaced_while_pool_answers(self):
        before = self.start(workers=2)
        statuses = []
        stop = threading.Event()

        def hammer():
            while not stop.is_set() and len(statuses) < 5000:
                try:
                    statuses.append(get(self.site.port, "/h", timeout=10).status)
                except OSError as e:
                    statuses.append(repr(e))
                time.sleep(0.005)
        t = threading.Thread(target=hammer)
        t.start()
        try:
            time.sleep(0.3)
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            # right after the kill the other worker answers
            for _ in range(10):
                self.assertEqual(get(self.site.port, "/after-kill").status, 200)
            after = wait_until(
                lambda: (lambda w: w if len(w) == 2 and victim not in w else None)(
                    self.pm.worker_pids("hello")), 5,
                what="a replacement worker within 5s (php-fpm respawns at once)")
            harness.wait_http(self.site.port, "/")
            time.sleep(0.3)
        finally:
            stop.set()
            t.join(20)
        self.assertNotIn(victim, after)
        # the request the victim was serving (if any) may fail; nothing else
        failed = [s for s in statuses if s != 200]
        self.assertLessEqual(len(failed), 1, "failed requests: %r" % failed)
        self.assertGreater(len(statuses), 10)
        # the log names the dead worker and why
        self.pm.wait_log(r"%d.*(signal 9|SIGKILL)|(signal 9|SIGKILL).*%d" % (victim, victim))

    def test_sigquit_lets_a_slow_in_flight_request_finish(self):
        self.start(workers=1)
        result = {}

        def slow():
            try:
                result["r"] = get(self.site.port, "/slow?s=3", timeout=30)
            except Exception as e:
                result["r"] = e
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(1.0)                         # the request is in the worker now
        t0 = time.monotonic()
        self.pm.signal(signal.SIGQUIT)
        t.join(30)
        r = result.get("r")
        self.assertIsInstance(r, harness.Response, "slow request failed: %r" % (r,))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["PATH_INFO"], "/slow")
        rc = self.pm.wait(20)
        self.assertIsNotNone(rc, "master still running 20s after SIGQUIT")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5,
                                "master exited before the request finished")
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(self.pm.socket("hello")), "socket left behind")
        self.assertFalse(os.path.exists(self.pm.pid_file), "pid file left behind")

    def test_sigquit_is_bounded_by_process_control_timeout(self):
        self.pm = self.fcgi_pm([hello_pool(max_children=1)],
                               main_options={"process_control_timeout": Raw("1s")})
        self.ng = self.nginx()
        self.site = self.ng.add_site(self.pm.socket("hello"))
        self.ng.start()
        harness.wait_http(self.site.port, "/")
        t = threading.Thread(target=lambda: self._quiet_get("/slow?s=20"))
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        self.pm.signal(signal.SIGQUIT)
        rc = self.pm.wait(15)
        took = time.monotonic() - t0
        t.join(30)
        self.assertIsNotNone(rc, "master still running 15s after SIGQUIT")
        self.assertLess(took, 6, "graceful stop took %.1fs with process_control_timeout = 1s"
                        % took)
        self.assertFalse(os.path.exists(self.pm.socket("hello")), "socket left behind")

    def _quiet_get(self, path):
        try:
            get(self.site.port, path, timeout=30)
        except Exception:
            pass

    def test_sigusr2_replaces_every_worker_without_dropping_requests(self):
        before = set(self.start(workers=2))
        statuses = []
        stop = threading.Event()

        def hammer():
            while not stop.is_set() and len(statuses) < 5000:
                try:
                    statuses.append(get(self.site.port, "/slow?s=0.05", timeout=10).status)
                except OSError as e:
                    statuses.append(repr(e))
        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            self.pm.signal(signal.SIGUSR2)
            wait_until(lambda: (lambda w: len(w) == 2 and not (set(w) & before))(
                self.pm.worker_pids("hello")), 15, what="two new workers after SIGUSR2")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        failed = [s for s in statuses if s != 200]
        self.assertEqual(failed, [], "requests failed during SIGUSR2")
        self.assertGreater(len(statuses), 20)
        self.assertTrue(self.pm.proc.running())

    def test_max_requests_recycles_workers_without_failures(self):
        self.start(workers=1, max_requests=5)
        pids = []
        for i in range(30):
            r = get(self.site.port, "/n?i=%d" % i)
            self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
            pids.append(r.json()["pid"])
        self.assertGreaterEqual(len(set(pids)), 5, "pids: %r" % pids)
        for pid in set(pids):
            self.assertLessEqual(pids.count(pid), 5, "a worker served more than max_requests")

    def test_sigterm_stops_everything_and_cleans_up(self):
        workers = self.start(workers=2)
        t0 = time.monotonic()
        self.pm.signal(signal.SIGTERM)
        rc = self.pm.wait(15)
        self.assertIsNotNone(rc, "master still running 15s after SIGTERM")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(rc, 0)
        wait_until(lambda: not any(pid_alive(p) for p in workers), 5,
                   what="workers to be gone")
        self.assertFalse(os.path.exists(self.pm.socket("hello")), "socket left behind")
        self.assertFalse(os.path.exists(self.pm.pid_file), "pid file left behind")

    def test_sigint_stops_too(self):
        self.start(workers=1)
        self.pm.signal(signal.SIGINT)
        self.assertIsNotNone(self.pm.wait(15), "master still running 15s after SIGINT")
        self.assertFalse(os.path.exists(self.pm.socket("hello")))

    def test_app_that_cannot_import_does_not_make_the_master_spin(self):
        pool = harness.Pool("broken", "no_such_module_anywhere:application", max_children=2)
        ok_pool = hello_pool("fine", max_children=1)
        pm = self.fcgi_pm([pool, ok_pool])
        seen = set()
        cpu0 = cpu_seconds(pm.pid)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            seen.update(pm.worker_pids("broken"))
            time.sleep(0.02)
        used = cpu_seconds(pm.pid) - cpu0
        self.assertTrue(pm.proc.running(), "master died:\n" + pm.log()[-2000:])
        self.assertLess(used, 1.0, "master used %.2fs of CPU in 4s" % used)
        self.assertLess(len(seen), 40, "%d workers spawned in 4s" % len(seen))
        # the other site is not affected
        import fcgiclient as fc
        s = fc.connect(pm.socket("fine"))
        fc.request(s, params={"SCRIPT_NAME": "", "PATH_INFO": "/x"})
        out, _, _, _ = fc.response(s)
        s.close()
        self.assertRegex(out.decode("latin-1"), r"(?i)^status: 200")


if __name__ == "__main__":
    harness.main()
