"""A Flask app (python3-flask, tests/apps/flask_app) served by fcgi-pm
behind nginx with etc/nginx/django-site.conf: routes, a form POST, JSON,
error handlers, streaming, url_for under the site's mount point."""
import json
import os

import harness
from harness import get, post, post_form, concurrent, Pool

APP = os.path.join(harness.APPS, "flask_app")


class FlaskBehindNginx(harness.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tmpdir("flask")
        cls.pm = harness.FcgiPm(cls.tmp, [Pool("flask", "flaskapp:app", python_path=[APP],
                                               max_children=1, threads=4)]).start()
        cls.ng = harness.Nginx(cls.tmp)
        cls.port = cls.ng.add_site(cls.pm.socket("flask")).port
        cls.ng.start()
        harness.wait_http(cls.port, "/")

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()

    def setUp(self):
        pass

    def test_index(self):
        r = get(self.port, "/")
        self.assertEqual((r.status, r.text), (200, "flask says hello"))
        self.assertTrue(r.headers["content-type"].startswith("text/html"))

    def test_route_with_converters_and_url_for(self):
        r = get(self.port, "/user/zo%C3%AB/21")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"name": "zo\u00eb", "n": 21, "double": 42,
                                    "script_root": "", "path": "/user/zo\u00eb/21",
                                    "url": "/user/zo%C3%AB/21"})
        self.assertEqual(get(self.port, "/user/x/notanint").status, 404)

    def test_form_post(self):
        r = get(self.port, "/form")
        self.assertIn('<form method="post">', r.text)
        r = post(self.port, "/form", b"title=Caf%C3%A9+%26+co&tags=a&tags=b",
                 content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"title": "Caf\u00e9 & co", "tags": ["a", "b"], "files": []})

    def test_multipart_upload(self):
        boundary = "xYzZY"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nup\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (boundary, boundary)).encode()
        body += os.urandom(200000) + ("\r\n--%s--\r\n" % boundary).encode()
        r = post(self.port, "/form", body, content_type="multipart/form-data; boundary=" + boundary)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"title": "up", "tags": [], "files": ["doc"]})

    def test_json_in_and_out(self):
        r = post(self.port, "/api/sum", json.dumps({"numbers": [1, 2, 3.5]}).encode(),
                 content_type="application/json")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"sum": 6.5, "count": 3})
        r = post(self.port, "/api/sum", b'{"numbers": "no"}', content_type="application/json")
        self.assertEqual(r.status, 400, r)

    def test_error_handlers(self):
        r = get(self.port, "/teapot")
        self.assertEqual((r.status, r.json()), (418, {"error": "teapot", "detail": "short and stout"}))
        r = get(self.port, "/no/such/page")
        self.assertEqual((r.status, r.json()), (404, {"error": "not found", "path": "/no/such/page"}))

    def test_unhandled_exception_is_flask_500_and_logged(self):
        mark = len(self.pm.log())
        r = get(self.port, "/crash")
        self.assertEqual(r.status, 500, r)
        self.assertIn(b"Internal Server Error", r.body)
        # Flask logs it through the logging module to stderr: the pool log
        self.pm.wait_log(r"RuntimeError: flask crash marker")
        self.assertIn("Exception on /crash [GET]", self.pm.log()[mark:])
        self.assertEqual(get(self.port, "/").status, 200)

    def test_streaming_response(self):
        r = get(self.port, "/stream?n=50&tag=s1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.text, "".join("line %d of s1\n" % i for i in range(50)))

    def test_redirect(self):
        r = get(self.port, "/go")
        self.assertEqual(r.status, 302)
        self.assertTrue(r.headers["location"].endswith("/user/redirected/7"), r.headers)

    def test_head(self):
        r = harness.http("HEAD", self.port, "/")
        self.assertEqual((r.status, r.body, r.headers["content-length"]), (200, b"", "16"))

    def test_concurrent_requests_in_the_main_interpreter(self):
        res = concurrent(lambda i: get(self.port, "/user/u%d/%d" % (i, i)), [(i,) for i in range(60)],
                         threads=12)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(bad, [])
        self.assertEqual([r.json()["double"] for r in res], [2 * i for i in range(60)])
        infos = concurrent(lambda: get(self.port, "/interp").json(), [()] * 20, threads=8)
        self.assertEqual({i["interp"] for i in infos}, {0})


if __name__ == "__main__":
    harness.main()
