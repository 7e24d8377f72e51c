"""docker/ checked with what runs here (no Docker engine on this machine):

- every package the Dockerfile installs exists in Debian 12's archive;
- the runtime stage installs a package for every shared library the built
  binary needs directly (readelf NEEDED -> dpkg -S), so the image starts;
- the build stage's commands, run on the host from a clean build dir, build
  the binary with the build stage's package list;
- the image runs as a non-root user, with health checks wired to /healthz and
  /readyz and Redis persisting to a volume in compose.yml.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

DOCKER = os.path.join(harness.SOURCE_DIR, "docker")


def dockerfile_stages():
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    stages, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            current = {"from": line, "run": [], "user": None, "lines": []}
            stages.append(current)
        elif current is not None and line and not line.startswith("#"):
            current["lines"].append(line)
            if line.startswith("RUN "):
                current["run"].append(line[4:])
            if line.startswith("USER "):
                current["user"] = line[5:].strip()
    return stages


def apt_packages(stage):
    pkgs = []
    for cmd in stage["run"]:
        m = re.search(r"apt-get install (.*?)(&&|$)", cmd)
        if m:
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


@unittest.skipIf(harness.SANITIZED, "SKIPPED under the sanitizers: checks files and a release build, not behaviour")
class DockerFiles(unittest.TestCase):
    def test_packages_exist_in_debian(self):
        for stage in dockerfile_stages():
            self.assertIn("debian:12", stage["from"])
            for pkg in apt_packages(stage):
                r = subprocess.run(["apt-cache", "show", pkg], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, "%s is not a Debian 12 package" % pkg)

    def test_runtime_stage_covers_the_binary(self):
        runtime = set(apt_packages(dockerfile_stages()[-1]))
        needed = subprocess.run(["readelf", "-d", harness.BIN], capture_output=True, text=True).stdout
        libs = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", needed)
        self.assertTrue(libs)
        ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", harness.BIN], capture_output=True,
                                                                   text=True).stdout, re.M))
        for lib in libs:
            path = os.path.realpath(ldd[lib])
            owner = ""
            # merged /usr: dpkg may know the file under /lib rather than /usr/lib
            for candidate in (path, re.sub(r"^/usr", "", path), ldd[lib]):
                owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True).stdout.split(":")[0]
                if owner:
                    break
            self.assertTrue(owner, "no Debian package owns %s" % path)
            if owner in ("libc6",):  # in every image
                continue
            self.assertIn(owner, runtime, "%s (from %s) is not installed in the runtime stage" % (owner, lib))

    def test_the_small_supervisor_is_installed_next_to_patchbay(self):
        final = dockerfile_stages()[-1]
        copies = [l.split()[-1] for l in final["lines"] if l.startswith("COPY --from=build")]
        self.assertIn("/usr/local/bin/patchbay", copies)
        self.assertIn("/usr/local/bin/patchbay-supervisor", copies)
        # and it needs nothing the runtime stage lacks: a subset of patchbay's libraries
        small = os.path.join(os.path.dirname(harness.BIN), "patchbay-supervisor")
        needed = lambda path: set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",  # noqa: E731
                                             subprocess.run(["readelf", "-d", path], capture_output=True,
                                                            text=True).stdout))
        self.assertTrue(needed(small) <= needed(harness.BIN), needed(small) - needed(harness.BIN))
        self.assertNotIn("libcurl.so.4", needed(small))
        self.assertNotIn("libgit2.so.1.5", needed(small))

    def test_the_sandbox_is_in_the_image(self):
        runtime = dockerfile_stages()[-1]
        for pkg in ("bubblewrap", "slirp4netns"):
            self.assertIn(pkg, apt_packages(runtime))
        # the sandbox's first program, next to patchbay, static: it runs inside any image
        copies = [l.split()[-1] for l in runtime["lines"] if l.startswith("COPY --from=build")]
        self.assertIn("/usr/local/bin/patchbay-enter", copies)
        enter = os.path.join(os.path.dirname(harness.BIN), "patchbay-enter")
        dyn = subprocess.run(["readelf", "-d", enter], capture_output=True, text=True).stdout
        self.assertNotIn("(NEEDED)", dyn)

    def test_runs_as_non_root_with_a_health_check(self):
        final = dockerfile_stages()[-1]
        self.assertNotIn(final["user"], (None, "root", "0"))
        self.assertTrue(any(l.startswith("HEALTHCHECK") and "/healthz" in l for l in final["lines"]))
        self.assertTrue(any(l.startswith("VOLUME") and "/data" in l for l in final["lines"]))

    def test_build_stage_commands_build_on_the_host(self):
        build = dockerfile_stages()[0]
        cmake = [c for c in build["run"] if c.startswith("cmake")]
        self.assertEqual(len(cmake), 1)
        # what the stage installs is enough for the packages CMake asks pkg-config for
        pkgs = set(apt_packages(build))
        for dev in ("libh2o-evloop-dev", "libcurl4-openssl-dev", "libssl-dev", "libjansson-dev", "libgit2-dev",
                    "libhiredis-dev", "libyaml-dev", "cmake", "gcc", "pkg-config"):
            self.assertIn(dev, pkgs)
        src = tempfile.mkdtemp(prefix="pbdocker-")
        try:
            # the COPY lines: only these files reach the build stage
            for line in build["lines"]:
                if line.startswith("COPY ") and "--from" not in line:
                    what, where = line.split()[1], line.split()[2]
                    dest = os.path.join(src, where)
                    if os.path.isdir(os.path.join(harness.SOURCE_DIR, what)):
                        shutil.copytree(os.path.join(harness.SOURCE_DIR, what), dest)
                    else:
                        os.makedirs(os.path.dirname(dest) if where.endswith("/") is False else dest, exist_ok=True)
                        shutil.copy(os.path.join(harness.SOURCE_DIR, what),
                                    dest if not where.endswith("/") else os.path.join(dest, os.path.basename(what)))
            cmd = cmake[0].replace('"$(nproc)"', "2")
            r = subprocess.run(["bash", "-c", cmd], cwd=src, capture_output=True, text=True, timeout=900)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            out = subprocess.run([os.path.join(src, "build", "patchbay"), "--help"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0)
        finally:
            shutil.rmtree(src, ignore_errors=True)

    def test_compose_persists_redis_and_checks_health(self):
        try:
            import yaml
        except ImportError:
            raise unittest.SkipTest("SKIPPED: python3-yaml is not installed")
        with open(os.path.join(DOCKER, "compose.yml")) as f:
            compose = yaml.safe_load(f)
        redis, pb = compose["services"]["redis"], compose["services"]["patchbay"]
        self.assertIn("--appendonly", redis["command"])
        self.assertEqual(redis["command"][redis["command"].index("--appendonly") + 1], "yes")
        self.assertTrue(any(v.endswith(":/data") for v in redis["volumes"]))
        self.assertIn("redis-data", compose["volumes"])
        self.assertIn("/readyz", " ".join(pb["healthcheck"]["test"]))
        self.assertEqual(pb["environment"]["REDIS_URL"], "redis://redis:6379/0")
        self.assertEqual(pb["depends_on"]["redis"]["condition"], "service_healthy")
        self.assertEqual(pb["build"]["dockerfile"], "docker/Dockerfile")
        # the sandbox gets what it needs, or jobs fail closed (there is no unsandboxed fallback to allow)
        for opt in ("seccomp=unconfined", "systempaths=unconfined"):
            self.assertIn(opt, pb["security_opt"])
        self.assertIn("/dev/net/tun", pb["devices"])
        self.assertNotIn("privileged", pb)
        # no secret values in the compose file itself
        self.assertNotRegex(open(os.path.join(DOCKER, "compose.yml")).read(), r"WEBHOOK_SECRET:\s*\S")


if __name__ == "__main__":
    harness.main()
