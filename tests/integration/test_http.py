"""A WSGI app (tests/apps/hello) served by the real fcgi-pm behind a real
nginx that includes etc/nginx/django-site.conf: GET, POST, errors, load."""
import json
import os
import re

import harness
from harness import get, post, post_form, concurrent, hello_pool


class HelloBehindNginx(harness.TestCase):
    """One fcgi-pm (pool hello, 2 workers) and one nginx for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tmpdir("http")
        cls.pm = harness.FcgiPm(cls.tmp, [hello_pool(
            max_children=2, env={"HELLO_GREETING": "hi from the pool"})]).start()
        cls.ng = harness.Nginx(cls.tmp)
        cls.site = cls.ng.add_site(cls.pm.socket("hello"))
        cls.ng.start()
        cls.port = cls.site.port
        harness.wait_http(cls.port, "/")

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()

    def setUp(self):
        pass        # class fixtures: no per-test temp dir

    def test_get_with_query_string(self):
        r = get(self.port, "/some/path?a=1&b=%20x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        info = r.json()
        self.assertEqual(info["REQUEST_METHOD"], "GET")
        self.assertEqual(info["QUERY_STRING"], "a=1&b=%20x")
        # the snippet mounts the site at "/": SCRIPT_NAME empty, PATH_INFO the path
        self.assertEqual(info["SCRIPT_NAME"], "")
        self.assertEqual(info["PATH_INFO"], "/some/path")
        self.assertEqual(info["REQUEST_URI"], "/some/path?a=1&b=%20x")
        self.assertIn(info["HTTP_HOST"], ("127.0.0.1", "127.0.0.1:%d" % self.port))
        self.assertEqual(info["SERVER_PORT"], str(self.port))
        self.assertEqual(info["wsgi.url_scheme"], "http")

    def test_request_start_reaches_the_app(self):
        info = get(self.port, "/").json()
        self.assertRegex(info["REQUEST_START"] or "", r"^\d+\.\d{3}$")

    def test_runs_in_the_main_interpreter(self):
        self.assertEqual(get(self.port, "/").json()["interpreter"], 0)

    def test_pool_env_reaches_the_app(self):
        r = get(self.port, "/env?name=HELLO_GREETING")
        self.assertEqual((r.status, r.text), (200, "hi from the pool"))

    def test_post_form_body_is_echoed(self):
        r = post_form(self.port, "/form", {"name": "Zoë", "comment": "a & b = c"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual(r.text, "name=Zo%C3%AB&comment=a+%26+b+%3D+c")

    def test_post_one_megabyte_binary_body(self):
        payload = os.urandom(1 << 20)
        r = post(self.port, "/upload", payload)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), len(payload))
        self.assertTrue(r.body == payload, "body differs")

    def test_large_response(self):
        r = get(self.port, "/big?n=3000000")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 3000000)
        self.assertEqual(r.body.count(b"x"), 3000000)

    def test_app_exception_is_a_500_logged_with_traceback(self):
        r = get(self.port, "/crash")
        self.assertEqual(r.status, 500)
        self.pm.wait_log(r"/crash was requested", timeout=10)
        self.assertIn("RuntimeError", self.pm.log())
        # the traceback is in the pool's log, on lines naming the pool and the worker
        line = [l for l in self.pm.log().splitlines() if "/crash was requested" in l][0]
        self.assertRegex(line, r"^\[[^]]+\] ERROR: \[pool hello\] pid \d+: ")
        # and the pool keeps serving
        for _ in range(6):
            self.assertEqual(get(self.port, "/after").status, 200)

    def test_forty_concurrent_requests_all_answered(self):
        res = concurrent(lambda i: get(self.port, "/c?i=%d" % i), [(i,) for i in range(40)],
                         threads=10)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        self.assertEqual(sorted(r.json()["QUERY_STRING"] for r in res),
                         sorted("i=%d" % i for i in range(40)))
        pids = {r.json()["pid"] for r in res}
        self.assertLessEqual(len(pids), 2, "more workers answered than max_children")

    def test_both_workers_serve(self):
        # slow requests force both workers to be used at once
        res = concurrent(lambda: get(self.port, "/slow?s=0.5"), [()] * 4, threads=4)
        self.assertTrue(all(not isinstance(r, Exception) and r.status == 200 for r in res), res)
        self.assertEqual(len({r.json()["pid"] for r in res}), 2)


if __name__ == "__main__":
    harness.main()
