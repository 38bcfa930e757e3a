#!/usr/bin/python3
"""fcgi-pm side-by-side benchmark: one nginx on loopback fronts every server
under test, wrk drives each in turn, round by round (A B C ..., A B C ...).

Run through tests/bench/run.sh (see README-bench.md).  Not part of the test
suite's pass/fail.  Uses only /usr/bin/python3 and Debian packages.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APPDIR = os.path.join(HERE, "app")
PHPDIR = os.path.join(HERE, "php")
LUADIR = os.path.join(HERE, "lua")
BUILD = os.path.join(REPO, "build-bench")

WORKERS = 2
THREADS = 1

APPS = ["hello", "django", "big", "echo"]
APP_TITLES = {
    "hello": "hello world (GET /hello, 14 B)",
    "django": "Django 3.2 page, template render (GET /django/, ~3.9 KB)",
    "big": "64 KiB response (GET /big)",
    "echo": "16 KiB POST echo (POST /echo)",
}
HELLO = b"Hello, World!\n"
BIG = b"0123456789abcdef" * 4096
POST = b"0123456789abcdef" * 1024

# Debian packages the benchmark needs, by the program or file that proves
# they are installed.
PACKAGES = [
    ("nginx-light", "/usr/sbin/nginx"),
    ("wrk", "/usr/bin/wrk"),
    ("uwsgi-core", "/usr/bin/uwsgi-core"),
    ("uwsgi-plugin-python3", "/usr/lib/uwsgi/plugins/python3_plugin.so"),
    ("gunicorn", "/usr/bin/gunicorn"),
    ("php-fpm", "/usr/sbin/php-fpm*"),
    ("python3-django", "/usr/lib/python3/dist-packages/django"),
    ("python3-matplotlib", "/usr/lib/python3/dist-packages/matplotlib"),
    ("meson", "/usr/bin/meson"),
    ("ninja-build", "/usr/bin/ninja"),
    ("pkg-config", "/usr/bin/pkg-config"),
    ("gcc", "/usr/bin/gcc"),
    ("libpython3-dev", "/usr/lib/x86_64-linux-gnu/pkgconfig/python3-embed.pc"),
    ("libconfuse-dev", "/usr/include/confuse.h"),
    ("libfcgi-dev", "/usr/include/fcgiapp.h"),
]


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------- processes

def proc_children():
    """Map ppid -> [pid] for every process on the machine, from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(d))
    return kids


def descendants(pid):
    """PID and all its descendants (alive now)."""
    kids = proc_children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def cpu_stat():
    """The machine's 'cpu' line of /proc/stat: user nice system idle iowait ..."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def pss_by_process(pids):
    """[(pid, comm, PSS KiB, USS KiB)] for PIDS.  USS (private pages) is
    what one more such process would add; PSS also charges it its share of
    the pages it shares."""
    out = []
    for p in pids:
        try:
            with open("/proc/%d/comm" % p) as f:
                comm = f.read().strip()
            vals = {}
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    k, _, rest = line.partition(":")
                    if k in ("Pss", "Private_Clean", "Private_Dirty"):
                        vals[k] = int(rest.split()[0])
        except OSError:
            continue
        out.append((p, comm, vals.get("Pss", 0),
                    vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)))
    return out


def pss_kb(pids):
    """PSS summed over PIDS, in KiB, from /proc/PID/smaps_rollup."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_ticks(pids):
    """utime+stime in clock ticks, per pid."""
    out = {}
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        out[p] = int(fields[11]) + int(fields[12])
    return out


