"""harness - drive the real fcgi-pm, fcgi-pm-worker and nginx from unittest.

Each tests/integration/test_*.py is one meson test (protocol 'tap') run with
Debian's /usr/bin/python3.  A test file looks like:

    import harness
    from harness import FcgiPm, Nginx, Pool, http

    class GetWorks(harness.TestCase):
        def test_get_answers_200(self):
            pm = self.fcgi_pm([Pool("hello", "hello:application",
                                    python_path=[harness.APPS + "/hello"])])
            ng = self.nginx()
            site = ng.add_site(pm.socket("hello"))
            ng.start()
            r = http("GET", site.port, "/x?a=1")
            self.assertEqual(r.status, 200)

    if __name__ == "__main__":
        harness.main()

Everything a test starts lives in its own temp dir (unix sockets there, free
loopback ports), is stopped by PID when the test (or the class, or the
process) ends, and its logs are printed as TAP diagnostics when it fails.
meson runs the test files in parallel; nothing here uses fixed ports or paths.

Environment (set by tests/integration/meson.build; defaults for running a
file by hand from the source tree: build dir "build"):
  FCGI_PM_SOURCE_ROOT, FCGI_PM_BUILD_ROOT, FCGI_PM_BIN, FCGI_PM_WORKER_BIN
  FCGI_PM_KEEP_TMP=1   keep the temp dirs (always kept when a test failed)
  FCGI_PM_TEST_VERBOSE=1   print the logs of passing tests too
"""
import atexit
import errno
import http.client as httpclient
import json
import os
import re
import shutil
import random
import signal
from signal import SIGTERM
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

