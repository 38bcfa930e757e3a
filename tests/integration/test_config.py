"""`fcgi-pm -t -c FILE` and start-up with a bad configuration: exit 78
(EX_CONFIG) with a message naming the file, the line and the option.  The
same for users and paths this system does not have (conf_check_system), and
a reload to such a configuration keeps the running one."""
import os
import re
import signal

import harness
from harness import FcgiPm, hello_pool, fcgi_pm_check, EX_CONFIG


class ConfigCheck(harness.TestCase):

    def pm(self, pools=None, **kw):
        return FcgiPm(self.tmp, pools or [hello_pool()], **kw)

    def write_site(self, pm, name, text):
        path = os.path.join(pm.sites_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertBad(self, pm, *needles):
        rc, out = fcgi_pm_check(pm.conf)
        self.assertEqual(rc, EX_CONFIG, "fcgi-pm -t exited %d, output:\n%s" % (rc, out))
        for n in needles:
            if isinstance(n, re.Pattern):
                self.assertRegex(out, n)
            else:
                self.assertIn(n, out)
        return out

    def test_good_config_passes(self):
        pm = self.pm()
        rc, out = fcgi_pm_check(pm.conf)
        self.assertEqual(rc, 0, out)

    def test_check_creates_no_socket_and_no_pid_file(self):
        pm = self.pm()
        rc, out = fcgi_pm_check(pm.conf)
        self.assertEqual(rc, 0, out)
        self.assertFalse(os.path.exists(pm.socket("hello")))
        self.assertFalse(os.path.exists(pm.pid_file))

    def test_unknown_option_names_file_line_and_option(self):
        pm = self.pm()
        # comment lines above the error: the line must be the editor's line
        path = self.write_site(pm, "bad.conf",
                               "# a site file\n"
                               "# with comments\n"
                               "pool bad {\n"
                               '  listen = "%s/bad.sock"\n'
                               "  bogus_option = 1\n"
                               "}\n" % self.tmp)
        self.assertBad(pm, "%s:5" % path, "bogus_option")

    def test_bad_value_names_the_option(self):
        pm = self.pm([hello_pool(pm=harness.Raw("turbo"))])
        path = os.path.join(pm.sites_dir, "hello.conf")
        self.assertBad(pm, path + ":", "pm")

    def test_negative_max_children_is_rejected(self):
        pm = self.pm([hello_pool(max_children=-3)])
        self.assertBad(pm, os.path.join(pm.sites_dir, "hello.conf") + ":", "max_children")

    def test_missing_main_file(self):
        missing = os.path.join(self.tmp, "nope.conf")
        rc, out = fcgi_pm_check(missing)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn(missing, out)

    def test_missing_include_dir(self):
        gone = os.path.join(self.tmp, "no-such-dir")
        pm = self.pm(main_options={"include_dir": gone})
        self.assertBad(pm, gone)

    def test_duplicate_pool_name(self):
        pm = FcgiPm(self.tmp, [hello_pool("twin")],
                    site_files={"a.conf": [hello_pool("twin", listen=self.tmp + "/a.sock")],
                                "b.conf": [hello_pool("twin", listen=self.tmp + "/b.sock")]})
        self.assertBad(pm, "twin")

    def test_two_pools_on_one_socket(self):
        sock = os.path.join(self.tmp, "shared.sock")
        pm = self.pm([hello_pool("one", listen=sock), hello_pool("two", listen=sock)])
        self.assertBad(pm, sock)

    def test_start_with_bad_config_exits_78(self):
        pm = self.pm([hello_pool(pm=harness.Raw("turbo"))])
        proc = harness.Proc([harness.FCGI_PM, "-F", "-c", pm.conf], pm.log_path, "fcgi-pm")
        rc = proc.wait(20)
        proc.stop()
        self.assertEqual(rc, EX_CONFIG, harness.tail(pm.log_path))
        self.assertFalse(os.path.exists(pm.socket("hello")))

    # ------------------------------------------ what the system must have

    @staticmethod
    def line_of(path, prefix):
        """The 1-based line of PATH that starts with PREFIX."""
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if line.startswith(prefix):
                    return n
        raise AssertionError("no %r in %s" % (prefix, path))

    def start_refused(self, pm):
        proc = harness.Proc([harness.FCGI_PM, "-F", "-c", pm.conf], pm.log_path, "fcgi-pm")
        rc = proc.wait(20)
        proc.stop()
        self.assertEqual(rc, EX_CONFIG, harness.tail(pm.log_path))
        self.assertFalse(os.path.exists(pm.socket("hello")))
        return pm.log()

    def test_start_with_missing_chdir_or_user_exits_78_at_its_line(self):
        pm = self.pm([hello_pool(chdir=os.path.join(self.tmp, "nope"),
                                 user="no-such-user-fcgipm")])
        site = os.path.join(pm.sites_dir, "hello.conf")
        self.assertBad(pm, "%s:%d: option 'chdir'" % (site, self.line_of(site, "  chdir =")),
                       "%s:%d: option 'user'" % (site, self.line_of(site, "  user =")))
        log = self.start_refused(pm)
        self.assertIn("%s:%d: option 'chdir': '%s/nope' does not exist"
                      % (site, self.line_of(site, "  chdir ="), self.tmp), log)
        self.assertIn("%s:%d: option 'user': no such user" % (site, self.line_of(site, "  user =")),
                      log)

    def test_start_with_missing_worker_binary_exits_78_at_its_line(self):
        pm = self.pm(main_options={"worker_binary": os.path.join(self.tmp, "nope")})
        line = self.line_of(pm.conf, "worker_binary =")
        self.assertBad(pm, "%s:%d: option 'worker_binary'" % (pm.conf, line))
        self.assertIn("%s:%d: option 'worker_binary'" % (pm.conf, line), self.start_refused(pm))

    def test_reload_with_missing_virtualenv_keeps_the_running_configuration(self):
        pm = self.pm().start()
        workers = pm.wait_workers("hello")
        site = os.path.join(pm.sites_dir, "hello.conf")
        with open(site) as f:
            text = f.read()
        with open(site, "w") as f:
            f.write(text.replace("  module =", '  virtualenv = "%s/nope"\n  module =' % self.tmp))
        line = self.line_of(site, "  virtualenv =")
        pm.signal(signal.SIGHUP)
        pm.wait_log(r"reload refused: %s:%d: option 'virtualenv'" % (re.escape(site), line))
        pm.wait_log(r"the running configuration is kept")
        self.assertEqual(pm.worker_pids("hello"), workers)
        self.assertTrue(harness.is_listening(pm.address("hello")))


if __name__ == "__main__":
    harness.main()
