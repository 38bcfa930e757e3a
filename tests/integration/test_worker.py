"""fcgi-pm-worker on its own, as under spawn-fcgi or lighttpd's bin-path:
a listening socket on fd 0, FastCGI straight from the test (no web server)."""
import json
import os

import harness
import fcgiclient as fc


class StandaloneWorker(harness.TestCase):

    def start(self):
        self.proc, self.sock = harness.start_worker(
            self.tmp, "hello:application",
            python_path=[os.path.join(harness.APPS, "hello")])

    def request(self, path="/", query="", body=b"", method=None, extra=None):
        params = {"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
                  "REQUEST_METHOD": method or ("POST" if body else "GET"),
                  "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "localhost",
                  "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                  "REMOTE_ADDR": "127.0.0.1"}
        if body:
            params["CONTENT_TYPE"] = "application/octet-stream"
        params.update(extra or {})
        # the worker may still be importing the app: retry the connect only
        s = harness.wait_until(lambda: self._connect(), 20, what="worker socket")
        try:
            fc.request(s, params=params, body=body)
            out, err, app_status, proto = fc.response(s)
        finally:
            s.close()
        head, _, payload = out.partition(b"\r\n\r\n")
        return head.decode("latin-1"), payload, app_status, proto

    def _connect(self):
        if not self.proc.running():
            raise harness.HarnessError("fcgi-pm-worker exited with status %s:\n%s" % (
                self.proc.p.returncode, harness.tail(self.proc.log_path)))
        try:
            return fc.connect(self.sock, timeout=20)
        except OSError:
            return None

    def test_get_returns_environ_as_json(self):
        self.start()
        head, body, app_status, proto = self.request("/hello", "a=1&b=2")
        self.assertRegex(head, r"(?i)^status: 200")
        self.assertEqual(proto, 0)
        info = json.loads(body)
        self.assertEqual(info["PATH_INFO"], "/hello")
        self.assertEqual(info["QUERY_STRING"], "a=1&b=2")
        self.assertEqual(info["REQUEST_METHOD"], "GET")
        self.assertEqual(info["pid"], self.proc.pid)

    def test_runs_in_the_main_interpreter(self):
        self.start()
        _, body, _, _ = self.request("/")
        self.assertEqual(json.loads(body)["interpreter"], 0)

    def test_post_body_is_echoed(self):
        self.start()
        payload = os.urandom(200000)
        head, body, _, _ = self.request("/echo", body=payload)
        self.assertRegex(head, r"(?i)^status: 200")
        self.assertEqual(body, payload)

    def test_app_exception_gives_500_and_worker_keeps_serving(self):
        self.start()
        head, _, _, _ = self.request("/crash")
        self.assertRegex(head, r"(?i)^status: 500")
        head, _, _, _ = self.request("/after-crash")
        self.assertRegex(head, r"(?i)^status: 200")
        self.assertTrue(self.proc.running())
        log = harness.wait_until(
            lambda: (lambda t: t if "RuntimeError" in t else None)(
                open(self.proc.log_path, errors="replace").read()),
            5, what="the traceback in the worker's stderr")
        self.assertIn("/crash was requested", log)

    def test_many_sequential_requests(self):
        self.start()
        for i in range(50):
            head, body, _, _ = self.request("/n", "i=%d" % i)
            self.assertRegex(head, r"(?i)^status: 200")
            self.assertEqual(json.loads(body)["QUERY_STRING"], "i=%d" % i)


if __name__ == "__main__":
    harness.main()
