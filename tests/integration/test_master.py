"""The master's mechanism with tests/integration/fake-worker standing in for
fcgi-pm-worker (no Python, no FastCGI): fd plumbing, log capture, backoff,
graceful restart, the stop bound, and a second instance refused."""
import os
import signal
import subprocess
import time

import harness
from harness import Pool, children_of, pid_alive, wait_until

FAKE = os.path.join(harness.SRC, "tests", "integration", "fake-worker")


def fake_pool(name, mode="serve", max_children=2, env=None, **kw):
    e = {"FAKE_WORKER": mode}
    e.update(env or {})
    return Pool(name, "fake:app", env=e, max_children=max_children, **kw)


class Master(harness.TestCase):

    def start(self, pools, **main):
        opts = {"worker_binary": FAKE}
        opts.update(main)
        return self.fcgi_pm(pools, main_options=opts)

    def workers(self, pm, pool):
        out = []
        for pid, argv in children_of(pm.pid):
            if "--pool" in argv and argv[argv.index("--pool") + 1] == pool:
                out.append(pid)
        return sorted(out)

    def wait_workers(self, pm, pool, n, timeout=10):
        return wait_until(lambda: (lambda w: w if len(w) == n else None)(
            self.workers(pm, pool)), timeout, what="%d workers of %s" % (n, pool))

    def test_worker_gets_socket_on_fd0_pipe_on_1_2_scoreboard_on_3_and_nothing_else(self):
        pm = self.start([fake_pool("fds", "env", max_children=1, env={"ONLY": "this"})])
        pid = self.wait_workers(pm, "fds", 1)[0]
        log = pm.wait_log(r"env .*\n", 10) and pm.log()
        fds = {}
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                fds[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                pass
        self.assertTrue(fds[0].startswith("socket:"), fds)
        self.assertTrue(fds[1].startswith("pipe:"), fds)
        self.assertEqual(fds[1], fds[2])
        self.assertTrue(fds[3].startswith("/memfd:fcgi-pm scoreboard fds"), fds)
        # the shell keeps the script open on fd 10; anything else leaked from the master
        self.assertEqual({k for k, v in fds.items() if k > 3 and v != FAKE}, set(), fds)
        # the master's end of that pipe is not left in the worker
        self.assertEqual(list(fds.values()).count(fds[1]), 2, fds)
        # clear_env (the default): the pool's env and a PATH, nothing of ours
        self.assertRegex(log, r"env .*ONLY=this")
        self.assertRegex(log, r"env .*PATH=/usr/local/bin:/usr/bin:/bin")
        self.assertNotRegex(log, r"env .*FCGI_PM_SOURCE_ROOT")

    def test_worker_log_lines_keep_their_level_and_app_output_follows_catch_workers_output(self):
        pm = self.start([fake_pool("loud", "chatty", max_children=1),
                         fake_pool("quiet", "chatty", max_children=1,
                                   catch_workers_output=False)])
        loud = self.wait_workers(pm, "loud", 1)[0]
        quiet = self.wait_workers(pm, "quiet", 1)[0]
        pm.wait_log(r"WARNING: \[pool quiet\] pid %d: a worker warning" % quiet)
        pm.wait_log(r"WARNING: \[pool loud\] pid %d: a worker warning" % loud)
        pm.wait_log(r"NOTICE: \[pool loud\] pid %d: application output on stdout" % loud)
        pm.wait_log(r"NOTICE: \[pool loud\] pid %d: application output on stderr" % loud)
        time.sleep(0.3)
        self.assertNotRegex(pm.log(), r"\[pool quiet\] pid %d: application output" % quiet)

    def test_failing_pool_backs_off_and_the_other_pool_is_untouched(self):
        pm = self.start([fake_pool("broken", "exit:3", max_children=4),
                         fake_pool("fine", max_children=2)])
        fine = self.wait_workers(pm, "fine", 2)
        time.sleep(3.5)
        log = pm.log()
        exits = log.count("exited with status 3")
        # 4 at start, then one probe per step: 0.1 0.2 0.4 0.8 1.6 s
        self.assertLessEqual(exits, 10, log[-3000:])
        self.assertGreaterEqual(exits, 6, log[-3000:])
        for step in ("0.1s", "0.2s", "0.4s", "0.8s"):
            self.assertIn("next attempt in %s" % step, log)
        self.assertEqual(log.count("next attempt in 0.1s"), 1, "a batch is one step")
        self.assertIn("the application failed to import", log)
        self.assertEqual(self.workers(pm, "fine"), fine)

    def test_usr2_replaces_every_worker_while_the_old_ones_finish(self):
        pm = self.start([fake_pool("p", env={"FAKE_QUIT_DELAY": "1"})])
        old = self.wait_workers(pm, "p", 2)
        pm.signal(signal.SIGUSR2)
        # the replacements start at once, next to the old ones still finishing
        both = wait_until(lambda: (lambda w: w if len(w) == 4 else None)(
            self.workers(pm, "p")), 5, what="old and new workers side by side")
        self.assertEqual(set(old) & set(both), set(old))
        new = wait_until(lambda: (lambda w: w if len(w) == 2 and not set(w) & set(old)
                                  else None)(self.workers(pm, "p")), 10,
                         what="only new workers")
        self.assertEqual(len(new), 2)
        pm.wait_log(r"restarting 2 workers gracefully")
        self.assertNotIn("next attempt", pm.log())

    def test_hup_with_an_unchanged_configuration_keeps_the_workers(self):
        # SIGHUP reloads the configuration (test_reload.py): nothing changed, nothing moves
        pm = self.start([fake_pool("p", max_children=1)])
        old = self.wait_workers(pm, "p", 1)
        pm.signal(signal.SIGHUP)
        pm.wait_log(r"reload done")
        time.sleep(0.5)
        self.assertEqual(self.workers(pm, "p"), old)
        self.assertNotIn("restarting", pm.log())

    def test_sigquit_kills_a_stubborn_worker_after_process_control_timeout(self):
        pm = self.start([fake_pool("stuck", "stubborn", max_children=1)],
                        process_control_timeout=harness.Raw("1s"))
        w = self.wait_workers(pm, "stuck", 1)[0]
        t0 = time.monotonic()
        pm.signal(signal.SIGQUIT)
        rc = pm.wait(10)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 5)
        self.assertFalse(pid_alive(w))
        self.assertRegex(pm.log(), r"worker %d still running 1\.\ds after SIGQUIT; "
                         r"killing it \(process_control_timeout\)" % w)
        self.assertFalse(os.path.exists(pm.socket("stuck")))
        self.assertFalse(os.path.exists(pm.pid_file))

    def test_crashes_past_emergency_restart_threshold_restart_every_pool(self):
        pm = self.start([fake_pool("crashy", "segv:0.3", max_children=3),
                         fake_pool("calm", max_children=1)],
                        emergency_restart_threshold=3,
                        emergency_restart_interval=harness.Raw("10s"))
        calm = self.wait_workers(pm, "calm", 1)
        pm.wait_log(r"3 workers crashed within \d+\.\ds: restarting every pool "
                    r"gracefully \(emergency_restart_threshold 3", 10)
        wait_until(lambda: (lambda w: w if w and w != calm else None)(
            self.workers(pm, "calm")), 10, what="the calm pool restarted")
        time.sleep(2)
        log = pm.log()
        self.assertRegex(log, r"exited on signal 11 \(SIGSEGV\)")
        # the crash loop stays in backoff: no spawn storm after the restart
        self.assertLess(log.count("(SIGSEGV)"), 12, log[-3000:])

    def test_second_instance_is_refused_and_leaves_the_first_alone(self):
        pm = self.start([fake_pool("p", max_children=1)])
        self.wait_workers(pm, "p", 1)
        p = subprocess.run([harness.FCGI_PM, "-F", "-c", pm.conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = p.stdout.decode()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("another process is listening on it", out)
        self.assertTrue(pm.proc.running())
        self.assertTrue(harness.can_connect(pm.socket("p")))
        with open(pm.pid_file) as f:
            self.assertEqual(int(f.read()), pm.pid)


if __name__ == "__main__":
    harness.main()
