"""Environments: a repository's toolchain as an OCI image, run under the sandbox.

No registry here: the tests make small OCI layouts with umoci (busybox and a
marker file, no Python), the operator's config names them (oci:PATH:TAG,
what skopeo copies from with no network), and repositories pick one by name.
A fix job on such a repository runs its agent and its test command inside the
image (the test proves the marker is there and the host's python3 is not, not
even one in the operator's sandbox.path) and ends with a pull request; a second
job reuses the unpacked image; an unknown name, a path, or a broken image fail
with a clear reason; two workers fetching the same image at once unpack it
once.
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
import test_fix_jobs as fj  # noqa: E402
from harness import wait_for  # noqa: E402

AGENT = r'''set -e
# the image's busybox: sed edits, cat reads the task
cat "$PATCHBAY_PROMPT_FILE" > /dev/null
sed -i 's/\$((\$1 - \$2))/$(($1 + $2))/' calc.sh
printf 'Make add() add\n\nIt subtracted; ran in %s.\n' "$(cat /MARKER)" > "$PATCHBAY_SUMMARY_FILE"
'''
CALC = "add() { echo $(($1 - $2)); }\n"
TEST = r'''. ./calc.sh
[ "$(add 2 3)" = 5 ] || { echo "add 2 3 gives $(add 2 3)"; exit 1; }
[ "$(cat /MARKER)" = "busybox-environment" ] || { echo "not in the image"; exit 1; }
if command -v python3 >/dev/null 2>&1; then echo "the host's python3 is visible"; exit 1; fi
echo "ok: in the image, no python3"
'''


def tools_present():
    return (harness.sandbox_works() and shutil.which("umoci") and shutil.which("skopeo") and
            os.path.exists("/bin/busybox"))


def make_layout(root, tag="t", marker="busybox-environment"):
    """An OCI layout at root holding busybox (sh, sed, cat...) and /MARKER."""
    bundle = root + ".bundle"
    subprocess.run(["umoci", "init", "--layout", root], check=True)
    subprocess.run(["umoci", "new", "--image", "%s:%s" % (root, tag)], check=True)
    subprocess.run(["umoci", "unpack", "--rootless", "--image", "%s:%s" % (root, tag), bundle], check=True)
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "sed", "cat", "printf", "echo", "test", "[", "ls", "id", "mkdir", "rm", "env"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(rootfs, "MARKER"), "w") as f:
        f.write(marker + "\n")
    subprocess.run(["umoci", "repack", "--image", "%s:%s" % (root, tag), bundle], check=True)
    subprocess.run(["umoci", "config", "--image", "%s:%s" % (root, tag), "--config.env", "PATH=/bin",
                    "--config.env", "IMAGE_SAYS=hello"], check=True)
    shutil.rmtree(bundle)
    return "oci:%s:%s" % (root, tag)


class Environments(fj.FixJobCase):
    def setUp(self):
        super().setUp()
        if not tools_present():
            self.skipTest("bubblewrap, slirp4netns, umoci, skopeo or busybox missing")
        self.image = make_layout(os.path.join(self.workdir, "images", "busy"))

    def env_repo(self, name="octo/shcalc", environment="busy"):
        config = ("environment: %s\ntest: sh test.sh\nagent:\n  command: [sh, .patchbay-agent.sh]\n"
                  "  timeout: 60\n  network: false\n" % environment)
        self.gh.create_repo(name, private=True, files={"calc.sh": CALC, "test.sh": TEST,
                                                       ".patchbay-agent.sh": AGENT, ".github/patchbay.yml": config})
        self.repos = getattr(self, "repos", []) + [name]
        self.gh.add_installation(7, "octo", repositories=self.repos)
        self.gh.set_collaborator(name, "alice", "write")
        return name

    def start_env(self, extra="", concurrency=1):
        section = ("agent:\n  isolation: bwrap\n  test_rounds: 0\nenvironments:\n  busy: { image: \"%s\" }\n%s"
                   % (self.image, extra))
        return self.start_app("workers:\n  concurrency: %d\n  retry_delay_ms: 200\n  max_attempts: 1\n"
                              % concurrency + section)

    def unpacks(self):
        return self.pb.log_text().count("images: unpacking ")

    def roots(self):
        d = os.path.join(self.pb.data_dir, "images", "roots")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def test_a_job_runs_its_agent_and_tests_in_the_image(self):
        repo = self.env_repo()
        # the operator's host paths for CLIs outside /usr are not the image's:
        # a python3 there would be found by the test command if they were
        host_bin = os.path.join(self.workdir, "host-agents", "bin")
        os.makedirs(host_bin)
        with open(os.path.join(host_bin, "python3"), "w") as f:
            f.write("#!/bin/sh\necho host\n")
        os.chmod(os.path.join(host_bin, "python3"), 0o755)
        self.start_env("sandbox:\n  path: [%s]\n  read_only: [%s]\n" % (host_bin, os.path.dirname(host_bin)))
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job, timeout=120)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertIn("$(($1 + $2))", self.git(repo, "show", rec["branch"] + ":calc.sh"))
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Make add() add")
        self.assertIn("ran in busybox-environment", pr["body"])       # the agent read /MARKER in the image
        self.assertIn("`sh test.sh` passed", pr["body"])               # no python3, the marker: the image
        self.assertIn("Environment: `busy`, image `sha256:", pr["body"])
        self.assertTrue(rec["environment"].startswith("busy (sha256:"), rec)
        self.assertEqual(self.unpacks(), 1)
        self.assertEqual(len(self.roots()), 1)
        log = self.db.job_log(job)
        self.assertTrue(any("environment busy: sha256:" in line for line in log), log)

        # a second job: the same unpacked image, no second unpack
        _, _, job2 = self.mention(repo, "@patchbay fix add() again")
        rec2 = self.wait_job(job2, timeout=120)
        self.assertEqual(rec2["status"], "succeeded", rec2.get("error"))
        self.assertEqual(self.unpacks(), 1)
        self.assertEqual(len(self.roots()), 1)

    def test_unknown_names_paths_and_broken_images_fail_clearly(self):
        unknown = self.env_repo("octo/unknown", environment="rust-nightly")
        path = self.env_repo("octo/path", environment="oci:/etc")
        broken = self.env_repo("octo/broken", environment="gone")
        self.start_env("  gone: { image: \"oci:%s/no-such-layout:t\" }\n" % self.workdir)
        n1, _, j1 = self.mention(unknown, "@patchbay fix add()")
        n2, _, j2 = self.mention(path, "@patchbay fix add()")
        n3, _, j3 = self.mention(broken, "@patchbay fix add()")
        r1, r2, r3 = self.wait_job(j1), self.wait_job(j2), self.wait_job(j3)
        self.assertEqual((r1["status"], r2["status"], r3["status"]), ("failed", "failed", "failed"))
        self.assertIn("environment 'rust-nightly' is not one of this installation's (busy, gone)", r1["error"])
        self.assertIn("never a path", r2["error"])
        self.assertIn("no-such-layout", r3["error"])          # skopeo's own words
        self.assertIn("skopeo", r3["error"])
        for repo, number in ((unknown, n1), (path, n2), (broken, n3)):
            said = " ".join(c["body"] for c in self.comments(repo, number) if c["user"] == "patchbay[bot]")
            self.assertIn("environment", said)
            self.assertEqual(self.pulls(repo), [])
        # nothing ran on the host instead
        self.assertEqual(self.git(broken, "branch", "--list", "patchbay/*"), "")

    def test_two_workers_fetching_at_once_unpack_once(self):
        a = self.env_repo("octo/first")
        b = self.env_repo("octo/second")
        self.start_env(concurrency=2)
        _, _, ja = self.mention(a, "@patchbay fix add()")
        _, _, jb = self.mention(b, "@patchbay fix add()")
        ra, rb = self.wait_job(ja, timeout=120), self.wait_job(jb, timeout=120)
        self.assertEqual((ra["status"], rb["status"]), ("succeeded", "succeeded"), (ra.get("error"), rb.get("error")))
        self.assertEqual(self.unpacks(), 1)
        self.assertEqual(len(self.roots()), 1)
        # both ran in the same image
        self.assertEqual(ra["environment"], rb["environment"])

    def test_check_config_lists_the_environments(self):
        cfg = os.path.join(self.workdir, "env.yml")
        with open(cfg, "w") as f:
            f.write("environments:\n  busy: { image: \"%s\" }\n" % self.image)
        data = os.path.join(self.workdir, "cc-data")
        r = subprocess.run([harness.BIN, "check-config", "--offline", cfg], capture_output=True, text=True,
                           env=dict(os.environ, PATCHBAY_DATA_DIR=data))
        self.assertIn("environment busy: %s, not fetched yet" % self.image, r.stdout)


if __name__ == "__main__":
    harness.main()
