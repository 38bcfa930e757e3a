"""test_hostile - hostile and broken FastCGI input against the real worker
under fcgi-pm (tests/apps/hostile): the worker refuses what it must, logs
it, runs the app's close() when the peer goes away, and serves on.

Already proven by test_fcgi_protocol.py (fcgi-echo, the same FastCGI
layer) and not repeated here: GET_VALUES with six names and with content
a multiple of 8, unknown management types, unknown roles, CANT_MPX_CONN,
ABORT_REQUEST before the end of PARAMS and while the body is read (the
record answer), half a record and half the params timing out, a few
silent connections, params over 64 KiB and over 1000 pairs (refused and
logged), keep-alive pipelining, unread bodies, a client abort through nginx.
"""
import os
import socket
import struct
import time

import harness
from harness import FcgiPm, Pool, Raw
import fcgiclient as fc

APP_DIR = os.path.join(harness.APPS, "hostile")
THREADS = 3
CHILDREN = 2


def begin(rid, keep=False, role=1):
    return fc.rec(fc.BEGIN, rid, struct.pack("!HB5x", role, 1 if keep else 0))


def params(path, query="", extra=None, clen=0):
    p = {"REQUEST_METHOD": "POST" if clen else "GET", "SCRIPT_NAME": "",
         "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_URI": path + "?" + query,
         "CONTENT_LENGTH": str(clen), "SERVER_NAME": "localhost", "SERVER_PORT": "80",
         "SERVER_PROTOCOL": "HTTP/1.1"}
    p.update(extra or {})
    return p


def read_response(s, rid=1):
    """(body after the CGI headers, protocol status) of request RID on S."""
    out = b""
    while True:
        t, r, c = fc.read_record(s)
        if t == fc.STDOUT and r == rid:
            out += c
        elif t == fc.END and r == rid:
            return out.split(b"\r\n\r\n", 1)[-1], struct.unpack("!IB3x", c)[1]
        elif t != fc.STDERR:
            raise ValueError("unexpected record type %d id %d" % (t, r))


