"""The sandbox, attacked the way a hostile repository or agent would.

A probe agent (tests/tools/hostile_agent.py, committed into the test
repository as its .patchbay-agent.py) runs through real fix and review jobs
under `patchbay run` with bubblewrap and the network on, exactly as a user's
job runs. It tries each way out and writes what it saw into the work tree,
which the job commits and pushes: the test reads the outcome from the pushed
branch, and checks the host side too (canary listeners that must hear
nothing, no process left behind, the mirror still good for the next job).

Covered: secrets (files, other processes' environments), the host's loopback
and slirp's gateway, the cloud metadata address, an allowed destination that
must work, TIOCSTI under a real terminal, every resource limit, the mirror's
pack files, leftovers, a FIFO as the summary, the work tree's size, bubblewrap
unable to start, and code from a fork or from an author without write access.
Skipped where bubblewrap or slirp4netns cannot run.
"""

import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
import test_fix_jobs as fj  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402

PROBE = open(os.path.join(os.path.dirname(__file__), "..", "tools", "hostile_agent.py")).read()
LIMITS = {"memory_bytes": 256 * 1024 * 1024, "processes": 96, "file_size_bytes": 16 * 1024 * 1024,
          "open_files": 256, "cpu_seconds": 2}


class Canary:
    """A listener on the host's loopback that counts who reached it."""

    def __init__(self, banner=b"CANARY\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.banner = banner
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            try:
                c.sendall(self.banner)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def sandbox_ok():
    return harness.bwrap_works() and shutil.which("slirp4netns") is not None


class SandboxEscapes(fj.FixJobCase):
    def setUp(self):
        super().setUp()
        if not sandbox_ok():
            self.skipTest("bubblewrap or slirp4netns cannot run here")
        self.loopback = Canary()
        self.allowed = Canary(b"ALLOWED\n")
        self.addCleanup(self.loopback.close)
        self.addCleanup(self.allowed.close)
        self.marker = "pb-probe-%d-%d" % (os.getpid(), int(time.time() * 1000))

    def start_sandboxed(self, extra="", tree_bytes="1GiB", bwrap_path=None):
        section = ("agent:\n  isolation: bwrap\n  network: true\n  test_rounds: 0\n"
                   "sandbox:\n  memory_bytes: %d\n  processes: %d\n  file_size_bytes: %d\n  open_files: %d\n"
                   "  cpu_seconds: %d\n  tree_bytes: %s\n  egress_allow: [\"127.0.0.1:%d\"]\n"
                   % (LIMITS["memory_bytes"], LIMITS["processes"], LIMITS["file_size_bytes"],
                      LIMITS["open_files"], LIMITS["cpu_seconds"], tree_bytes, self.allowed.port))
        if bwrap_path:
            section += "  bwrap_path: %s\n" % bwrap_path
        return self.start(agent_section=section + extra, WEBHOOK_SECRET=harness.SECRET)

    def probe_repo(self, mode, name="octo/probe", timeout=120):
        probe = {"mode": mode, "loopback": self.loopback.port, "allowed": self.allowed.port,
                 "secrets": [self.keys["pkcs1"], os.path.join(self.workdir, "patchbay.yml")],
                 "limits": LIMITS, "marker": self.marker}
        config = "agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: %d\n" % timeout
        return self.repo(mode, name=name, config=config,
                         extra={".patchbay-agent.py": PROBE, ".probe.json": json.dumps(probe)})

    def report(self, repo, rec):
        text = self.git(repo, "show", rec["branch"] + ":PROBE-REPORT.json")
        self.assertTrue(text, "the probe's report was not pushed")
        return json.loads(text)

    def test_the_probe_finds_no_way_out(self):
        repo = self.probe_repo("probe")
        self.start_sandboxed()
        _, _, job = self.mention(repo, "@patchbay probe")
        rec = self.wait_job(job, timeout=240)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        r = self.report(repo, rec)

        # secrets: none in its environment, none readable, no other process's environment
        for name in ("WEBHOOK_SECRET", "PRIVATE_KEY_PATH", "APP_ID", "GITHUB_TOKEN", "REDIS_URL"):
            self.assertNotIn(name, r["secrets"]["environ"])
        for path, what in r["secrets"]["read"].items():
            self.assertNotEqual(what, "READ", path)
        self.assertEqual(r["secrets"]["environ_of_others"], [])
        self.assertLess(r["secrets"]["pids_visible"], 20)  # its own pid namespace
        if os.geteuid() == 0:
            self.assertNotEqual(r["uid"], 0)

        # network: outbound only, but for what the operator allowed
        net = r["network"]
        self.assertFalse(net["loopback"]["connected"], net["loopback"])      # the sandbox's own loopback: nobody
        self.assertFalse(net["gateway"]["connected"], net["gateway"])        # slirp's way to the host's loopback
        self.assertFalse(net["metadata"]["connected"], net["metadata"])
        self.assertLess(net["metadata"]["ms"], 1000)                         # refused at once, not a hang
        self.assertEqual(self.loopback.hits, 0)
        self.assertTrue(net["allowed"]["connected"], net["allowed"])
        self.assertEqual(net["allowed"]["said"], "ALLOWED\n")
        self.assertEqual(self.allowed.hits, 1)

        # no terminal to type into
        for fd in ("fd0", "fd1", "fd2", "dev_tty"):
            self.assertNotIn("INJECTED", r["terminal"][fd])

        # every limit bites
        lim = r["limits"]
        self.assertNotEqual(lim["memory"]["said"], "ALLOCATED", lim["memory"])
        self.assertTrue(lim["file_size"]["said"].startswith("STOPPED 16 "), lim["file_size"])
        self.assertTrue(lim["open_files"]["said"].startswith("STOPPED"), lim["open_files"])
        if os.geteuid() == 0:  # RLIMIT_NPROC binds a job user, never root
            self.assertTrue(lim["processes"]["said"].startswith("STOPPED"), lim["processes"])
        self.assertEqual(lim["cpu"]["fate"], -24, lim["cpu"])                # SIGXCPU
        self.assertLess(lim["cpu"]["ms"], (LIMITS["cpu_seconds"] + 10) * 1000 * harness.SLOW)

        # the mirror's packs could not be touched
        m = r["mirror"]
        self.assertGreater(m["packs"], 0)
        for what in ("chmod", "write", "append", "rename", "unlink"):
            self.assertNotEqual(m[what], "DONE", what)

        # nothing it started is left
        left = subprocess.run(["pgrep", "-f", self.marker], capture_output=True, text=True).stdout
        self.assertEqual(left.strip(), "")

        # and the next job on the repository checks out from the same mirror
        self.gh.commit(repo, "main", {".probe.json": json.dumps({"mode": "tiocsti", "loopback": 1, "allowed": 0,
                                                                 "limits": LIMITS, "marker": self.marker})})
        _, _, job = self.mention(repo, "@patchbay again")
        rec = self.wait_job(job, timeout=120)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))

    def test_bubblewrap_that_cannot_start_runs_nothing(self):
        fake = os.path.join(self.workdir, "bwrap-broken")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
        os.chmod(fake, 0o755)
        repo = self.probe_repo("probe")
        self.start_sandboxed(bwrap_path=fake)
        number, _, job = self.mention(repo, "@patchbay probe")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("bubblewrap could not start the sandbox", rec["error"])
        self.assertIn("No permissions", rec["error"])
        self.assertEqual(self.loopback.hits, 0)
        self.assertEqual(self.allowed.hits, 0)   # the probe would have reached it
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")
        said = " ".join(c["body"] for c in self.comments(repo, number) if c["user"] == "patchbay[bot]")
        self.assertIn("bubblewrap could not start the sandbox", said)
        # the operator sees it before any job: on the status page and in /readyz
        c = self.pb.conn()
        c.request("GET", "/readyz")
        resp = c.getresponse()
        body = resp.read().decode()
        c.close()
        self.assertEqual(resp.status, 503)
        self.assertIn("sandbox cannot start", body)

    def test_a_fifo_for_a_summary_does_not_hang_the_job(self):
        repo = self.probe_repo("fifo", timeout=10)
        self.start_sandboxed()
        _, _, job = self.mention(repo, "@patchbay fix add()")
        t0 = time.monotonic()
        rec = self.wait_job(job, timeout=60)
        self.assertLess(time.monotonic() - t0, 30 * harness.SLOW)
        # the summary is refused (not a file): the change still goes out, titled from the issue
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))

    def test_the_work_tree_cannot_fill_the_disk(self):
        repo = self.probe_repo("fill")
        self.start_sandboxed(tree_bytes="64MiB")
        _, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job, timeout=120)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("size limit", rec["error"])

    def test_no_keystrokes_into_the_operators_terminal(self):
        """patchbay started from a terminal (./run.sh in a shell): the probe
        tries TIOCSTI on every descriptor and on /dev/tty."""
        repo = self.probe_repo("tiocsti")
        cfg = os.path.join(self.workdir, "patchbay.yml")
        self.start_sandboxed()
        self.pb.stop()
        master, slave = pty.openpty()

        def controlling_tty():
            os.setsid()
            import fcntl
            import termios
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            os.dup2(slave, 0)

        env = dict(os.environ, APP_ID="1234", PRIVATE_KEY_PATH=self.keys["pkcs1"], GITHUB_API_URL=self.gh.api,
                   GITHUB_URL=self.gh.web, PATCHBAY_CONFIG=cfg, REDIS_URL=self.redis_server.url, PORT="0",
                   HOST="127.0.0.1", PATCHBAY_DATA_DIR=os.path.join(self.workdir, "data2"),
                   WEBHOOK_SECRET=harness.SECRET, LOG_FORMAT="json")
        log = open(os.path.join(self.workdir, "pty-patchbay.log"), "wb")
        proc = subprocess.Popen([harness.BIN, "run"], env=env, preexec_fn=controlling_tty, stdout=log, stderr=log,
                                pass_fds=(slave,))
        os.close(slave)
        try:
            port = wait_for(lambda: self._port_from(log.name), 30, what="patchbay under a terminal to listen")
            issue = self.gh.add_issue(repo, "probe", body="", user="carol")
            comment = self.gh.add_comment(repo, issue["number"], "@patchbay probe", user="alice")
            payload = harness.issue_comment(body="@patchbay probe", association="COLLABORATOR", sender="alice",
                                            number=issue["number"], repo=repo, installation=7,
                                            comment_id=comment["id"], title="probe")
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, body, _ = post_delivery(c, "issue_comment", payload)
            c.close()
            self.assertEqual(status, 202, body)
            rec = self.wait_job(body["job"], timeout=120)
            self.assertEqual(rec["status"], "succeeded", rec.get("error"))
            typed = b""
            while select.select([master], [], [], 0.5)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                typed += chunk
            self.assertNotIn(b"INJECTED", typed)
            r = self.report(repo, rec)
            for fd in ("fd0", "fd1", "fd2", "dev_tty"):
                self.assertNotIn("INJECTED", r["terminal"][fd], fd)
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
            os.close(master)

    def _port_from(self, path):
        with open(path, "rb") as f:
            for line in f:
                if b"listening on" in line:
                    try:
                        msg = json.loads(line)["msg"]
                    except ValueError:
                        continue
                    return int(msg.split(" (")[0].rsplit(":", 1)[1])
        return None


