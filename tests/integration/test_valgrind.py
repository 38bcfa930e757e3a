"""test_valgrind - fcgi-pm-worker under valgrind (memcheck) serving N and
then 2N requests of several kinds (GET, POST with a body, keep-alive,
a view that raises, a disconnect mid-response); the "definitely lost"
bytes at exit must not grow with the number of requests, and memcheck
must report no invalid reads or writes in our code.

Skipped in -Dsanitize=true builds (ASan and valgrind do not mix) and when
valgrind is missing (tests/deps.sh installs it).
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

import harness
import fcgiclient as fc

VALGRIND = shutil.which("valgrind")
APP_DIR = os.path.join(harness.APPS, "hostile")
N = int(os.environ.get("FCGI_PM_VALGRIND_REQUESTS", "1000"))


def begin(rid, keep=False):
    return fc.rec(fc.BEGIN, rid, struct.pack("!HB5x", 1, 1 if keep else 0))


def params(path, query="", clen=0):
    return {"REQUEST_METHOD": "POST" if clen else "GET", "SCRIPT_NAME": "", "PATH_INFO": path,
            "QUERY_STRING": query, "REQUEST_URI": path + "?" + query,
            "CONTENT_LENGTH": str(clen), "SERVER_NAME": "localhost", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost", "HTTP_X_A": "b" * 100}


def response(s):
    out = b""
    while True:
        t, r, c = fc.read_record(s)
        if t == fc.STDOUT:
            out += c
        elif t == fc.END:
            return out


@unittest.skipIf(harness.SANITIZE, "ASan build: valgrind does not run sanitized binaries")
@unittest.skipIf(VALGRIND is None, "valgrind is not installed")
class Valgrind(harness.TestCase):

    def run_worker(self, nreq, tag):
        """Serve NREQ mixed requests under valgrind; return (definitely
        lost bytes, error count, log text)."""
        path = os.path.join(self.tmp, "%s.sock" % tag)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(64)
        vlog = os.path.join(self.tmp, "%s.valgrind" % tag)
        env = dict(os.environ, HOSTILE_DIR=self.tmp, PYTHONMALLOC="malloc")
        argv = [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=none", "--num-callers=30", "--log-file=" + vlog,
                harness.FCGI_PM_WORKER, "--module", "hostile:application",
                "--python-path", APP_DIR, "--threads", "2"]
        try:
            w = self._own(harness.Proc(argv, os.path.join(self.tmp, "%s.log" % tag),
                                       "valgrind " + tag, env=env, stdin=ls.fileno()))
        finally:
            ls.close()
        # up: the first request may take a while under valgrind
        harness.wait_until(lambda: harness.can_connect(path), 60, what="the socket")
        s = fc.connect(path, timeout=120)
        s.sendall(begin(1) + fc.params_records(1, params("/")) + fc.rec(fc.STDIN, 1))
        self.assertTrue(response(s).endswith(b"ok"))
        s.close()
        keep = fc.connect(path, timeout=60)
        for i in range(nreq):
            kind = i % 5
            if kind == 0:                       # a new connection, GET
                s = fc.connect(path, timeout=60)
                s.sendall(begin(1) + fc.params_records(1, params("/", "i=%d" % i))
                          + fc.rec(fc.STDIN, 1))
                self.assertTrue(response(s).endswith(b"ok"))
                s.close()
            elif kind == 1:                     # keep-alive POST, body read
                body = b"x" * (100 + i % 3000)
                keep.sendall(begin(1, True) + fc.params_records(1, params("/read", "", len(body)))
                             + fc.stdin_records(1, body))
                self.assertIn(b"%d " % len(body), response(keep))
            elif kind == 2:                     # keep-alive GET, streamed
                keep.sendall(begin(1, True) + fc.params_records(1, params("/stream", "n=2"))
                             + fc.rec(fc.STDIN, 1))
                self.assertEqual(len(response(keep).split(b"\r\n\r\n", 1)[1]), 2 * 65536)
            elif kind == 3:                     # a view that raises (bad query): 500
                s = fc.connect(path, timeout=60)
                s.sendall(begin(1) + fc.params_records(1, params("/slow", "s=x"))
                          + fc.rec(fc.STDIN, 1))
                self.assertIn(b"500", response(s))
                s.close()
            else:                               # the peer leaves mid-response
                s = fc.connect(path, timeout=60)
                s.sendall(begin(1) + fc.params_records(1, params("/stream", "n=50&tag=v"))
                          + fc.rec(fc.STDIN, 1))
                fc.read_record(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        keep.close()
        w.signal(signal.SIGQUIT)
        rc = w.wait(180)
        self.assertEqual(rc, 0, harness.tail(w.log_path))
        text = open(vlog).read()
        m = re.search(r"definitely lost: ([\d,]+) bytes", text)
        lost = int(m.group(1).replace(",", "")) if m else 0
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        self.assertIsNotNone(m, text[-2000:])
        return lost, int(m.group(1)), text

    def test_definitely_lost_does_not_grow_with_requests(self):
        lost1, err1, text1 = self.run_worker(N, "n")
        lost2, err2, text2 = self.run_worker(2 * N, "2n")
        print("# valgrind: %d requests: definitely lost %d bytes, %d errors; "
              "%d requests: %d bytes, %d errors" % (N, lost1, err1, 2 * N, lost2, err2))
        # one lost byte per request would be N more bytes: allow far less
        self.assertLessEqual(lost2, lost1 + 512,
                             "leak grows with requests:\n" + text2[-6000:])
        # invalid reads/writes, uses of uninitialised values in our code
        ours = [m.group(0) for m in re.finditer(
            r"==\d+== (?:Invalid \w+|Conditional jump|Use of uninit|Syscall param)"
            r"[^\n]*\n(?:==\d+==    [^\n]*\n)*", text1 + text2)]
        ours = [e for e in ours if "fcgi-pm-worker" in e]
        self.assertEqual(ours, [], "\n".join(ours)[:6000])


if __name__ == "__main__":
    harness.main()
