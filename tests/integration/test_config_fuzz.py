"""test_config_fuzz - every directive of fcgi-pm/conf.c's option tables
(read from the source, so a new directive is covered the day it is added)
with wrong types, negative and huge numbers, bad units and bad strings:
`fcgi-pm -t` must exit 78 (EX_CONFIG) with "FILE:LINE:" of the bad line
and the option's name, and never crash.  Then missing files, users,
groups, directories and programs (conf_check_system).

One TAP line per directive; its cases are listed when one fails.
"""
import os
import re
import subprocess

import harness
from harness import EX_CONFIG

CONF_C = os.path.join(harness.SRC, "fcgi-pm", "conf.c")

# bad values per value parser (written unquoted unless quoted here)
BAD = {
    "parse_int": ["abc", "-5", "99999999999999999999999", "12abc", "1.5", '""'],
    "parse_duration": ["abc", "-1s", "5parsecs", "99999999999999999999s", "1.5s", "-0"],
    "parse_size": ["abc", "-1", "5Q", "99999999999999999999999T", "1.5M", "12MBB"],
    "parse_mode": ["999", "abc", "-1", "07777777", "0x1ff", "8"],
    "parse_pm": ["turbo", "1", '"Static "'],
    "parse_bool": ["maybe", "2", '"yes please"'],
}
# every single-value option: a list where one value belongs; and what each
# validator refuses
STR_BAD = ['{"a", "b"}']
VALIDATOR_BAD = {
    "validate_nonempty": ['""'],
    "validate_abspath": ['""', '"relative/path"'],
    "validate_log_level": ['"loud"', '""'],
    "validate_listen": ['""', '"nonsense:99999"', '"127.0.0.1:0"', '"[::1"', '"host:port"'],
    "validate_module": ['""', '"not a module"', '"a:"', '":b"', '"a..b:c"'],
    "validate_env": ['{"NOEQUALS"}', '{"1BAD=x"}', '{"A=1", "A=2"}', '{"=x"}'],
    "validate_client": ['{"not-an-ip"}', '{"127.0.0.1/8"}', '{""}'],
    "validate_include_dir": ['""', '"/nonexistent/sites.d"'],
}
# list options: a scalar list element of the wrong kind is still a string,
# so only their validators are fuzzed (above)


def option_tables():
    """{'pool': [(name, kind, parser)], 'main': [...]}, and {path: validator}."""
    src = open(CONF_C).read()
    tables = {}
    for table, key in (("pool_opts", "pool"), ("main_opts", "main")):
        m = re.search(r"static cfg_opt_t %s\[\] = \{(.*?)\n\};" % table, src, re.S)
        rows = []
        for kind, name, rest in re.findall(r'CFG_(\w+)\("(\w+)",(.*?)\),?[ \t]*(?:/\*.*?\*/)?\n', m.group(1)):
            parser = re.search(r"(parse_\w+)\s*$", rest.strip())
            rows.append((name, kind, parser.group(1) if parser else None))
        tables[key] = rows
    validators = dict((p, v) for p, v in re.findall(r'\{ "([\w|]+)",\s*(validate_\w+) \}', src))
    return tables, validators


TABLES, VALIDATORS = option_tables()


def cases_for(where, name, kind, parser):
    out = list(BAD.get(parser, []))
    if not kind.endswith("LIST"):
        out += STR_BAD
    v = VALIDATORS.get(("pool|" if where == "pool" else "") + name)
    out += VALIDATOR_BAD.get(v, [])
    return out


