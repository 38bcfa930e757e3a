"""fcgi-pm as a system service: sd_notify messages on a NOTIFY_SOCKET the
test binds (READY once the socket accepts, STATUS with worker counts,
RELOADING + READY on HUP, STOPPING on TERM and QUIT, MAINPID after -D),
socket activation (a listening socket the test made, passed as fd 3 with
LISTEN_FDS and LISTEN_PID as systemd does), `meson install --destdir`,
`--version` / `--help` of both programs, the man pages, and
`systemd-analyze verify` of etc/fcgi-pm.service."""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import harness
import fcgiclient as fc
from harness import FcgiPm, Raw, hello_pool, free_port, wait_until

READY_TIMEOUT = 30          # 2 cores shared by many test runs: generous bounds


class Proc(harness.Proc):
    """harness.Proc with ENV and an optional socket FD passed as fd 3
    (the child's other fds are closed: Python opens them non-inheritable)."""

    def __init__(self, argv, log_path, name, env, fd=None):
        self.name = name
        self.log_path = log_path
        self.argv = argv
        self.logf = open(log_path, "ab")

        def pre():
            harness._set_pdeathsig()
            if fd == 3:
                os.set_inheritable(3, True)
            elif fd is not None:
                os.dup2(fd, 3)      # dup2 clears CLOEXEC: fd 3 reaches the exec

        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=env, close_fds=False,
                                  preexec_fn=pre)
        self.pid = self.p.pid
        harness._register(self)


class ServicePm(FcgiPm):
    """fcgi-pm -F started as systemd would: extra environment (NOTIFY_SOCKET,
    LISTEN_FDS), and with LISTEN_FD a socket on fd 3 and LISTEN_PID set to
    fcgi-pm's own pid by an exec wrapper."""

    def start(self, wait=True, timeout=READY_TIMEOUT, env=None, listen_fd=None):
        e = dict(os.environ)
        e.update(env or {})
        argv = [harness.FCGI_PM, "-F", "-c", self.conf]
        if listen_fd is not None:
            e.setdefault("LISTEN_FDS", "1")
            argv = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"] + argv
        self.proc = Proc(argv, self.log_path, "fcgi-pm", e, fd=listen_fd)
        harness._unregister(self.proc)
        harness._register(self)
        if wait:
            self.wait_ready(timeout)
        return self


class Notifications:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, tmp, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "fcgipm-test-%d-%s" % (os.getpid(), os.path.basename(tmp))
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(tmp, "notify.sock")
            self.sock.bind(self.address)
        self.seen = []

    def next(self, timeout=READY_TIMEOUT):
        """The next message as a dict (KEY -> VALUE); raise on timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise harness.HarnessError("no sd_notify message within %ss; got so far: %r"
                                       % (timeout, self.seen))
        self.seen.append(data)
        return dict(line.split("=", 1) for line in data.split("\n") if "=" in line)

    def wait_for(self, key, timeout=READY_TIMEOUT, skip=("STATUS",)):
        """Read messages until one has KEY; fail on a message with a key not
        in SKIP before it (an out-of-order state change).  Returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise harness.HarnessError("no %s within %ss; got %r" % (key, timeout, self.seen))
            m = self.next(left)
            if key in m:
                return m
            unexpected = set(m) - set(skip)
            if unexpected:
                raise AssertionError("%s before %s: %r" % (sorted(unexpected), key, self.seen))

    def close(self):
        self.sock.close()


def fcgi_get(addr, path="/", timeout=10):
    """GET PATH straight over FastCGI; returns (status line or '200', body bytes)."""
    s = fc.connect(addr, timeout=timeout)
    try:
        fc.request(s, params={"REQUEST_METHOD": "GET", "PATH_INFO": path,
                              "SCRIPT_NAME": "", "REQUEST_URI": path})
        out, err, app, proto = fc.response(s)
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    m = re.search(rb"^Status: (\d+)", head, re.M)
    return (m.group(1).decode() if m else "200"), body


