"""Isolation per site, end to end and as root: each pool's workers run as its
user and group with only that user's groups, with its umask, working
directory, resource limits, environment (clear_env on and off), virtualenv
(a real one, made by /usr/bin/python3 -m venv) and python_path; what they
print reaches the pool's log with catch_workers_output; a pool that would
run as root is refused unless allow_root.  Every check is made twice: with
preload = no and with preload = yes (workers forked from the preload process
must be isolated exactly the same way)."""
import grp
import json
import os
import pwd
import re
import subprocess

import harness
import fcgiclient as fc
from harness import Pool, wait_until

PROBE_DIR = os.path.join(harness.APPS, "isolation")
USER, GROUP = "nobody", "nogroup"
OTHER_GROUP = "daemon"          # a group nobody is not a member of


def fcgi_get(sock, path="/info", query="", timeout=20):
    """One FastCGI GET straight to a pool's socket; returns (status, body)."""
    params = {"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
              "REQUEST_METHOD": "GET", "CONTENT_LENGTH": "0",
              "SERVER_NAME": "localhost", "SERVER_PORT": "80",
              "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
              "REQUEST_URI": path + ("?" + query if query else "")}
    s = fc.connect(sock, timeout=timeout)
    try:
        fc.request(s, params=params)
        out, _, _, _ = fc.response(s)
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.match(rb"Status: (\d+)", head)
    return (int(m.group(1)) if m else 200), body


def probe_info(sock, **kw):
    status, body = fcgi_get(sock, "/info", **kw)
    if status != 200:
        raise AssertionError("GET /info: %d %r" % (status, body[:500]))
    return json.loads(body)


def probe_pool(name="probe", **kw):
    """A pool serving tests/apps/isolation/isoprobe.py."""
    pp = [PROBE_DIR] + list(kw.pop("python_path", []))
    return Pool(name, "isoprobe:application", python_path=pp, **kw)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_limits(pid):
    """/proc/PID/limits as {name: (soft, hard)}."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        for line in f.readlines()[1:]:
            m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
            if m:
                out[m.group(1).strip()] = (m.group(2), m.group(3))
    return out


def proc_environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(e.decode("utf-8", "replace").split("=", 1)
                    for e in f.read().split(b"\0") if b"=" in e)


def preload_pid(pm, pool):
    """The pool's preload process (argv has --preload=FD), or None."""
    for pid, argv in harness.children_of(pm.pid):
        if any(a.startswith("--preload") for a in argv) and \
                ("--pool" in argv and argv[argv.index("--pool") + 1] == pool):
            return pid
    return None


def serving_workers(pm, pool, count, timeout=30):
    """Wait for COUNT workers of POOL (not counting the preload process); their pids."""
    def ready():
        pre = preload_pid(pm, pool)
        w = [p for p in pm.worker_pids(pool) if p != pre]
        return w if len(w) >= count else None
    return wait_until(ready, timeout, what="%d workers of %s" % (count, pool))


def start_probe(case, pool, count):
    """Run POOL under a new fcgi-pm for test CASE (sets case.pool, .pm, .sock
    and .workers); returns once COUNT workers are up and the pool answers."""
    case.pool = pool
    case.pm = case.fcgi_pm([pool])
    case.sock = case.pm.socket(pool.name)
    case.workers = serving_workers(case.pm, pool.name, count)

    def answers():
        try:
            return fcgi_get(case.sock, "/info")[0] == 200
        except OSError:
            return False
    wait_until(answers, 30, what="the pool to answer")
    return case.workers


