"""test_status - the status socket: php-fpm's numbers, the formats, the
control commands, who may use it, and nginx in front of it.

Drives the real fcgi-pm (and its CLI, `fcgi-pm -c CONF status ...`), real
workers running tests/apps/hello, and a real nginx with etc/nginx/status.conf.
Debian has no promtool short of the whole Prometheus server, so the
Prometheus and OpenMetrics outputs go through the strict parser below.
"""
import json
import os
import re
import socket
import subprocess
import threading
import time

import harness
from harness import HarnessError, hello_pool, wait_until, get, FCGI_PM, IS_ROOT
import fcgiclient as fc

STATUS_SNIPPET = os.path.join(harness.SRC, "etc", "nginx", "status.conf")
_render = harness.render_snippet


def render_status_snippet(snippet_path, port, socket_addr, static_dir):
    """etc/nginx/status.conf with its listen address and socket replaced
    (each exactly once, so the file cannot drift from what is tested)."""
    if snippet_path != STATUS_SNIPPET:
        return _render(snippet_path, port, socket_addr, static_dir)
    with open(snippet_path) as f:
        text = f.read()
    for old, new in (("listen 127.0.0.1:8081;", "listen 127.0.0.1:%d;" % port),
                     ("http://unix:/run/fcgi-pm/status.sock;", "http://unix:%s;" % socket_addr)):
        if text.count(old) != 1:
            raise HarnessError("%s: expected exactly one %r" % (snippet_path, old))
        text = text.replace(old, new)
    return text


harness.render_snippet = render_status_snippet


# ------------------------------------------------ a strict exposition parser

NAME_RX = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RX = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped", "unknown", "stateset", "info",
         "gaugehistogram"}


