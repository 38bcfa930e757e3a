"""The two example Django sites (examples/sites/blog and catalog), each its
own pool and settings module, behind one nginx that includes
etc/nginx/django-site.conf once per site."""
import os
import re
import http.cookies

import harness
from harness import get, post_form, concurrent, django_pool

SITES = os.path.join(harness.EXAMPLES, "sites")


class TwoDjangoSites(harness.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tmpdir("django")
        cls.pm = harness.FcgiPm(cls.tmp, [django_pool("blog", max_children=2),
                                          django_pool("catalog", max_children=2)]).start()
        cls.ng = harness.Nginx(cls.tmp)
        cls.blog = cls.ng.add_site(cls.pm.socket("blog"),
                                   static_dir=os.path.join(SITES, "blog", "blog", "static"))
        cls.catalog = cls.ng.add_site(cls.pm.socket("catalog"),
                                      static_dir=os.path.join(SITES, "catalog", "catalog", "static"))
        cls.ng.start()
        harness.wait_http(cls.blog.port, "/whoami/")
        harness.wait_http(cls.catalog.port, "/whoami/")

    @classmethod
    def tearDownClass(cls):
        harness.cleanup_all()

    def setUp(self):
        pass

    def test_blog_page(self):
        r = get(self.blog.port, "/")
        self.assertEqual(r.status, 200, r)
        self.assertIn("text/html", r.headers["content-type"])
        self.assertIn("<h1>Latest posts</h1>", r.text)
        self.assertIn('href="/post/why-main-interpreter/"', r.text)
        self.assertIn('href="/static/blog/style.css"', r.text)
        self.assertEqual(r.headers.get("x-frame-options"), "DENY")

    def test_blog_post_and_django_404(self):
        r = get(self.blog.port, "/post/hello-fcgi-pm/")
        self.assertEqual(r.status, 200)
        self.assertIn("<h1>Hello, fcgi-pm</h1>", r.text)
        self.assertEqual(get(self.blog.port, "/post/nope/").status, 404)

    def test_common_middleware_redirects_to_slash(self):
        r = get(self.blog.port, "/whoami")
        self.assertEqual(r.status, 301)
        self.assertTrue(r.headers["location"].endswith("/whoami/"), r.headers)

    def test_lxml_page(self):
        r = get(self.catalog.port, "/")
        self.assertEqual(r.status, 200, r)
        self.assertIn("5 products, 4 in stock", r.text)
        self.assertIn('<tr id="kettle">', r.text)
        self.assertIn("sold out", r.text)
        self.assertRegex(r.text, r"rendered with lxml \d+\.\d+")
        r = get(self.catalog.port, "/?max_price=10")
        self.assertIn("3 products, 2 in stock", r.text)
        self.assertNotIn('<tr id="kettle">', r.text)

    def test_lxml_xml_document(self):
        r = get(self.catalog.port, "/products.xml")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/xml")
        self.assertIn(b'<catalog site="catalog">', r.body)

    def test_lxml_under_concurrency(self):
        res = concurrent(lambda: get(self.catalog.port, "/", timeout=30), [()] * 40, threads=8)
        bad = [r for r in res if isinstance(r, Exception) or r.status != 200
               or "5 products" not in r.text]
        self.assertEqual(bad, [])

    def test_post_form_with_csrf(self):
        r = get(self.blog.port, "/comment/")
        self.assertEqual(r.status, 200)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
        cookie = http.cookies.SimpleCookie(r.headers["set-cookie"])["csrftoken"].value
        r = post_form(self.blog.port, "/comment/",
                      {"csrfmiddlewaretoken": token, "name": "Zoë",
                       "text": "lxml works <b>here</b> & there"},
                      headers={"Cookie": "csrftoken=" + cookie})
        self.assertEqual(r.status, 200, r)
        self.assertIn("<h1>Thanks, Zoë!</h1>", r.text)
        self.assertIn("lxml works &lt;b&gt;here&lt;/b&gt; &amp; there", r.text)

    def test_post_without_csrf_token_is_refused(self):
        r = post_form(self.blog.port, "/comment/", {"name": "x", "text": "y"})
        self.assertEqual(r.status, 403)

    def test_invalid_form_is_400(self):
        r = get(self.blog.port, "/comment/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
        cookie = http.cookies.SimpleCookie(r.headers["set-cookie"])["csrftoken"].value
        r = post_form(self.blog.port, "/comment/", {"csrfmiddlewaretoken": token, "name": ""},
                      headers={"Cookie": "csrftoken=" + cookie})
        self.assertEqual(r.status, 400)
        self.assertIn("This field is required.", r.text)

    def test_static_files_come_from_nginx(self):
        r = get(self.blog.port, "/static/blog/style.css")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/css")
        self.assertIn(b"blog example site", r.body)
        r = get(self.catalog.port, "/static/catalog/style.css")
        self.assertIn(b"catalog example site", r.body)
        # nginx answered: the pools' logs never saw /static/
        self.assertNotIn("/static/", self.pm.log())

    def test_script_name_and_urls_for_a_site_at_root(self):
        info = get(self.blog.port, "/whoami/?x=1").json()
        self.assertEqual(info["script_name"], "")
        self.assertEqual(info["path_info"], "/whoami/")
        # HTTP_HOST is $host in newer Debian fastcgi_params, the client's Host before
        self.assertRegex(info["absolute_uri"], r"^http://127\.0\.0\.1(:\d+)?/whoami/\?x=1$")

    def test_no_cross_talk_between_sites(self):
        calls = [(self.blog.port, "blog"), (self.catalog.port, "catalog")] * 30

        def who(port, site):
            return site, get(port, "/whoami/").json()
        res = concurrent(who, calls, threads=10)
        errors = [r for r in res if isinstance(r, Exception)]
        self.assertEqual(errors, [])
        pids = {"blog": set(), "catalog": set()}
        for site, info in res:
            self.assertEqual(info["site"], site)
            self.assertEqual(info["settings_module"], site + ".settings")
            self.assertEqual(info["environ_settings"], site + ".settings")
            self.assertEqual(info["root_urlconf"], site + ".urls")
            pids[site].add(info["pid"])
        self.assertFalse(pids["blog"] & pids["catalog"], "a process served both sites")
        # each site's URLs exist only in its own pool
        self.assertEqual(get(self.blog.port, "/products.xml").status, 404)
        self.assertEqual(get(self.catalog.port, "/comment/").status, 404)


if __name__ == "__main__":
    harness.main()
