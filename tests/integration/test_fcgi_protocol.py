"""test_fcgi_protocol - the worker's FastCGI layer and thread model, driven
through fcgi-echo (the real host: embed/main.c + fcgi.c, with a C stub in
place of the Python gateway, tests/unit/stub_gateway.c), over unix and TCP
sockets and behind a real nginx with fastcgi_keep_conn on.

Run by meson (tests/unit/meson.build) or by hand:
  FCGI_ECHO_BIN=build-fcgi/tests/unit/fcgi-echo /usr/bin/python3 tests/integration/test_fcgi_protocol.py
"""
import mmap
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import harness
import fcgiclient as fc

ECHO = os.environ.get("FCGI_ECHO_BIN") or os.path.join(harness.BUILD, "tests", "unit", "fcgi-echo")
SB_THREAD_BUSY = 2         # enum sb_thread_state in fcgi-pm/scoreboard.h
SLOT_HEAD = 56             # sizeof(struct sb_slot) there


class Worker(harness.Proc):
    """fcgi-echo with a fresh listening socket on fd 0, as spawn-fcgi does."""

    def __init__(self, tmp, args=(), threads=2, tcp=False, name="echo", pass_fds=(), env=None,
                 binary=ECHO, module="stub"):
        if not os.access(binary, os.X_OK):
            raise unittest.SkipTest("not built: %s" % binary)
        if tcp:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.bind(("127.0.0.1", 0))
            self.addr = ls.getsockname()
        else:
            self.addr = os.path.join(tmp, "%s.sock" % name)
            ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ls.bind(self.addr)
        ls.listen(128)
        self.name = name
        self.log_path = os.path.join(tmp, "%s.log" % name)
        self.argv = [binary, "--module", module, "--threads", str(threads)] + list(args)
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdin=ls.fileno(), stdout=self.logf,
                                  stderr=subprocess.STDOUT, pass_fds=pass_fds, env=env,
                                  preexec_fn=harness._set_pdeathsig)
        self.pid = self.p.pid
        ls.close()
        harness._register(self)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def read_response(s, rid=1):
    """(stdout bytes, app status, protocol status) of request RID on S."""
    out = bytearray()
    while True:
        t, r, c = fc.read_record(s)
        if r != rid and t != fc.END:
            raise ValueError("record for id %d, expected %d" % (r, rid))
        if t == fc.STDOUT:
            out += c
        elif t == fc.END:
            if r != rid:
                raise ValueError("END_REQUEST for id %d" % r)
            app, proto = struct.unpack("!IB3x", c)
            return bytes(out), app, proto
        elif t != fc.STDERR:
            raise ValueError("unexpected record type %d" % t)


def report(out):
    """The stub's one-line report as a dict."""
    body = out.split(b"\r\n\r\n", 1)[1].decode()
    return dict(kv.split("=", 1) for kv in body.split())


def body_sum(data):
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xffffffff
    return "%08x" % s