def _parse_labels(s, where):
    """'{a="x",b="y"}' body (without braces) -> list of (name, value)."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", s[i:])
        if not m:
            raise ValueError("%s: bad label at %r" % (where, s[i:]))
        name = m.group(1)
        i += m.end()
        val = []
        while True:
            if i >= len(s):
                raise ValueError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("%s: bad escape \\%s" % (where, nxt))
                val.append({"n": "\n"}.get(nxt, nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError("%s: newline in a label value" % where)
            else:
                val.append(c)
                i += 1
        if any(n == name for n, _ in out):
            raise ValueError("%s: label %s twice" % (where, name))
        out.append((name, "".join(val)))
        if i < len(s):
            if s[i] != ",":
                raise ValueError("%s: expected ',' in labels at %r" % (where, s[i:]))
            i += 1
    return out


def _parse_value(v, where):
    if v in ("NaN", "+Inf", "-Inf"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\Z", v):
        raise ValueError("%s: bad value %r" % (where, v))
    return float(v)


def parse_exposition(text, openmetrics=False):
    """Parse Prometheus text format 0.0.4 (or OpenMetrics 1.0) strictly.
    Returns {family: {"type": t, "help": h, "samples": [(name, {labels}, value)]}}.
    Raises ValueError on anything promtool would reject (and a bit more)."""
    if not text.endswith("\n"):
        raise ValueError("the last line has no newline")
    lines = text[:-1].split("\n")
    if openmetrics:
        if lines[-1] != "# EOF":
            raise ValueError("OpenMetrics text must end with '# EOF'")
        lines = lines[:-1]
    elif "# EOF" in lines:
        raise ValueError("'# EOF' in Prometheus 0.0.4 text")
    fams, seen_series, done, current = {}, set(), set(), None

    def family_of(sample):
        for f, d in fams.items():
            if sample == f:
                return f
            if d["type"] == "counter" and sample in (f + "_total", f + "_created") and openmetrics:
                return f
        return sample
    for n, line in enumerate(lines, 1):
        where = "line %d" % n
        if line == "":
            if openmetrics:
                raise ValueError("%s: blank line in OpenMetrics" % where)
            continue
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE|UNIT) (\S+)(?: (.*))?\Z", line)
            if not m:
                if openmetrics:
                    raise ValueError("%s: bad comment %r" % (where, line))
                continue
            kind, name, rest = m.group(1), m.group(2), m.group(3) or ""
            if not NAME_RX.match(name):
                raise ValueError("%s: bad metric name %r" % (where, name))
            if name in done:
                raise ValueError("%s: %s metadata after its samples ended" % (where, name))
            d = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if d["samples"]:
                raise ValueError("%s: %s %s after its samples" % (where, kind, name))
            if kind == "TYPE":
                if d["type"] is not None:
                    raise ValueError("%s: second TYPE for %s" % (where, name))
                if rest not in TYPES:
                    raise ValueError("%s: unknown type %r" % (where, rest))
                if openmetrics and rest == "counter" and name.endswith("_total"):
                    raise ValueError("%s: OpenMetrics counter family %s ends in _total"
                                     % (where, name))
                d["type"] = rest
            elif kind == "HELP":
                if d["help"] is not None:
                    raise ValueError("%s: second HELP for %s" % (where, name))
                d["help"] = rest
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?\Z", line)
        if not m:
            raise ValueError("%s: bad sample line %r" % (where, line))
        sname, labels = m.group(1), _parse_labels(m.group(3) or "", where)
        value = _parse_value(m.group(4), where)
        fam = family_of(sname)
        if fam in done:
            raise ValueError("%s: samples of %s are not together" % (where, fam))
        if current is not None and current != fam:
            done.add(current)
        current = fam
        d = fams.setdefault(fam, {"type": None, "help": None, "samples": []})
        if d["type"] == "counter":
            if not sname.endswith("_total") and (openmetrics or sname != fam):
                raise ValueError("%s: counter sample %s does not end in _total" % (where, sname))
            if value < 0:
                raise ValueError("%s: negative counter %s" % (where, sname))
        key = (sname, tuple(sorted(labels)))
        if key in seen_series:
            raise ValueError("%s: series %s%s twice" % (where, sname, dict(labels)))
        seen_series.add(key)
        d["samples"].append((sname, dict(labels), value))
    for f, d in fams.items():
        if d["type"] is None:
            raise ValueError("%s has no TYPE" % f)
    return fams


def sample(fams, name, **labels):
    """The value of series NAME{LABELS} (labels given must match; others ignored)."""
    for d in fams.values():
        for sname, lab, v in d["samples"]:
            if sname == name and all(lab.get(k) == str(x) for k, x in labels.items()):
                return v
    raise KeyError("%s%r not found" % (name, labels))


# ------------------------------------------------------------------ helpers

def cli(pm, *args, timeout=30, preexec_fn=None):
    """`fcgi-pm -c CONF ARGS...` -> (status, stdout, stderr)."""
    p = subprocess.run([FCGI_PM, "-c", pm.conf] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       preexec_fn=preexec_fn)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def status_json(pm, pool=None, full=False):
    args = ["status"] + ([pool] if pool else []) + ["--json"] + (["--full"] if full else [])
    rc, out, err = cli(pm, *args)
    if rc != 0:
        raise HarnessError("fcgi-pm status failed (%d): %s" % (rc, err))
    return json.loads(out)


def fcgi_get(addr, uri):
    """One FastCGI GET of URI straight to a pool socket; returns stdout bytes."""
    path, _, query = uri.partition("?")
    s = fc.connect(addr, timeout=60)
    try:
        fc.request(s, params={"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
                              "REQUEST_URI": uri})
        out, _, _, _ = fc.response(s)
        return out
    finally:
        s.close()


def in_background(fn, *args):
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except Exception as e:      # the test looks at it
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def raw_http(path, sock_path, timeout=10):
    """GET PATH on the status socket itself (as nginx's proxy_pass does)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
    return int(lines[0].split()[1]), headers, body


class StatusCase(harness.TestCase):
    def start(self, pools=None, **main):
        self.status_sock = os.path.join(self.tmp, "status.sock")
        opts = {"status_socket": self.status_sock}
        opts.update(main)
        self.pm = self.fcgi_pm(pools or [hello_pool(max_children=2)], main_options=opts)
        self.pm.wait_workers()
        wait_until(lambda: harness.can_connect(self.status_sock), 10, what="the status socket")
        return self.pm

    def wait_idle(self, pool, n, timeout=20):
        return wait_until(lambda: (lambda s: s if s["idle processes"] == n else None)(
            status_json(self.pm, pool)), timeout, what="%d idle workers" % n)


class Numbers(StatusCase):
    def test_accepted_conn_equals_the_requests_made(self):
        pm = self.start()
        self.wait_idle("hello", 2)
        self.assertEqual(status_json(pm, "hello")["accepted conn"], 0)
        for i in range(7):
            self.assertIn(b"200", fcgi_get(pm.socket("hello"), "/n?i=%d" % i)[:20])
        s = status_json(pm, "hello")
        self.assertEqual(s["accepted conn"], 7, s)
        self.assertEqual(s["pool"], "hello")
        self.assertEqual(s["process manager"], "static")
        self.assertEqual(s["total processes"], 2)
        self.assertGreater(s["start time"], time.time() - 120)
        self.wait_idle("hello", 2)     # a worker counts a request once it is idle again
        full = status_json(pm, "hello", full=True)
        self.assertEqual(sum(p["requests"] for p in full["processes"]), 7, full)
        self.assertEqual(full["accepted conn"], 7, full)

    def test_a_request_dropped_for_a_gone_client_is_counted(self):
        pm = self.start([hello_pool(max_children=1, threads=1)])
        self.wait_idle("hello", 1)
        s = status_json(pm, "hello")
        self.assertEqual((s["dropped requests (client gone)"], s["queue timeouts"]), (0, 0))
        # the only thread is busy: a whole request waits in the listen
        # queue while its web server hangs up; the worker drops it unrun
        t, box = in_background(fcgi_get, pm.socket("hello"), "/slow?s=1")
        wait_until(lambda: status_json(pm, "hello")["active processes"] == 1, 10,
                   what="the worker busy")
        c = fc.connect(pm.socket("hello"))
        fc.request(c, params={"SCRIPT_NAME": "", "PATH_INFO": "/gone", "QUERY_STRING": ""})
        c.close()
        t.join(30)
        self.assertIn(b"200", box.get("result", b"")[:20], box)
        s = wait_until(lambda: (lambda s: s if s["dropped requests (client gone)"] == 1
                                else None)(status_json(pm, "hello")), 10,
                       what="the drop counted")
        self.assertEqual(s["queue timeouts"], 0)
        self.assertEqual(s["accepted conn"], 1, s)
        rc, out, err = cli(pm, "status", "--prometheus")
        self.assertEqual(rc, 0, err)
        self.assertIn('fcgipm_dropped_requests_total{pool="hello"} 1\n', out)
        self.assertIn('fcgipm_queue_timeouts_total{pool="hello"} 0\n', out)

    def test_active_and_idle_match_what_the_test_holds(self):
        pm = self.start([hello_pool(max_children=3)])
        self.wait_idle("hello", 3)
        # one at a time: a worker that accepted a connection before its request
        # arrived may take the next one too (then both wait for its thread)
        held = []
        for n in (1, 2):
            held.append(in_background(fcgi_get, pm.socket("hello"), "/slow?s=4"))
            wait_until(lambda: status_json(pm, "hello")["active processes"] == n, 10,
                       what="%d active workers" % n)
        s = wait_until(lambda: (lambda s: s if s["active processes"] == 2 else None)(
            status_json(pm, "hello", full=True)), 10, what="2 active workers")
        self.assertEqual(s["idle processes"], 1, s)
        self.assertEqual(s["total processes"], 3, s)
        running = [p for p in s["processes"] if p["state"] == "Running"]
        self.assertEqual(len(running), 2, s)
        for p in running:
            self.assertEqual(p["request method"], "GET")
            self.assertEqual(p["request uri"], "/slow?s=4")
            self.assertGreater(p["request duration"], 0)
        self.assertGreaterEqual(s["max active processes"], 2)
        for t, box in held:
            t.join(30)
            self.assertNotIn("error", box)
        s = self.wait_idle("hello", 3)
        self.assertEqual(s["active processes"], 0)
        self.assertGreaterEqual(s["max active processes"], 2, "the peak is kept")
        self.assertEqual(s["accepted conn"], 2)

    def _listen_queue(self, listen):
        pm = self.start([hello_pool(max_children=1, listen=listen)])
        self.wait_idle("hello", 1)
        addr = pm.address("hello")
        busy = in_background(fcgi_get, addr, "/slow?s=5")
        wait_until(lambda: status_json(pm, "hello")["active processes"] == 1, 10,
                   what="the only worker busy")
        waiting = []
        for _ in range(3):
            if isinstance(addr, tuple):
                waiting.append(socket.create_connection(addr, timeout=10))
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(addr)
                waiting.append(s)
        try:
            s = wait_until(lambda: (lambda s: s if s["listen queue"] >= 3 else None)(
                status_json(pm, "hello")), 10, what="listen queue >= 3")
            self.assertEqual(s["listen queue"], 3, s)
            self.assertGreater(s["listen queue len"], 0)
            # the tick keeps the peak even if nobody asked at the right moment
            s = wait_until(lambda: (lambda s: s if s["max children reached"] >= 1 else None)(
                status_json(pm, "hello")), 10, what="max children reached")
            self.assertGreaterEqual(s["max listen queue"], 3, s)
        finally:
            for w in waiting:
                w.close()
        busy[0].join(30)
        s = wait_until(lambda: (lambda s: s if s["listen queue"] == 0 else None)(
            status_json(pm, "hello")), 20, what="the queue to drain")
        self.assertGreaterEqual(s["max listen queue"], 3)
        self.assertGreaterEqual(s["max children reached"], 1)

    def test_listen_queue_on_a_unix_socket(self):
        self._listen_queue(None)

    def test_listen_queue_on_a_tcp_socket(self):
        self._listen_queue("127.0.0.1:%d" % harness.free_port())

    def test_status_answers_while_every_worker_is_busy(self):
        pm = self.start([hello_pool(max_children=1)])
        self.wait_idle("hello", 1)
        busy = in_background(fcgi_get, pm.socket("hello"), "/slow?s=6")
        wait_until(lambda: status_json(pm, "hello")["active processes"] == 1, 10,
                   what="the only worker busy")
        # a queued client too: the pool is saturated
        q = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        q.connect(pm.socket("hello"))
        try:
            t0 = time.monotonic()
            for path in ("/status", "/status?json&full", "/metrics", "/ping"):
                code, _, body = raw_http(path, self.status_sock)
                self.assertEqual(code, 200, body)
            rc, out, err = cli(pm, "status", "hello")
            self.assertEqual(rc, 0, err)
            self.assertIn("active processes:     1\n", out)
            # well within the slow request: nothing waited for the worker
            self.assertTrue(busy[0].is_alive(), "the slow request ended first; "
                            "the status waited %.1fs" % (time.monotonic() - t0))
        finally:
            q.close()
        busy[0].join(30)


    def test_a_queue_beside_idle_workers_wakes_them(self):
        """The fake worker says READY and never accepts: a connection waits
        beside an idle worker, which is what a wake-up lost to a stopping
        worker looks like.  The master connects to wake the workers."""
        fake = os.path.join(harness.HERE, "fake-worker")
        self.status_sock = os.path.join(self.tmp, "status.sock")
        pm = self.pm = self.fcgi_pm([harness.Pool("p", "fake:app", env={"FAKE_WORKER": "serve"},
                                                  max_children=1)],
                                    main_options={"status_socket": self.status_sock,
                                                  "worker_binary": fake})
        wait_until(lambda: harness.can_connect(self.status_sock), 10, what="the status socket")
        wait_until(lambda: status_json(pm, "p")["idle processes"] == 1, 10,
                   what="the fake worker READY")
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(pm.socket("p"))
        try:
            pm.wait_log(r"\[pool p\] connections waited in the listen queue beside idle "
                        r"workers for 2 ticks: woke a worker", 10)
        finally:
            c.close()


class Formats(StatusCase):
    def test_text_has_every_php_fpm_field(self):
        pm = self.start()
        rc, out, err = cli(pm, "status", "--full")
        self.assertEqual(rc, 0, err)
        for field in ("pool", "process manager", "start time", "start since", "accepted conn",
                      "listen queue", "max listen queue", "listen queue len", "idle processes",
                      "active processes", "total processes", "max active processes",
                      "max children reached", "slow requests", "queue timeouts",
                      "dropped requests (client gone)", "pid", "state", "requests",
                      "request duration", "request method", "request URI", "content length",
                      "last request cpu", "last request memory"):
            self.assertRegex(out, r"(?m)^%s: +\S" % re.escape(field))
        self.assertRegex(out, r"(?m)^start time: +\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$")

    def test_json_parses_for_one_pool_and_all(self):
        pm = self.start([hello_pool("one", max_children=1), hello_pool("two", max_children=1)])
        doc = status_json(pm, full=True)
        self.assertEqual(sorted(p["pool"] for p in doc["pools"]), ["one", "two"])
        for p in doc["pools"]:
            self.assertEqual(len(p["processes"]), 1)
        one = status_json(pm, "one")
        self.assertEqual(one["pool"], "one")
        self.assertNotIn("processes", one)
        rc, _, err = cli(pm, "status", "nosuch")
        self.assertEqual(rc, 1)
        self.assertIn("no pool named nosuch", err)

    def test_prometheus_and_openmetrics_pass_a_strict_parser(self):
        pm = self.start([hello_pool("one", max_children=2), hello_pool("two", max_children=1)])
        self.wait_idle("one", 2)
        self.wait_idle("two", 1)
        for i in range(3):
            fcgi_get(pm.socket("one"), "/x%d" % i)
        self.wait_idle("one", 2)       # a worker counts a request once it is idle again
        rc, out, err = cli(pm, "status", "--prometheus", "--full")
        self.assertEqual(rc, 0, err)
        fams = parse_exposition(out)
        self.assertEqual(sample(fams, "fcgipm_accepted_connections_total", pool="one"), 3)
        self.assertEqual(sample(fams, "fcgipm_total_processes", pool="two"), 1)
        pids = [l["pid"] for n, l, v in fams["fcgipm_worker_rss_bytes"]["samples"]]
        self.assertEqual(len(pids), 3)
        for n, l, v in fams["fcgipm_worker_rss_bytes"]["samples"]:
            self.assertGreater(v, 1 << 20, "RSS of worker %s" % l["pid"])
        states = fams["fcgipm_worker_state"]["samples"]
        for pid in pids:
            self.assertEqual(sum(v for n, l, v in states if l["pid"] == pid), 1)
        self.assertEqual(sum(v for n, l, v in fams["fcgipm_worker_requests_total"]["samples"]
                             if l["pool"] == "one"), 3)
        rc, out, err = cli(pm, "status", "--openmetrics", "--full")
        self.assertEqual(rc, 0, err)
        fams = parse_exposition(out, openmetrics=True)
        self.assertEqual(fams["fcgipm_accepted_connections"]["type"], "counter")
        # and the parser is strict: it refuses what it must
        for bad in ("x 1", "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",
                    "# TYPE x gauge\nx{a=1} 1\n", "# TYPE x counter\nx 1\n# EOF\n"):
            with self.assertRaises(ValueError, msg=bad):
                parse_exposition(bad if bad.endswith("\n") else bad + "\n",
                                 openmetrics=bad.endswith("# EOF\n"))


class Control(StatusCase):
    def test_stop_graceful_and_not_running(self):
        pm = self.start()
        rc, out, err = cli(pm, "stop", "--graceful")
        self.assertEqual(rc, 0, err)
        self.assertIn("stopping gracefully", out)
        self.assertEqual(pm.wait(20), 0, "the master did not exit after stop --graceful")
        self.assertFalse(os.path.exists(self.status_sock), "status socket left behind")
        rc, out, err = cli(pm, "status")
        self.assertEqual(rc, 3)
        self.assertIn("not running", err)

    def test_reopen_logs_in_the_master(self):
        tmp = self.tmp
        log = os.path.join(tmp, "error.log")
        status_sock = os.path.join(tmp, "status.sock")
        pm = harness.FcgiPm(tmp, [hello_pool(max_children=1)],
                            main_options={"status_socket": status_sock, "error_log": log})
        # not -F: the log goes to error_log
        pm.proc = harness.Proc([FCGI_PM, "-c", pm.conf], os.path.join(tmp, "stderr.log"),
                               "fcgi-pm")
        self._own(pm.proc)
        wait_until(lambda: os.path.exists(status_sock) and os.path.exists(log), 20,
                   what="fcgi-pm to start")
        workers = wait_until(lambda: pm.worker_pids() or None, 20, what="a worker")
        os.rename(log, log + ".1")
        rc, out, err = cli(pm, "reopen-logs")
        self.assertEqual(rc, 0, err)
        wait_until(lambda: os.path.exists(log), 5, what="a new error_log")
        with open(log) as f:
            self.assertIn("error_log reopened", f.read())
        self.assertEqual(pm.worker_pids(), workers, "reopening logs recycled workers")
        # SIGUSR1 too
        os.rename(log, log + ".2")
        pm.proc.signal(harness.signal.SIGUSR1)
        wait_until(lambda: os.path.exists(log), 5, what="error_log after SIGUSR1")
        self.assertEqual(pm.worker_pids(), workers)

    def test_restart_rolls_the_workers(self):
        pm = self.start()
        before = set(pm.worker_pids("hello"))
        rc, out, err = cli(pm, "restart", "hello")
        self.assertEqual(rc, 0, err)
        wait_until(lambda: (lambda w: len(w) == 2 and not (set(w) & before))(
            pm.worker_pids("hello")), 20, what="two new workers")
        rc, _, err = cli(pm, "restart", "nosuch")
        self.assertEqual(rc, 1)
        self.assertIn("no running pool named nosuch", err)

    def test_usage_errors(self):
        pm = self.start()
        rc, _, err = cli(pm, "status", "--json", "--prometheus")
        self.assertEqual(rc, 64)
        self.assertIn("usage:", err)
        rc, _, err = cli(pm, "stop", "now")
        self.assertEqual(rc, 64)


def as_nobody():
    import pwd
    pw = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


class Permissions(StatusCase):
    def setUp(self):
        super().setUp()
        if not IS_ROOT:
            self.skipTest("needs root (to run the CLI as nobody)")

    def test_nobody_is_refused_on_a_root_only_socket(self):
        pm = self.start()
        self.assertEqual(os.stat(self.status_sock).st_mode & 0o777, 0o600)
        rc, out, err = cli(pm, "status", preexec_fn=as_nobody)
        self.assertEqual(rc, 4, err)
        self.assertIn("permission denied", err)
        self.assertEqual(out, "")
        rc, _, err = cli(pm, "status")
        self.assertEqual(rc, 0, err)

    def test_peer_credentials_are_checked_when_the_mode_lets_anyone_connect(self):
        pm = self.start(status_mode=harness.Raw("0666"))
        rc, out, err = cli(pm, "status", preexec_fn=as_nobody)
        self.assertEqual(rc, 4, err)
        self.assertIn("permission denied: nobody may not use the status socket", err)
        rc, out, err = cli(pm, "stop", preexec_fn=as_nobody)
        self.assertEqual(rc, 4, err)
        self.assertTrue(pm.proc.running())
        pm.wait_log(r"status socket: refused 'status' from nobody")

    def test_status_allow_users_may_read_but_not_control(self):
        pm = self.start(status_mode=harness.Raw("0666"), status_allow_users=["nobody"])
        rc, out, err = cli(pm, "status", "--json", preexec_fn=as_nobody)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["pools"][0]["pool"], "hello")
        for cmd in (["reload"], ["stop"], ["restart"], ["reopen-logs"]):
            rc, out, err = cli(pm, *cmd, preexec_fn=as_nobody)
            self.assertEqual(rc, 4, "%s: %s" % (cmd, err))
            self.assertIn("may only read the status", err)
        self.assertTrue(pm.proc.running())