def wait_fcgi_ok(addr, timeout=READY_TIMEOUT):
    """Retry a GET until a worker answers it 200 (bounded); return the body."""
    def ok():
        try:
            status, body = fcgi_get(addr)
        except (OSError, EOFError, ValueError):
            return None
        return body if status == "200" else None
    return wait_until(ok, timeout, interval=0.2, what="a 200 from the pool over FastCGI")


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(e.decode("latin-1").split("=", 1) for e in f.read().split(b"\0") if b"=" in e)


class Notify(harness.TestCase):

    def start(self, notify, pools=None, **kw):
        pm = self._own(ServicePm(self.tmp, pools or [hello_pool()], **kw))
        pm.start(wait=False, env={"NOTIFY_SOCKET": notify.address})
        return pm

    def test_ready_comes_after_the_socket_accepts_then_status_counts_workers(self):
        n = Notifications(self.tmp)
        pm = self.start(n)
        m = n.next()
        self.assertEqual(m.get("READY"), "1", n.seen)
        self.assertTrue(harness.can_connect(pm.address("hello")),
                        "READY=1 sent before the pool socket accepts")
        self.assertRegex(m.get("STATUS", ""), r"^1 pool, 2 workers \(")
        # the tick updates STATUS once the workers have loaded the app
        deadline = time.monotonic() + READY_TIMEOUT
        while not re.match(r"1 pool, 2 workers \(2 idle, 0 busy\)$", m.get("STATUS", "")):
            self.assertNotIn("STOPPING", m)
            m = n.next(max(0.1, deadline - time.monotonic()))
        wait_fcgi_ok(pm.address("hello"))
        n.close()

    def test_status_counts_a_busy_worker(self):
        n = Notifications(self.tmp)
        pm = self.start(n)
        n.wait_for("READY")
        wait_fcgi_ok(pm.address("hello"))
        s = fc.connect(pm.address("hello"), timeout=30)
        fc.request(s, params={"REQUEST_METHOD": "GET", "PATH_INFO": "/slow",
                              "QUERY_STRING": "s=15", "SCRIPT_NAME": ""})
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                m = n.next(max(0.1, deadline - time.monotonic()))
                if m.get("STATUS") == "1 pool, 2 workers (1 idle, 1 busy)":
                    break
        finally:
            s.close()

    def test_hup_sends_reloading_then_ready(self):
        n = Notifications(self.tmp)
        pm = self.start(n)
        n.wait_for("READY")
        pm.wait_workers("hello")
        pm.signal(signal.SIGHUP)
        m = n.wait_for("RELOADING")
        self.assertEqual(m["RELOADING"], "1")
        self.assertRegex(m.get("MONOTONIC_USEC", ""), r"^\d+$")
        self.assertNotIn("READY", m)
        m = n.wait_for("READY")
        self.assertEqual(m["READY"], "1")
        wait_fcgi_ok(pm.address("hello"))
        self.assertTrue(pm.proc.running())

    def test_term_sends_stopping(self):
        n = Notifications(self.tmp)
        pm = self.start(n)
        n.wait_for("READY")
        pm.signal(signal.SIGTERM)
        m = n.wait_for("STOPPING")
        self.assertEqual(m["STOPPING"], "1")
        self.assertEqual(pm.wait(20), 0)

    def test_quit_sends_stopping(self):
        n = Notifications(self.tmp)
        pm = self.start(n)
        n.wait_for("READY")
        pm.signal(signal.SIGQUIT)
        m = n.wait_for("STOPPING")
        self.assertIn("gracefully", m.get("STATUS", ""))
        self.assertEqual(pm.wait(30), 0)

    def test_cli_reload_and_stop_notify_too(self):
        n = Notifications(self.tmp)
        status = os.path.join(self.tmp, "status.sock")
        pm = self.start(n, main_options={"status_socket": status})
        n.wait_for("READY")
        wait_until(lambda: os.path.exists(status), READY_TIMEOUT, what="the status socket")
        p = subprocess.run([harness.FCGI_PM, "-c", pm.conf, "reload"], timeout=90,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout)
        n.wait_for("RELOADING")
        n.wait_for("READY")
        p = subprocess.run([harness.FCGI_PM, "-c", pm.conf, "stop", "--graceful"], timeout=90,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("gracefully", n.wait_for("STOPPING").get("STATUS", ""))
        self.assertEqual(pm.wait(30), 0)

    def test_abstract_notify_socket(self):
        n = Notifications(self.tmp, abstract=True)
        pm = self.start(n)
        self.assertEqual(n.wait_for("READY")["READY"], "1")
        pm.signal(signal.SIGTERM)
        n.wait_for("STOPPING")
        self.assertEqual(pm.wait(20), 0)

    def test_workers_do_not_inherit_notify_socket(self):
        n = Notifications(self.tmp)
        pm = self.start(n, [hello_pool(clear_env=False)])
        n.wait_for("READY")
        workers = pm.wait_workers("hello")
        self.assertIn("PATH", environ_of(workers[0]), "clear_env = no: environment expected")
        self.assertNotIn("NOTIFY_SOCKET", environ_of(workers[0]))

    def test_daemon_sends_mainpid(self):
        n = Notifications(self.tmp)
        pm = FcgiPm(self.tmp, [hello_pool()],
                    main_options={"error_log": os.path.join(self.tmp, "fcgi-pm.log")})
        env = dict(os.environ, NOTIFY_SOCKET=n.address)
        rc = subprocess.run([harness.FCGI_PM, "-D", "-c", pm.conf], env=env, timeout=30,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
        self.assertEqual(rc.returncode, 0, rc.stdout)
        daemon = {}
        try:
            m = n.wait_for("MAINPID")
            daemon["pid"] = int(m["MAINPID"])
            with open(pm.pid_file) as f:
                self.assertEqual(int(f.read()), daemon["pid"])
            n.wait_for("READY")
            self.assertTrue(harness.can_connect(pm.address("hello")))
        finally:
            pid = daemon.get("pid")
            if pid is None:
                try:
                    with open(pm.pid_file) as f:
                        pid = int(f.read())
                except (OSError, ValueError):
                    pid = None
            if pid is not None and harness.pid_alive(pid):
                workers = [p for p, _ in harness.children_of(pid)]
                os.kill(pid, signal.SIGTERM)
                try:
                    wait_until(lambda: not harness.pid_alive(pid), 20, what="the daemon to exit")
                finally:
                    for w in workers + ([pid] if harness.pid_alive(pid) else []):
                        if harness.pid_alive(w):
                            os.kill(w, signal.SIGKILL)


class Activation(harness.TestCase):

    def unix_listener(self, path, mode=0o640):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, mode)
        s.listen(64)
        self.addCleanup(s.close)
        return s

    def test_adopts_an_inherited_unix_socket_and_leaves_it(self):
        path = os.path.join(self.tmp, "hello.sock")
        ls = self.unix_listener(path, 0o640)
        ino = os.stat(path).st_ino
        pm = self._own(ServicePm(self.tmp, [hello_pool(listen=path, listen_mode=Raw("0666"))]))
        pm.start(wait=False, listen_fd=ls.fileno())
        body = wait_fcgi_ok(path)
        self.assertIn(b'"REQUEST_METHOD": "GET"', body)
        pm.wait_log(r"listen %s: using the socket systemd passed \(fd 3\)" % re.escape(path))
        st = os.stat(path)
        self.assertEqual(st.st_ino, ino, "fcgi-pm bound a socket of its own")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640, "the socket unit's mode was changed")
        self.assertEqual(pm.stop(), 0)
        self.assertTrue(os.path.exists(path), "fcgi-pm removed the socket it was passed")
        self.assertEqual(os.stat(path).st_ino, ino)
        # systemd keeps the socket: the next start gets it again
        pm2 = self._own(ServicePm(self.tmp, [hello_pool(listen=path)]))
        pm2.start(wait=False, listen_fd=ls.fileno())
        wait_fcgi_ok(path)
        self.assertEqual(pm2.stop(), 0)
        self.assertTrue(os.path.exists(path))

    def test_reload_gives_the_socket_back_and_a_new_pool_adopts_it(self):
        path = os.path.join(self.tmp, "hello.sock")
        ls = self.unix_listener(path)
        other = os.path.join(self.tmp, "other.sock")
        pm = self._own(ServicePm(self.tmp, [hello_pool(listen=path),
                                            hello_pool("other", listen=other)]))
        pm.start(wait=False, listen_fd=ls.fileno())
        wait_fcgi_ok(path)
        rx = r"listen %s: using the socket systemd passed" % re.escape(path)
        # remove the pool: its socket goes back, unclosed and not removed
        os.unlink(os.path.join(pm.sites_dir, "hello.conf"))
        del pm.pools["hello"]
        pm.signal(signal.SIGHUP)
        pm.wait_log(r"reload done", timeout=READY_TIMEOUT)
        pm.wait_log(r"\[pool hello\] drained: .*closed", timeout=READY_TIMEOUT)
        self.assertTrue(os.path.exists(path))
        wait_fcgi_ok(other)
        # a pool with that address again, under another name, adopts the same fd
        pm.pools["again"] = hello_pool("again", listen=path)
        pm.write_config()
        pm.signal(signal.SIGHUP)
        wait_until(lambda: len(re.findall(rx, pm.log())) >= 2, READY_TIMEOUT,
                   what="the new pool to adopt the socket")
        body = wait_fcgi_ok(path)
        self.assertIn(b'"REQUEST_METHOD": "GET"', body)
        self.assertTrue(pm.proc.running())

    def test_adopts_an_inherited_tcp_socket_by_address(self):
        port = free_port()
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(ls.close)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(64)
        other = os.path.join(self.tmp, "other.sock")
        pm = self._own(ServicePm(self.tmp, [hello_pool("tcp", listen="127.0.0.1:%d" % port),
                                            hello_pool("own", listen=other)]))
        pm.start(wait=False, listen_fd=ls.fileno(), env={"LISTEN_FDNAMES": "fcgi-pm-tcp"})
        wait_fcgi_ok(("127.0.0.1", port))
        wait_fcgi_ok(other)         # the other pool bound its own socket
        pm.wait_log(r"\[pool tcp\] .*listen 127\.0\.0\.1:%d: using the socket systemd "
                    r"passed \(fd 3, fcgi-pm-tcp\)" % port)
        self.assertNotRegex(pm.log(), r"\[pool own\] .*systemd passed")

    def test_socket_for_no_pool_is_reported_and_workers_see_no_listen_fds(self):
        path = os.path.join(self.tmp, "stray.sock")
        ls = self.unix_listener(path)
        pm = self._own(ServicePm(self.tmp, [hello_pool(clear_env=False)]))
        pm.start(listen_fd=ls.fileno(), env={"LISTEN_FDNAMES": "stray"})
        pm.wait_log(r"socket activation: fd 3 \(stray\) matches no pool's listen address")
        workers = pm.wait_workers("hello")
        env = environ_of(workers[0])
        self.assertIn("PATH", env)
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            self.assertNotIn(k, env)
        inode = os.fstat(ls.fileno()).st_ino
        for fd in os.listdir("/proc/%d/fd" % workers[0]):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (workers[0], fd))
            except OSError:
                continue
            self.assertNotEqual(target, "socket:[%d]" % inode,
                                "a worker inherited the passed socket as fd %s" % fd)

    def test_listen_pid_of_another_process_is_ignored(self):
        path = os.path.join(self.tmp, "hello.sock")
        ls = self.unix_listener(path)
        pm = self._own(ServicePm(self.tmp, [hello_pool(listen=path)]))
        # LISTEN_PID names pid 1, not fcgi-pm: the socket is not ours to take,
        # so the pool finds its path busy and the start is refused
        e = {"LISTEN_FDS": "1", "LISTEN_PID": "1"}
        pm.proc = Proc([harness.FCGI_PM, "-F", "-c", pm.conf], pm.log_path, "fcgi-pm",
                       dict(os.environ, **e), fd=ls.fileno())
        harness._unregister(pm.proc)
        harness._register(pm)
        rc = pm.wait(20)
        self.assertIsNotNone(rc, "fcgi-pm adopted a socket meant for another process")
        self.assertNotEqual(rc, 0)
        self.assertIn("another process is listening", pm.log())