class Proc:
    """A process we started; stopped by its pid (and its descendants' pids)."""

    def __init__(self, name, argv, tmp, env=None, stdin=None, cwd=None):
        self.name = name
        self.logpath = os.path.join(tmp, name + ".log")
        self.logf = open(self.logpath, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.popen = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                      stdout=self.logf, stderr=subprocess.STDOUT,
                                      env=e, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        self.seen = {}      # every descendant ever seen: pid -> start time

    def family(self):
        """The main pid and its descendants now; remembered for stop()."""
        pids = descendants(self.pid) if self.alive() else []
        for p in pids:
            self.seen.setdefault(p, proc_starttime(p))
        return pids

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """SIGNAL the main pid, wait, then SIGKILL whatever is left, by pid."""
        self.family()
        family = [(p, st) for p, st in self.seen.items() if p != self.pid]
        family.insert(0, (self.pid, proc_starttime(self.pid)))
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.popen.poll() is not None and \
               all(proc_starttime(p) != st for p, st in family[1:]):
                break
            time.sleep(0.05)
        for p, st in family:
            if st is not None and proc_starttime(p) == st:
                log("%s: pid %d still running after %.0fs, SIGKILL" % (self.name, p, timeout))
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()

    def tail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


# ------------------------------------------------------------------ servers

class Server:
    """One server under test.  `procs` are its root processes (PSS and CPU
    are summed over them and their descendants); `location` is the nginx
    server-block body that fronts it."""
    key = label = ""
    apps = APPS
    python = True
    shares = None          # key of the server whose processes this one uses
    note = ""

    def __init__(self, ctx):
        self.ctx = ctx
        self.tmp = ctx.tmp
        self.procs = []
        self.unavailable = None

    def start(self):
        pass

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def pids(self):
        out = []
        for p in self.procs:
            out.extend(p.family())
        return out

    def location(self):
        raise NotImplementedError

    def sock(self, name):
        return os.path.join(self.tmp, name + ".sock")

    def wait_socket(self, path, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                return True
            if self.procs and not any(p.alive() for p in self.procs):
                return False
            time.sleep(0.1)
        return False


def fastcgi_params():
    """Debian's fastcgi_params minus SCRIPT_NAME; each FastCGI server gets
    the same list.  Apps are mounted at / (SCRIPT_NAME empty, PATH_INFO the URI)."""
    return """
    fastcgi_param QUERY_STRING      $query_string;
    fastcgi_param REQUEST_METHOD    $request_method;
    fastcgi_param CONTENT_TYPE      $content_type;
    fastcgi_param CONTENT_LENGTH    $content_length;
    fastcgi_param REQUEST_URI       $request_uri;
    fastcgi_param DOCUMENT_URI      $document_uri;
    fastcgi_param DOCUMENT_ROOT     $document_root;
    fastcgi_param SERVER_PROTOCOL   $server_protocol;
    fastcgi_param REQUEST_SCHEME    $scheme;
    fastcgi_param HTTPS             $https if_not_empty;
    fastcgi_param GATEWAY_INTERFACE CGI/1.1;
    fastcgi_param SERVER_SOFTWARE   nginx/$nginx_version;
    fastcgi_param REMOTE_ADDR       $remote_addr;
    fastcgi_param REMOTE_PORT       $remote_port;
    fastcgi_param SERVER_ADDR       $server_addr;
    fastcgi_param SERVER_PORT       $server_port;
    fastcgi_param SERVER_NAME       $server_name;
    fastcgi_param HTTP_HOST         $host;
"""


class NginxCeiling(Server):
    key, label = "nginx", "nginx (ceiling)"
    python = False
    note = ("nginx alone: `return 200` for hello, static files holding the same "
            "bytes for big and django, and `return 200` for echo (body read and "
            "discarded, not echoed)")

    def pids(self):
        return self.ctx.nginx.family() if self.ctx.nginx else []

    def location(self):
        s = self.ctx.static
        return """
    location = /hello { default_type text/plain; return 200 "Hello, World!\\n"; }
    location = /big { default_type application/octet-stream; root %s; }
    location = /django/ { default_type "text/html; charset=utf-8"; root %s; try_files /django.html =404; }
    location = /echo { default_type application/octet-stream; return 200 "ok"; }
""" % (s, s)


class FcgiPm(Server):
    key, label = "fcgi-pm", "fcgi-pm"
    build = BUILD

    def start(self):
        c = self.ctx
        exe = os.path.join(self.build, "fcgi-pm", "fcgi-pm")
        wexe = os.path.join(self.build, "embed", "fcgi-pm-worker")
        if not (os.access(exe, os.X_OK) and os.access(wexe, os.X_OK)):
            self.unavailable = "not built (%s)" % self.build_status()
            return
        self.path = self.sock(self.key)
        if c.args.fcgi_pm_standalone:
            return self.start_standalone(wexe)
        conf = os.path.join(self.tmp, self.key + ".conf")
        with open(conf, "w") as f:
            f.write("""# written by tests/bench/bench.py
pid_file      = "{tmp}/{key}.pid"
worker_binary = "{wexe}"

pool bench {{
  listen         = "{sock}"
  listen_backlog = 1024
  chdir          = "{app}"
  python_path    = {{"{app}"}}
  module         = "benchapp:application"
  env            = {{"DJANGO_SETTINGS_MODULE=benchsite.settings"}}
  pm             = static
  max_children   = {w}
  threads        = {t}
  preload        = {pre}
  allow_root     = yes
}}
""".format(tmp=self.tmp, key=self.key, wexe=wexe, sock=self.path, app=APPDIR, w=WORKERS, t=THREADS,
           pre="yes" if c.args.preload else "no"))
        t = subprocess.run([exe, "-t", "-c", conf], capture_output=True, text=True)
        if t.returncode != 0:
            self.unavailable = "`fcgi-pm -t` rejected the config (exit %d): %s" % (
                t.returncode, " / ".join((t.stderr + t.stdout).strip().splitlines()[-2:]))
            if not c.args.fcgi_pm_standalone_fallback:
                return
            return self.start_standalone(wexe)
        self.procs.append(Proc(self.key, [exe, "-F", "-c", conf], self.tmp))
        if not self.wait_socket(self.path):
            self.unavailable = "no socket after 30 s: " + self.procs[0].tail(3)
            if c.args.fcgi_pm_standalone_fallback:
                self.stop()
                self.procs = []
                return self.start_standalone(wexe)
        # wait until all workers are up (static pool)
        deadline = time.time() + 20
        while time.time() < deadline and len(self.pids()) < WORKERS + 1:
            time.sleep(0.1)

    def build_status(self):
        return self.ctx.build_status

    def start_standalone(self, wexe):
        """The worker alone, spawn-fcgi style: we bind the socket and hand
        it to WORKERS fcgi-pm-worker processes as fd 0."""
        self.label = "fcgi-pm-worker (standalone)"
        self.note = ("%d bare fcgi-pm-worker processes on a socket the benchmark binds "
                     "(no supervisor)" % WORKERS)
        if self.unavailable:
            self.note += "; fell back to it because fcgi-pm failed: " + self.unavailable
        self.unavailable = None
        if os.path.exists(self.path):
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.listen(1024)
        for i in range(WORKERS):
            self.procs.append(Proc("fcgi-pm-worker-%d" % i,
                                   [wexe, "--module", "benchapp:application",
                                    "--python-path", APPDIR, "--chdir", APPDIR,
                                    "--threads", str(THREADS)],
                                   self.tmp, stdin=s.fileno(),
                                   env={"DJANGO_SETTINGS_MODULE": "benchsite.settings"}))
        s.close()
        time.sleep(1.0)
        if not all(p.alive() for p in self.procs):
            self.unavailable = "standalone worker exited: " + self.procs[0].tail(3)

    def location(self):
        return """
    location / {
%s
        fastcgi_param SCRIPT_NAME "";
        fastcgi_param PATH_INFO $uri;
        fastcgi_pass unix:%s;
    }
""" % (fastcgi_params(), self.path)


class FcgiPmBaseline(FcgiPm):
    """fcgi-pm built from another git revision (--baseline REV), run side by
    side with the tree's: the before/after of a change in one run."""
    key, label = "fcgi-pm-baseline", "fcgi-pm baseline"
    build = os.path.join(REPO, "build-baseline", "build")

    def build_status(self):
        return self.ctx.baseline_status

    def start(self):
        self.label = "fcgi-pm @%s" % self.ctx.args.baseline
        self.note = "fcgi-pm built from git revision %s (`--baseline`), same config" % (
            self.ctx.args.baseline)
        if not self.ctx.args.baseline:
            self.unavailable = "no --baseline REV given"
            return
        FcgiPm.start(self)


class FcgiPmKeep(Server):
    key, label = "fcgi-pm-keepalive", "fcgi-pm keep-alive"
    shares = "fcgi-pm"
    upstream_name = "fcgipm_keep"
    note = ("same fcgi-pm pool, through `fastcgi_keep_conn on` and an upstream "
            "`keepalive {keepalive}` per nginx worker")

    def location(self):
        return """
    location / {
%s
        fastcgi_param SCRIPT_NAME "";
        fastcgi_param PATH_INFO $uri;
        fastcgi_keep_conn on;
        fastcgi_read_timeout 10s;
        fastcgi_pass %s;
    }
""" % (fastcgi_params(), self.upstream_name)

    def upstream(self):
        base = self.ctx.servers_by_key[self.shares]
        # nginx must drop an idle kept connection before fcgi-pm does (60 s by default)
        return ("upstream %s { server unix:%s; keepalive %d; "
                "keepalive_timeout 30s; }\n") % (
            self.upstream_name, base.path, self.ctx.args.upstream_keepalive)


class FcgiPmBaselineKeep(FcgiPmKeep):
    """The --baseline revision's pool through keep-alive: before/after of a
    change to the keep-alive path."""
    key, label = "fcgi-pm-baseline-keepalive", "fcgi-pm baseline keep-alive"
    shares = "fcgi-pm-baseline"
    upstream_name = "fcgipm_baseline_keep"
    note = ("the `--baseline` pool, through `fastcgi_keep_conn on` and an upstream "
            "`keepalive {keepalive}` per nginx worker")


def uwsgi_argv(self, name, extra):
    argv = ["/usr/bin/uwsgi-core", "--plugin", "python3", "--master",
            "--processes", str(WORKERS), "--threads", str(THREADS),
            "--chdir", APPDIR, "--pythonpath", APPDIR,
            "--module", "benchapp:application", "--need-app",
            "--env", "DJANGO_SETTINGS_MODULE=benchsite.settings",
            "--listen", "1024", "--buffer-size", "32768",
            "--disable-logging", "--die-on-term",
            "--pidfile", os.path.join(self.tmp, name + ".pid")]
    if not self.ctx.args.preload:
        argv.append("--lazy-apps")
    return argv + extra


class UwsgiFcgi(Server):
    key, label = "uwsgi-fastcgi", "uWSGI FastCGI"

    def start(self):
        self.path = self.sock("uwsgi-fcgi")
        self.procs.append(Proc("uwsgi-fastcgi",
                               uwsgi_argv(self, "uwsgi-fcgi", ["--fastcgi-socket", self.path]),
                               self.tmp))
        if not self.wait_socket(self.path):
            self.unavailable = "no socket: " + self.procs[0].tail(3)

    def location(self):
        return """
    location / {
%s
        fastcgi_param SCRIPT_NAME "";
        fastcgi_param PATH_INFO $uri;
        fastcgi_pass unix:%s;
    }
""" % (fastcgi_params(), self.path)


class UwsgiNative(Server):
    key, label = "uwsgi-native", "uWSGI uwsgi-proto"

    def start(self):
        self.path = self.sock("uwsgi-native")
        self.procs.append(Proc("uwsgi-native",
                               uwsgi_argv(self, "uwsgi-native", ["--socket", self.path]),
                               self.tmp))
        if not self.wait_socket(self.path):
            self.unavailable = "no socket: " + self.procs[0].tail(3)

    def location(self):
        return """
    location / {
        include /etc/nginx/uwsgi_params;
        uwsgi_param SCRIPT_NAME "";
        uwsgi_pass unix:%s;
    }
""" % self.path


class Gunicorn(Server):
    key, label = "gunicorn", "gunicorn sync"

    def start(self):
        self.path = self.sock("gunicorn")
        argv = ["/usr/bin/gunicorn", "--workers", str(WORKERS), "--threads", str(THREADS),
                "--worker-class", "sync", "--bind", "unix:" + self.path,
                "--backlog", "1024", "--chdir", APPDIR, "--pythonpath", APPDIR,
                "--pid", os.path.join(self.tmp, "gunicorn.pid"),
                "--env", "DJANGO_SETTINGS_MODULE=benchsite.settings"]
        if self.ctx.args.preload:
            argv.append("--preload")
        argv.append("benchapp:application")
        self.procs.append(Proc("gunicorn", argv, self.tmp))
        if not self.wait_socket(self.path):
            self.unavailable = "no socket: " + self.procs[0].tail(3)

    def location(self):
        return """
    location / {
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_pass http://unix:%s:;
    }
""" % self.path


class PhpFpm(Server):
    key, label = "php-fpm", "php-fpm"
    apps = ["hello", "big", "echo"]
    python = False
    note = "PHP 8.2 with opcache, pm = static, 2 children; hello.php, big.php, echo.php"

    def start(self):
        exes = sorted(glob.glob("/usr/sbin/php-fpm*"))
        if not exes:
            self.unavailable = "php-fpm not installed"
            return
        self.note = self.note.replace("2 children", "%d children" % WORKERS)
        self.path = self.sock("php-fpm")
        conf = os.path.join(self.tmp, "php-fpm.conf")
        with open(conf, "w") as f:
            f.write("""; written by tests/bench/bench.py
[global]
pid = {tmp}/php-fpm.pid
error_log = {tmp}/php-fpm.error.log
daemonize = no

[bench]
listen = {sock}
listen.backlog = 1024
pm = static
pm.max_children = {w}
""".format(tmp=self.tmp, sock=self.path, w=WORKERS))
        self.procs.append(Proc("php-fpm", [exes[-1], "-F", "-R", "-y", conf, "-p", self.tmp],
                               self.tmp))
        if not self.wait_socket(self.path):
            self.unavailable = "no socket: " + self.procs[0].tail(3)

    def location(self):
        return """
    location ~ ^/(hello|big|echo)$ {
%s
        fastcgi_param SCRIPT_FILENAME %s/$1.php;
        fastcgi_param SCRIPT_NAME /$1.php;
        fastcgi_pass unix:%s;
    }
""" % (fastcgi_params(), PHPDIR, self.path)


SERVER_CLASSES = [NginxCeiling, FcgiPm, FcgiPmKeep, FcgiPmBaseline, FcgiPmBaselineKeep,
                  UwsgiFcgi, UwsgiNative, Gunicorn, PhpFpm]
BASELINE = "uwsgi-fastcgi"
CEILING = "nginx"


# ------------------------------------------------------------------- set-up

def ensure_packages(args):
    missing = [pkg for pkg, path in PACKAGES if not glob.glob(path)]
    if not missing:
        return
    if args.no_install:
        sys.exit("missing packages (run without --no-install): " + " ".join(missing))
    log("apt-get install " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing, env=env)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing,
                       env=env, check=True)


def build_fcgi_pm(args):
    """meson/ninja into build-bench/ (release).  Returns a status string."""
    if args.no_build:
        return "build skipped (--no-build)"
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        r = subprocess.run(["meson", "setup", BUILD, REPO, "--buildtype=release",
                            "-Dtests=disabled"], capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(BUILD, ignore_errors=True)
            errs = [l for l in (r.stdout + r.stderr).splitlines() if "ERROR" in l]
            return "meson setup failed: " + (errs[0] if errs else "see meson output")
    r = subprocess.run(["ninja", "-C", BUILD], capture_output=True, text=True)
    if r.returncode != 0:
        errs = [l for l in (r.stdout + r.stderr).splitlines() if "error" in l]
        return "ninja failed: " + (errs[0] if errs else r.stdout.strip().splitlines()[-1])
    return "built"


def build_baseline(args):
    """Check out REV (a git worktree in build-baseline/src) and build it into
    build-baseline/build (release).  Returns a status string."""
    top = os.path.join(REPO, "build-baseline")
    src, build = os.path.join(top, "src"), os.path.join(top, "build")
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", args.baseline + "^{commit}"],
                         capture_output=True, text=True)
    if rev.returncode != 0:
        return "unknown git revision %r" % args.baseline
    if os.path.exists(src):
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", src],
                       capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    subprocess.run(["git", "-C", REPO, "worktree", "prune"], capture_output=True)
    r = subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", src, rev.stdout.strip()],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "git worktree add failed: " + r.stderr.strip()
    r = subprocess.run(["meson", "setup", build, src, "--buildtype=release", "-Dtests=disabled"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run(["ninja", "-C", build], capture_output=True, text=True)
    if r.returncode != 0:
        return "build of %s failed: %s" % (args.baseline, (r.stdout + r.stderr).strip().splitlines()[-1])
    return "built %s" % args.baseline


def free_port_check(ports):
    for p in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            sys.exit("port %d on 127.0.0.1 is in use; pick another --base-port" % p)
        finally:
            s.close()


def write_static(static):
    os.makedirs(static, exist_ok=True)
    with open(os.path.join(static, "big"), "wb") as f:
        f.write(BIG)
    # the Django page's exact bytes, rendered once offline
    code = ("import sys, io; sys.path.insert(0, %r); import benchapp\n"
            "env = {'PATH_INFO': '/django/', 'REQUEST_METHOD': 'GET', 'SERVER_NAME': 'x',"
            " 'SERVER_PORT': '80', 'wsgi.input': io.BytesIO(), 'wsgi.url_scheme': 'http',"
            " 'QUERY_STRING': ''}\n"
            "sys.stdout.buffer.write(b''.join(benchapp.application(env, lambda s, h: None)))\n"
            % APPDIR)
    html = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, check=True).stdout
    with open(os.path.join(static, "django.html"), "wb") as f:
        f.write(html)


def nginx_conf(ctx):
    a = ctx.args
    t = ctx.tmp
    ups = "".join(s.upstream() for s in ctx.servers if hasattr(s, "upstream") and s.port)
    blocks = []
    for s in ctx.servers:
        if not s.port:
            continue
        # reuseport: one listening socket per nginx worker, so the kernel
        # spreads wrk's connections over the workers.  Without it one nginx
        # worker often accepted all 16 and the other sat idle (18% of the
        # machine idle, req/s of a cell varying by 30% between rounds).
        blocks.append("  server {\n    listen 127.0.0.1:%d reuseport;\n    server_name localhost;\n%s  }\n"
                      % (s.port, s.location()))
    return """# written by tests/bench/bench.py
{user}worker_processes {nw};
pid {t}/nginx.pid;
error_log {t}/nginx-error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  default_type application/octet-stream;
  keepalive_requests 1000000;
  client_body_temp_path {t}/nginx-body;
  fastcgi_temp_path {t}/nginx-fastcgi;
  uwsgi_temp_path {t}/nginx-uwsgi;
  proxy_temp_path {t}/nginx-proxy;
  scgi_temp_path {t}/nginx-scgi;
  client_body_buffer_size 64k;
  client_max_body_size 1m;
  fastcgi_buffer_size 16k; fastcgi_buffers 8 16k;
  uwsgi_buffer_size 16k;   uwsgi_buffers 8 16k;
  proxy_buffer_size 16k;   proxy_buffers 8 16k;
{ups}
{blocks}
}}
""".format(user="user root;\n" if os.geteuid() == 0 else "", nw=a.nginx_workers, t=t, ups=ups, blocks="".join(blocks))


def http(port, app, timeout=10):
    url = "http://127.0.0.1:%d%s" % (port, "/django/" if app == "django" else "/" + app)
    data = POST if app == "echo" else None
    req = urllib.request.Request(url, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def check_cell(server, app):
    """One real request through nginx; None if the answer is right, else why not."""
    try:
        status, body = http(server.port, app)
    except urllib.error.HTTPError as e:
        return "HTTP %d %s" % (e.code, e.reason)
    except Exception as e:  # noqa: BLE001 - any failure is a reason to skip the cell
        return "%s: %s" % (type(e).__name__, e)
    if status != 200:
        return "HTTP %d" % status
    if app == "hello" and body != HELLO:
        return "body %r" % body[:60]
    if app == "big" and body != BIG:
        return "body of %d bytes, not the 64 KiB pattern" % len(body)
    if app == "echo" and server.key != "nginx" and body != POST:
        return "echo of %d bytes, not the 16 KiB sent" % len(body)
    if app == "django" and b"bench-django-page" not in body:
        return "not the Django page: %r" % body[:100]
    return None


# --------------------------------------------------------------------- wrk

def measure_app_cost(ctx):
    """The app's own CPU per request, no server (appcost.py), once per round."""
    secs = 0.5 if ctx.args.quick else 1.0
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "appcost.py"), str(secs),
                        ",".join(ctx.args.apps)], capture_output=True, text=True)
    try:
        for app, us in json.loads(r.stdout).items():
            ctx.appcost.setdefault(app, []).append(us)
    except ValueError:
        log("appcost.py failed: " + r.stderr.strip()[-200:])