def closed_by_peer(s, timeout):
    """True if S reads EOF (or a reset) within TIMEOUT s (other bytes are skipped)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            if s.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


class Hostile(harness.TestCase):
    """One pool (2 workers x 3 threads, read_timeout 1 s) shared by the cases."""

    @classmethod
    def setUpClass(cls):
        cls.ctmp = harness.make_tmpdir("hostile")
        cls.pm = FcgiPm(cls.ctmp, [Pool("h", "hostile:application", python_path=[APP_DIR],
                                        env={"HOSTILE_DIR": cls.ctmp},
                                        max_children=CHILDREN, threads=THREADS,
                                        read_timeout=Raw("1s"))]).start()
        cls.addr = cls.pm.address("h")
        cls.workers = cls.pm.wait_workers("h", CHILDREN)
        # the app is up in every worker
        harness.wait_until(lambda: cls.get("/pid")[1] == 0, 20, what="the app to answer")

    @classmethod
    def get(cls, path, query="", sock=None, keep=False, extra=None, timeout=10):
        s = sock or fc.connect(cls.addr, timeout=timeout)
        s.sendall(begin(1, keep) + fc.params_records(1, params(path, query, extra))
                  + fc.rec(fc.STDIN, 1))
        r = read_response(s)
        if sock is None:
            s.close()
        return r

    def closes(self):
        try:
            with open(os.path.join(self.ctmp, "closes")) as f:
                return f.read()
        except OSError:
            return ""

    def assertServesOn(self):
        """A normal request is answered, by the same workers as at the start."""
        body, proto = self.get("/pid", timeout=5)
        self.assertEqual(proto, 0)
        self.assertIn(int(body), self.workers)
        self.assertEqual(self.pm.worker_pids("h"), self.workers, "a worker was replaced")

    # ------------------------------------------------------ malformed records

    def test_http_sent_to_the_fastcgi_socket_is_refused_and_logged(self):
        s = fc.connect(self.addr)
        s.sendall(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        self.assertTrue(closed_by_peer(s, 5))
        s.close()
        self.pm.wait_log(r"record version \d+, not a FastCGI peer")
        self.assertServesOn()

    def test_short_begin_request_is_refused_and_logged(self):
        s = fc.connect(self.addr)
        s.sendall(fc.rec(fc.BEGIN, 1, b"\0\1\0\0", pad=False))
        self.assertTrue(closed_by_peer(s, 5))
        s.close()
        self.pm.wait_log(r"malformed or repeated BEGIN_REQUEST")
        self.assertServesOn()

    def test_name_length_past_the_record_is_refused_and_logged(self):
        # a 4-byte length of 2^31-1 in a 20-byte record: nothing is allocated
        # for it (libfcgi malloc'd first), the request is refused
        s = fc.connect(self.addr)
        bogus = struct.pack("!IB", 0x7fffffff | 0x80000000, 1) + b"NAMEv"
        s.sendall(begin(1) + fc.rec(fc.PARAMS, 1, bogus) + fc.rec(fc.PARAMS, 1))
        t, rid, c = fc.read_record(s)
        self.assertEqual((t, rid), (fc.END, 1))
        self.assertEqual(struct.unpack("!IB3x", c)[1], 2)       # FCGI_OVERLOADED
        self.assertTrue(closed_by_peer(s, 5))
        s.close()
        self.pm.wait_log(r"malformed request params, refused")
        self.assertServesOn()

    def test_stdin_before_the_end_of_params_is_refused(self):
        s = fc.connect(self.addr)
        s.sendall(begin(1) + fc.rec(fc.PARAMS, 1, fc.nv("A", "b")) + fc.rec(fc.STDIN, 1, b"x"))
        self.assertTrue(closed_by_peer(s, 5))
        s.close()
        self.pm.wait_log(r"STDIN before the end of PARAMS")
        self.assertServesOn()

    def test_unknown_record_types_inside_a_request_are_skipped(self):
        s = fc.connect(self.addr)
        blob = b"".join(fc.nv(k, v) for k, v in params("/read", clen=3).items())
        s.sendall(begin(1) + fc.rec(fc.PARAMS, 1, blob[:10]) + fc.rec(42, 1, b"junk")
                  + fc.rec(fc.DATA, 1, b"data") + fc.rec(fc.PARAMS, 1, blob[10:])
                  + fc.rec(fc.PARAMS, 1) + fc.rec(200, 1, b"") + fc.rec(fc.STDIN, 1, b"abc")
                  + fc.rec(fc.STDIN, 1))
        body, proto = read_response(s)
        s.close()
        self.assertEqual((body, proto), (b"3 %d" % sum(b"abc"), 0))

    # ------------------------------------------------------------ bodies

    def test_body_shorter_than_content_length_ends_at_the_stream_end(self):
        s = fc.connect(self.addr, timeout=5)
        t0 = time.monotonic()
        s.sendall(begin(1) + fc.params_records(1, params("/read", clen=1000))
                  + fc.stdin_records(1, b"short"))
        body, proto = read_response(s)
        s.close()
        self.assertEqual((body, proto), (b"5 %d" % sum(b"short"), 0))
        self.assertLess(time.monotonic() - t0, 2)

    def test_body_that_stalls_frees_the_thread_after_read_timeout(self):
        stalled = []
        for i in range(CHILDREN * THREADS + 2):
            s = fc.connect(self.addr, timeout=10)
            s.sendall(begin(1) + fc.params_records(1, params("/read", clen=1000))
                      + fc.rec(fc.STDIN, 1, b"only this"))
            stalled.append(s)
        t0 = time.monotonic()
        for s in stalled:           # dropped after read_timeout (1 s), not held
            self.assertTrue(closed_by_peer(s, 8))
            s.close()
        self.assertLess(time.monotonic() - t0, 8)
        self.assertServesOn()

    # ---------------------------------------------------- slow-client attack

    def assertPoolAnswersAtOnce(self):
        for i in range(5):
            t0 = time.monotonic()
            body, proto = self.get("/", timeout=10)
            self.assertEqual((body, proto), (b"ok", 0))
            # pinned threads would hold it for rounds of read_timeout (1 s each)
            self.assertLess(time.monotonic() - t0, 2.0, "request %d waited" % i)

    def test_idle_connections_cannot_exhaust_the_pool(self):
        n = 10 * CHILDREN * THREADS         # far more than the threads
        silent = [fc.connect(self.addr) for _ in range(n)]
        time.sleep(0.3)
        self.assertPoolAnswersAtOnce()
        for s in silent:                    # and every one is closed after read_timeout
            self.assertTrue(closed_by_peer(s, 8))
            s.close()
        self.assertServesOn()

    # A peer that sends the first bytes of a request and then stalls: the
    # connection is parked in epoll with its bytes, no thread waits for it
    # (a blocking read here held a thread for read_timeout, and CHILDREN x
    # THREADS such peers stalled the pool).  Every stage of the params:
    # half a header, a whole BEGIN_REQUEST, half a PARAMS record.
    def test_half_sent_headers_cannot_exhaust_the_pool(self):
        blob = fc.params_records(1, params("/"))
        stages = [begin(1)[:5], begin(1), begin(1) + blob[:11], begin(1) + blob[:-8]]
        half = []
        for i in range(4 * CHILDREN * THREADS):
            s = fc.connect(self.addr)
            s.sendall(stages[i % len(stages)])     # then nothing
            half.append(s)
        time.sleep(0.3)
        try:
            self.assertPoolAnswersAtOnce()
            for s in half:                  # and every one is closed after read_timeout
                self.assertTrue(closed_by_peer(s, 8))
        finally:
            for s in half:
                s.close()
        self.pm.wait_log(r"incomplete request within read_timeout")
        self.assertServesOn()

    # -------------------------------------------- the peer goes away or aborts

    def test_disconnect_mid_response_runs_close_and_worker_serves_on(self):
        tag = "disc%d" % time.monotonic_ns()
        s = fc.connect(self.addr)
        s.sendall(begin(1) + fc.params_records(1, params("/stream", "n=3000&tag=" + tag))
                  + fc.rec(fc.STDIN, 1))
        t, _, _ = fc.read_record(s)
        self.assertEqual(t, fc.STDOUT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()                           # a reset, as a web server gone away
        harness.wait_until(lambda: "close %s\n" % tag in self.closes(), 10,
                           what="close() of the abandoned response")
        self.assertServesOn()

    def test_abort_request_runs_close(self):
        tag = "abort%d" % time.monotonic_ns()
        s = fc.connect(self.addr)
        s.sendall(begin(1, keep=True)
                  + fc.params_records(1, params("/readlater", "tag=" + tag, clen=100000))
                  + fc.rec(fc.STDIN, 1, b"x" * 1000))
        time.sleep(0.2)
        s.sendall(fc.rec(fc.ABORT, 1))
        t0 = time.monotonic()
        while True:                         # the request ends: END_REQUEST
            t, rid, c = fc.read_record(s)
            if t == fc.END:
                break
        self.assertLess(time.monotonic() - t0, 5)
        harness.wait_until(lambda: "close %s\n" % tag in self.closes(), 10,
                           what="close() of the aborted response")
        # FCGI_KEEP_CONN was set: the connection serves the next request
        body, proto = self.get("/", sock=s, keep=True)
        self.assertEqual((body, proto), (b"ok", 0))
        s.close()
        self.assertServesOn()

    # ---------------------------------------------------- protocol promises

    def test_keep_conn_is_honoured_both_ways(self):
        s = fc.connect(self.addr)
        for _ in range(3):
            body, proto = self.get("/", sock=s, keep=True)
            self.assertEqual((body, proto), (b"ok", 0))
        body, proto = self.get("/", sock=s, keep=False)
        self.assertEqual(body, b"ok")
        self.assertTrue(closed_by_peer(s, 2), "not closed without FCGI_KEEP_CONN")
        s.close()

    def test_get_values_tells_the_configured_threads(self):
        s = fc.connect(self.addr)
        s.sendall(fc.rec(fc.GET_VALUES, 0, b"".join(
            fc.nv(n, "") for n in ("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"))))
        t, rid, c = fc.read_record(s)
        s.close()
        self.assertEqual((t, rid), (fc.GET_VALUES_RESULT, 0))
        vals, i = {}, 0
        while i < len(c):
            nl, vl = c[i], c[i + 1]
            vals[c[i + 2:i + 2 + nl].decode()] = c[i + 2 + nl:i + 2 + nl + vl].decode()
            i += 2 + nl + vl
        self.assertEqual(vals["FCGI_MAX_REQS"], str(THREADS))
        self.assertEqual(vals["FCGI_MPXS_CONNS"], "0")
        self.assertGreaterEqual(int(vals["FCGI_MAX_CONNS"]), THREADS)


if __name__ == "__main__":
    harness.main()
