"""preload = yes: the pool's preload process imports the app once and forks
the workers, which share its memory copy-on-write.  The app is imported
once, not once per worker; workers are the master's children and are
replaced when killed; the preload process is restarted when it dies, backs
off when the app cannot be imported, refuses an app that starts a thread at
import, and is replaced on SIGUSR2 (new code) before the old workers stop.
PSS of the example Django site's workers is measured with and without
preload (and printed); the ratio is asserted.  How fast a new preloaded
worker is ready is measured and printed, not asserted."""
import os
import signal
import time

import harness
from harness import Pool, django_pool, wait_until, pid_alive
from test_isolation import (fcgi_get, probe_info, probe_pool, preload_pid, serving_workers,
                            start_probe)


def pss_kb(pid):
    """Proportional set size of PID in KB (/proc/PID/smaps_rollup)."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise AssertionError("no Pss in /proc/%d/smaps_rollup" % pid)


def uss_kb(pid):
    """Memory only PID has (Private_Clean + Private_Dirty), in KB: what
    one more such process costs."""
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def threads_of(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def _try(fn):
    """FN(), or None if it raised OSError (a worker exiting mid-connect)."""
    try:
        return fn()
    except OSError:
        return None


def diag(text):
    for line in text.splitlines():
        print("# " + line)


class Preload(harness.TestCase):

    def start(self, count=3, preload=True, pool=None, **kw):
        return start_probe(self, pool or probe_pool(max_children=count, preload=preload, **kw),
                           count)

    def test_the_app_is_imported_once_for_all_workers(self):
        log = os.path.join(self.tmp, "imports.log")
        os.chmod(self.tmp, 0o777)
        workers = self.start(count=3, env={"ISOPROBE_IMPORT_LOG": log})
        pre = preload_pid(self.pm, "probe")
        with open(log) as f:
            self.assertEqual(f.read().split(), [str(pre)])
        # workers answer with the module the preload process imported
        for _ in range(20):
            info = probe_info(self.sock)
            self.assertEqual(info["import_pid"], pre)
            self.assertIn(info["pid"], workers)

    def test_without_preload_each_worker_imports_the_app(self):
        log = os.path.join(self.tmp, "imports.log")
        os.chmod(self.tmp, 0o777)
        workers = self.start(count=3, preload=False, env={"ISOPROBE_IMPORT_LOG": log})
        self.assertIsNone(preload_pid(self.pm, "probe"))
        wait_until(lambda: len(open(log).read().split()) >= 3, 20, what="3 imports")
        with open(log) as f:
            self.assertEqual(sorted(int(x) for x in f.read().split()), sorted(workers))

    def test_workers_are_children_of_the_master_and_not_of_the_preload_process(self):
        workers = self.start(count=2)
        pre = preload_pid(self.pm, "probe")
        self.assertIsNotNone(pre)
        self.assertEqual(harness.children_of(pre), [])
        kids = [pid for pid, _ in harness.children_of(self.pm.pid)]
        for w in workers:
            self.assertIn(w, kids)
            with open("/proc/%d/cmdline" % w, "rb") as f:
                self.assertNotIn(b"--preload", f.read())

    def test_python_after_fork_state_in_each_worker(self):
        """PyOS_AfterFork_Child ran in each worker forked by the raw clone:
        random is reseeded (the preload process's state is not replayed),
        threading counts the worker's own threads and knows its main
        thread, and a request thread is not it."""
        import json as _json
        import threading as _threading
        workers = self.start(count=2, threads=1)
        results = []

        def slow():
            results.append(_json.loads(fcgi_get(self.sock, "/fork", "s=2")[1]))
        t = _threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)       # one worker is busy: the next request goes to the other
        other = _json.loads(fcgi_get(self.sock, "/fork", "s=0")[1])
        t.join(30)
        busy = results[0]
        self.assertNotEqual(busy["pid"], other["pid"])
        self.assertEqual({busy["pid"], other["pid"]}, set(workers))
        self.assertNotEqual(busy["first_random"], other["first_random"])
        for r in (busy, other):
            self.assertEqual(r["main_thread"], "MainThread")
            self.assertFalse(r["current_is_main"])
            # the request thread and the main thread: no thread of the preload process
            self.assertLessEqual(r["threads"], 2, r)

    def test_sigkilled_preloaded_worker_is_replaced(self):
        workers = self.start(count=2)
        pre = preload_pid(self.pm, "probe")
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        after = wait_until(lambda: (lambda w: w if len(w) == 2 and victim not in w else None)(
            serving_workers(self.pm, "probe", 2)), 10, what="a replacement worker")
        self.pm.wait_log(r"worker %d exited on signal 9 \(SIGKILL\)" % victim)
        # forked by the same preload process, which is still there
        self.assertEqual(preload_pid(self.pm, "probe"), pre)
        new = [w for w in after if w not in workers]
        self.assertEqual(len(new), 1)
        wait_until(lambda: probe_info(self.sock)["pid"] == new[0], 20, interval=0,
                   what="the replacement to answer")
        self.assertEqual(probe_info(self.sock)["import_pid"], pre)

    def test_killed_preload_process_is_restarted_and_workers_keep_serving(self):
        workers = self.start(count=2)
        pre = preload_pid(self.pm, "probe")
        os.kill(pre, signal.SIGKILL)
        new_pre = wait_until(lambda: (lambda p: p if p not in (None, pre) else None)(
            preload_pid(self.pm, "probe")), 10, what="a new preload process")
        self.pm.wait_log(r"preload process %d exited on signal 9" % pre)
        self.pm.wait_log(r"preload process %d loaded isoprobe:application" % new_pre)
        for w in workers:
            self.assertTrue(pid_alive(w), "worker %d died with its preload process" % w)
        for _ in range(10):
            self.assertIn(probe_info(self.sock)["pid"], workers)
        # a worker forked now comes from the new one
        os.kill(workers[0], signal.SIGKILL)
        wait_until(lambda: probe_info(self.sock)["import_pid"] == new_pre, 20, interval=0,
                   what="a worker forked by the new preload process")

    def test_import_failure_backs_off(self):
        pool = probe_pool(max_children=2, preload=True, env={"ISOPROBE_FAIL": "1"})
        self.pm = self.fcgi_pm([pool])
        time.sleep(4)
        log = self.pm.log()
        self.assertTrue(self.pm.proc.running())
        starts = len(__import__("re").findall(r"preload process \d+ started", log))
        fails = __import__("re").findall(
            r"preload process \d+ exited with status 3 after [\d.]+s \(the application "
            r"failed to import", log)
        self.assertIn("ISOPROBE_FAIL=1 (a broken deploy)", log)
        self.assertGreaterEqual(len(fails), 2, log)
        # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s: a handful of attempts in 4 s, not a spin
        self.assertLessEqual(starts, 8, log)
        self.assertRegex(log, r"next attempt in 0\.2s")
        self.assertNotRegex(log, r"worker \d+ started in slot")
        self.assertEqual([p for p in self.pm.worker_pids("probe")
                          if p != preload_pid(self.pm, "probe")], [])

    def test_app_that_starts_a_thread_at_import_is_refused(self):
        pool = probe_pool(max_children=1, preload=True, env={"ISOPROBE_THREAD": "1"})
        self.pm = self.fcgi_pm([pool])
        self.pm.wait_log(r"preload: the application started 1 thread while importing")
        self.pm.wait_log(r"preload process \d+ exited with status 3")
        self.assertNotRegex(self.pm.log(), r"worker \d+ started in slot")

    def test_sigusr2_loads_new_code_before_the_old_workers_stop(self):
        version = os.path.join(self.tmp, "version")
        with open(version, "w") as f:
            f.write("v1")
        workers = self.start(count=2, env={"ISOPROBE_VERSION_FILE": version})
        pre = preload_pid(self.pm, "probe")
        self.assertEqual(probe_info(self.sock)["version"], "v1")
        with open(version, "w") as f:
            f.write("v2")
        self.pm.signal(signal.SIGUSR2)
        self.pm.wait_log(r"replacing 2 workers gracefully with workers of the new preload")
        wait_until(lambda: not any(pid_alive(w) for w in workers), 20,
                   what="the old workers to exit")
        new_pre = preload_pid(self.pm, "probe")
        self.assertNotEqual(new_pre, pre)
        for _ in range(10):
            info = probe_info(self.sock)
            self.assertEqual(info["version"], "v2")
            self.assertEqual(info["import_pid"], new_pre)

    def test_broken_new_code_leaves_the_old_workers_serving(self):
        env_file = os.path.join(self.tmp, "version")
        with open(env_file, "w") as f:
            f.write("v1")
        workers = self.start(count=2, env={"ISOPROBE_VERSION_FILE": env_file})
        os.unlink(env_file)         # the new preload process cannot import
        self.pm.signal(signal.SIGUSR2)
        self.pm.wait_log(r"preload process \d+ exited with status 3")
        self.pm.wait_log(r"the old workers keep serving")
        for _ in range(10):
            self.assertEqual(probe_info(self.sock)["version"], "v1")
        for w in workers:
            self.assertTrue(pid_alive(w))

    def test_max_requests_recycles_preloaded_workers_with_threads(self):
        workers = self.start(count=1, max_requests=5, threads=4)
        pre = preload_pid(self.pm, "probe")
        self.assertGreaterEqual(threads_of(workers[0]), 5)     # main + 4 request threads
        pids = set()
        for _ in range(16):
            info = wait_until(lambda: _try(lambda: probe_info(self.sock)), 20,
                              what="an answer")
            self.assertEqual(info["import_pid"], pre)
            pids.add(info["pid"])
        self.assertGreaterEqual(len(pids), 3, "max_requests 5, 16 requests: %r" % pids)
        # at least 5: requests other threads had already taken may finish too
        m = self.pm.wait_log(r"worker %d exited with status 0 .* (\d+) requests" % workers[0])
        self.assertGreaterEqual(int(m.group(1)), 5)
        self.assertEqual(preload_pid(self.pm, "probe"), pre)

    def test_ondemand_forks_from_the_preload_process_on_the_first_connection(self):
        pool = probe_pool(max_children=2, preload=True, pm=harness.Raw("ondemand"),
                          process_idle_timeout=harness.Raw("2s"))
        self.pm = self.fcgi_pm([pool])
        sock = self.pm.socket("probe")
        pre = wait_until(lambda: preload_pid(self.pm, "probe"), 20, what="the preload process")
        self.pm.wait_log(r"preload process %d loaded" % pre)
        self.assertEqual([p for p in self.pm.worker_pids("probe") if p != pre], [])
        info = probe_info(sock)
        self.assertEqual(info["import_pid"], pre)
        self.assertIn(info["pid"], self.pm.worker_pids("probe"))
        # idle past process_idle_timeout: back to no worker, the preload process stays
        wait_until(lambda: [p for p in self.pm.worker_pids("probe") if p != pre] == [], 20,
                   what="ondemand to stop the idle worker")
        self.assertEqual(preload_pid(self.pm, "probe"), pre)
        self.assertEqual(probe_info(sock)["import_pid"], pre)

    def test_a_lying_preload_process_cannot_make_the_master_signal_others(self):
        """The preload process runs the application: a pid it reports that
        is not a worker it forked (here: an unrelated process of the test)
        is refused, the preload process killed, and that process untouched."""
        fake = os.path.join(self.tmp, "lying-worker")
        with open(fake, "w") as f:
            f.write("#!/usr/bin/python3\n"
                    "import os, socket, sys\n"
                    "fd = int([a for a in sys.argv if a.startswith('--preload=')][0][10:])\n"
                    "s = socket.socket(fileno=fd)\n"
                    "s.send(b'ready')\n"
                    "while True:\n"
                    "    cmd = s.recv(128)\n"
                    "    if not cmd:\n"
                    "        sys.exit(0)\n"
                    "    s.send(b'pid %d' % int(os.environ.get('LIE_PID', '1')))\n")
        os.chmod(fake, 0o755)
        victim = harness.Proc(["/bin/sleep", "60"], os.path.join(self.tmp, "victim.log"),
                              "victim")
        pool = probe_pool(max_children=1, preload=True, env={"LIE_PID": str(victim.pid)})
        self.pm = self.fcgi_pm([pool], main_options={"worker_binary": fake})
        self.pm.wait_log(r"preload process \d+ answered pid %d, which is not a worker "
                         r"it forked; killing it" % victim.pid)
        self.pm.wait_log(r"preload process \d+ exited on signal 9")
        self.pm.stop()
        self.assertTrue(victim.running(), "the master signalled a process it does not own")
        victim.stop()

    def test_reload_of_a_changed_pool_replaces_its_preload_process(self):
        workers = self.start(count=2, env={"SITE_VERSION": "one"})
        pre = preload_pid(self.pm, "probe")
        self.pool.opts["env"] = ["SITE_VERSION=two"]
        self.pm.write_config()
        self.pm.signal(signal.SIGHUP)
        wait_until(lambda: probe_info(self.sock)["environ"].get("SITE_VERSION") == "two",
                   30, what="workers of the new configuration")
        # the old pool's workers and its preload process go; it is closed
        wait_until(lambda: not any(pid_alive(p) for p in workers + [pre]), 30,
                   what="the old workers and preload process to exit")
        self.pm.wait_log(r"drained: .*closed")
        new_pre = preload_pid(self.pm, "probe")
        self.assertNotIn(new_pre, (None, pre))
        self.assertEqual(probe_info(self.sock)["import_pid"], new_pre)

    def test_a_new_preloaded_worker_is_ready_quickly(self):
        """Measured and printed (kill -> replacement's request threads
        running), with and without preload; not asserted."""
        results = {}
        for preload in (False, True):
            tmp = harness.make_tmpdir("ready")
            root = os.path.join(harness.EXAMPLES, "sites", "catalog")
            pool = django_pool("catalog", max_children=2, preload=preload)
            pm = self._own(harness.FcgiPm(tmp, [pool])).start()
            workers = serving_workers(pm, "catalog", 2)
            wait_until(lambda: all(threads_of(w) >= 2 for w in workers), 30,
                       what="workers ready")
            time.sleep(11)      # past POOL_HEALTHY_MS: the replacement is not delayed
            t0 = time.monotonic()
            os.kill(workers[0], signal.SIGKILL)
            new = wait_until(lambda: [w for w in serving_workers(pm, "catalog", 2)
                                      if w not in workers], 20, interval=0.002,
                             what="the replacement")[0]
            t1 = time.monotonic()
            wait_until(lambda: threads_of(new) >= 2, 30, interval=0.002,
                       what="the replacement's request thread")
            t2 = time.monotonic()
            results[preload] = (t1 - t0, t2 - t1)
            pm.stop()
            del root
        diag("replacement worker, catalog site: kill -> forked, forked -> ready")
        for preload, (a, b) in results.items():
            diag("  preload = %-3s  %.3fs  %.3fs" % ("yes" if preload else "no", a, b))
        self.assertIn(True, results)


class PreloadMemory(harness.TestCase):
    """PSS of the example Django site's workers (catalog: Django + lxml)."""

    WORKERS = 4
    REQUESTS = 40

    def measure(self, preload):
        tmp = harness.make_tmpdir("pss")
        pool = django_pool("catalog", max_children=self.WORKERS, preload=preload)
        pm = self._own(harness.FcgiPm(tmp, [pool])).start()
        sock = pm.socket("catalog")
        workers = serving_workers(pm, "catalog", self.WORKERS)
        wait_until(lambda: all(threads_of(w) >= 2 for w in workers), 60,
                   what="workers ready")
        for i in range(self.REQUESTS):
            for path in ("/", "/products.xml", "/whoami/"):
                status, body = fcgi_get_host(sock, path)
                self.assertEqual(status, 200, body[:300])
        time.sleep(0.5)
        pss = {w: pss_kb(w) for w in workers}
        uss = {w: uss_kb(w) for w in workers}
        pre = preload_pid(pm, "catalog")
        pre_pss = pss_kb(pre) if pre else None
        pm.stop()
        return pss, uss, pre_pss

    def test_preloaded_workers_share_memory(self):
        plain, plain_uss, _ = self.measure(False)
        shared, shared_uss, pre = self.measure(True)
        mean = lambda d: sum(d.values()) / len(d)
        ratio = mean(shared) / mean(plain)
        marginal = mean(shared_uss) / mean(plain)
        diag("memory per worker, catalog site (Django + lxml), %d workers, after "
             "%d requests x 3 pages:" % (self.WORKERS, self.REQUESTS))
        diag("  preload = no : PSS %s KB (mean %.0f), USS mean %.0f KB"
             % (sorted(plain.values()), mean(plain), mean(plain_uss)))
        diag("  preload = yes: PSS %s KB (mean %.0f), USS mean %.0f KB; preload "
             "process PSS %s KB" % (sorted(shared.values()), mean(shared),
                                    mean(shared_uss), pre))
        diag("  PSS ratio %.2f; each worker beyond the first (its USS) costs %.2f of "
             "a worker without preload" % (ratio, marginal))
        # measured 0.52-0.54 and 0.37 (the target: < 0.40); the
        # bounds leave room for noise, and still fail if sharing breaks
        self.assertLess(ratio, 0.7)
        self.assertLess(marginal, 0.5)


def fcgi_get_host(sock, path):
    """GET PATH with the Host header Django's ALLOWED_HOSTS accepts."""
    import fcgiclient as fc
    import re
    params = {"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
              "REQUEST_METHOD": "GET", "CONTENT_LENGTH": "0", "HTTP_HOST": "localhost",
              "SERVER_NAME": "localhost", "SERVER_PORT": "80",
              "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
              "REQUEST_URI": path}
    s = fc.connect(sock, timeout=30)
    try:
        fc.request(s, params=params)
        out, _, _, _ = fc.response(s)
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.match(rb"Status: (\d+)", head)
    return (int(m.group(1)) if m else 200), body


if __name__ == "__main__":
    harness.main()