def run_wrk(ctx, server, app, duration):
    url = "http://127.0.0.1:%d%s" % (server.port, "/django/" if app == "django" else "/" + app)
    script = os.path.join(LUADIR, "post16k.lua" if app == "echo" else "report.lua")
    argv = ["wrk", "-t", str(ctx.args.wrk_threads), "-c", str(ctx.args.connections),
            "-d", "%ds" % duration, "--timeout", "10s", "--latency", "-s", script, url]
    pids = server.pids()
    npids = ctx.nginx.family()
    t0, n0, c0 = cpu_ticks(pids), cpu_ticks(npids), cpu_stat()
    w0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                           env=dict(os.environ, BENCH_LUA_DIR=LUADIR))
    except subprocess.TimeoutExpired:
        return {"failed": "wrk did not finish within %d s" % (duration + 60)}
    t1, n1, c1 = cpu_ticks(pids), cpu_ticks(npids), cpu_stat()
    w1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pss = pss_kb(server.pids())
    res = None
    for line in r.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            res = json.loads(line[len("BENCHJSON "):])
    if res is None:
        return {"failed": (r.stderr or r.stdout).strip()[-300:]}
    secs = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / secs if secs else 0.0
    res["errors"] = res["status"] + res["connect"] + res["read"] + res["write"] + res["timeout"]
    res["pss_kb"] = pss
    hz = os.sysconf("SC_CLK_TCK")
    ticks = sum(t1[p] - t0[p] for p in t1 if p in t0)
    res["cpu_us_per_req"] = (ticks / hz * 1e6 / res["requests"]) if res["requests"] else None
    nticks = sum(n1[p] - n0[p] for p in n1 if p in n0)
    res["nginx_us_per_req"] = (nticks / hz * 1e6 / res["requests"]) if res["requests"] else None
    total = sum(c1[:8]) - sum(c0[:8])     # user..steal; guest is already in user
    idle = (c1[3] + c1[4]) - (c0[3] + c0[4])
    res["idle_pct"] = 100.0 * idle / total if total else None
    # CPU used by everything outside the benchmark (other work on the machine)
    wrk_s = (w1.ru_utime - w0.ru_utime) + (w1.ru_stime - w0.ru_stime)
    ours = (ticks + (0 if server.key == CEILING else nticks)) / hz + wrk_s
    res["other_pct"] = (max(0.0, 100.0 * ((total - idle) / hz - ours) / (total / hz))
                        if total else None)
    res["raw"] = r.stdout
    return res