class Isolation(harness.TestCase):
    PRELOAD = False

    @classmethod
    def setUpClass(cls):
        if not harness.IS_ROOT:
            raise harness.unittest.SkipTest("needs root (workers change user)")
        try:
            cls.uid = pwd.getpwnam(USER).pw_uid
            cls.gid = grp.getgrnam(GROUP).gr_gid
            cls.other_gid = grp.getgrnam(OTHER_GROUP).gr_gid
        except KeyError as e:
            raise harness.unittest.SkipTest("no such user or group: %s" % e)

    def start(self, count=2, **kw):
        kw.setdefault("user", USER)
        kw.setdefault("group", GROUP)
        kw.setdefault("allow_root", None)
        kw.setdefault("max_children", count)
        kw["preload"] = self.PRELOAD
        return start_probe(self, probe_pool(**kw), count)

    def pids(self):
        """The pool's processes: its workers and, with preload, the preload process."""
        pids = list(self.workers)
        if self.PRELOAD:
            pre = preload_pid(self.pm, self.pool.name)
            self.assertIsNotNone(pre, "no preload process among %r" %
                                 harness.children_of(self.pm.pid))
            pids.append(pre)
        return pids

    def test_workers_run_as_the_pool_user_and_group_with_no_other_groups(self):
        self.start()
        for pid in self.pids():
            st = proc_status(pid)
            self.assertEqual([int(x) for x in st["Uid"].split()], [self.uid] * 4, pid)
            self.assertEqual([int(x) for x in st["Gid"].split()], [self.gid] * 4, pid)
            groups = {int(x) for x in st["Groups"].split()}
            # the master's (root's) groups are dropped; nobody belongs to no other group
            self.assertTrue(groups <= {self.gid}, "pid %d groups %r" % (pid, groups))
        info = probe_info(self.sock)
        self.assertEqual(info["uid"], [self.uid] * 4)

    def test_group_other_than_the_users_own(self):
        self.start(group=OTHER_GROUP)
        for pid in self.pids():
            st = proc_status(pid)
            self.assertEqual([int(x) for x in st["Gid"].split()], [self.other_gid] * 4)
            self.assertNotIn(0, [int(x) for x in st["Groups"].split()])

    def test_numeric_user_and_group_even_without_a_passwd_entry(self):
        self.start(user=str(self.uid), group=str(self.gid))
        for pid in self.pids():
            self.assertEqual(proc_status(pid)["Uid"].split()[0], str(self.uid))
        self.pm.stop()
        self.start(user="4242", group="4243")
        for pid in self.pids():
            st = proc_status(pid)
            self.assertEqual(st["Uid"].split(), ["4242"] * 4)
            self.assertEqual(st["Gid"].split(), ["4243"] * 4)
            self.assertEqual(st["Groups"].split(), [])

    def test_umask_and_chdir(self):
        site = os.path.join(self.tmp, "site")
        os.makedirs(site)
        self.start(umask=harness.Raw("0027"), chdir=site)
        for pid in self.pids():
            self.assertEqual(proc_status(pid)["Umask"], "0027", pid)
            self.assertEqual(os.readlink("/proc/%d/cwd" % pid), site, pid)
        info = probe_info(self.sock)
        self.assertEqual(info["umask"], 0o027)
        self.assertEqual(info["cwd"], site)

    def test_rlimits(self):
        self.start(rlimit_files=1000, rlimit_core=0)
        for pid in self.pids():
            lim = proc_limits(pid)
            self.assertEqual(lim["Max open files"], ("1000", "1000"), pid)
            self.assertEqual(lim["Max core file size"], ("0", "0"), pid)
        info = probe_info(self.sock)
        self.assertEqual(info["nofile"], [1000, 1000])
        self.assertEqual(info["core"], [0, 0])

    def test_rlimit_core_unlimited(self):
        self.start(rlimit_core=harness.Raw("unlimited"))
        for pid in self.pids():
            soft, hard = proc_limits(pid)["Max core file size"]
            if harness.SANITIZE:    # ASan sets every soft core limit to 0 (disable_coredump)
                soft = hard
            self.assertEqual((soft, hard), ("unlimited", "unlimited"), pid)

    def test_clear_env_keeps_only_the_pool_env(self):
        os.environ["FCGI_PM_ISO_MARKER"] = "from-the-master"
        try:
            self.start(env={"SITE_SETTING": "a=b c"}, clear_env=True)
        finally:
            del os.environ["FCGI_PM_ISO_MARKER"]
        for pid in self.pids():
            env = proc_environ(pid)
            self.assertNotIn("FCGI_PM_ISO_MARKER", env)
            self.assertEqual(env.get("SITE_SETTING"), "a=b c")
        env = probe_info(self.sock)["environ"]
        self.assertNotIn("FCGI_PM_ISO_MARKER", env)
        self.assertEqual(env.get("SITE_SETTING"), "a=b c")
        self.assertIn("PATH", env)

    def test_without_clear_env_the_master_environment_is_inherited(self):
        os.environ["FCGI_PM_ISO_MARKER"] = "from-the-master"
        try:
            self.start(env={"SITE_SETTING": "x"}, clear_env=False)
        finally:
            del os.environ["FCGI_PM_ISO_MARKER"]
        env = probe_info(self.sock)["environ"]
        self.assertEqual(env.get("FCGI_PM_ISO_MARKER"), "from-the-master")
        self.assertEqual(env.get("SITE_SETTING"), "x")

    def test_virtualenv_package_is_importable(self):
        venv = os.path.join(self.tmp, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv],
                       check=True, timeout=120, stdout=subprocess.DEVNULL)
        site = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, timeout=60, stdout=subprocess.PIPE).stdout.decode().strip()
        pkg = os.path.join(site, "fcgipm_venv_only")
        os.makedirs(pkg)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write("VALUE = 'from the venv'\n")
        self.start(virtualenv=venv)
        info = probe_info(self.sock)
        self.assertEqual(os.path.realpath(info["prefix"]), os.path.realpath(venv))
        self.assertIn(site, info["sys_path"])
        status, body = fcgi_get(self.sock, "/import", "name=fcgipm_venv_only")
        res = json.loads(body)
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["value"], "from the venv")
        self.assertTrue(res["file"].startswith(site), res)

    def test_python_path_entries_come_first(self):
        extra = os.path.join(self.tmp, "lib")
        os.makedirs(extra)
        with open(os.path.join(extra, "fcgipm_pp_mod.py"), "w") as f:
            f.write("VALUE = 'from python_path'\n")
        self.start(python_path=[extra])
        info = probe_info(self.sock)
        self.assertEqual(info["sys_path"][:2], [PROBE_DIR, extra])
        res = json.loads(fcgi_get(self.sock, "/import", "name=fcgipm_pp_mod")[1])
        self.assertEqual(res.get("value"), "from python_path", res)

    def test_catch_workers_output_logs_each_line_with_pool_and_pid(self):
        self.start(count=1, catch_workers_output=True)
        self.assertEqual(fcgi_get(self.sock, "/print", "text=hello-from-the-app")[0], 200)
        pid = probe_info(self.sock)["pid"]
        self.pm.wait_log(r"\[pool probe\] pid %d: hello-from-the-app$" % pid)
        self.pm.wait_log(r"\[pool probe\] pid %d: stderr: hello-from-the-app$" % pid)

    def test_without_catch_workers_output_app_output_is_dropped(self):
        self.start(count=1, catch_workers_output=False)
        self.assertEqual(fcgi_get(self.sock, "/print", "text=dropped-line")[0], 200)
        # a request after it: the worker wrote the line before answering this
        probe_info(self.sock)
        self.pm.stop()
        self.assertNotIn("dropped-line", self.pm.log())