# ----------------------------------------------------------------- locations

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("FCGI_PM_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE)))
BUILD = os.path.abspath(os.environ.get("FCGI_PM_BUILD_ROOT") or os.path.join(SRC, "build"))
FCGI_PM = os.path.abspath(os.environ.get("FCGI_PM_BIN") or os.path.join(BUILD, "fcgi-pm", "fcgi-pm"))
FCGI_PM_WORKER = os.path.abspath(os.environ.get("FCGI_PM_WORKER_BIN")
                                 or os.path.join(BUILD, "embed", "fcgi-pm-worker"))
APPS = os.path.join(SRC, "tests", "apps")
EXAMPLES = os.path.join(SRC, "examples")
NGINX_SNIPPET = os.path.join(SRC, "etc", "nginx", "django-site.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PYTHON = "/usr/bin/python3"
IS_ROOT = os.geteuid() == 0
EX_CONFIG = 78

VERBOSE = os.environ.get("FCGI_PM_TEST_VERBOSE") == "1"
# -Dsanitize=true build: every log is also checked for sanitizer reports
SANITIZE = os.environ.get("FCGI_PM_SANITIZE") == "1"
SANITIZER_RX = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: ")
KEEP_TMP = os.environ.get("FCGI_PM_KEEP_TMP") == "1"


class HarnessError(Exception):
    """Something the harness itself could not do (start, wait, parse)."""


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Call PRED until it returns a true value; return that value.
    Raise HarnessError after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback TCP port nobody listens on right now.

    Chosen at random below the kernel's ephemeral range: a port the kernel
    hands out for bind(0) is also what other tests' outgoing connections
    use, so a server started on it a moment later can find it taken."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_connect(addr, timeout=0.5):
    """True if ADDR (a unix socket path or a (host, port) tuple) accepts."""
    try:
        if isinstance(addr, tuple):
            s = socket.create_connection(addr, timeout=timeout)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(addr)
        s.close()
        return True
    except OSError:
        return False


def is_listening(addr):
    """True if something listens on ADDR (a unix socket path or a (host,
    port) tuple), read from /proc/net without connecting: a probe
    connection would itself wake an ondemand pool."""
    if isinstance(addr, tuple):
        host, port = addr
        want = "%04X" % port
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = open(f).read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if fields[3] == "0A" and fields[1].rsplit(":", 1)[1] == want:
                    return True
        return False
    try:
        lines = open("/proc/net/unix").read().splitlines()[1:]
    except OSError:
        return can_connect(addr)
    for line in lines:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode [Path]; 0x10000 = listening
        if len(fields) >= 8 and fields[7] == addr and int(fields[3], 16) & 0x10000:
            return True
    return False


def parse_listen(listen):
    """A pool's listen value as a connect address: a path, or (host, port)."""
    if listen.startswith("/"):
        return listen
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return (host, int(port))


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def children_of(ppid):
    """PIDs whose parent is PPID (from /proc), with their argv."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                stat = f.read().decode("latin-1")
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = [a.decode("latin-1") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == ppid and fields[0] != "Z":
            out.append((int(d), argv))
    return out


def pid_alive(pid):
    """True if PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("latin-1")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


# ------------------------------------------------- process and temp registry

_live = []          # objects with .cleanup() and .logs(), most recent last
_all_logs = []      # (name, path) of everything ever started, in order
_tmpdirs = []
_keep = set()       # temp dirs of failed tests: kept for the post-mortem
_failed = False
_lock = threading.Lock()


def _register(obj):
    with _lock:
        _live.append(obj)
        for entry in obj.logs():
            if entry not in _all_logs:
                _all_logs.append(entry)


def _unregister(obj):
    with _lock:
        if obj in _live:
            _live.remove(obj)


def cleanup_all():
    """Stop everything still running, newest first (nginx before fcgi-pm)."""
    while True:
        with _lock:
            if not _live:
                break
            obj = _live.pop()
        try:
            obj.cleanup()
        except Exception:
            traceback.print_exc(file=sys.stderr)


def _remove_tmpdirs():
    for d in _tmpdirs:
        if d in _keep or KEEP_TMP:
            print("# kept temp dir %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def _on_exit():
    cleanup_all()
    _remove_tmpdirs()


def _on_sigterm(signum, frame):
    # meson sends SIGTERM on timeout: stop our processes first.
    print("# killed by signal %d: cleaning up" % signum)
    sys.stdout.flush()
    cleanup_all()
    os._exit(1)


atexit.register(_on_exit)
signal.signal(signal.SIGTERM, _on_sigterm)


def _set_pdeathsig():
    """preexec_fn: the child gets SIGKILL if the test process dies.
    (Linux sends it when the *thread* that started the child exits: start
    processes from the main thread.)"""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)      # PR_SET_PDEATHSIG
    except Exception:
        pass


def make_tmpdir(tag="t"):
    """A fresh temp dir, traversable by everyone (nginx workers, pool users)."""
    d = tempfile.mkdtemp(prefix="fcgipm-%s-" % tag, dir="/tmp")
    os.chmod(d, 0o755)
    _tmpdirs.append(d)
    return d


class Proc:
    """A started process we own: stopped by PID at cleanup at the latest."""

    def __init__(self, argv, log_path, name, env=None, cwd=None, stdin=subprocess.DEVNULL):
        self.name = name
        self.log_path = log_path
        self.argv = argv
        self.logf = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  preexec_fn=_set_pdeathsig)
        self.pid = self.p.pid
        _register(self)

    def running(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Wait for exit; return the status (negative = signal) or None on timeout."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=SIGTERM, timeout=10):
        """SIG, then SIGKILL after TIMEOUT seconds.  Returns the exit status."""
        if self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        _unregister(self)
        self.logf.close()
        return self.p.returncode

    def cleanup(self):
        self.stop(timeout=5)

    def logs(self):
        return [(self.name, self.log_path)]


# ----------------------------------------------------------- fcgi-pm config

class Raw(str):
    """A config value written without quotes: Raw("30s"), Raw("0660"),
    Raw("dynamic").  (A Python int is written in decimal: 0o660 would be 432.)"""


def conf_value(v):
    """Python value -> libconfuse syntax."""
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(conf_value(x) for x in v) + "}"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % s


class Pool:
    """One `pool NAME { ... }` section.  OPTIONS are extra directives
    (name -> value, None drops a default).  listen defaults to
    TMPDIR/NAME.sock, filled in when the config is written."""

    def __init__(self, name, module, python_path=(), env=None, chdir=None,
                 max_children=2, threads=1, listen=None, **options):
        self.name = name
        self.listen = listen
        env = dict(env or {})
        if SANITIZE:
            # workers start from a clean environment (clear_env): hand them
            # the sanitizer settings (LSan suppressions for CPython)
            for k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"):
                if k in os.environ:
                    env.setdefault(k, os.environ[k])
        self.opts = {
            "module": module,
            "python_path": list(python_path),
            "chdir": chdir,
            "env": ["%s=%s" % kv for kv in (env or {}).items()],
            "pm": Raw("static"),
            "max_children": max_children,
            "threads": threads,
        }
        if IS_ROOT:
            self.opts["allow_root"] = True      # tests run workers as root in CI
        self.opts.update(options)

    def render(self):
        lines = ["pool %s {" % self.name, "  listen = %s" % conf_value(self.listen)]
        for k, v in self.opts.items():
            if v is None or (isinstance(v, list) and not v):
                continue
            lines.append("  %s = %s" % (k, conf_value(v)))
        lines.append("}")
        return "\n".join(lines) + "\n"


def hello_pool(name="hello", **kw):
    """A pool serving tests/apps/hello."""
    return Pool(name, "hello:application", python_path=[os.path.join(APPS, "hello")], **kw)


def django_pool(site, **kw):
    """A pool serving examples/sites/SITE (blog or catalog)."""
    env = {"DJANGO_SETTINGS_MODULE": "%s.settings" % site}
    env.update(kw.pop("env", {}))
    root = os.path.join(EXAMPLES, "sites", site)
    return Pool(site, "%s.wsgi:application" % site, python_path=[root], chdir=root,
                env=env, **kw)


class FcgiPm:
    """fcgi-pm in the foreground (-F) with a main config and one site file
    per pool in DIR/sites.d.  stderr (its log) goes to DIR/fcgi-pm.log."""

    def __init__(self, tmp, pools, main_options=None, site_files=None):
        self.tmp = tmp
        self.pools = {p.name: p for p in pools}
        for p in pools:
            if p.listen is None:
                p.listen = os.path.join(tmp, "%s.sock" % p.name)
        self.conf = os.path.join(tmp, "fcgi-pm.conf")
        self.sites_dir = os.path.join(tmp, "sites.d")
        self.pid_file = os.path.join(tmp, "fcgi-pm.pid")
        self.log_path = os.path.join(tmp, "fcgi-pm.log")
        self.main_options = {
            "pid_file": self.pid_file,
            "include_dir": self.sites_dir,
            "log_level": Raw("debug"),
            "worker_binary": FCGI_PM_WORKER,
        }
        self.main_options.update(main_options or {})
        self.site_files = site_files      # {filename: [pools]} or None: one per pool
        self.proc = None
        self.write_config()

    def write_config(self):
        os.makedirs(self.sites_dir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/harness.py\n")
            for k, v in self.main_options.items():
                if v is not None:
                    f.write("%s = %s\n" % (k, conf_value(v)))
        files = self.site_files or {"%s.conf" % n: [p] for n, p in self.pools.items()}
        for fname, pools in files.items():
            with open(os.path.join(self.sites_dir, fname), "w") as f:
                f.write("# written by tests/integration/harness.py\n")
                for p in pools:
                    f.write(p.render())

    def socket(self, pool):
        return self.pools[pool].listen

    def address(self, pool):
        return parse_listen(self.pools[pool].listen)

    def start(self, wait=True, timeout=20):
        if not os.access(FCGI_PM, os.X_OK):
            raise HarnessError("fcgi-pm not built: %s" % FCGI_PM)
        self.proc = Proc([FCGI_PM, "-F", "-c", self.conf], self.log_path, "fcgi-pm")
        _unregister(self.proc)
        _register(self)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=20):
        """Wait until every pool's socket accepts (the master is up)."""
        def ready():
            if not self.proc.running():
                raise HarnessError("fcgi-pm exited with status %s during start-up:\n%s"
                                   % (self.proc.p.returncode, tail(self.log_path)))
            return all(is_listening(self.address(n)) for n in self.pools)
        wait_until(ready, timeout, what="fcgi-pm's pool sockets to accept")

    def wait_workers(self, pool=None, count=None, timeout=20):
        """Wait until POOL has COUNT (default max_children) live workers; return their pids."""
        if count is None:
            p = self.pools[pool] if pool else None
            count = p.opts.get("max_children", 1) if p else sum(
                q.opts.get("max_children", 1) for q in self.pools.values())
        return wait_until(lambda: (lambda w: w if len(w) >= count else None)(
            self.worker_pids(pool)), timeout, what="%d workers" % count)

    def worker_pids(self, pool=None):
        """PIDs of the master's worker children (of POOL if given, when the
        worker's argv names its pool).  With preload = yes the preload
        process is a child running fcgi-pm-worker too, and is counted."""
        out = []
        for pid, argv in children_of(self.proc.pid):
            if not any("fcgi-pm-worker" in a for a in argv[:1]):
                continue
            if pool is not None and "--pool" in argv:
                i = argv.index("--pool")
                if i + 1 < len(argv) and argv[i + 1] != pool:
                    continue
            out.append(pid)
        return sorted(out)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10):
        """Wait until the log matches the regex PATTERN; return the match."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log()), timeout,
                          what="fcgi-pm log line /%s/" % pattern)

    def signal(self, sig):
        self.proc.signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def stop(self, sig=SIGTERM, timeout=15):
        """Stop the master by PID; returns its exit status.  Workers it
        leaves behind are killed (and that is reported by the tests that care)."""
        if self.proc is None:
            return None
        workers = self.worker_pids()
        rc = self.proc.stop(sig, timeout)
        _unregister(self)
        for pid in workers:
            try:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return rc

    def cleanup(self):
        self.stop(timeout=5)

    def logs(self):
        return [("fcgi-pm", self.log_path)]


def fcgi_pm_check(conf, timeout=20):
    """Run `fcgi-pm -t -c CONF`; return (status, stdout + stderr)."""
    if not os.access(FCGI_PM, os.X_OK):
        raise HarnessError("fcgi-pm not built: %s" % FCGI_PM)
    p = subprocess.run([FCGI_PM, "-t", "-c", conf], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def start_worker(tmp, module, python_path=(), extra_args=(), env=None, name="worker"):
    """fcgi-pm-worker standalone (as under spawn-fcgi): a listening unix
    socket on fd 0.  Returns (Proc, socket path)."""
    if not os.access(FCGI_PM_WORKER, os.X_OK):
        raise HarnessError("fcgi-pm-worker not built: %s" % FCGI_PM_WORKER)
    path = os.path.join(tmp, "%s.sock" % name)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(64)
    argv = [FCGI_PM_WORKER, "--module", module]
    for d in python_path:
        argv += ["--python-path", d]
    argv += list(extra_args)
    logf = os.path.join(tmp, "%s.log" % name)
    try:
        proc = Proc(argv, logf, name, env=env, stdin=ls.fileno())
    finally:
        ls.close()
    return proc, path


# -------------------------------------------------------------------- nginx

class Site:
    def __init__(self, snippet, socket, static, port):
        self.snippet, self.socket, self.static, self.port = snippet, socket, static, port


def render_snippet(snippet_path, port, socket_addr, static_dir):
    """The etc/nginx snippet with only its listen address, static dir and
    fcgi-pm socket replaced; each must occur exactly once (so the file
    cannot drift from what the tests use)."""
    with open(snippet_path) as f:
        text = f.read()
    if isinstance(socket_addr, tuple):
        upstream = "%s:%d" % socket_addr
    else:
        upstream = "unix:%s" % socket_addr
    for old, new in (("listen 127.0.0.1:8080;", "listen 127.0.0.1:%d;" % port),
                     ("alias /srv/mysite/static/;", "alias %s/;" % static_dir.rstrip("/")),
                     ("fastcgi_pass unix:/run/fcgi-pm/mysite.sock;",
                      "fastcgi_pass %s;" % upstream)):
        n = text.count(old)
        if n != 1:
            raise HarnessError("%s: expected exactly one %r, found %d"
                               % (snippet_path, old, n))
        text = text.replace(old, new)
    return text


class Nginx:
    """A private nginx (-p DIR -c DIR/nginx.conf, daemon off, own logs and
    pid file) serving the etc/nginx snippet once per add_site()."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.prefix = os.path.join(tmp, "nginx")
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.error_log = os.path.join(self.prefix, "error.log")
        self.access_log = os.path.join(self.prefix, "access.log")
        self.sites = []
        self.proc = None

    def add_site(self, socket_addr, static_dir=None, snippet=NGINX_SNIPPET):
        """Serve SNIPPET for an fcgi-pm socket; returns a Site (its .port is
        set now and may change if start() has to retry a taken port)."""
        if static_dir is None:
            static_dir = os.path.join(self.tmp, "static")
            os.makedirs(static_dir, exist_ok=True)
        s = Site(snippet, socket_addr, static_dir, free_port())
        self.sites.append(s)
        return s

    def write_config(self):
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        for f in ("fastcgi_params", "mime.types"):
            src = os.path.join("/etc/nginx", f)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(self.prefix, f))
        for i, s in enumerate(self.sites):
            with open(os.path.join(self.prefix, "site%d.conf" % i), "w") as f:
                f.write(render_snippet(s.snippet, s.port, s.socket, s.static))
        t = lambda n: os.path.join(self.prefix, "tmp", n)
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/harness.py\n")
            if IS_ROOT:
                # workers must reach fcgi-pm's sockets, which belong to root
                f.write("user root root;\n")
            f.write("worker_processes 1;\n")
            f.write("pid %s;\n" % os.path.join(self.prefix, "nginx.pid"))
            f.write("error_log %s notice;\n" % self.error_log)
            f.write("events { worker_connections 512; }\n")
            f.write("http {\n")
            if os.path.exists(os.path.join(self.prefix, "mime.types")):
                f.write("  include mime.types;\n")
            f.write("  default_type application/octet-stream;\n")
            f.write("  access_log %s;\n" % self.access_log)
            for d in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"):
                f.write("  %s_temp_path %s;\n" % (d, t(d)))
            for i in range(len(self.sites)):
                f.write("  include site%d.conf;\n" % i)
            f.write("}\n")

    def start(self, timeout=15, attempts=4):
        if not os.access(NGINX, os.X_OK):
            raise unittest.SkipTest("nginx is not installed")
        for attempt in range(attempts):
            self.write_config()
            err_before = len(open(self.error_log).read()) if os.path.exists(self.error_log) else 0
            self.proc = Proc([NGINX, "-e", self.error_log, "-p", self.prefix + "/",
                              "-c", self.conf, "-g", "daemon off;"],
                             os.path.join(self.prefix, "stderr.log"), "nginx")
            _unregister(self.proc)
            _register(self)
            try:
                wait_until(lambda: self._ready(), timeout, what="nginx to listen")
                return self
            except HarnessError:
                text = open(self.error_log).read()[err_before:] if os.path.exists(
                    self.error_log) else ""
                self.stop()
                if "Address already in use" in text and attempt + 1 < attempts:
                    for s in self.sites:
                        s.port = free_port()
                    continue
                raise HarnessError("nginx did not start:\n%s\n%s" % (
                    text[-3000:], tail(os.path.join(self.prefix, "stderr.log"))))
        raise HarnessError("nginx: no free port after %d attempts" % attempts)

    def _ready(self):
        if not self.proc.running():
            raise HarnessError("nginx exited")
        return all(can_connect(("127.0.0.1", s.port)) for s in self.sites)

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, 10)
        _unregister(self)

    def cleanup(self):
        self.stop()

    def logs(self):
        return [("nginx error.log", self.error_log)]