# ------------------------------------------------------------------- report

def versions(ctx):
    def first(argv, stream="stdout"):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            out = (r.stdout if stream == "stdout" else r.stderr) or r.stdout or r.stderr
            return out.strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"
    php = sorted(glob.glob("/usr/sbin/php-fpm*"))
    git = first(["git", "-C", REPO, "log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M"])
    django = first(["/usr/bin/python3", "-c", "import django; print(django.get_version())"])
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "fcgi-pm", "embed",
                            "meson.build"], capture_output=True, text=True).stdout.strip()
    return {
        "fcgi-pm": "git %s%s (%s)" % (git, " + uncommitted changes in the tree" if dirty else "",
                                      ctx.build_status),
        "nginx": first(["nginx", "-v"], "stderr").replace("nginx version: nginx/", ""),
        "wrk": first(["wrk", "-v"]).split(" [")[0].replace("wrk ", ""),
        "uWSGI": first(["/usr/bin/uwsgi-core", "--version"]),
        "gunicorn": first(["/usr/bin/gunicorn", "--version"]).replace("gunicorn (version ", "").rstrip(")"),
        "php-fpm": first([php[-1], "-v"]).split(" (")[0].replace("PHP ", "") if php else "-",
        "Python": platform.python_version(),
        "Django": django,
    }


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return {"nproc": os.cpu_count(), "cpu": model, "mem_mib": mem,
            "kernel": platform.release()}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_rate(server, x):
    """Requests per CPU-second of server + nginx: throughput that does not
    depend on how much of a busy machine the cell got."""
    cpu = x.get("cpu_us")
    if cpu is None:
        return "-"
    if server.key != CEILING:
        if x.get("nginx_us") is None:
            return "-"
        cpu += x["nginx_us"]
    return "%.0f" % (1e6 / cpu) if cpu > 0 else "-"