class IsolationPreload(Isolation):
    PRELOAD = True


class RootIsRefused(harness.TestCase):

    @classmethod
    def setUpClass(cls):
        if not harness.IS_ROOT:
            raise harness.unittest.SkipTest("needs root (the refusal applies to a root master)")

    def check(self, pool):
        pm = harness.FcgiPm(self.tmp, [pool])
        status, out = harness.fcgi_pm_check(pm.conf)
        return status, out, pm

    def test_user_root_without_allow_root_is_refused(self):
        status, out, pm = self.check(probe_pool(user="root", allow_root=False))
        self.assertEqual(status, harness.EX_CONFIG, out)
        self.assertIn("allow_root", out)
        # and the master refuses to start, not only -t
        p = subprocess.run([harness.FCGI_PM, "-F", "-c", pm.conf], timeout=20,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, harness.EX_CONFIG, p.stdout)

    def test_no_user_as_root_without_allow_root_is_refused(self):
        status, out, _ = self.check(probe_pool(allow_root=False))
        self.assertEqual(status, harness.EX_CONFIG, out)
        self.assertIn("allow_root", out)

    def test_allow_root_runs_workers_as_root(self):
        pool = probe_pool(user="root", allow_root=True, max_children=1)
        pm = self.fcgi_pm([pool])
        pids = serving_workers(pm, "probe", 1)
        self.assertEqual(proc_status(pids[0])["Uid"].split()[0], "0")


if __name__ == "__main__":
    harness.main()