def meson_introspect_installed():
    with open(os.path.join(harness.BUILD, "meson-info", "intro-installed.json")) as f:
        return json.load(f)


class Install(harness.TestCase):

    def test_version_and_help_of_both_programs(self):
        for prog, name in ((harness.FCGI_PM, "fcgi-pm"), (harness.FCGI_PM_WORKER, "fcgi-pm-worker")):
            v = subprocess.run([prog, "--version"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(v.returncode, 0, v.stdout)
            self.assertRegex(v.stdout.decode(), r"^%s \d+\.\d+\.\d+" % re.escape(name))
            h = subprocess.run([prog, "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(h.returncode, 0, h.stderr)
            self.assertIn(b"usage: " + name.encode(), h.stdout)

    def test_meson_install_destdir_puts_every_file_in_place(self):
        meson = shutil.which("meson")
        if meson is None:
            self.skipTest("meson is not on PATH")
        installed = meson_introspect_installed()
        dests = list(installed.values())
        want = {
            "fcgi-pm": r"/sbin/fcgi-pm$",
            "fcgi-pm-worker": r"/sbin/fcgi-pm-worker$",
            "fcgi-pm.8": r"/man8/fcgi-pm\.8$",
            "fcgi-pm-worker.8": r"/man8/fcgi-pm-worker\.8$",
            "fcgi-pm.conf.5": r"/man5/fcgi-pm\.conf\.5$",
            "main config": r"/fcgi-pm/fcgi-pm\.conf$",
            "site example": r"/fcgi-pm/sites\.d/example\.conf\.example$",
            "logrotate": r"/logrotate\.d/fcgi-pm$",
            "unit": r"/systemd/system/fcgi-pm\.service$",
            "socket unit": r"/systemd/system/fcgi-pm\.socket$",
            "web-server examples": r"/doc/fcgi-pm/examples/nginx$",
            "README": r"/doc/fcgi-pm/README\.md$",
        }
        found = {}
        for what, rx in want.items():
            m = [d for d in dests if re.search(rx, d)]
            self.assertTrue(m, "meson would not install the %s (%s)" % (what, rx))
            found[what] = m[0]
        destdir = os.path.join(self.tmp, "root")
        p = subprocess.run([meson, "install", "-C", harness.BUILD, "--no-rebuild",
                            "--destdir", destdir, "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        for d in dests:
            self.assertTrue(os.path.exists(destdir + d), "not installed: %s" % d)
        self.assertTrue(os.path.isfile(destdir + found["web-server examples"] + "/django-site.conf"))
        for what in ("fcgi-pm", "fcgi-pm-worker"):
            self.assertTrue(os.access(destdir + found[what], os.X_OK))
        v = subprocess.run([destdir + found["fcgi-pm"], "--version"], stdout=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(v.returncode, 0)
        # a sites.d example must not be loaded as a site: only *.conf is read
        self.assertFalse(os.path.exists(os.path.dirname(destdir + found["site example"])
                                        + "/example.conf"))
        # the installed unit names the installed program
        with open(destdir + found["unit"]) as f:
            unit = f.read()
        self.assertIn("ExecStart=%s -F" % found["fcgi-pm"], unit)

    def test_man_pages_render_without_warnings(self):
        groff = shutil.which("groff")
        if groff is None:
            self.skipTest("groff is not installed")
        for page in ("fcgi-pm.8", "fcgi-pm-worker.8", "fcgi-pm.conf.5"):
            path = os.path.join(harness.SRC, "doc", page)
            p = subprocess.run([groff, "-man", "-ww", "-z", "-Tutf8", path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertEqual(p.stdout.decode(errors="replace"), "", "%s: groff warnings" % page)

    def test_man_page_names_every_option_of_usage(self):
        with open(os.path.join(harness.SRC, "doc", "fcgi-pm-worker.8")) as f:
            page = f.read()
        h = subprocess.run([harness.FCGI_PM_WORKER, "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30).stdout.decode()
        opts = sorted(set(re.findall(r"(--[a-z][a-z-]+)", h)))
        self.assertTrue(opts, h)
        for o in opts:
            self.assertIn(o.replace("-", r"\-"), page, "fcgi-pm-worker(8) lacks %s" % o)


class Units(harness.TestCase):

    def test_systemd_analyze_verify_unit(self):
        sa = shutil.which("systemd-analyze")
        if sa is None:
            self.skipTest("systemd is not installed (systemd-analyze not found)")
        # the unit names /usr/sbin/fcgi-pm; verify a copy that names the built binaries
        with open(os.path.join(harness.SRC, "etc", "fcgi-pm.service")) as f:
            unit = f.read()
        with open(os.path.join(harness.SRC, "etc", "fcgi-pm.socket")) as f:
            sock = f.read()
        self.assertIn("Type=notify", unit)
        self.assertIn("ExecStart=/usr/sbin/fcgi-pm -F -c /etc/fcgi-pm/fcgi-pm.conf", unit)
        self.assertRegex(unit, r"(?m)^KillSignal=SIGQUIT$")
        d = os.path.join(self.tmp, "units")
        os.mkdir(d)
        with open(os.path.join(d, "fcgi-pm.service"), "w") as f:
            f.write(unit.replace("/usr/sbin/fcgi-pm", harness.FCGI_PM))
        with open(os.path.join(d, "fcgi-pm.socket"), "w") as f:
            f.write(sock)
        p = subprocess.run([sa, "verify", "--man=no", os.path.join(d, "fcgi-pm.service"),
                            os.path.join(d, "fcgi-pm.socket")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
        out = p.stdout.decode(errors="replace")
        # outside a booted systemd, verify still parses the units; keep what names ours
        ours = [l for l in out.splitlines() if "fcgi-pm" in l]
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(ours, [], out)

    def test_logrotate_snippet_reopens_logs(self):
        with open(os.path.join(harness.SRC, "etc", "logrotate.d", "fcgi-pm")) as f:
            text = f.read()
        self.assertIn("/var/log/fcgi-pm/error.log", text)
        self.assertIn("/var/log/fcgi-pm/*.slow.log", text)
        self.assertRegex(text, r"postrotate[\s\S]*(reopen-logs|kill -USR1)[\s\S]*endscript")
        lr = shutil.which("logrotate") or "/usr/sbin/logrotate"
        if not os.access(lr, os.X_OK):
            return
        # logrotate -d parses the snippet (debug: rotates nothing)
        state = os.path.join(self.tmp, "state")
        p = subprocess.run([lr, "-d", "-s", state, os.path.join(harness.SRC, "etc", "logrotate.d", "fcgi-pm")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertNotRegex(p.stdout.decode(errors="replace"), r"(?i)error")


if __name__ == "__main__":
    harness.main()