def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(ctx):
    """Per (server, app): median/min/max req/s, median p50/p99, errors summed,
    median PSS and CPU per request."""
    summ = {}
    for (key, app), runs in ctx.results.items():
        ok = [r for r in runs if "rps" in r]
        if not ok:
            summ[(key, app)] = {"failed": runs[-1].get("failed", "no run") if runs else "no run"}
            continue
        rps = [r["rps"] for r in ok]
        cpu = [r["cpu_us_per_req"] for r in ok if r["cpu_us_per_req"] is not None]
        summ[(key, app)] = {
            "rps": statistics.median(rps), "min": min(rps), "max": max(rps),
            "p50_us": statistics.median(r["p50_us"] for r in ok),
            "p99_us": statistics.median(r["p99_us"] for r in ok),
            "p99_max_us": max(r["p99_us"] for r in ok),
            "errors": sum(r["errors"] for r in ok),
            "requests": sum(r["requests"] for r in ok),
            "non2xx": sum(r["status"] for r in ok),
            "sockerr": sum(r["connect"] + r["read"] + r["write"] + r["timeout"] for r in ok),
            "pss_kb": statistics.median(r["pss_kb"] for r in ok),
            "cpu_us": statistics.median(cpu) if cpu else None,
            "nginx_us": med([r.get("nginx_us_per_req") for r in ok]),
            "idle_pct": med([r.get("idle_pct") for r in ok]),
            "other_pct": med([r.get("other_pct") for r in ok]),
            "rounds": len(ok),
        }
    return summ


def write_report(ctx, summ, started, finished):
    a = ctx.args
    out = a.out
    os.makedirs(out, exist_ok=True)
    m = machine()
    v = versions(ctx)
    L = []
    L.append("# fcgi-pm benchmark results\n")
    L.append("Generated by `tests/bench/run.sh%s` on %s UTC (%s mode; finished %s UTC)."
             % ((" " + shlex.join(ctx.argv)) if ctx.argv else "", started, "quick" if a.quick else "full", finished))
    L.append("")
    L.append("- **Machine:** %d CPUs, %s, %d MiB RAM, Linux %s; load average before %s, after %s."
             % (m["nproc"], m["cpu"], m["mem_mib"], m["kernel"], ctx.load_before, ctx.load_after))
    L.append("- **Caveat:** nginx, wrk and the server under test share the same %d CPUs%s."
             % (m["nproc"], "; " + a.caveat if a.caveat else ""))
    L.append("- **Versions:** " + "; ".join("%s %s" % kv for kv in v.items()) + ".")
    L.append("- **Every Python server:** %d worker processes × %d thread, app module "
             "`tests/bench/app/benchapp.py` (all four scenarios), %s."
             % (WORKERS, THREADS, "app preloaded before fork (`--preload`)" if a.preload
                else "app imported in each worker (no preload: uWSGI `--lazy-apps`, "
                     "gunicorn and fcgi-pm default)"))
    L.append("- **Load:** wrk %s, `-t%d -c%d`, %d s per cell, %d rounds interleaved "
             "(every server and app once per round), %d s warm-up per cell first; "
             "nginx %s: %d worker process(es), one `server` per backend on 127.0.0.1, unix "
             "sockets to the backends."
             % (v["wrk"], a.wrk_threads, a.connections, a.duration, a.rounds, a.warmup,
                v["nginx"], a.nginx_workers))
    L.append("- **Columns:** req/s is the median over rounds (min–max); p50/p99 are wrk's "
             "latency percentiles (median over rounds); errors = non-2xx + socket errors, "
             "summed over rounds; PSS is summed over the server's processes (main pid and "
             "all descendants, `/proc/PID/smaps_rollup`) right after each cell, median; "
             "CPU µs/req is the user+system CPU of those processes per request (not nginx, "
             "not wrk), nginx µs/req the same for nginx's processes; req/CPU-s is requests per CPU-second of "
             "the server and nginx together (1e6 / the sum; steadier than req/s on a busy "
             "machine); idle % is the whole "
             "machine's idle time during the cell (from /proc/stat: idle CPU while the "
             "benchmark is saturating means something is waiting), other % the machine's CPU "
             "used by processes outside the benchmark (noise); ratios are of median req/s.")
    L.append("")
    for s in ctx.servers:
        if s.note:
            note = s.note.replace("{keepalive}", str(a.upstream_keepalive))
            L.append("- *%s*: %s." % (s.label, note))
        if s.unavailable:
            L.append("- *%s*: **not measured** — %s." % (s.label, s.unavailable))
    for (key, app), why in sorted(ctx.skipped.items()):
        L.append("- *%s / %s*: **skipped**, the check request failed: %s."
                 % (ctx.servers_by_key[key].label, app, why))
    L.append("")
    L.append("![req/s per server and scenario](%s)\n" % os.path.basename(a.png))
    for app in a.apps:
        L.append("## %s\n" % APP_TITLES[app])
        app_us = med(ctx.appcost.get(app, []))
        if app_us is not None:
            L.append("The app alone, called in a loop with no server (`appcost.py`): "
                     "%.1f µs CPU per request; *server µs/req* below is each Python "
                     "server's CPU per request minus that.\n" % app_us)
        L.append("| server | req/s (min–max) | p50 ms | p99 ms | errors | PSS MiB | CPU µs/req "
                 "| server µs/req | nginx µs/req | req/CPU-s | idle / other % | × uWSGI-FastCGI | × nginx |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = summ.get((BASELINE, app), {}).get("rps")
        ceil = summ.get((CEILING, app), {}).get("rps")
        for s in ctx.servers:
            if app not in s.apps:
                continue
            x = summ.get((s.key, app))
            if x is None:
                continue
            if "failed" in x:
                L.append("| %s | failed: %s | | | | | | | | | | | |" % (s.label, x["failed"][:80].replace("|", "/")))
                continue
            L.append("| %s | **%.0f** (%.0f–%.0f) | %s | %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
                s.label, x["rps"], x["min"], x["max"], fmt_ms(x["p50_us"]), fmt_ms(x["p99_us"]),
                x["errors"], x["pss_kb"] / 1024.0,
                "%.0f" % x["cpu_us"] if x["cpu_us"] is not None else "-",
                "%.0f" % (x["cpu_us"] - app_us) if x["cpu_us"] is not None and app_us is not None
                and s.python else "-",
                "%.0f" % x["nginx_us"] if x["nginx_us"] is not None and s.key != CEILING else "-",
                cpu_rate(s, x),
                "%.0f / %.0f" % (x["idle_pct"], x["other_pct"]) if x["idle_pct"] is not None
                and x["other_pct"] is not None else "-",
                "%.2f" % (x["rps"] / base) if base else "-",
                "%.2f" % (x["rps"] / ceil) if ceil else "-"))
        L.append("")
    L.extend(targets_section(ctx, summ))
    L.extend(profile_section(ctx, summ))
    L.extend(memory_section(ctx))
    if ctx.nginx_errors:
        L.append("nginx logged %d `[error]` lines during the run (mostly upstream connections "
                 "cut when wrk stops mid-request).\n" % ctx.nginx_errors)
    L.append("Raw per-round numbers: `%s`.\n" % os.path.basename(a.json))
    with open(a.md, "w") as f:
        f.write("\n".join(L))
    with open(a.json, "w") as f:
        json.dump({"started": started, "finished": finished, "machine": m, "versions": v,
                   "args": {k: getattr(a, k) for k in vars(a)},
                   "servers": {s.key: s.label for s in ctx.servers},
                   "unavailable": {s.key: s.unavailable for s in ctx.servers if s.unavailable},
                   "skipped": {"%s/%s" % k: v for k, v in ctx.skipped.items()},
                   "appcost_us": ctx.appcost,
                   "profile": ctx.profile,
                   "runs": {"%s/%s" % k: [{kk: vv for kk, vv in r.items() if kk != "raw"}
                                          for r in runs]
                            for k, runs in ctx.results.items()}}, f, indent=1)
    chart(ctx, summ, started)
    log("wrote %s, %s, %s" % (a.md, a.png, a.json))