# --------------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers          # lower-case name -> value (last one wins)
        self.header_list = None         # [(name, value)] as received
        self.body = body
        self.elapsed = elapsed

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d bytes %.2fs: %r>" % (self.status, len(self.body),
                                                    self.elapsed, self.body[:200])


def http(method, port, path, body=None, headers=None, timeout=30, host="127.0.0.1"):
    """One HTTP/1.1 request (a new connection each time); returns a Response."""
    t0 = time.monotonic()
    c = httpclient.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data,
                        time.monotonic() - t0)
        resp.header_list = r.getheaders()
        return resp
    finally:
        c.close()


def get(port, path, **kw):
    return http("GET", port, path, **kw)


def post(port, path, body, content_type="application/octet-stream", headers=None, **kw):
    h = {"Content-Type": content_type}
    h.update(headers or {})
    return http("POST", port, path, body=body, headers=h, **kw)


def post_form(port, path, fields, headers=None, **kw):
    return post(port, path, urllib.parse.urlencode(fields).encode(),
                "application/x-www-form-urlencoded", headers=headers, **kw)


def concurrent(fn, args_list, threads=8):
    """Run fn(*args) for each args in ARGS_LIST on THREADS threads; return
    the results in order (an exception object where a call raised)."""
    def call(args):
        try:
            return fn(*args)
        except Exception as e:      # the test decides what a failure means
            return e
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return list(ex.map(call, args_list))