class ThroughNginx(StatusCase):
    def test_one_location_exposes_status_metrics_and_ping(self):
        pm = self.start([hello_pool(max_children=1)])
        ng = self.nginx()
        site = ng.add_site(self.status_sock, snippet=STATUS_SNIPPET)
        ng.start()
        r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(
            get(site.port, "/fcgi-pm/ping")), 10, what="ping through nginx")
        self.assertEqual(r.text, "pong\n")
        r = get(site.port, "/fcgi-pm/status?json&full")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        doc = r.json()
        self.assertEqual(doc["pools"][0]["pool"], "hello")
        self.assertEqual(len(doc["pools"][0]["processes"]), 1)
        r = get(site.port, "/fcgi-pm/status?json&pool=hello")
        self.assertEqual(r.json()["pool"], "hello")
        r = get(site.port, "/fcgi-pm/status")
        self.assertIn("pool:                 hello\n", r.text)
        r = get(site.port, "/fcgi-pm/metrics")
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"), r)
        fams = parse_exposition(r.text)
        self.assertEqual(sample(fams, "fcgipm_total_processes", pool="hello"), 1)
        self.assertIn("fcgipm_worker_rss_bytes", fams)
        r = get(site.port, "/fcgi-pm/metrics",
                headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        parse_exposition(r.text, openmetrics=True)
        self.assertEqual(get(site.port, "/fcgi-pm/other").status, 404)
        # while the only worker is busy, the status still answers
        busy = in_background(fcgi_get, pm.socket("hello"), "/slow?s=5")
        wait_until(lambda: get(site.port, "/fcgi-pm/status?json").json()["pools"][0][
            "active processes"] == 1, 10, what="the worker busy, seen through nginx")
        self.assertTrue(busy[0].is_alive())
        busy[0].join(30)


if __name__ == "__main__":
    harness.main()