PEERS = ["uwsgi-fastcgi", "uwsgi-native", "gunicorn", "php-fpm"]


def targets_section(ctx, summ):
    """Issue 7's targets, checked against this run's medians."""
    def rps(key, app):
        return summ.get((key, app), {}).get("rps")

    variants = [k for k in ("fcgi-pm", "fcgi-pm-keepalive") if any(
        "rps" in summ.get((k, app), {}) for app in APPS)]
    if not variants:
        return []
    rows = []
    ratio_targets = [
        ("hello", "uwsgi-fastcgi", 1.3), ("hello", "uwsgi-native", 1.0), ("hello", "gunicorn", 2.0),
        ("big", "uwsgi-native", 1.0), ("echo", "uwsgi-native", 1.0)]
    for app, peer, want in ratio_targets:
        cells = []
        for v in variants:
            a, b = rps(v, app), rps(peer, app)
            cells.append("%.2f %s" % (a / b, "✔" if a / b >= want else "✘") if a and b else "-")
        rows.append(("%s: req/s ≥ %.2g × %s" % (app, want, ctx.servers_by_key[peer].label
                                               if peer in ctx.servers_by_key else peer), cells))
    peers = [k for k in PEERS[:3] if rps(k, "django")]
    if peers:
        cells = []
        best = max(rps(k, "django") for k in peers)
        for v in variants:
            a = rps(v, "django")
            cells.append("%.2f %s" % (a / best, "✔" if a / best >= 1.05 else "✘") if a else "-")
        rows.append(("django: req/s ≥ 1.05 × best Python peer", cells))
    app_us = med(ctx.appcost.get("django", []))
    if app_us is not None:
        cells = []
        for v in variants:
            x = summ.get((v, "django"), {})
            if x.get("cpu_us") is None:
                cells.append("-")
                continue
            over = x["cpu_us"] - app_us
            cells.append("%.0f µs %s" % (over, "✔" if over < 50 else "✘"))
        rows.append(("django: server CPU/req beyond the app < 50 µs (rough upper bound "
                     "from /proc: includes cache and scheduling effects of running under "
                     "load; the real check is the profile, next row)", cells))
    if getattr(ctx, "profile", None):
        cells = []
        for v in variants:
            p, x = ctx.profile.get(v, {}), summ.get((v, "django"), {})
            if "own_pct" not in p or x.get("cpu_us") is None:
                cells.append("-")
                continue
            us = x["cpu_us"] * p["own_pct"] / 100.0
            cells.append("%.0f µs (%.1f%%) %s" % (us, p["own_pct"], "✔" if us < 50 else "✘"))
        rows.append(("django: the worker's own CPU/req, from a perf profile "
                     "(see *Profile* below) < 50 µs", cells))
    for app in ctx.args.apps:
        ps = [summ[(k, app)]["p99_us"] for k in PEERS if "rps" in summ.get((k, app), {})]
        if not ps:
            continue
        cells = []
        for v in variants:
            x = summ.get((v, app), {})
            cells.append("%s vs %s ms %s" % (fmt_ms(x["p99_us"]), fmt_ms(min(ps)),
                                              "✔" if x["p99_us"] <= min(ps) else "✘")
                         if "rps" in x else "-")
        rows.append(("%s: p99 ≤ every peer's" % app, cells))
    cells = []
    for v in variants:
        e = sum(summ[(v, app)]["errors"] for app in APPS if "rps" in summ.get((v, app), {}))
        cells.append("%d %s" % (e, "✔" if e == 0 else "✘"))
    rows.append(("no failed request (non-2xx + socket errors)", cells))
    L = ["## Issue 7 targets in this run\n",
         "| target | " + " | ".join(ctx.servers_by_key[v].label for v in variants) + " |",
         "|---|" + "---:|" * len(variants)]
    for name, cells in rows:
        L.append("| %s | %s |" % (name, " | ".join(cells)))
    if "fcgi-pm-keepalive" in variants and "fcgi-pm" in variants:
        gains = []
        for app in ctx.args.apps:
            a, b = rps("fcgi-pm-keepalive", app), rps("fcgi-pm", app)
            if a and b:
                gains.append("%s %+.0f%%" % (app, 100.0 * (a / b - 1)))
        L.append("")
        L.append("Keep-alive gain (`fastcgi_keep_conn on` vs off, median req/s): " +
                 ", ".join(gains) + ".")
    L.append("")
    return L


PROFILED = ("fcgi-pm", "fcgi-pm-keepalive", "fcgi-pm-baseline", "fcgi-pm-baseline-keepalive",
            "uwsgi-fastcgi", "uwsgi-native")


def profile_servers(ctx, seconds=10):
    """perf-profile the busiest process of each Python server under the
    Django page (wrk as in the rounds) and split its samples into the app's
    and the server's own.  Sets ctx.profile[key]."""
    sys.path.insert(0, HERE)
    import perf_split
    for s in ctx.servers:
        # gunicorn's own loop is Python code too: the split cannot tell it from the app
        if not s.port or s.key not in PROFILED or (s.key, "django") not in ctx.results:
            continue
        wrk = subprocess.Popen(["wrk", "-t%d" % ctx.args.wrk_threads, "-c%d" % ctx.args.connections,
                                "-d%ds" % (seconds + 3),
                                "http://127.0.0.1:%d/django/" % s.port],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            before = cpu_ticks_by_pid(s.pids())
            time.sleep(1.0)
            after = cpu_ticks_by_pid(s.pids())
            busiest = max(after, key=lambda p: after[p] - before.get(p, 0))
            data = os.path.join(ctx.tmp, "perf-%s.data" % s.key)
            rec = subprocess.run(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384",
                                  "-o", data, "-p", str(busiest), "--", "sleep", str(seconds)],
                                 capture_output=True, text=True)
        finally:
            wrk.wait()
        if rec.returncode != 0:
            ctx.profile[s.key] = {"failed": (rec.stderr.strip().splitlines() or ["perf failed"])[-1]}
            continue
        script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"],
                                capture_output=True, text=True)
        total, app, own = perf_split.split(script.stdout.splitlines(True))
        if total == 0:
            ctx.profile[s.key] = {"failed": "no samples"}
            continue
        ctx.profile[s.key] = {"pid": busiest, "samples": total, "own_pct": 100.0 * (total - app) / total,
                              "top": [(100.0 * n / total, k) for k, n in own.most_common(4)]}
        log("profile %-28s %5d samples, server's own %.1f%%" % (s.label, total,
                                                              ctx.profile[s.key]["own_pct"]))