class ConfigFuzz(harness.TestCase):
    """Generated below: one test per directive."""

    def check(self, where, name, value):
        """Write a config with NAME = VALUE on a known line; return a
        problem description, or None if fcgi-pm -t refused it properly."""
        pool_lines = ['  listen = "%s/p.sock"' % self.tmp, '  module = "hello:application"',
                      "  max_children = 2", "  allow_root = true"]
        main_lines = ["# fuzzed by test_config_fuzz.py", "log_level = notice"]
        # a directive may not be set twice: drop a default line of the same name
        pool_lines = [l for l in pool_lines if not l.strip().startswith(name + " ")]
        main_lines = [l for l in main_lines if not l.strip().startswith(name + " ")]
        if where == "pool":
            lines = main_lines + ["pool p {"] + pool_lines + ["  %s = %s" % (name, value), "}"]
            bad_line = len(lines) - 1
        else:
            lines = main_lines + ["%s = %s" % (name, value), "pool p {"] + pool_lines + ["}"]
            bad_line = len(main_lines) + 1
        conf = os.path.join(self.tmp, "fuzz.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            rc, out = harness.fcgi_pm_check(conf, timeout=20)
        except subprocess.TimeoutExpired:
            return "%s = %s: fcgi-pm -t hung" % (name, value)
        if rc < 0 or rc > 128:
            return "%s = %s: fcgi-pm -t crashed (status %d): %s" % (name, value, rc, out[-500:])
        if rc != EX_CONFIG:
            return "%s = %s: exit %d, not 78: %s" % (name, value, rc, out.strip()[-300:])
        where_ = "%s:%d:" % (conf, bad_line)
        if where_ not in out:
            return "%s = %s: no %s in: %s" % (name, value, where_, out.strip()[-300:])
        # a list where one value belongs included: conf.c names the option
        # libconfuse's "unexpected token '{'" was about
        if "'%s'" % name not in out and " %s " % name not in out:
            return "%s = %s: the option is not named in: %s" % (name, value, out.strip()[-300:])
        return None

    def test_option_tables_were_read(self):
        # the generated tests cover what the regexes found in conf.c
        self.assertGreaterEqual(len(TABLES["pool"]), 35, TABLES["pool"])
        self.assertGreaterEqual(len(TABLES["main"]), 12, TABLES["main"])
        self.assertGreaterEqual(len(VALIDATORS), 15, VALIDATORS)

    # ------------------------------------------------------- missing things

    def write(self, text):
        conf = os.path.join(self.tmp, "m.conf")
        with open(conf, "w") as f:
            f.write(text)
        return conf

    def pool_text(self, extra, main=""):
        return ("# missing things\n%s\npool p {\n  listen = \"%s/p.sock\"\n"
                "  module = \"hello:application\"\n  max_children = 1\n%s\n}\n"
                % (main, self.tmp, extra))

    def assertRefused(self, conf, line, option):
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn("%s:%d:" % (conf, line), out)
        self.assertIn(option, out)

    def test_missing_main_file_and_site_dir(self):
        rc, out = harness.fcgi_pm_check(os.path.join(self.tmp, "none.conf"))
        self.assertEqual(rc, EX_CONFIG, out)
        conf = self.write(self.pool_text("", 'include_dir = "%s/nonexistent"' % self.tmp))
        self.assertRefused(conf, 2, "include_dir")

    def test_unreadable_and_binary_files(self):
        conf = self.write("pool p {\0}\n")
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, EX_CONFIG, out)
        self.assertIn("NUL", out)
        rc, out = harness.fcgi_pm_check(self.tmp)     # a directory
        self.assertEqual(rc, EX_CONFIG, out)
        with open(os.path.join(self.tmp, "big.conf"), "wb") as f:
            f.write(b"# x\n" * (5 << 20))
        rc, out = harness.fcgi_pm_check(os.path.join(self.tmp, "big.conf"))
        self.assertIn(rc, (0, EX_CONFIG), out)

    # What the files name on this system: conf_check_system(), run by -t,
    # the start and a reload after the parse.  php-fpm's -t refuses each.
    def test_missing_user_and_group_are_refused_by_check(self):
        conf = self.write(self.pool_text('  user = "no-such-user-fcgipm"'))
        self.assertRefused(conf, 7, "option 'user': no such user 'no-such-user-fcgipm'")
        conf = self.write(self.pool_text('  allow_root = true\n  group = "no-such-group-fcgipm"'))
        self.assertRefused(conf, 8, "option 'group': no such group 'no-such-group-fcgipm'")

    def test_numeric_ids_follow_pool_c(self):
        # a uid without a passwd entry is taken with a group (as php-fpm and
        # pool.c do), refused alone: its group would come from the entry
        conf = self.write(self.pool_text('  user = "4242"\n  group = "4243"'))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, 0, out)
        conf = self.write(self.pool_text('  user = "4242"'))
        self.assertRefused(conf, 7, "option 'user': uid 4242 has no passwd entry, "
                           "so set group as well")
        conf = self.write(self.pool_text('  user = "0"\n  group = "0"\n  allow_root = true'))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, 0, out)

    def test_socket_owners_must_resolve(self):
        conf = self.write(self.pool_text('  allow_root = true\n  listen_owner = "no-such-user-fcgipm"'))
        self.assertRefused(conf, 8, "option 'listen_owner': no such user")
        conf = self.write(self.pool_text('  allow_root = true\n  listen_group = "no-such-group-fcgipm"'))
        self.assertRefused(conf, 8, "option 'listen_group': no such group")
        conf = self.write(self.pool_text("  allow_root = true",
                                         'status_socket = "%s/st.sock"\n'
                                         'status_owner = "no-such-user-fcgipm"' % self.tmp))
        self.assertRefused(conf, 3, "option 'status_owner': no such user")
        conf = self.write(self.pool_text("  allow_root = true",
                                         'status_group = "no-such-group-fcgipm"'))
        self.assertRefused(conf, 2, "option 'status_group': no such group")
        conf = self.write(self.pool_text("  allow_root = true",
                                         'status_allow_users = {"root", "no-such-user-fcgipm"}'))
        self.assertRefused(conf, 2, "option 'status_allow_users': no such user")

    def test_missing_worker_binary_is_refused_by_check(self):
        conf = self.write(self.pool_text("  allow_root = true",
                                         'worker_binary = "%s/no-such-worker"' % self.tmp))
        self.assertRefused(conf, 2, "option 'worker_binary': '%s/no-such-worker' does not exist"
                           % self.tmp)
        plain = os.path.join(self.tmp, "not-executable")
        open(plain, "w").close()
        os.chmod(plain, 0o644)
        conf = self.write(self.pool_text("  allow_root = true", 'worker_binary = "%s"' % plain))
        # access(X_OK) wants an x bit even for root
        self.assertRefused(conf, 2, "is not executable")
        conf = self.write(self.pool_text("  allow_root = true", 'worker_binary = "%s"' % self.tmp))
        self.assertRefused(conf, 2, "is not a file")

    def test_missing_chdir_and_virtualenv_are_refused_by_check(self):
        conf = self.write(self.pool_text('  allow_root = true\n  chdir = "%s/nope"' % self.tmp))
        self.assertRefused(conf, 8, "option 'chdir': '%s/nope' does not exist" % self.tmp)
        conf = self.write(self.pool_text('  allow_root = true\n  chdir = "%s"' % conf))
        self.assertRefused(conf, 8, "is not a directory")
        conf = self.write(self.pool_text('  allow_root = true\n  virtualenv = "%s/nope"'
                                         % self.tmp))
        self.assertRefused(conf, 8, "virtualenv")

    def test_virtualenv_needs_pyvenv_cfg_and_bin(self):
        venv = os.path.join(self.tmp, "venv")
        os.makedirs(venv)
        conf = self.write(self.pool_text('  allow_root = true\n  virtualenv = "%s"' % venv))
        self.assertRefused(conf, 8, "option 'virtualenv': '%s' is not a virtualenv: "
                           "no pyvenv.cfg" % venv)
        open(os.path.join(venv, "pyvenv.cfg"), "w").close()
        self.assertRefused(conf, 8, "has no bin/ directory")
        os.makedirs(os.path.join(venv, "bin"))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, 0, out)

    def test_slowlog_directory_must_exist(self):
        conf = self.write(self.pool_text('  allow_root = true\n  request_slowlog_timeout = 1s\n'
                                         '  slowlog = "%s/nope/$pool.slow.log"' % self.tmp))
        self.assertRefused(conf, 9, "option 'slowlog': directory '%s/nope' of '%s/nope/p.slow.log' "
                           "does not exist" % (self.tmp, self.tmp))
        conf = self.write(self.pool_text('  allow_root = true\n  request_slowlog_timeout = 1s\n'
                                         '  slowlog = "%s/$pool.slow.log"' % self.tmp))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, 0, out)

    def test_missing_python_path_entry_only_warns(self):
        # Python skips a sys.path entry that does not exist: not fatal here either
        conf = self.write(self.pool_text('  allow_root = true\n  python_path = {"%s", "%s/nope"}'
                                         % (self.tmp, self.tmp)))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("%s:8: option 'python_path': warning: '%s/nope'" % (conf, self.tmp), out)

    def test_every_problem_is_reported_at_once(self):
        conf = self.write(self.pool_text('  user = "no-such-user-fcgipm"\n'
                                         '  chdir = "%s/nope"' % self.tmp,
                                         'worker_binary = "%s/nope"' % self.tmp))
        rc, out = harness.fcgi_pm_check(conf)
        self.assertEqual(rc, EX_CONFIG, out)
        for line, opt in ((2, "worker_binary"), (7, "user"), (8, "chdir")):
            self.assertIn("%s:%d: option '%s'" % (conf, line, opt), out)


def _make_test(where, name, kind, parser):
    def test(self):
        values = cases_for(where, name, kind, parser)
        if not values:
            self.skipTest("no bad value known for a %s option" % kind)
        problems = [p for p in (self.check(where, name, v) for v in values) if p]
        self.assertEqual(problems, [], "\n".join(problems))
    test.__doc__ = "%s %s (%s, %s)" % (where, name, kind, parser)
    return test


for _where, _rows in TABLES.items():
    for _name, _kind, _parser in _rows:
        if _kind == "SEC":
            continue
        setattr(ConfigFuzz, "test_%s_%s" % (_where, _name), _make_test(_where, _name, _kind, _parser))


if __name__ == "__main__":
    harness.main()
