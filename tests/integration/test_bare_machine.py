"""A Debian 12 machine that never ran ./test.sh builds and starts patchbay with ./run.sh.

./run.sh installs only the run packages (PB_PACKAGES_RUN in scripts/lib.sh) and their
dependencies, then configures and builds as pb_build does. The test suite's own packages (cmocka
above all) are not there, and the build must not need them. This test makes that machine's
pkg-config: a folder holding just the .pc files of the run packages and of the packages they
depend on (what apt-get installs with them), as PKG_CONFIG_LIBDIR, so nothing else is visible.
It then configures and builds exactly as run.sh does (pb_build, from scripts/lib.sh) into a
fresh directory (patchbay, its supervisor and the static patchbay-enter), and starts the result as
`./run.sh` would (`patchbay run`, no credentials): it listens, says on its page and in its log what
is missing, asks for the set-up code before it registers anything, and stops cleanly.

It builds the product once more (about 30 s here), so it runs in the plain pass only: under the
sanitizers it would build the same unsanitized binary again.
"""

import http.client
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

LIB_SH = os.path.join(harness.SOURCE_DIR, "scripts", "lib.sh")


def run_packages():
    out = subprocess.run(["bash", "-c", 'source "$1"; echo $PB_PACKAGES_RUN', "lib", LIB_SH], check=True,
                         capture_output=True, text=True).stdout.split()
    return out


def installed_packages():
    """{name: its Depends and Pre-Depends} of every installed package, in one dpkg-query."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        name, status, deps = (line.split("\t") + ["", ""])[:3]
        if "install ok installed" in status:
            table[name] = deps
    return table


def closure(packages, table):
    """The packages and, recursively, what they depend on (the first installed alternative): what
    apt-get installs with them."""
    seen, todo = set(), [p for p in packages if p in table]
    while todo and len(seen) < 5000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alternatives in table[p].split(","):
            for name in alternatives.split("|"):
                name = name.strip().split(" ")[0].split(":")[0]
                if name in table:
                    todo.append(name)
                    break
    return seen


def pc_files(packages):
    listing = subprocess.run(["dpkg", "-L"] + sorted(packages), capture_output=True, text=True).stdout
    return sorted({f for f in listing.split("\n") if f.endswith(".pc") and "/pkgconfig/" in f and os.path.exists(f)})


class BareMachine(harness.TestCase):
    def test_run_sh_builds_and_starts_without_the_test_packages(self):
        if harness.SANITIZED:
            raise unittest.SkipTest("SKIPPED: the plain pass checks this build; it is not sanitized either way")
        for tool in ("dpkg-query", "cmake", "pkg-config"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("SKIPPED: %s is missing, so this is not the Debian machine run.sh is for"
                                        % tool)
        packages = run_packages()
        self.assertIn("libh2o-evloop-dev", packages)
        self.assertNotIn("libcmocka-dev", packages)  # else the test proves nothing
        pcdir = os.path.join(self.workdir, "pkgconfig")
        os.makedirs(pcdir)
        for f in pc_files(closure(packages, installed_packages())):
            dst = os.path.join(pcdir, os.path.basename(f))
            if not os.path.exists(dst):
                os.symlink(f, dst)
        names = sorted(n[:-3] for n in os.listdir(pcdir))
        for needed in ("libh2o-evloop", "libcurl", "openssl", "jansson", "libgit2", "hiredis", "yaml-0.1"):
            self.assertIn(needed, names)
        self.assertNotIn("cmocka", names)

        # configure and build exactly as run.sh: pb_build from scripts/lib.sh, its defaults
        build = os.path.join(self.workdir, "build")
        env = dict(os.environ, PKG_CONFIG_LIBDIR=pcdir, PKG_CONFIG_PATH="", PKG_CONFIG_SYSTEM_INCLUDE_PATH="")
        env.pop("PB_BUILD_TYPE", None)
        r = subprocess.run(["bash", "-c", 'source "$1" && pb_build "$2"', "lib", LIB_SH, build], env=env,
                           capture_output=True, text=True, timeout=540)
        self.assertEqual(r.returncode, 0, "the build failed without the test packages:\n" + (r.stdout + r.stderr)[-4000:])
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        self.assertIn("PATCHBAY_TESTS:STRING=AUTO", cache)
        self.assertRegex(cache, r"PATCHBAY_CMOCKA_PROBE_FOUND:INTERNAL=(0|)\n")
        self.assertFalse(os.path.exists(os.path.join(build, "tests")), "tests were configured without cmocka")
        binary = os.path.join(build, "patchbay")
        self.assertTrue(os.access(binary, os.X_OK))
        self.assertTrue(os.access(os.path.join(build, "patchbay-supervisor"), os.X_OK))
        # the sandbox's first program, linked statically: libc.a comes with the run packages too
        self.assertTrue(os.access(os.path.join(build, "patchbay-enter"), os.X_OK))

        # and it starts as ./run.sh starts it: `patchbay run`, nothing configured yet
        pb = harness.Patchbay(self.workdir, command="run", secret=None)
        pb.env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        self._procs.append(pb)
        saved = harness.BIN
        harness.BIN = binary
        try:
            pb.start()
        finally:
            harness.BIN = saved
        c = http.client.HTTPConnection("127.0.0.1", pb.port, timeout=10 * harness.SLOW)
        c.request("GET", "/")
        resp = c.getresponse()
        page = resp.read().decode()
        c.close()
        self.assertEqual(resp.status, 200)
        self.assertIn("Not connected to GitHub yet", page)
        for setting in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"):
            self.assertIn(setting, page)
        self.assertEqual(page.count("<li>"), 3)  # the checklist: a line per missing setting
        self.assertIn('action="/setup/code"', page)  # registering it here starts with the set-up code
        # the same list in the log, a line each, after the line with the address and the code
        self.assertEqual(len(pb.find_logs("missing: ")), 3)
        self.assertEqual(len(pb.find_logs("enter the set-up code")), 1)
        self.assertEqual(pb.stop(), 0)


if __name__ == "__main__":
    harness.main()