def cpu_ticks_by_pid(pids):
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def profile_section(ctx, summ):
    if not ctx.profile:
        return []
    L = ["## Profile: the server's own CPU on the Django page\n",
         "One worker of each Python server (the busiest) under the same wrk load, "
         "`perf record -F 499 --call-graph dwarf` for 10 s, split by "
         "[`perf_split.py`](perf_split.py): a sample is the app's when Python code "
         "runs in it, the server's own otherwise (protocol, environ, gateway, and the "
         "kernel side of its syscalls). *Own µs/req* is that share of the server's "
         "median CPU per request in the rounds above.\n",
         "| server | samples | server's own | own µs/req | where (share of all samples) |",
         "|---|---:|---:|---:|---|"]
    for s in ctx.servers:
        p = ctx.profile.get(s.key)
        if p is None:
            continue
        if "failed" in p:
            L.append("| %s | - | - | - | perf failed: %s |" % (s.label, p["failed"]))
            continue
        cpu = summ.get((s.key, "django"), {}).get("cpu_us")
        L.append("| %s | %d | %.1f%% | %s | %s |" % (
            s.label, p["samples"], p["own_pct"],
            "%.0f" % (cpu * p["own_pct"] / 100.0) if cpu else "-",
            "; ".join("%s %.1f%%" % (k, pct) for pct, k in p["top"])))
    L.append("")
    return L


def memory_section(ctx):
    if not ctx.mem_breakdown:
        return []
    L = ["## Memory per process (at the end of the run)\n",
         "PSS charges each process its share of shared pages; USS is its private pages, "
         "i.e. what one more such process costs.\n",
         "| server | processes (name pid: PSS / USS MiB) | total PSS MiB |", "|---|---|---:|"]
    for s in ctx.servers:
        procs = ctx.mem_breakdown.get(s.key)
        if not procs:
            continue
        L.append("| %s | %s | %.1f |" % (
            s.label, ", ".join("%s %d: %.1f / %.1f" % (c, p, k / 1024.0, u / 1024.0)
                               for p, c, k, u in procs),
            sum(k for _, _, k, _ in procs) / 1024.0))
    L.append("")
    return L