class StrangersCode(fj.FixJobCase):
    """Pull requests whose code comes from outside: a fork, or an author
    without write access (an organization MEMBER may only read)."""

    def setUp(self):
        super().setUp()
        self.canary = Canary()
        self.addCleanup(self.canary.close)

    def base_repo(self, name="octo/calc"):
        # the base repository's own agent choice is a script of the checkout, as teams do
        config = "agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 30\nreview: { auto: true }\n"
        self.gh.create_repo(name, private=False, files={"calc.py": fj.CALC, ".github/patchbay.yml": config,
                                                       ".patchbay-agent.py": "print('base agent')\n"})
        self.gh.add_installation(7, name.split("/")[0], repositories=[name])
        self.gh.set_collaborator(name, "alice", "write")
        self.gh.set_collaborator(name, "mallory", "read")
        return name

    def evil(self):
        # what the stranger's checkout would run if its agent script were used
        return ("import socket\nsocket.create_connection(('127.0.0.1', %d), timeout=3)\n"
                "open('/tmp/pb-stranger-ran-%d', 'w').write('ran')\n" % (self.canary.port, os.getpid()))

    def open_pull(self, repo, number, author, action="opened"):
        pr = [p for p in self.gh.state()["pulls"] if p["repo"] == repo and p["number"] == number][0]
        payload = harness.pull_request(action=action, author=author, association="MEMBER", number=number,
                                       repo=repo, sender=author)
        payload["pull_request"]["head"]["sha"] = pr["head_sha"]
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "pull_request", payload)
        c.close()
        self.assertEqual(status, 202, body)
        return body["job"]

    def assert_note_and_no_review(self, repo, number, job, why):
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual([v for v in self.gh.state()["reviews"] if v["repo"] == repo], [])
        notes = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("patchbay does not review this pull request", notes[0]["body"])
        self.assertIn(why, notes[0]["body"])
        self.assertEqual(self.canary.hits, 0)
        self.assertFalse(os.path.exists("/tmp/pb-stranger-ran-%d" % os.getpid()))
        return rec

    def test_a_forks_code_never_runs(self):
        repo = self.base_repo()
        self.gh.create_repo("mallory/calc", private=False, files={"calc.py": fj.CALC})
        self.gh.commit("mallory/calc", "evil", {".patchbay-agent.py": self.evil(), "calc.py": "x = 1\n"})
        pr = self.gh.add_pull(repo, "evil", head_repo="mallory/calc", title="Improve calc", user="mallory",
                              author_association="NONE")
        self.start(isolation="bwrap")
        job = self.open_pull(repo, pr["number"], "mallory")
        self.assert_note_and_no_review(repo, pr["number"], job, "the fork mallory/calc")
        # the pull request comes back (ready for review): no second note
        job = self.open_pull(repo, pr["number"], "mallory", action="ready_for_review")
        self.wait_job(job)
        notes = [c for c in self.comments(repo, pr["number"]) if c["user"] == "patchbay[bot]"]
        self.assertEqual(len(notes), 1)

    def test_a_member_without_write_access_gets_no_auto_review(self):
        repo = self.base_repo()
        self.gh.commit(repo, "feature", {".patchbay-agent.py": self.evil(), "calc.py": "x = 1\n"})
        pr = self.gh.add_pull(repo, "feature", title="Improve calc", user="mallory", author_association="MEMBER")
        self.start(isolation="bwrap")
        job = self.open_pull(repo, pr["number"], "mallory")
        # (the @ carries a zero-width space: patchbay's notes ping nobody)
        self.assert_note_and_no_review(repo, pr["number"], job, "mallory has read permission here, not write")


if __name__ == "__main__":
    harness.main()