def pattern(n):
    return (b"abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n]


def closed_by_peer(s, timeout):
    """True if S reads EOF (or a reset) within TIMEOUT seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def do(addr, params=None, body=b"", keep=False):
    """One request on a new connection: (stdout, stderr, app status, protocol status)."""
    s = fc.connect(addr)
    fc.request(s, params=params, body=body, keep=keep)
    out, app, proto = read_response(s)
    s.close()
    return out, b"", app, proto


def begin(rid, keep=False, role=1):
    return fc.rec(fc.BEGIN, rid, struct.pack("!HB5x", role, 1 if keep else 0))


class Protocol(harness.TestCase):
    """One worker (2 threads) shared by the protocol cases."""

    @classmethod
    def setUpClass(cls):
        cls.ctmp = harness.make_tmpdir("fcgiproto")
        cls.w = Worker(cls.ctmp, ["--read-timeout", "1000", "--keepalive-timeout", "3000"])

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()

    def do(self, query="", body=b"", sock=None, keep=False, params=None):
        s = sock or fc.connect(self.w.addr)
        p = {"QUERY_STRING": query, "REQUEST_URI": "/x?" + query}
        p.update(params or {})
        fc.request(s, params=p, body=body, keep=keep)
        r = read_response(s)
        if sock is None:
            s.close()
        return r

    def test_get_answers(self):
        out, app, proto = self.do("a=1")
        self.assertEqual((app, proto), (0, 0))
        rep = report(out)
        self.assertEqual(rep["method"], "GET")
        self.assertEqual(rep["uri"], "/x?a=1")

    def test_post_body_arrives_whole(self):
        body = os.urandom(300000)
        out, _, _ = self.do("", body)
        rep = report(out)
        self.assertEqual(rep["body"], "300000")
        self.assertEqual(rep["clen"], "300000")
        self.assertEqual(rep["sum"], body_sum(body))

    def test_keep_conn_serves_many_requests(self):
        s = fc.connect(self.w.addr)
        threads = set()
        for i in range(20):
            out, _, proto = self.do("i=%d" % i, b"x" * i, sock=s, keep=True)
            self.assertEqual(proto, 0)
            rep = report(out)
            self.assertEqual(rep["keep"], "1")
            self.assertEqual(rep["body"], str(i))
            threads.add(rep["thread"])
        s.close()

    def test_idle_kept_connections_do_not_pin_threads(self):
        # 2 threads; 6 kept connections left idle; a new one is served at once
        idle = []
        for i in range(6):
            s = fc.connect(self.w.addr)
            self.do("", sock=s, keep=True)
            idle.append(s)
        t0 = time.monotonic()
        out, _, _ = self.do("after=idle")
        self.assertLess(time.monotonic() - t0, 0.5)
        for s in idle:      # and every idle one still works
            out, _, proto = self.do("again", sock=s, keep=True)
            self.assertEqual(proto, 0)
            s.close()

    def test_get_values_with_six_names(self):
        names = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS",
                 "FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_SOMETHING_ELSE"]
        s = fc.connect(self.w.addr)
        s.sendall(fc.rec(fc.GET_VALUES, 0, b"".join(fc.nv(n, "") for n in names)))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.GET_VALUES_RESULT, 0))
        vals = {}
        i = 0
        while i < len(c):
            nl, vl = c[i], c[i + 1]
            vals[c[i + 2:i + 2 + nl].decode()] = c[i + 2 + nl:i + 2 + nl + vl].decode()
            i += 2 + nl + vl
        self.assertEqual(vals["FCGI_MAX_REQS"], "2")
        self.assertEqual(vals["FCGI_MPXS_CONNS"], "0")
        self.assertGreater(int(vals["FCGI_MAX_CONNS"]), 2)
        self.assertEqual(len(vals), 3)
        # the connection still serves a request afterwards
        out, _, proto = self.do("after=gv", sock=s)
        self.assertEqual(proto, 0)
        self.assertTrue(self.w.running())

    def test_get_values_exact_multiple_of_8_is_answered(self):
        # 3 names, 48 bytes of content, no padding: libfcgi never answered this
        names = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"]
        content = b"".join(fc.nv(n, "") for n in names)
        self.assertEqual(len(content), 48)
        s = fc.connect(self.w.addr)
        s.sendall(fc.rec(fc.GET_VALUES, 0, content, pad=False))
        s.settimeout(2)
        t, _, _ = fc.read_record(s)
        self.assertEqual(t, fc.GET_VALUES_RESULT)
        s.close()

    def test_unknown_management_type(self):
        s = fc.connect(self.w.addr)
        s.sendall(fc.rec(42, 0, b"hello"))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid, c[0]), (fc.UNKNOWN, 0, 42))
        self.do("after=unknown", sock=s)
        s.close()

    def test_unknown_role_is_refused(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1, keep=True, role=2) + fc.params_records(1, {"A": "b"}))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.END, 1))
        self.assertEqual(struct.unpack("!IB3x", c)[1], 3)    # FCGI_UNKNOWN_ROLE
        s.close()

    def test_second_begin_request_gets_cant_mpx_conn(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1, keep=True) + fc.params_records(1, {"QUERY_STRING": "sleep=200",
                                                                "CONTENT_LENGTH": "3"})
                  + fc.rec(fc.STDIN, 1, b"abc"))
        s.sendall(begin(2) + fc.params_records(2, {"QUERY_STRING": ""}))
        s.sendall(fc.rec(fc.STDIN, 1))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.END, 2))
        self.assertEqual(struct.unpack("!IB3x", c)[1], 1)    # FCGI_CANT_MPX_CONN
        out, _, proto = read_response(s, 1)
        self.assertEqual(report(out)["body"], "3")
        s.close()

    def test_abort_request_ends_the_request(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1, keep=True) + fc.params_records(1, {"CONTENT_LENGTH": "100000",
                                                                "QUERY_STRING": ""})
                  + fc.rec(fc.STDIN, 1, b"x" * 1000))
        time.sleep(0.1)
        s.sendall(fc.rec(fc.ABORT, 1))
        out, app, proto = read_response(s, 1)
        # the app saw request_read() fail; its output after that is dropped
        self.assertEqual((out, proto), (b"", 0))
        # the kept connection goes on
        out, _, _ = self.do("after=abort", sock=s, keep=True)
        self.assertEqual(report(out)["keep"], "1")
        s.close()

    def test_abort_before_params_end(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1, keep=True) + fc.rec(fc.PARAMS, 1, fc.nv("A", "b")) + fc.rec(fc.ABORT, 1))
        out, app, proto = read_response(s, 1)
        self.assertEqual((out, proto), (b"", 0))
        self.do("after=abort2", sock=s, keep=True)
        s.close()

    def test_half_record_times_out(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1)[:5])
        t0 = time.monotonic()
        self.assertTrue(closed_by_peer(s, 5))
        self.assertLess(time.monotonic() - t0, 3.0)
        s.close()

    def test_half_params_time_out(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1) + fc.rec(fc.PARAMS, 1, fc.nv("A", "b"))[:-3])
        t0 = time.monotonic()
        self.assertTrue(closed_by_peer(s, 5))
        self.assertLess(time.monotonic() - t0, 3.0)
        s.close()

    def test_silent_connections_do_not_pin_threads(self):
        silent = [fc.connect(self.w.addr) for _ in range(5)]
        time.sleep(0.2)
        t0 = time.monotonic()
        self.do("after=silent")
        self.assertLess(time.monotonic() - t0, 0.5)
        for s in silent:        # closed after read_timeout (1 s), sweeper period included
            self.assertTrue(closed_by_peer(s, 4))
            s.close()

    def test_params_over_64k_are_refused(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1) + fc.params_records(1, {"HTTP_X_BIG": "v" * 70000}))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.END, 1))
        self.assertEqual(struct.unpack("!IB3x", c)[1], 2)    # FCGI_OVERLOADED
        self.assertTrue(closed_by_peer(s, 2))
        self.assertIn("params exceed", self.w.log())

    def test_too_many_params_are_refused(self):
        s = fc.connect(self.w.addr)
        s.sendall(begin(1) + fc.params_records(1, {"P%d" % i: "" for i in range(1001)}))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.END, 1))
        self.assertTrue(closed_by_peer(s, 2))
        out, _, _ = self.do("after=many")     # the worker lives on
        # 1000 params are fine
        s = fc.connect(self.w.addr)
        fc.request(s, params={"P%d" % i: "" for i in range(990)})
        out, _, proto = read_response(s)
        self.assertEqual(proto, 0)
        self.assertEqual(int(report(out)["nparams"]), 993)

    def test_unread_body_is_drained_on_kept_connection(self):
        s = fc.connect(self.w.addr)
        out, _, _ = self.do("noread=1", b"y" * 200000, sock=s, keep=True)
        self.assertEqual(report(out)["body"], "0")
        out, _, _ = self.do("second", b"z" * 10, sock=s, keep=True)
        self.assertEqual(report(out)["body"], "10")
        s.close()

    def test_pipelined_requests_on_one_connection(self):
        s = fc.connect(self.w.addr)
        data = b""
        for rid in (1, 2, 3):
            data += begin(rid, keep=True) + fc.params_records(
                rid, {"QUERY_STRING": "n=%d" % rid, "CONTENT_LENGTH": "0"}) + fc.rec(fc.STDIN, rid)
        s.sendall(data)
        for rid in (1, 2, 3):
            out, _, proto = read_response(s, rid)
            self.assertEqual(proto, 0)
        s.close()

    def test_10mb_upload_and_download(self):
        body = os.urandom(10 * 1024 * 1024)
        out, _, _ = self.do("", body)
        self.assertEqual(report(out)["sum"], body_sum(body))
        out, _, _ = self.do("size=%d&chunk=100000" % (10 * 1024 * 1024))
        head, data = out.split(b"\r\n\r\n", 1)
        self.assertEqual(len(data), 10 * 1024 * 1024)
        self.assertEqual(data, pattern(len(data)))
        # echo streams the body back while it arrives: send from a thread
        s = fc.connect(self.w.addr)
        req = (begin(1) + fc.params_records(1, {"QUERY_STRING": "echo=1&chunk=70000",
                                                "CONTENT_LENGTH": str(len(body))})
               + fc.stdin_records(1, body))
        t = threading.Thread(target=s.sendall, args=(req,))
        t.start()
        out, _, proto = read_response(s)
        t.join()
        s.close()
        self.assertEqual(out.split(b"\r\n\r\n", 1)[1], body)

    def test_200mb_upload_is_streamed_not_held(self):
        size = 200 * 1024 * 1024
        chunk = b"\x01" * 65528
        s = fc.connect(self.w.addr, timeout=60)
        s.sendall(begin(1) + fc.params_records(1, {"CONTENT_LENGTH": str(size),
                                                   "QUERY_STRING": ""}))
        hdr = struct.pack("!BBHHBx", 1, fc.STDIN, 1, len(chunk), 0)
        sent = 0
        while sent < size:
            n = min(len(chunk), size - sent)
            s.sendall(struct.pack("!BBHHBx", 1, fc.STDIN, 1, n, 0) + chunk[:n] if n < len(chunk)
                      else hdr + chunk)
            sent += n
        s.sendall(fc.rec(fc.STDIN, 1))
        out, _, proto = read_response(s)
        s.close()
        self.assertEqual(report(out)["body"], str(size))
        with open("/proc/%d/status" % self.w.pid) as f:
            hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
        self.assertLess(hwm, 64 * 1024, "peak RSS %d KB" % hwm)

    def test_small_flushed_chunks(self):
        out, _, _ = self.do("size=5000&chunk=7&flush=1")
        self.assertEqual(out.split(b"\r\n\r\n", 1)[1], pattern(5000))

    def test_write_sizes_around_the_uncopied_path(self):
        # below, at and above DIRECT_WRITE_MIN (8 KiB) and OUT_MAX (65528),
        # with the headers gathered in front: records stay in order and whole
        for size, chunk in ((300000, 8191), (300000, 8192), (200000, 65528),
                            (200000, 65529), (140000, 70000), (65536, 65536),
                            (100, 8192), (9000, 4000), (2000000, 2000000)):
            for last in (0, 1):     # 1: the last chunk and END_REQUEST in one write
                q = "size=%d&chunk=%d&last=%d" % (size, chunk, last)
                out, _, proto = self.do(q)
                self.assertEqual(proto, 0, q)
                self.assertEqual(out.split(b"\r\n\r\n", 1)[1], pattern(size), q)
        # and on a kept connection the next request follows cleanly
        s = fc.connect(self.w.addr)
        for q in ("size=70000&chunk=70000&last=1", "size=10&last=1", "size=0&last=1"):
            out, _, proto = self.do(q, sock=s, keep=True)
            self.assertEqual((proto, out.split(b"\r\n\r\n", 1)[1]),
                             (0, pattern(int(q.split("&")[0][5:]))), q)
        s.close()

    def test_reader_that_stalls_frees_the_thread_after_read_timeout(self):
        # both threads answer a client that reads nothing: once the socket
        # buffer is full each write blocks, for read_timeout (1 s) at most
        stalled = []
        for _ in range(2):
            s = fc.connect(self.w.addr)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            fc.request(s, params={"QUERY_STRING": "size=50000000"})
            stalled.append(s)
        time.sleep(0.3)
        t0 = time.monotonic()
        out, _, proto = self.do("after=stalled")
        self.assertEqual(proto, 0)
        self.assertLess(time.monotonic() - t0, 3.0)
        for s in stalled:
            s.close()

    def test_peer_gone_mid_response(self):
        s = fc.connect(self.w.addr)
        fc.request(s, params={"QUERY_STRING": "size=50000000"})
        fc.read_record(s)
        s.close()
        time.sleep(0.2)
        self.assertTrue(self.w.running())
        out, _, proto = self.do("after=gone")
        self.assertEqual(proto, 0)

    def test_broken_response_has_no_end_request(self):
        s = fc.connect(self.w.addr)
        fc.request(s, params={"QUERY_STRING": "fail=1"}, keep=True)
        t, _, c = fc.read_record(s)
        self.assertEqual(t, fc.STDOUT)
        self.assertTrue(closed_by_peer(s, 2))

    def test_idle_kept_connection_closed_after_keepalive_timeout(self):
        s = fc.connect(self.w.addr)
        self.do("", sock=s, keep=True)
        t0 = time.monotonic()
        self.assertTrue(closed_by_peer(s, 6))
        dt = time.monotonic() - t0
        self.assertGreater(dt, 2.5)
        self.assertLess(dt, 4.5)

    def test_worker_still_alive(self):
        self.assertTrue(self.w.running(), self.w.log())


class Lifecycle(harness.TestCase):
    """Signals, limits, options: one worker per case."""

    def test_sigquit_finishes_in_flight_requests(self):
        w = self._own(Worker(self.tmp, ["--keepalive-timeout", "60000"]))
        idle = fc.connect(w.addr)
        fc.request(idle, params={"QUERY_STRING": ""}, keep=True)
        read_response(idle)
        s = fc.connect(w.addr)
        fc.request(s, params={"QUERY_STRING": "sleep=700"}, keep=True)
        time.sleep(0.2)
        w.signal(signal.SIGQUIT)
        out, _, proto = read_response(s)
        self.assertEqual(proto, 0)
        self.assertEqual(w.wait(5), 0)
        self.assertTrue(closed_by_peer(idle, 1))
        self.assertIn("stub: finalized", w.log())

    def test_sigterm_exits_at_once(self):
        w = self._own(Worker(self.tmp))
        fc.do(w.addr)
        s = fc.connect(w.addr)
        fc.request(s, params={"QUERY_STRING": "sleep=5000"})
        time.sleep(0.2)
        t0 = time.monotonic()
        w.signal(signal.SIGTERM)
        self.assertIsNotNone(w.wait(2))
        self.assertLess(time.monotonic() - t0, 1)

    def test_sigterm_during_graceful_stop_exits_at_once(self):
        w = self._own(Worker(self.tmp))
        s = fc.connect(w.addr)
        fc.request(s, params={"QUERY_STRING": "sleep=10000"})
        time.sleep(0.2)
        w.signal(signal.SIGQUIT)
        time.sleep(0.2)
        self.assertTrue(w.running())
        t0 = time.monotonic()
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(3), 0)
        self.assertLess(time.monotonic() - t0, 1.5)

    def test_max_requests_exits_gracefully(self):
        w = self._own(Worker(self.tmp, ["--max-requests", "3"]))
        for i in range(3):
            fc.do(w.addr)
        self.assertEqual(w.wait(5), 0)
        self.assertIn("max_requests", w.log())

    def test_max_rss_exits_gracefully(self):
        w = self._own(Worker(self.tmp, ["--max-rss", "1000"]))
        fc.do(w.addr)
        self.assertEqual(w.wait(5), 0)
        self.assertIn("max_rss", w.log())

    def test_queue_timeout_answers_503(self):
        w = self._own(Worker(self.tmp, ["--queue-timeout", "1000"]))
        old = "%.3f" % (time.time() - 5)
        out, _, _, proto = do(w.addr, params={"REQUEST_START": old, "REQUEST_URI": "/q"})
        self.assertTrue(out.startswith(b"Status: 503"), out)
        fresh = "%.3f" % time.time()
        out, _, _, proto = do(w.addr, params={"REQUEST_START": fresh})
        self.assertTrue(out.startswith(b"Status: 200"), out)
        self.assertIn("queue_timeout", w.log())

    def test_tcp_socket(self):
        w = self._own(Worker(self.tmp, tcp=True))
        out, _, _, proto = fc.do(w.addr, body=b"tcp")
        self.assertEqual(report(out)["body"], "3")

    def test_allowed_clients_refuses_other_tcp_peers(self):
        env = dict(os.environ, FCGI_WEB_SERVER_ADDRS="127.0.0.2, ::1")
        w = self._own(Worker(self.tmp, tcp=True, env=env))
        s = socket.create_connection(w.addr, timeout=5, source_address=("127.0.0.1", 0))
        self.assertTrue(closed_by_peer(s, 3))
        s.close()
        harness.wait_until(lambda: "connection from 127.0.0.1 refused" in w.log(), 5,
                           what="the refusal in the log")
        s = socket.create_connection(w.addr, timeout=5, source_address=("127.0.0.2", 0))
        fc.request(s, params={"QUERY_STRING": ""}, body=b"ok")
        out, _, proto = read_response(s)
        self.assertEqual(report(out)["body"], "2")

    def test_bad_allowed_clients_exits_78(self):
        env = dict(os.environ, FCGI_WEB_SERVER_ADDRS="127.0.0.1,not-an-address")
        w = self._own(Worker(self.tmp, tcp=True, env=env))
        self.assertEqual(w.wait(5), 78)
        self.assertIn("not-an-address", w.log())

    def test_end_of_stdin_sent_late_is_awaited_before_close(self):
        # Apache sends the empty STDIN record after the body, maybe after the
        # app answered: closing before it arrives made Apache fail with EPIPE.
        w = self._own(Worker(self.tmp))
        s = fc.connect(w.addr)
        s.sendall(begin(1) + fc.params_records(1, {"QUERY_STRING": "noread=1",
                                                   "CONTENT_LENGTH": "5"})
                  + fc.rec(fc.STDIN, 1, b"hello"))
        out, _, proto = read_response(s)
        time.sleep(0.2)
        s.sendall(fc.rec(fc.STDIN, 1))      # no EPIPE: the worker waited for it
        time.sleep(0.1)
        s.sendall(b"")
        s.close()                           # then the worker closes too
        self.assertTrue(w.running())

    def test_lingering_connection_does_not_pin_a_thread(self):
        # one thread; a closing connection whose body never comes is parked
        w = self._own(Worker(self.tmp, threads=1))
        s = fc.connect(w.addr)
        s.sendall(begin(1) + fc.params_records(1, {"QUERY_STRING": "noread=1",
                                                   "CONTENT_LENGTH": "100000"})
                  + fc.rec(fc.STDIN, 1, b"x" * 1000))
        out, _, proto = read_response(s)
        t0 = time.monotonic()
        out, _, _, proto = do(w.addr)
        self.assertLess(time.monotonic() - t0, 0.5)
        s.close()

    def test_half_sent_requests_do_not_pin_threads(self):
        # one thread; peers that stop mid-header, mid-params and between
        # records are parked with their bytes: a whole request is served at
        # once, and each parked one completes when its rest arrives
        w = self._own(Worker(self.tmp, ["--read-timeout", "5000"], threads=1))
        req = begin(1) + fc.params_records(1, {"QUERY_STRING": "n=1", "CONTENT_LENGTH": "2",
                                               "REQUEST_URI": "/parked"}) \
            + fc.stdin_records(1, b"hi")
        end = len(req) - 8 - 16            # the params end before STDIN "hi" and its end
        cuts = [3, 8, 16, 20, 26, end - 8, end - 1]
        held = []
        for cut in cuts:
            s = fc.connect(w.addr, timeout=5)
            s.sendall(req[:cut])
            held.append((s, cut))
        time.sleep(0.2)
        t0 = time.monotonic()
        out, _, _, proto = do(w.addr)
        self.assertEqual(proto, 0)
        self.assertLess(time.monotonic() - t0, 0.5)
        for s, cut in held:
            s.sendall(req[cut:])
            out, _, proto = read_response(s)
            rep = report(out)
            self.assertEqual((rep["uri"], rep["body"], proto), ("/parked", "2", 0), cut)
            s.close()

    def test_tcp_request_whose_peer_shut_down_is_dropped(self):
        # TCP: a FIN after a complete request (the empty STDIN is there),
        # while the only thread is busy: nobody runs it, nothing is answered
        fd, m, ss = self.scoreboard(nthreads=1)
        w = self._own(Worker(self.tmp, ["--scoreboard", "%d:0" % fd], tcp=True, threads=1,
                             pass_fds=(fd,)))
        busy = fc.connect(w.addr)
        fc.request(busy, params={"QUERY_STRING": "sleep=500"})
        # the thread must be running "busy" before "gone" connects: under
        # load (CI's ASan run) a fixed sleep let it pick "gone" first
        harness.wait_until(lambda: self.thread_state(m, ss, 0, 0) == SB_THREAD_BUSY, 5,
                           what="the only thread busy")
        gone = fc.connect(w.addr)
        fc.request(gone, params={"QUERY_STRING": "", "REQUEST_URI": "/gone-tcp"})
        gone.shutdown(socket.SHUT_WR)
        out, _, proto = read_response(busy)
        self.assertEqual(proto, 0)
        self.assertTrue(closed_by_peer(gone, 5))
        harness.wait_until(lambda: "/gone-tcp dropped" in w.log(), 5, what="the drop logged")
        out, _, _, proto = fc.do(w.addr, body=b"after")
        self.assertEqual(report(out)["body"], "5")
        # counted for the master: requests 2 (busy, after), peer_gone 1
        reqs, qt, gone = struct.unpack_from("=QQQ", m, 64 + 32)
        self.assertEqual((reqs, qt, gone), (2, 0, 1))

    def test_usage_errors_exit_64(self):
        for args in ([], ["--module", "x", "--threads", "zero"], ["--bogus"],
                     ["--module", "x", "--scoreboard", "3"], ["--module", "x", "extra"]):
            p = subprocess.run([ECHO] + args, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(p.returncode, 64, (args, p.stdout))
        p = subprocess.run([ECHO, "--version"], stdout=subprocess.PIPE)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"fcgi-pm-worker "))
        p = subprocess.run([ECHO, "--help"], stdout=subprocess.PIPE)
        self.assertIn(b"--keepalive-timeout", p.stdout)

    def test_not_a_socket_on_fd0_exits_78(self):
        p = subprocess.run([ECHO, "--module", "x"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 78, p.stdout)

    def test_app_import_failure_exits_3(self):
        # --module fail: the stub's python_init() fails
        ls = socket.socket(socket.AF_UNIX)
        ls.bind(os.path.join(self.tmp, "f.sock"))
        ls.listen(1)
        p = subprocess.run([ECHO, "--module", "fail"], stdin=ls.fileno(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        ls.close()
        self.assertEqual(p.returncode, 3)
        self.assertIn(b"ERROR: stub: cannot import", p.stdout)
        self.assertIn(b"ERROR: Traceback", p.stdout)    # multi-line -> one prefix per line

    # fcgi-pm/scoreboard.h v3: a slot header of SLOT_HEAD bytes
    # (queue_timeouts, peer_gone), threads of 344 (thread_id after state)
    def scoreboard(self, nslots=2, nthreads=2, magic=0x46435042, version=3):
        slot_size = (SLOT_HEAD + nthreads * 344 + 63) & ~63
        size = 64 + nslots * slot_size
        fd = os.memfd_create("sb", 0)
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        m[0:24] = struct.pack("=IIIIII", magic, version, nslots, nthreads, slot_size, 0)
        return fd, m, slot_size

    @staticmethod
    def thread_state(m, slot_size, slot, thread):
        return struct.unpack_from("=I", m, 64 + slot * slot_size + SLOT_HEAD + thread * 344 + 4)[0]

    def test_scoreboard_slot_is_filled(self):
        fd, m, ss = self.scoreboard()
        w = self._own(Worker(self.tmp, ["--scoreboard", "%d:1" % fd], pass_fds=(fd,)))
        for i in range(5):
            do(w.addr, params={"REQUEST_URI": "/sb/%d" % i}, body=b"q" * i)
        time.sleep(0.1)
        base = 64 + ss
        seq, state, pid, gen, start, rss, reqs = struct.unpack_from("=IIiIQQQ", m, base)
        self.assertEqual(pid, w.pid)
        self.assertEqual(state, 2)              # READY
        self.assertEqual(reqs, 5)
        self.assertGreater(rss, 0)
        self.assertEqual(seq % 2, 0)
        total = 0
        uris = []
        for t in range(2):
            tb = base + SLOT_HEAD + t * 344
            tseq, tstate, tid, treqs, rstart, clen = struct.unpack_from("=IIQQQQ", m, tb)
            method = m[tb + 40:tb + 56].split(b"\0")[0]
            uri = m[tb + 56:tb + 312].split(b"\0")[0]
            last_end, dur, cpu, lrss = struct.unpack_from("=QQQQ", m, tb + 312)
            total += treqs
            if treqs:
                self.assertEqual(tstate, 0)
                uris.append(uri)
                self.assertGreater(lrss, 0)
                self.assertGreater(last_end, 0)
        self.assertEqual(total, 5)
        self.assertIn(b"/sb/4", uris)
        w.signal(signal.SIGQUIT)
        self.assertEqual(w.wait(5), 0)
        self.assertEqual(struct.unpack_from("=I", m, base + 4)[0], 3)    # ENDING

    def test_scoreboard_version_mismatch_exits_78(self):
        fd, m, ss = self.scoreboard(version=99)
        w = self._own(Worker(self.tmp, ["--scoreboard", "%d:0" % fd], pass_fds=(fd,)))
        self.assertEqual(w.wait(5), 78)
        self.assertIn("do not match", w.log())


class BehindNginx(harness.TestCase):
    """TECH-NOTES §1.4: fastcgi_keep_conn on with upstream keepalive larger
    than the worker's threads gave 504 with libfcgi.  Here it must not."""

    def start_nginx(self, addr, keepalive=8):
        prefix = os.path.join(self.tmp, "nginx")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        port = harness.free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
%(user)s
worker_processes 1;
pid %(p)s/nginx.pid;
error_log %(p)s/error.log info;
events { worker_connections 512; }
http {
  access_log %(p)s/access.log;
  client_body_temp_path %(p)s/tmp/body;
  fastcgi_temp_path %(p)s/tmp/fcgi;
  proxy_temp_path %(p)s/tmp/proxy;
  uwsgi_temp_path %(p)s/tmp/uwsgi;
  scgi_temp_path %(p)s/tmp/scgi;
  client_max_body_size 50m;
  upstream keep { server unix:%(sock)s; keepalive %(ka)d; }
  upstream plain { server unix:%(sock)s; }
  server {
    listen 127.0.0.1:%(port)d;
    fastcgi_read_timeout 8s;
    location /keep/ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param PATH_INFO $uri;
      fastcgi_keep_conn on;
      fastcgi_pass keep;
    }
    location /plain/ {
      include /etc/nginx/fastcgi_params;
      fastcgi_pass plain;
    }
  }
}
""" % {"p": prefix, "sock": addr, "ka": keepalive, "port": port,
       "user": "user root root;" if harness.IS_ROOT else ""})
        ng = harness.Proc([harness.NGINX, "-e", os.path.join(prefix, "error.log"),
                           "-p", prefix + "/", "-c", conf, "-g", "daemon off;"],
                          os.path.join(prefix, "stderr.log"), "nginx")
        self._own(ng)
        harness.wait_until(lambda: harness.can_connect(("127.0.0.1", port)), 10,
                           what="nginx")
        return port

    def test_keep_conn_burst_gets_no_504(self):
        w = self._own(Worker(self.tmp, ["--keepalive-timeout", "60000"], threads=2))
        port = self.start_nginx(w.addr)
        for burst in range(2):
            res = harness.concurrent(lambda i: harness.get(port, "/keep/x?sleep=500&i=%d" % i,
                                                           timeout=10),
                                     [(i,) for i in range(6)], threads=6)
            statuses = [r.status if not isinstance(r, Exception) else repr(r) for r in res]
            self.assertEqual(statuses, [200] * 6)
            slowest = max(r.elapsed for r in res)
            self.assertLess(slowest, 2.5)   # 6 x 0.5 s on 2 threads = 1.5 s
        # with 8 idle kept connections parked, plain requests are served at once
        r = harness.get(port, "/plain/y", timeout=3)
        self.assertEqual(r.status, 200)
        self.assertLess(r.elapsed, 0.5)

    def test_many_keep_alive_requests(self):
        w = self._own(Worker(self.tmp, ["--keepalive-timeout", "60000"], threads=2))
        port = self.start_nginx(w.addr, keepalive=4)
        res = harness.concurrent(lambda i: harness.get(port, "/keep/n?i=%d" % i, timeout=10),
                                 [(i,) for i in range(300)], threads=8)
        self.assertEqual([getattr(r, "status", r) for r in res], [200] * 300)

    def test_10mb_through_nginx(self):
        w = self._own(Worker(self.tmp, threads=2))
        port = self.start_nginx(w.addr)
        body = os.urandom(10 * 1024 * 1024)
        r = harness.post(port, "/keep/up", body, timeout=30)
        self.assertEqual(r.status, 200)
        rep = report(b"\r\n\r\n" + r.body)
        self.assertEqual(rep["body"], str(len(body)))
        self.assertEqual(rep["sum"], body_sum(body))
        r = harness.get(port, "/keep/down?size=%d" % (10 * 1024 * 1024), timeout=30)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, pattern(10 * 1024 * 1024))
        r = harness.get(port, "/keep/after", timeout=5)
        self.assertEqual(r.status, 200)

    def test_unread_30mb_upload_still_gets_its_answer(self):
        # closing with the body unread reset the socket: nginx lost the answer (502)
        w = self._own(Worker(self.tmp, threads=2))
        port = self.start_nginx(w.addr)
        body = b"\0" * (30 * 1000 * 1000)
        for path in ("/plain/a?noread=1", "/keep/b?noread=1") * 3:
            r = harness.post(port, path, body, timeout=30)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(report(b"\r\n\r\n" + r.body)["body"], "0")

    def test_client_abort_mid_response(self):
        w = self._own(Worker(self.tmp, threads=1))
        port = self.start_nginx(w.addr)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /keep/big?size=100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        s.close()
        time.sleep(0.5)
        self.assertTrue(w.running())
        r = harness.get(port, "/keep/after", timeout=5)
        self.assertEqual(r.status, 200)


class RealWorkerBehindNginx(BehindNginx):
    """The same keep-alive case with the real fcgi-pm-worker and Python
    (tests/apps/hello), once the gateway is built."""

    def real_worker(self, threads=2):
        return self._own(Worker(self.tmp, ["--keepalive-timeout", "60000",
                                           "--python-path", os.path.join(harness.APPS, "hello")],
                                threads=threads, name="real", binary=harness.FCGI_PM_WORKER,
                                module="hello:application"))

    def test_keep_conn_burst_gets_no_504(self):
        w = self.real_worker()
        port = self.start_nginx(w.addr)
        harness.wait_until(lambda: harness.get(port, "/keep/x").status == 200, 10,
                           what="worker up")
        for burst in range(2):
            res = harness.concurrent(lambda i: harness.get(port, "/keep/slow?s=0.5&i=%d" % i,
                                                           timeout=10),
                                     [(i,) for i in range(6)], threads=6)
            statuses = [r.status if not isinstance(r, Exception) else repr(r) for r in res]
            self.assertEqual(statuses, [200] * 6)
            self.assertLess(max(r.elapsed for r in res), 2.5)
        r = harness.get(port, "/plain/y", timeout=3)
        self.assertEqual(r.status, 200)
        self.assertLess(r.elapsed, 0.5)

    def test_many_keep_alive_requests(self):
        w = self.real_worker()
        port = self.start_nginx(w.addr, keepalive=4)
        res = harness.concurrent(lambda i: harness.get(port, "/keep/n?i=%d" % i, timeout=10),
                                 [(i,) for i in range(300)], threads=8)
        self.assertEqual([getattr(r, "status", r) for r in res], [200] * 300)
        # threading.local survives between requests: one thread state per thread
        names = {r.json()["thread"] for r in res}
        self.assertLessEqual(len(names), 2)

    def test_sigquit_lets_in_flight_request_finish(self):
        w = self.real_worker()
        port = self.start_nginx(w.addr)
        harness.wait_until(lambda: harness.get(port, "/keep/x").status == 200, 10,
                           what="worker up")
        res = []
        t = threading.Thread(target=lambda: res.append(
            harness.get(port, "/keep/slow?s=0.8", timeout=10)))
        t.start()
        time.sleep(0.3)
        w.signal(signal.SIGQUIT)
        t.join()
        self.assertEqual(res[0].status, 200)
        self.assertEqual(w.wait(10), 0)

    def test_request_whose_client_gave_up_in_the_queue_never_runs(self):
        # one thread busy with a slow request; a client whose request waits
        # behind it gives up: nginx closes the upstream connection, and the
        # worker drops the request without running the app (it logs each run)
        runlog = os.path.join(self.tmp, "runs")
        with open(os.path.join(self.tmp, "runlog.py"), "w") as f:
            f.write("import os, time\n"
                    "def application(environ, start_response):\n"
                    "    qs = environ.get('QUERY_STRING', '')\n"
                    "    with open(os.environ['RUNLOG'], 'a') as f:\n"
                    "        f.write(qs + '\\n')\n"
                    "    if 'slow' in qs:\n"
                    "        time.sleep(1.0)\n"
                    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                    "    return [b'ok']\n")
        w = self._own(Worker(self.tmp, ["--python-path", self.tmp], threads=1, name="runlog",
                             binary=harness.FCGI_PM_WORKER, module="runlog:application",
                             env=dict(os.environ, RUNLOG=runlog)))
        port = self.start_nginx(w.addr)
        harness.wait_until(lambda: harness.get(port, "/plain/ready").status == 200, 10,
                           what="worker up")
        for loc in ("plain", "keep"):
            res = []
            t = threading.Thread(target=lambda: res.append(
                harness.get(port, "/%s/x?slow=%s" % (loc, loc), timeout=10)))
            t.start()
            time.sleep(0.3)
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /%s/x?gaveup=%s HTTP/1.1\r\nHost: x\r\n\r\n" % (
                loc.encode(), loc.encode()))
            time.sleep(0.3)
            s.close()                       # gives up while the request is queued
            t.join()
            self.assertEqual(res[0].status, 200)
            harness.wait_until(lambda: w.log().count("dropped without running") >= (
                1 if loc == "plain" else 2), 5, what="the drop of /%s logged" % loc)
            r = harness.get(port, "/%s/x?after=%s" % (loc, loc), timeout=5)
            self.assertEqual(r.status, 200)
        with open(runlog) as f:
            runs = f.read().splitlines()
        self.assertEqual(runs, ["", "slow=plain", "after=plain", "slow=keep", "after=keep"])

    test_10mb_through_nginx = None
    test_client_abort_mid_response = None
    test_unread_30mb_upload_still_gets_its_answer = None


if __name__ == "__main__":
    harness.main()