def chart(ctx, summ, started):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    apps = ctx.args.apps
    fig, axes = plt.subplots(2, len(apps), figsize=(4.2 * len(apps), 7.5), squeeze=False)
    colors = {"nginx": "#999999", "fcgi-pm": "#1f77b4", "fcgi-pm-keepalive": "#17becf",
              "uwsgi-fastcgi": "#ff7f0e", "uwsgi-native": "#ffbb78", "gunicorn": "#2ca02c",
              "php-fpm": "#9467bd", "fcgi-pm-baseline": "#aec7e8",
              "fcgi-pm-baseline-keepalive": "#c5b0d5"}
    for i, app in enumerate(apps):
        rows = [(s, summ[(s.key, app)]) for s in ctx.servers
                if (s.key, app) in summ and "rps" in summ[(s.key, app)]]
        labels = [s.label for s, _ in rows]
        ypos = range(len(rows))
        for j, (metric, title) in enumerate((("rps", "req/s (median, min–max)"),
                                              ("p99_us", "p99 latency ms"))):
            ax = axes[j][i]
            if metric == "rps":
                vals = [x["rps"] for _, x in rows]
                err = [[x["rps"] - x["min"] for _, x in rows], [x["max"] - x["rps"] for _, x in rows]]
            else:
                vals = [x["p99_us"] / 1000.0 for _, x in rows]
                err = None
            ax.barh(list(ypos), vals, xerr=err, color=[colors.get(s.key, "#333") for s, _ in rows],
                    capsize=3)
            others = [v for (s, _), v in zip(rows, vals) if s.key != CEILING]
            clipped = metric == "rps" and others and max(vals) > 4 * max(others)
            if clipped:   # the ceiling would flatten every other bar
                ax.set_xlim(0, 1.3 * max(others))
            ax.set_yticks(list(ypos))
            ax.set_yticklabels(labels if i == 0 else [""] * len(labels), fontsize=8)
            ax.invert_yaxis()
            ax.set_title("%s\n%s" % (app, title) if j == 0 else title, fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
            xmax = ax.get_xlim()[1]
            tops = [x["max"] for _, x in rows] if metric == "rps" else vals
            for y, val, top in zip(ypos, vals, tops):
                txt = " %.0f" % val if metric == "rps" else " %.2f" % val
                if val > xmax:
                    ax.text(xmax, y, "%s (off scale) " % txt.strip(), va="center", ha="right",
                            fontsize=7, color="white")
                else:
                    ax.text(top, y, txt, va="center", fontsize=7)
    fig.suptitle("fcgi-pm vs peers behind one nginx — %s, %d CPUs, %d workers × %d thread%s"
                 % (started, os.cpu_count(), WORKERS, THREADS,
                    " (quick run)" if ctx.args.quick else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(ctx.args.png, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------- main

class Ctx:
    pass


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tests/bench/run.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s per cell, 1 s warm-up")
    p.add_argument("--duration", type=int, default=None, help="seconds per cell (default 10)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per cell (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk -c")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t")
    p.add_argument("--nginx-workers", type=int, default=2)
    p.add_argument("--upstream-keepalive", type=int, default=8,
                   help="nginx upstream keepalive for the fcgi-pm keep-alive variant "
                        "(default 8, as etc/nginx/django-site.conf recommends)")
    p.add_argument("--servers", default=",".join(c.key for c in SERVER_CLASSES
                                                 if c.key.find("baseline") == -1),
                   help="comma list of: " + ", ".join(c.key for c in SERVER_CLASSES))
    p.add_argument("--apps", default=",".join(APPS), help="comma list of: " + ", ".join(APPS))
    p.add_argument("--preload", action="store_true",
                   help="load the app before forking (uWSGI default, gunicorn --preload, "
                        "fcgi-pm preload = yes)")
    p.add_argument("--no-standalone-fallback", dest="fcgi_pm_standalone_fallback",
                   action="store_false",
                   help="if fcgi-pm itself fails, do not fall back to bare fcgi-pm-worker processes")
    p.add_argument("--fcgi-pm-standalone", action="store_true",
                   help="run bare fcgi-pm-worker processes on a socket we bind (no supervisor)")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help="worker processes per server (default %d)" % WORKERS)
    p.add_argument("--base-port", type=int, default=18080)
    p.add_argument("--out", default=HERE, help="directory for results.md/.png/.json")
    p.add_argument("--caveat", default="", help="free text added to the machine caveat line")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--baseline", default="", metavar="REV",
                   help="also run fcgi-pm built from git revision REV (row fcgi-pm @REV): "
                        "before/after of a change in one interleaved run")
    p.add_argument("--profile", action="store_true",
                   help="after the rounds, perf-profile one worker of each Python server on "
                        "the Django page and split its CPU into the app's and the server's "
                        "own (perf_split.py); needs perf and root")
    p.add_argument("--hold", action="store_true",
                   help="start and check every server, print ports and pids, then wait "
                        "(no load, no report) until interrupted: for profiling by hand")
    a = p.parse_args(argv)
    if a.duration is None:
        a.duration = 2 if a.quick else 10
    if a.warmup is None:
        a.warmup = 1 if a.quick else 2
    a.servers = [s for s in a.servers.split(",") if s]
    a.apps = [x for x in a.apps.split(",") if x]
    known = {c.key for c in SERVER_CLASSES}
    for s in a.servers:
        if s not in known:
            p.error("unknown server %r" % s)
    for x in a.apps:
        if x not in APPS:
            p.error("unknown app %r" % x)
    if "fcgi-pm-keepalive" in a.servers and "fcgi-pm" not in a.servers:
        a.servers.insert(0, "fcgi-pm")
    if a.baseline and "fcgi-pm-baseline" not in a.servers:
        a.servers.append("fcgi-pm-baseline")
    if "fcgi-pm-baseline-keepalive" in a.servers and "fcgi-pm-baseline" not in a.servers:
        a.servers.append("fcgi-pm-baseline")
    a.servers.sort(key=[c.key for c in SERVER_CLASSES].index)
    a.md = os.path.join(a.out, "results.md")
    a.png = os.path.join(a.out, "results.png")
    a.json = os.path.join(a.out, "results.json")
    return a


def main(argv):
    global WORKERS
    a = parse_args(argv)
    WORKERS = a.workers
    # a TERM (e.g. from timeout(1)) still stops every server through `finally`
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
    if os.geteuid() != 0 and not a.no_install:
        log("not root: skipping apt-get (install the packages listed in README-bench.md)")
        a.no_install = True
    ensure_packages(a)
    ctx = Ctx()
    ctx.args = a
    ctx.argv = argv
    ctx.results = {}
    ctx.skipped = {}
    ctx.nginx = None
    ctx.mem_breakdown = {}
    ctx.profile = {}
    ctx.appcost = {}
    ctx.nginx_errors = 0
    ctx.build_status = build_fcgi_pm(a) if "fcgi-pm" in a.servers else "not requested"
    log("fcgi-pm: " + ctx.build_status)
    ctx.baseline_status = "not requested"
    if a.baseline:
        ctx.baseline_status = build_baseline(a)
        log("fcgi-pm @%s: %s" % (a.baseline, ctx.baseline_status))
    ctx.tmp = tempfile.mkdtemp(prefix="fcgi-pm-bench-")
    ctx.static = os.path.join(ctx.tmp, "static")
    log("temp dir " + ctx.tmp)
    ctx.servers = [c(ctx) for c in SERVER_CLASSES if c.key in a.servers]
    ctx.servers_by_key = {s.key: s for s in ctx.servers}
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    ctx.load_before = loadavg()
    try:
        write_static(ctx.static)
        for s in ctx.servers:
            log("starting " + s.label)
            s.start()
            if s.shares and ctx.servers_by_key[s.shares].unavailable:
                s.unavailable = "needs " + s.shares
                s.label = ctx.servers_by_key[s.shares].label + " keep-alive"
            if s.shares and not s.unavailable:
                s.label = ctx.servers_by_key[s.shares].label + " keep-alive"
                s.procs = []
                s.pids = ctx.servers_by_key[s.shares].pids
            if s.unavailable:
                log("%s: unavailable: %s" % (s.label, s.unavailable))
        port = a.base_port
        for s in ctx.servers:
            s.port = None
            if not s.unavailable:
                s.port = port
                port += 1
        free_port_check([s.port for s in ctx.servers if s.port])
        conf = os.path.join(ctx.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(ctx))
        t = subprocess.run(["nginx", "-t", "-c", conf, "-p", ctx.tmp, "-e", os.path.join(ctx.tmp, "nginx-error.log")],
                           capture_output=True, text=True)
        if t.returncode != 0:
            sys.exit("nginx config rejected:\n" + t.stderr)
        ctx.nginx = Proc("nginx", ["nginx", "-c", conf, "-p", ctx.tmp, "-e",
                                   os.path.join(ctx.tmp, "nginx-error.log")], ctx.tmp)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", a.base_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        # one real request per cell; a wrong answer skips the cell
        cells = []
        ready_by = time.time() + 20
        for s in ctx.servers:
            if not s.port:
                continue
            for app in a.apps:
                if app not in s.apps:
                    continue
                why = check_cell(s, app)
                while why and time.time() < ready_by:   # still importing the app?
                    time.sleep(0.5)
                    why = check_cell(s, app)
                if why:
                    ctx.skipped[(s.key, app)] = why
                    log("%s / %s: check failed, skipped: %s" % (s.label, app, why))
                else:
                    cells.append((s, app))
        log("servers: " + ", ".join("%s on :%d" % (s.label, s.port) for s in ctx.servers if s.port))
        if a.hold:
            for s in ctx.servers:
                if s.port:
                    log("%s: http://127.0.0.1:%d/  pids %s" % (
                        s.label, s.port, " ".join(map(str, s.pids()))))
            log("holding; interrupt (Ctrl-C or kill -TERM %d) to stop everything" % os.getpid())
            while True:
                time.sleep(3600)
        total = len(cells) * (a.warmup + a.duration * a.rounds)
        log("%d cells, about %d s of load" % (len(cells), total))
        for s, app in cells:
            run_wrk(ctx, s, app, a.warmup)
        for rnd in range(1, a.rounds + 1):
            measure_app_cost(ctx)
            for app in a.apps:
                for s, capp in cells:
                    if capp != app:
                        continue
                    r = run_wrk(ctx, s, app, a.duration)
                    ctx.results.setdefault((s.key, app), []).append(r)
                    if "rps" in r:
                        log("round %d %-8s %-28s %8.0f req/s  p99 %6s ms  err %d  PSS %.1f MiB"
                            % (rnd, app, s.label, r["rps"], fmt_ms(r["p99_us"]), r["errors"],
                               r["pss_kb"] / 1024.0))
                    else:
                        log("round %d %s %s: wrk failed: %s" % (rnd, app, s.label, r["failed"]))
        if a.profile:
            profile_servers(ctx)
        ctx.load_after = loadavg()
        for s in ctx.servers:
            if s.port and not s.shares:
                ctx.mem_breakdown[s.key] = pss_by_process(s.pids())
        errs = subprocess.run(["grep", "-c", "\\[error\\]", os.path.join(ctx.tmp, "nginx-error.log")],
                              capture_output=True, text=True).stdout.strip()
        ctx.nginx_errors = int(errs or 0)
        finished = datetime.datetime.utcnow().strftime("%H:%M")
        write_report(ctx, summarize(ctx), started, finished)
        if ctx.nginx_errors:
            log("nginx logged %d [error] lines (see nginx-error.log in the temp dir)" % ctx.nginx_errors)
    finally:
        if ctx.nginx:
            ctx.nginx.stop(signal.SIGQUIT)
        for s in reversed(ctx.servers):
            s.stop()
        if a.keep_tmp:
            log("kept " + ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