def wait_http(port, path="/", timeout=30, status=200):
    """Poll until GET PATH answers STATUS (workers up); return the Response."""
    last = [None]

    def ok():
        try:
            r = get(port, path, timeout=5)
        except OSError as e:
            last[0] = e
            return None
        last[0] = r
        return r if r.status == status else None
    try:
        return wait_until(ok, timeout, interval=0.2, what="GET %s -> %d" % (path, status))
    except HarnessError as e:
        raise HarnessError("%s (last answer: %r)" % (e, last[0]))


# -------------------------------------------------------------- test case

class TestCase(unittest.TestCase):
    """unittest.TestCase with per-test temp dirs and process cleanup."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = make_tmpdir(self.id().split(".")[-1][:20])

    def tearDown(self):
        # class-level fixtures (started in setUpClass) survive; ours do not
        for obj in list(getattr(self, "_owned", [])):
            obj.cleanup()

    def _own(self, obj):
        self.__dict__.setdefault("_owned", []).append(obj)
        return obj

    def fcgi_pm(self, pools, start=True, **kw):
        pm = self._own(FcgiPm(self.tmp, pools, **kw))
        if start:
            pm.start()
        return pm

    def nginx(self):
        return self._own(Nginx(self.tmp))


# ------------------------------------------------------------- TAP runner

def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def _diag(text):
    for line in str(text).rstrip("\n").splitlines():
        print("# " + line)


def _dump_logs(entries):
    seen = set()
    for name, path in entries:
        if path in seen:
            continue
        seen.add(path)
        _diag("---- %s (%s), last lines:" % (name, path))
        _diag(tail(path))


_scanned = {}      # log path -> bytes already checked for sanitizer reports


def _sanitizer_reports(entries):
    """New sanitizer reports in the logs ENTRIES, as diagnostic text."""
    out = []
    for name, path in entries:
        try:
            with open(path, "rb") as f:
                f.seek(_scanned.get(path, 0))
                data = f.read()
        except OSError:
            continue
        _scanned[path] = _scanned.get(path, 0) + len(data)
        text = data.decode("utf-8", "replace")
        m = SANITIZER_RX.search(text)
        if m:
            start = text.rfind("\n", 0, m.start()) + 1
            out.append("sanitizer report in %s (%s):\n%s" % (name, path, text[start:start + 3000]))
    return out


def main(module=None):
    """Run every TestCase in MODULE (default __main__) and print TAP.
    A class whose setUpClass fails reports each of its tests as not ok."""
    global _failed
    module = module or sys.modules["__main__"]
    tests = list(_flatten(unittest.defaultTestLoader.loadTestsFromModule(module)))
    nclasses = len({type(t) for t in tests}) if SANITIZE else 0
    # sanitizer builds: one more line per class, for reports that appear
    # only when its processes exit (leaks)
    print("1..%d" % (len(tests) + nclasses))
    sys.stdout.flush()
    n = 0
    i = 0
    while i < len(tests):
        cls = type(tests[i])
        group = []
        while i < len(tests) and type(tests[i]) is cls:
            group.append(tests[i])
            i += 1
        class_error = None
        class_mark = len(_all_logs)
        try:
            if hasattr(cls, "setUpClass"):
                cls.setUpClass()
        except unittest.SkipTest as e:
            for t in group:
                n += 1
                print("ok %d - %s # SKIP %s" % (n, t.id(), e))
            if SANITIZE:
                n += 1
                print("ok %d - %s.no_sanitizer_reports_at_exit # SKIP %s" % (n, cls.__name__, e))
            sys.stdout.flush()
            continue
        except Exception:
            class_error = traceback.format_exc()
        class_logs = _all_logs[class_mark:]
        for t in group:
            n += 1
            test_mark = len(_all_logs)
            name = "%s.%s" % (cls.__name__, t._testMethodName)
            if class_error:
                _failed = True
                print("not ok %d - %s" % (n, name))
                _keep.update(d for d in (getattr(cls, "tmp", None),) if d)
                _diag("setUpClass failed:\n" + class_error)
                _dump_logs(class_logs)
                sys.stdout.flush()
                continue
            t0 = time.monotonic()
            r = unittest.TestResult()
            t(r)
            dt = time.monotonic() - t0
            problems = r.errors + r.failures
            if SANITIZE:
                problems += [(t, rep) for rep in
                             _sanitizer_reports(class_logs + _all_logs[test_mark:])]
            if problems or r.unexpectedSuccesses:
                _failed = True
                print("not ok %d - %s (%.1fs)" % (n, name, dt))
                _keep.update(d for d in (getattr(t, "tmp", None), getattr(cls, "tmp", None)) if d)
                for _, tb in problems:
                    _diag(tb)
                if r.unexpectedSuccesses:
                    _diag("unexpected success")
                _dump_logs(class_logs + _all_logs[test_mark:])
            elif r.skipped:
                print("ok %d - %s # SKIP %s" % (n, name, r.skipped[0][1]))
            elif r.expectedFailures:
                print("not ok %d - %s # TODO expected failure" % (n, name))
                _diag(r.expectedFailures[0][1])
            else:
                print("ok %d - %s (%.1fs)" % (n, name, dt))
                if VERBOSE:
                    _dump_logs(class_logs + _all_logs[test_mark:])
            sys.stdout.flush()
        try:
            if hasattr(cls, "tearDownClass") and not class_error:
                cls.tearDownClass()
        except Exception:
            _diag("tearDownClass failed:\n" + traceback.format_exc())
        cleanup_all()
        if SANITIZE:
            n += 1
            reports = _sanitizer_reports(_all_logs[class_mark:])
            if reports:
                _failed = True
                print("not ok %d - %s.no_sanitizer_reports_at_exit" % (n, cls.__name__))
                for rep in reports:
                    _diag(rep)
            else:
                print("ok %d - %s.no_sanitizer_reports_at_exit" % (n, cls.__name__))
            sys.stdout.flush()
    sys.stdout.flush()
    cleanup_all()
    sys.exit(1 if _failed else 0)
