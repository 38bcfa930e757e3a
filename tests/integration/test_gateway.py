"""The PEP 3333 gateway proven through a real nginx: the battery in
tests/apps/wsgi/through_nginx.py (each app wrapped in
wsgiref.validate.validator unless it breaks the PEP on purpose), served by
fcgi-pm behind nginx with etc/nginx/django-site.conf plus test locations
derived from its own `location /` block: HTTPS on, a prefix, buffering off,
an unbuffered upload, nginx's defaults without a path split.
"""
import hashlib
import http.client as httpclient
import json
import os
import re
import socket
import time
import unittest

import fcgiclient
import harness
from harness import get, http, post, concurrent, Pool, Raw

APP_DIR = os.path.join(harness.APPS, "wsgi")


def proc_status(pid, field):
    """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise harness.HarnessError("no %s for pid %d" % (field, pid))


def location_blocks(socket_path, locations):
    """nginx location blocks for SOCKET_PATH made from the snippet's own
    `location / { ... }`: LOCATIONS is [(prefix, split, extra directives)],
    split None keeps the snippet's split, "" drops it (nginx's defaults)."""
    with open(harness.NGINX_SNIPPET) as f:
        snippet = f.read()
    m = re.search(r"^    location / \{\n(.*?)^    \}\n", snippet, re.M | re.S)
    if not m:
        raise harness.HarnessError("no location / block in the snippet")
    body = m.group(1).replace("fastcgi_pass unix:/run/fcgi-pm/mysite.sock;",
                              "fastcgi_pass unix:%s;" % socket_path)
    out = []
    for prefix, split, extra in locations:
        b = body
        if split is not None:
            b = re.sub(r"^\s*fastcgi_split_path_info .*\n\s*fastcgi_param PATH_INFO .*\n",
                       ("        fastcgi_split_path_info %s;\n"
                        "        fastcgi_param PATH_INFO $fastcgi_path_info;\n" % split)
                       if split else "", b, count=1, flags=re.M)
        added = []
        for d in extra:
            # a directive the block has already is replaced, not repeated
            key = d.split()[:2 if d.startswith("fastcgi_param ") else 1]
            rx = re.compile(r"^(\s*)%s\s.*$" % r"\s+".join(map(re.escape, key)), re.M)
            if rx.search(b):
                b = rx.sub(lambda m: "%s%s;" % (m.group(1), d), b, count=1)
            else:
                added.append(d)
        # after the block's own (and its include): nginx sends params in
        # order, and the gateway, like a dict, keeps the last of a name
        out.append("    location %s {\n%s%s    }\n" % (
            prefix, b, "".join("        %s;\n" % d for d in added)))
    return snippet, m.start(), "".join(out)


def derived_snippet(tmp, name, *groups):
    """Write the snippet with location blocks added before its `location /`:
    GROUPS are (socket path, LOCATIONS as location_blocks() takes them)."""
    blocks = ""
    for socket_path, locations in groups:
        snippet, at, b = location_blocks(socket_path, locations)
        blocks += b
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(snippet[:at] + blocks + snippet[at:])
    return path


def raw_request(port, data, timeout=10):
    """Send DATA as is; return the whole answer (nginx closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


class GatewayBehindNginx(harness.TestCase):
    """Pool gw: one worker with 4 threads.  Pool mounted: script_name =
    "/mounted", one thread, behind a location with nginx's default params."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tmpdir("gateway")
        cls.state = os.path.join(cls.tmp, "state")
        os.makedirs(cls.state)
        env = {"GW_STATE_DIR": cls.state}
        cls.pm = harness.FcgiPm(cls.tmp, [
            Pool("gw", "through_nginx:application", python_path=[APP_DIR], env=env,
                 max_children=1, threads=4),
            Pool("mounted", "through_nginx:application", python_path=[APP_DIR], env=env,
                 max_children=1, threads=1, script_name="/mounted"),
        ]).start()
        sock = cls.pm.socket("gw")
        snippet = derived_snippet(cls.tmp, "gateway-site.conf", (sock, [
            ("/secure/", "^(/secure)(/.*)$", ["fastcgi_param HTTPS on"]),
            ("/scheme/", "^(/scheme)(/.*)$", ["fastcgi_param REQUEST_SCHEME https"]),
            ("/prefix/", "^(/prefix)(/.*)$", []),
            ("/unbuffered/", "^(/unbuffered)(/.*)$", ["fastcgi_buffering off"]),
            ("/nosplit/", "", []),
            ("/keepconn/", "^(/keepconn)(/.*)$", ["fastcgi_keep_conn on"]),
            ("/bigupload/", "^(/bigupload)(/.*)$",
             ["client_max_body_size 300m", "fastcgi_request_buffering off"]),
        ]), (cls.pm.socket("mounted"), [("/mounted/", "", [])]))
        cls.ng = harness.Nginx(cls.tmp)
        cls.port = cls.ng.add_site(sock, snippet=snippet).port
        cls.ng.start()
        harness.wait_http(cls.port, "/environ")
        harness.wait_http(cls.port, "/mounted/environ")
        cls.pid = cls.pm.worker_pids("gw")[0]

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()

    def setUp(self):
        pass

    # ---------------------------------------------------------- helpers

    def env(self, path, **kw):
        r = get(self.port, path, **kw)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def state_lines(self, name):
        try:
            with open(os.path.join(self.state, name)) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def assert_worker_serves(self):
        self.assertEqual(get(self.port, "/environ").status, 200)
        self.assertEqual(self.pm.worker_pids("gw"), [self.pid], "the worker was replaced")

    def log_since(self, mark):
        return self.pm.log()[mark:]

    # ---------------------------------------------------------- environ

    def test_environ_is_pep3333(self):
        e = self.env("/environ/some/path?a=1&b=%20x")
        self.assertTrue(e["_types_ok"])
        self.assertEqual(e["_wsgi"], {"version": [1, 0], "url_scheme": "http",
                                      "multithread": True, "multiprocess": True,
                                      "run_once": False, "input": True, "errors": True,
                                      "file_wrapper": True})
        self.assertEqual(e["REQUEST_METHOD"], "GET")
        self.assertEqual(e["SCRIPT_NAME"], "")
        self.assertEqual(e["PATH_INFO"], "/environ/some/path")
        self.assertEqual(e["QUERY_STRING"], "a=1&b=%20x")
        self.assertEqual(e["REQUEST_URI"], "/environ/some/path?a=1&b=%20x")
        self.assertEqual(e["SERVER_PORT"], str(self.port))
        self.assertEqual(e["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(e["REMOTE_ADDR"], "127.0.0.1")
        self.assertIn("SERVER_NAME", e)
        self.assertNotIn("HTTP_CONTENT_TYPE", e)
        self.assertNotIn("HTTP_CONTENT_LENGTH", e)

    def test_every_request_header_arrives_as_http_star(self):
        e = self.env("/environ", headers={"X-Custom-Thing": "v1", "Accept-Language": "fr",
                                          "Cookie": "a=b; c=d"})
        self.assertEqual(e["HTTP_X_CUSTOM_THING"], "v1")
        self.assertEqual(e["HTTP_ACCEPT_LANGUAGE"], "fr")
        self.assertEqual(e["HTTP_COOKIE"], "a=b; c=d")

    def test_post_content_type_and_length(self):
        r = post(self.port, "/environ", b"hello", content_type="text/x-thing")
        e = r.json()
        self.assertEqual((e["CONTENT_TYPE"], e["CONTENT_LENGTH"]), ("text/x-thing", "5"))

    def test_https_on_gives_url_scheme_https(self):
        e = self.env("/secure/environ")
        self.assertEqual(e["_wsgi"]["url_scheme"], "https")
        self.assertEqual(e["HTTPS"], "on")
        self.assertEqual(self.env("/environ")["_wsgi"]["url_scheme"], "http")
        # REQUEST_SCHEME=https alone says the same (nginx sends it after
        # the REQUEST_SCHEME=$scheme of fastcgi_params: the last one counts)
        e = self.env("/scheme/environ")
        self.assertEqual((e["_wsgi"]["url_scheme"], e["REQUEST_SCHEME"]), ("https", "https"))
        self.assertNotIn("HTTPS", e)

    def test_script_name_at_root_and_at_a_prefix(self):
        e = self.env("/prefix/environ/x/y")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("/prefix", "/environ/x/y"))
        e = self.env("/environ/x/y")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("", "/environ/x/y"))

    def test_nginx_defaults_without_split_mean_the_root(self):
        # nginx's stock params: SCRIPT_NAME is the whole path, no PATH_INFO
        e = self.env("/nosplit/environ/x")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("", "/nosplit/environ/x"))

    def test_pool_script_name_fixes_the_mount_point(self):
        e = self.env("/mounted/environ/x?q=1")
        self.assertEqual((e["SCRIPT_NAME"], e["PATH_INFO"]), ("/mounted", "/environ/x"))

    def test_percent_encoded_path_is_decoded(self):
        e = self.env("/environ/a%20b/c%3Fd/e%25f?x=%20")
        self.assertEqual(e["PATH_INFO"], "/environ/a b/c?d/e%f")
        self.assertEqual(e["QUERY_STRING"], "x=%20")

    def test_utf8_path_arrives_as_latin1_decoded_bytes(self):
        # PEP 3333: the bytes of the decoded path, as latin-1 characters
        e = self.env("/environ/caf%C3%A9")
        self.assertEqual(e["PATH_INFO"], "/environ/caf\u00c3\u00a9")
        self.assertEqual(e["PATH_INFO"].encode("latin-1").decode("utf-8"), "/environ/caf\u00e9")

    def test_non_utf8_path_arrives_as_latin1(self):
        e = self.env("/environ/caf%E9/%FF%FE")
        self.assertEqual(e["PATH_INFO"], "/environ/caf\u00e9/\u00ff\u00fe")
        # raw bytes on the request line too (no percent-encoding)
        ans = raw_request(self.port, b"GET /environ/raw\xe9\xff?q=\xe9 HTTP/1.0\r\n"
                          b"Host: x\r\n\r\n")
        head, _, body = ans.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), ans[:300])
        e = json.loads(body)
        self.assertEqual(e["PATH_INFO"], "/environ/raw\u00e9\u00ff")
        self.assertEqual(e["QUERY_STRING"], "q=\u00e9")
        self.assertEqual(e["REQUEST_URI"], "/environ/raw\u00e9\u00ff?q=\u00e9")

    def test_non_latin1_header_bytes_arrive_as_latin1(self):
        ans = raw_request(self.port, b"GET /environ HTTP/1.0\r\nHost: x\r\n"
                          b"X-Name: Zo\xc3\xab \xff\r\n\r\n")
        e = json.loads(ans.partition(b"\r\n\r\n")[2])
        self.assertEqual(e["HTTP_X_NAME"], "Zo\u00c3\u00ab \u00ff")

    def test_odd_methods_reach_the_app(self):
        for m in ("PURGE", "PROPFIND", "PATCH", "OPTIONS", "DELETE", "MKCOL"):
            r = http(m, self.port, "/method", body=b"payload-" + m.encode(),
                     headers={"Content-Type": "text/plain"})
            self.assertEqual(r.status, 200, (m, r))
            self.assertEqual(r.json(), {"method": m, "body": "payload-" + m})

    def test_large_header_under_nginx_limit_reaches_the_app(self):
        e = self.env("/environ", headers={"X-Big": "b" * 7000})
        self.assertEqual(e["HTTP_X_BIG"], "b" * 7000)

    def test_oversized_headers_get_nginx_answer_and_worker_serves(self):
        # one header line longer than large_client_header_buffers (8k)
        r = get(self.port, "/environ", headers={"X-Huge": "h" * 20000})
        self.assertEqual(r.status, 400, r)
        # many headers adding up to more than 4 x 8k
        r = get(self.port, "/environ", headers={"X-H%d" % i: "v" * 4000 for i in range(12)})
        self.assertEqual(r.status, 400, r)
        self.assert_worker_serves()

    def test_interpreter_is_main_under_threads(self):
        res = concurrent(lambda: get(self.port, "/sleep?0.3"), [()] * 12, threads=12)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        infos = [r.json() for r in res]
        self.assertEqual({i["interp"] for i in infos}, {0})
        self.assertEqual({i["pid"] for i in infos}, {self.pid})
        self.assertGreater(len({i["thread"] for i in infos}), 1, "one thread served them all")
        e = self.env("/environ")
        self.assertEqual((e["_interp"], e["_main_interp"]), (0, 0))

    # ------------------------------------------------------- wsgi.input

    def input_ops(self, ops, body):
        r = post(self.port, "/input?" + ops, body, content_type="text/plain")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_input_read_and_read_n(self):
        self.assertEqual(self.input_ops("read:3,read:100,read:5", b"abcdefgh"),
                         ["abc", "defgh", "", ""])
        self.assertEqual(self.input_ops("readall", b"x" * 100000), ["x" * 100000, ""])
        self.assertEqual(self.input_ops("read:0,read:2,readall", b"12345"),
                         ["", "12", "345", ""])

    def test_input_readline_and_limit(self):
        self.assertEqual(self.input_ops("readline,readline:2,readline:100,readline,readline",
                                        b"one\ntwo\nthree\n"),
                         ["one\n", "tw", "o\n", "three\n", "", ""])
        # lines longer than the gateway's 64 KiB buffer, across its refills
        long1, long2 = "a" * 150000 + "\n", "b" * 70000 + "\n"
        self.assertEqual(self.input_ops("readline,readline:65537,readline,readline",
                                        (long1 + long2 + "end").encode()),
                         [long1, long2[:65537], long2[65537:], "end", ""])
        self.assertEqual(self.input_ops("readlines:1,iter", (long1 + long2).encode()),
                         [[long1], [long2], ""])
        # no newline at the end of the body
        self.assertEqual(self.input_ops("readline,readline", b"ab\ncd"), ["ab\n", "cd", ""])

    def test_input_readlines_with_hint_and_iteration(self):
        body = b"".join(b"line%d\n" % i for i in range(10))
        self.assertEqual(self.input_ops("readlines:12,iter", body),
                         [["line0\n", "line1\n"], ["line%d\n" % i for i in range(2, 10)], ""])
        self.assertEqual(self.input_ops("readlines", b"a\nb\nc"), [["a\n", "b\n", "c"], ""])

    def test_input_never_reads_past_content_length(self):
        # nginx hands over exactly CONTENT_LENGTH bytes; read(n) larger than
        # the rest, readline without a newline, iteration: all stop there
        self.assertEqual(self.input_ops("read:1000000", b"z" * 4096), ["z" * 4096, ""])
        self.assertEqual(self.input_ops("readline:1000000", b"no newline"), ["no newline", ""])
        self.assertEqual(self.input_ops("iter", b"x\ny"), [["x\n", "y"], ""])
        self.assertEqual(self.input_ops("len", b"q" * 300000), [300000, ""])
        # an empty body and a GET: reads are empty at once
        self.assertEqual(self.input_ops("read:10,readline,readlines", b""), ["", "", [], ""])
        r = get(self.port, "/input?read:10,readline")
        self.assertEqual(r.json(), ["", "", ""])

    def test_answer_without_reading_a_large_streamed_body(self):
        # the app answers (or fails) before reading 50 MB that nginx is
        # still passing on: the client gets the answer, the worker serves on
        for path, status in (("/bigupload/environ", 200), ("/bigupload/boom?unread", 500)):
            c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                c.request("POST", path, body=(b"z" * (1 << 20) for _ in range(50)),
                          headers={"Content-Length": str(50 << 20),
                                   "Content-Type": "application/octet-stream"})
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, status, path)
            finally:
                c.close()
            self.assert_worker_serves()

    def test_chunked_request_body(self):
        # nginx de-chunks and sends CONTENT_LENGTH
        c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("POST", "/input?readall", body=iter([b"abc", b"defg", b"h"]),
                      headers={"Content-Type": "text/plain"}, encode_chunked=True)
            r = c.getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, ["abcdefgh", ""]))
        finally:
            c.close()

    # ------------------------------------------------- start_response

    def test_bad_status_line_is_500_and_logged(self):
        for case in ("nospace", "letters", "newline", "short", "bytes"):
            mark = len(self.pm.log())
            r = get(self.port, "/status?" + case)
            self.assertEqual(r.status, 500, (case, r))
            self.assertNotIn(b"should never be seen", r.body)
            self.assertNotIn("x-injected", r.headers)
            harness.wait_until(lambda: re.search(r"wsgi: GET /status\?%s: exception in the "
                                                 r"application\n(.*\n)*.*(Value|Type)Error: "
                                                 % case, self.log_since(mark)),
                               10, what="the log lines for %s" % case)
        self.assert_worker_serves()

    def test_bad_headers_are_500_and_logged_never_malformed(self):
        for case in ("space", "colon", "newline", "crlf", "nul", "nonlatin", "status"):
            mark = len(self.pm.log())
            r = get(self.port, "/badheader?" + case)
            self.assertEqual(r.status, 500, (case, r))
            self.assertNotIn("injected", r.headers)
            self.assertNotIn(b"should never be seen", r.body)
            # the summary line, then the traceback down to the exception
            harness.wait_until(lambda: re.search(r"GET /badheader\?%s: exception in the "
                                                 r"application\n(.*\n)*.*(Value|Type)Error: "
                                                 % case, self.log_since(mark)),
                               10, what="the log lines for %s" % case)
        self.assert_worker_serves()

    def test_bad_header_refusal_reaches_the_app(self):
        r = get(self.port, "/badheader_caught?space")
        self.assertEqual(r.status, 400, r)
        self.assertIn("ValueError", r.text)
        self.assertIn("Bad Name", r.text)
        r = get(self.port, "/badheader_caught?newline")
        self.assertEqual(r.status, 400, r)
        self.assertIn("ValueError", r.text)

    def test_exc_info_before_headers_replaces_the_response(self):
        r = get(self.port, "/excinfo?before")
        self.assertEqual((r.status, r.body, r.headers.get("x-error-page")),
                         (503, b"error page", "yes"))
        self.assertIn("replaced before", self.state_lines("excinfo"))

    def test_exc_info_after_headers_reraises_and_cuts_the_response(self):
        # straight to the pool: the response is cut, no END_REQUEST
        s = fcgiclient.connect(self.pm.socket("gw"))
        try:
            fcgiclient.request(s, params={"REQUEST_METHOD": "GET", "SCRIPT_NAME": "",
                                          "PATH_INFO": "/excinfo", "QUERY_STRING": "after",
                                          "REQUEST_URI": "/excinfo?after"})
            records = []
            while True:
                try:
                    records.append(fcgiclient.read_record(s))
                except EOFError:
                    break
        finally:
            s.close()
        out = b"".join(c for t, _, c in records if t == fcgiclient.STDOUT)
        self.assertTrue(out.startswith(b"Status: 200 OK\r\n"), out)
        self.assertTrue(out.endswith(b"\r\n\r\npart one;"), out)
        self.assertNotIn(fcgiclient.END, [t for t, _, _ in records])
        harness.wait_until(lambda: "reraised after" in self.state_lines("excinfo"), 10,
                           what="the app to see its exception re-raised")
        self.pm.wait_log(r"GET /excinfo\?after: exception after the response started")
        self.assertIn("Boom: excinfo-after", self.pm.log())
        # through nginx with fastcgi_keep_conn on, nginx sees the missing
        # END_REQUEST and cuts the client's response too
        for q, partial in (("after-cl", b"part one;"), ("after", None)):
            c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                c.request("GET", "/keepconn/excinfo?" + q)
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                with self.assertRaises(httpclient.IncompleteRead) as cm:
                    r.read()
                if partial is not None:
                    self.assertEqual(cm.exception.partial, partial)
            finally:
                c.close()
        # with fastcgi_keep_conn off (the snippet), nginx takes the closed
        # connection for the end of the response: the body is cut, and the
        # error page never follows it
        r = get(self.port, "/excinfo?after")
        self.assertEqual((r.status, r.body), (200, b"part one;"))
        self.assert_worker_serves()

    def test_write_callable_and_iterable_mix(self):
        r = get(self.port, "/write")
        self.assertEqual((r.status, r.body), (200, b"w1;w2;i1;i2"))

    def test_headers_wait_for_first_nonempty_chunk(self):
        mark = len(self.pm.log())
        r = get(self.port, "/lateheaders")
        self.assertEqual(r.status, 500, r)
        self.assertNotIn("x-late", r.headers)
        self.pm.wait_log(r"late-headers marker")
        self.assertIn("GET /lateheaders: exception in the application", self.log_since(mark))

    def test_no_content_type_passes_as_the_app_said(self):
        r = get(self.port, "/nocontenttype")
        self.assertEqual((r.status, r.body), (200, b"no type"))

    # ----------------------------------------------------- streaming

    def test_streaming_client_gets_first_chunk_before_second_is_made(self):
        marker = "stream-%d" % time.monotonic_ns()
        c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", "/unbuffered/stream?" + marker)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            got = b""
            while b"first chunk;" not in got:
                b = r.read1(65536)
                self.assertTrue(b, "the stream ended before the first chunk: %r" % got)
                got += b
            self.assertNotIn(b"second", got)
            open(os.path.join(self.state, marker), "w").close()
            got += r.read()
        finally:
            c.close()
        self.assertEqual(got, b"first chunk;second chunk: client had the first")

    # ------------------------------------------------------- close()

    def closes(self, tag):
        return [l for l in self.state_lines("closes") if l.split()[-1] == tag]

    def wait_closed(self, tag):
        harness.wait_until(lambda: "close " + tag in self.closes(tag), 20,
                           what="close() of %s" % tag)
        time.sleep(0.3)     # a second close() would come right after
        self.assertEqual([l for l in self.closes(tag) if l.startswith("close")],
                         ["close " + tag], "close() not called exactly once")

    def test_close_called_once_on_success(self):
        for path in ("close", "close_raw"):
            tag = "ok-%s-%d" % (path, time.monotonic_ns())
            r = get(self.port, "/%s?%s:ok" % (path, tag))
            self.assertEqual((r.status, r.body), (200, b"one;two;three"))
            self.wait_closed(tag)
        tag = "empty-%d" % time.monotonic_ns()
        r = get(self.port, "/close?%s:empty" % tag)
        self.assertEqual((r.status, r.body), (200, b""))
        self.wait_closed(tag)

    def test_close_called_once_when_iteration_raises(self):
        for path in ("close", "close_raw"):
            tag = "raise-%s-%d" % (path, time.monotonic_ns())
            try:
                get(self.port, "/%s?%s:raise" % (path, tag))
            except (httpclient.HTTPException, ConnectionError):
                pass    # the response was cut: nginx may pass on what it had
            self.wait_closed(tag)
        self.assert_worker_serves()

    def test_close_called_once_when_close_raises(self):
        mark = len(self.pm.log())
        tag = "closeraise-%d" % time.monotonic_ns()
        r = get(self.port, "/close_raw?%s:closeraise" % tag)
        self.assertEqual((r.status, r.body), (200, b"one;two;three"))
        self.wait_closed(tag)
        self.pm.wait_log("Boom: in close " + tag)
        self.assertIn("exception in the response's close()", self.log_since(mark))
        self.assert_worker_serves()

    def test_close_called_once_when_the_client_goes_away(self):
        for path in ("close", "close_raw"):
            tag = "gone-%s-%d" % (path, time.monotonic_ns())
            got = self.go_away(path, tag)
            self.assertTrue(got.startswith(b"HTTP/1.1 200") and len(got) >= 20000, got[:300])
            self.wait_closed(tag)
            self.assertIn("streaming " + tag, self.state_lines("closes"))
            self.assertNotIn("ran out " + tag, self.state_lines("closes"))
        self.assert_worker_serves()

    def go_away(self, path, tag, nbytes=20000):
        """GET PATH?TAG:forever through the unbuffered location, read
        NBYTES of the answer, hang up."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /unbuffered/%s?%s:forever HTTP/1.1\r\nHost: x\r\n\r\n"
                      % (path.encode(), tag.encode()))
            got = b""
            while len(got) < nbytes:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        return got

    def test_client_gone_notices_are_rate_limited(self):
        mark = len(self.pm.log())
        t0 = time.monotonic()
        tags = ["limit%d-%d" % (i, time.monotonic_ns()) for i in range(12)]
        res = concurrent(lambda t: self.go_away("close_raw", t), [(t,) for t in tags], threads=4)
        self.assertTrue(all(isinstance(r, bytes) and r.startswith(b"HTTP/1.1 200") for r in res))
        for t in tags:      # every one of them was noticed (and closed)
            self.wait_closed(t)
        windows = int((time.monotonic() - t0) / 10) + 1     # of 10 s, 5 lines each
        n = self.log_since(mark).count("the client closed the connection")
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, min(5 * windows, 11), "12 clients went away, %d log lines" % n)

    # -------------------------------------------------- file_wrapper, HEAD

    def test_file_wrapper(self):
        data = os.urandom(3 * 1024 * 1024 + 17)
        with open(os.path.join(self.state, "blob"), "wb") as f:
            f.write(data)
        for path in ("/file?blob", "/file_raw?blob", "/file_raw?blob:100000",
                     "/unbuffered/file_raw?blob"):
            r = get(self.port, path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(int(r.headers["content-length"]), len(data))
            self.assertTrue(r.body == data, "%s: the body differs" % path)

    def test_file_wrapper_sends_from_the_fd_without_python_reads(self):
        data = os.urandom(1 << 20)
        with open(os.path.join(self.state, "counted"), "wb") as f:
            f.write(data)
        tag = "fw%d" % time.monotonic_ns()
        r = get(self.port, "/counted_raw?counted:" + tag)
        self.assertTrue(r.status == 200 and r.body == data, r)
        # validator-wrapped, the gateway cannot see the file: it iterates
        r = get(self.port, "/counted?counted:v" + tag)
        self.assertTrue(r.status == 200 and r.body == data, r)
        harness.wait_until(lambda: len([l for l in self.state_lines("files") if tag in l]) == 2,
                           10, what="both files closed")
        lines = [l for l in self.state_lines("files") if tag in l]
        self.assertIn("close %s reads=0" % tag, lines)
        self.assertIn("close v%s reads=%d" % (tag, 16 + 1), lines)     # 16 x 64 KiB, then b""

    def test_file_wrapper_closed_once_when_the_client_goes_away(self):
        with open(os.path.join(self.state, "sparse"), "wb") as f:
            f.truncate(256 << 20)
        tag = "fwgone%d" % time.monotonic_ns()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /unbuffered/counted_raw?sparse:%s HTTP/1.1\r\nHost: x\r\n\r\n"
                      % tag.encode())
            got = 0
            while got < (1 << 20):
                b = s.recv(65536)
                self.assertTrue(b)
                got += len(b)
        harness.wait_until(lambda: [l for l in self.state_lines("files") if tag in l], 20,
                           what="the file to be closed")
        time.sleep(0.3)
        self.assertEqual([l for l in self.state_lines("files") if tag in l],
                         ["close %s reads=0" % tag])
        self.assert_worker_serves()

    def test_head_has_headers_and_no_body(self):
        r = http("HEAD", self.port, "/head")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.headers["content-length"], "26")
        self.assertEqual(r.headers["x-method"], "HEAD")
        self.assertEqual(self.state_lines("head")[-1], "HEAD")
        # and the same connection-less GET still has its body
        self.assertEqual(len(get(self.port, "/head").body), 26)

    def fcgi_stdout(self, params):
        """One request straight to pool gw; its whole FCGI_STDOUT."""
        s = fcgiclient.connect(self.pm.socket("gw"))
        try:
            fcgiclient.request(s, params=params)
            out = b""
            while True:
                t, _, c = fcgiclient.read_record(s)
                if t == fcgiclient.END:
                    return out
                if t == fcgiclient.STDOUT:
                    out += c
        finally:
            s.close()

    def test_one_piece_bodies_of_every_size(self):
        # the body and the end of the response leave in one write; records
        # of up to 64 KiB, more than one writev past 16 records (3 MiB)
        for prefix in ("", "/keepconn"):
            for n in (1, 8191, 8192, 65536, 70000, 3 << 20):
                for variant in ("", ";nolength", ";tuple"):
                    path = "%s/onepiece?%d%s" % (prefix, n, variant)
                    r = get(self.port, path)
                    self.assertEqual(r.status, 200, path)
                    self.assertEqual(len(r.body), n, path)
                    self.assertEqual(r.body, (b"0123456789abcdef" * (n // 16 + 1))[:n], path)
        self.assert_worker_serves()

    def test_head_on_a_streamed_file(self):
        with open(os.path.join(self.state, "blob2"), "wb") as f:
            f.write(b"y" * 100000)
        r = http("HEAD", self.port, "/file_raw?blob2")
        self.assertEqual((r.status, r.body, r.headers["content-length"]), (200, b"", "100000"))
        # the worker sends the headers only: for a file, for a generator
        for path, q, cl in (("/file_raw", "blob2", b"100000"), ("/big", "%d" % (64 << 20),
                                                               b"%d" % (64 << 20))):
            out = self.fcgi_stdout({"REQUEST_METHOD": "HEAD", "PATH_INFO": path,
                                    "QUERY_STRING": q, "REQUEST_URI": path + "?" + q})
            self.assertTrue(out.startswith(b"Status: 200 OK\r\n"), out[:300])
            self.assertTrue(out.endswith(b"\r\n\r\n"), out[:300])
            self.assertIn(b"Content-Length: " + cl + b"\r\n", out)
        self.assert_worker_serves()

    # ---------------------------------------------------- exceptions

    def test_exception_is_500_with_short_body_and_logged_traceback(self):
        tag = "t%d" % time.monotonic_ns()
        mark = len(self.pm.log())
        r = post(self.port, "/boom?" + tag, b"data", content_type="text/plain")
        self.assertEqual(r.status, 500, r)
        self.assertLess(len(r.body), 100)
        self.assertNotIn(b"Traceback", r.body)
        self.assertNotIn(tag.encode(), r.body)
        self.pm.wait_log("boom marker " + tag)
        log = self.log_since(mark)
        self.assertRegex(log, r"wsgi: POST /boom\?%s: exception in the application" % tag)
        self.assertIn("Traceback (most recent call last):", log)
        self.assertIn('through_nginx.py", line', log)
        self.assertIn("Boom: boom marker " + tag, log)
        for _ in range(5):
            self.assert_worker_serves()

    def test_validator_never_complains(self):
        # wsgiref.validate raises AssertionError or warns on the gateway's
        # faults; run a mix and check the log holds neither
        for p in ("/environ", "/write", "/input?read:1", "/head", "/file?blob2", "/big?100000"):
            get(self.port, p)
        time.sleep(0.3)
        log = self.pm.log()
        self.assertNotIn("AssertionError", log)
        # (the validator warns about methods it does not know; that is all)
        self.assertEqual([l for l in log.splitlines() if "WSGIWarning" in l
                          and "Unknown REQUEST_METHOD" not in l], [])
        self.assertNotIn("garbage collected without being closed", log)

    # ------------------------------------------------------- threads

    def timed_burst(self, path, n):
        t0 = time.monotonic()
        res = concurrent(lambda: get(self.port, path, timeout=60), [()] * n, threads=n)
        dt = time.monotonic() - t0
        self.assertEqual([r for r in res if isinstance(r, Exception) or r.status != 200], [])
        return dt, res

    def test_threads_serve_concurrently(self):
        one, _ = self.timed_burst("/sleep?1", 1)
        four, res = self.timed_burst("/sleep?1", 4)
        self.assertEqual(len({r.json()["thread"] for r in res}), 4)
        self.assertEqual({r.json()["pid"] for r in res}, {self.pid})
        # serial would be 4x one request; concurrent is about 1x
        self.assertLess(four / one, 2.5, "4 requests took %.2fs, one took %.2fs" % (four, one))

    def test_gil_released_while_a_thread_waits_for_the_body(self):
        # a client that sends half its body: one thread blocks reading it
        # (unbuffered upload), the others keep serving
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(b"POST /bigupload/upload HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/octet-stream\r\n"
                      b"Content-Length: 200000\r\nConnection: close\r\n\r\n" + b"a" * 100000)
            time.sleep(0.5)
            for _ in range(3):
                self.assertEqual(get(self.port, "/environ", timeout=10).status, 200)
            s.sendall(b"a" * 100000)
            ans = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                ans += b
        self.assertTrue(ans.startswith(b"HTTP/1.1 200"), ans[:300])
        self.assertEqual(json.loads(ans.partition(b"\r\n\r\n")[2])["length"], 200000)

    def test_gil_released_while_a_thread_waits_to_write(self):
        # a client that does not read a large unbuffered answer: one thread
        # blocks writing it, the others keep serving
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"GET /unbuffered/big?%d HTTP/1.1\r\nHost: x\r\n\r\n" % (1 << 30))
            time.sleep(1)       # buffers fill in well under that
            for _ in range(3):
                self.assertEqual(get(self.port, "/environ", timeout=10).status, 200)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
        self.assert_worker_serves()

    def test_wsgi_errors_reach_the_pool_log(self):
        tag = "e%d" % time.monotonic_ns()
        self.assertEqual(get(self.port, "/errors?" + tag).status, 200)
        self.pm.wait_log("errors %s: unterminated" % tag)
        lines = [l.split(": ", 2)[-1] for l in self.pm.log().splitlines() if "errors %s:" % tag in l]
        self.assertEqual(lines, ["errors %s: %s" % (tag, t) for t in (
            "first line", "second line", "from writelines", "printed", "unterminated")])

    def test_one_thread_serves_serially(self):
        # the control: pool "mounted" has threads = 1 and one worker, so
        # three sleeps of 0.5 s cannot end before 1.5 s (a lower bound,
        # which a slow machine only makes easier to meet)
        three, res = self.timed_burst("/mounted/sleep?0.5", 3)
        self.assertEqual(len({r.json()["thread"] for r in res}), 1)
        self.assertGreaterEqual(three, 1.45, "3 requests took %.2fs on one thread" % three)


class MemoryStaysFlat(harness.TestCase):
    """One worker alone: its RSS around a 1 GB streamed response and a
    200 MB upload (no benchmark: memory, not speed)."""

    @classmethod
    def setUpClass(cls):
        if harness.SANITIZE:
            # ASan's quarantine holds on to freed memory (256 MB by default)
            raise unittest.SkipTest("RSS means nothing under ASan")
        cls.tmp = harness.make_tmpdir("gwmem")
        cls.pm = harness.FcgiPm(cls.tmp, [
            Pool("mem", "through_nginx:application", python_path=[APP_DIR],
                 env={"GW_STATE_DIR": cls.tmp}, max_children=1, threads=2)]).start()
        sock = cls.pm.socket("mem")
        snippet = derived_snippet(cls.tmp, "mem-site.conf", (sock, [
            ("/unbuffered/", "^(/unbuffered)(/.*)$", ["fastcgi_buffering off"]),
            ("/bigupload/", "^(/bigupload)(/.*)$",
             ["client_max_body_size 300m", "fastcgi_request_buffering off"]),
        ]))
        cls.ng = harness.Nginx(cls.tmp)
        cls.port = cls.ng.add_site(sock, snippet=snippet).port
        cls.ng.start()
        harness.wait_http(cls.port, "/environ")
        cls.pid = cls.pm.worker_pids("mem")[0]

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()

    def setUp(self):
        pass

    def stream(self, path, n):
        """GET PATH, read N bytes in 1 MiB reads without keeping them."""
        c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request("GET", path)
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            total = 0
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                total += len(b)
        finally:
            c.close()
        return total

    def test_1gb_generator_response_keeps_rss_flat(self):
        n = 1 << 30
        # warm up: first allocations of a streamed response
        self.assertEqual(self.stream("/unbuffered/big?%d" % (8 << 20), 8 << 20), 8 << 20)
        before = proc_status(self.pid, "VmRSS")
        t0 = time.monotonic()
        self.assertEqual(self.stream("/unbuffered/big?%d" % n, n), n)
        dt = time.monotonic() - t0
        after = proc_status(self.pid, "VmRSS")
        hwm = proc_status(self.pid, "VmHWM")
        print("# 1 GiB streamed in %.1fs; worker VmRSS %d kB -> %d kB, VmHWM %d kB"
              % (dt, before, after, hwm))
        self.assertLess(after - before, 4096, "RSS grew by %d kB" % (after - before))
        self.assertLess(hwm - before, 8192, "RSS peaked %d kB above the start" % (hwm - before))
        self.assertEqual(self.pm.worker_pids("mem"), [self.pid])

    def test_200mb_upload_keeps_worker_memory_bounded(self):
        if harness.SANITIZE:    # CI runs the suite in an ASan build too
            self.skipTest("ASan keeps freed blocks in quarantine (256 MB): RSS bounds "
                          "do not apply")
        n = 200 << 20
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        for _ in range(n >> 20):
            h.update(block)
        hwm_before = proc_status(self.pid, "VmHWM")
        rss_before = proc_status(self.pid, "VmRSS")
        c = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=120)
        t0 = time.monotonic()
        try:
            c.request("POST", "/bigupload/upload", body=(block for _ in range(n >> 20)),
                      headers={"Content-Type": "application/octet-stream",
                               "Content-Length": str(n)})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 200, body[:300])
        self.assertEqual(json.loads(body), {"length": n, "sha256": h.hexdigest(),
                                            "content_length": str(n)})
        hwm = proc_status(self.pid, "VmHWM")
        print("# 200 MiB uploaded in %.1fs; worker VmRSS before %d kB, VmHWM %d kB -> %d kB"
              % (dt, rss_before, hwm_before, hwm))
        # the body went through 1 MiB at a time: far from 200 MB
        self.assertLess(hwm - rss_before, 20 * 1024,
                        "the worker's memory peaked %d kB above its RSS" % (hwm - rss_before))


if __name__ == "__main__":
    harness.main()
