"""The command line as a user meets it: run with its private Redis, check-config,
replay and jobs, with DESIGN.md's exit statuses (0 ok, 2 usage/config, 1 other)."""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import BIN, SECRET, post_delivery, wait_for  # noqa: E402


class CLI(harness.TestCase):
    def run_cli(self, *args, env=None, timeout=30):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.workdir, "PATCHBAY_CONFIG": "",
             "PATCHBAY_DATA_DIR": os.path.join(self.workdir, "data")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        p = subprocess.run([BIN] + list(args), env=e, cwd=self.workdir, capture_output=True, text=True,
                           timeout=timeout * harness.SLOW)
        return p.returncode, p.stdout, p.stderr

    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- usage

    def test_usage_and_unknown_commands(self):
        code, out, _ = self.run_cli("--help")
        self.assertEqual(code, 0)
        self.assertIn("jobs list", out)
        self.assertEqual(self.run_cli()[0], 2)
        code, _, err = self.run_cli("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("unknown command frobnicate", err)
        self.assertEqual(self.run_cli("jobs")[0], 2)
        self.assertEqual(self.run_cli("jobs", "list", "--status", "nope")[0], 2)
        self.assertEqual(self.run_cli("serve", "extra")[0], 2)

    # -- check-config

    def test_check_config_reports_every_problem_with_file_and_line(self):
        path = self.write("bad.yml", "server:\n  port: abc\nworkers:\n  concurency: 3\nbot: { handle: '@x' }\n")
        code, out, _ = self.run_cli("check-config", path)
        self.assertEqual(code, 2)
        self.assertIn("bad.yml:2:", out)
        self.assertIn("bad.yml:4: unknown key 'concurency' in 'workers'", out)
        self.assertIn("did you mean 'concurrency'", out)
        self.assertIn("bad.yml:5:", out)
        self.assertIn("3 problems found", out)
        # a valid file without credentials: those are the problems then
        code, out, _ = self.run_cli("check-config", self.write("good.yml", "workers:\n  concurrency: 3\n"))
        self.assertEqual(code, 2)
        self.assertIn("APP_ID", out)
        self.assertIn("WEBHOOK_SECRET", out)

    def test_check_config_ok_and_secrets_never_printed(self):
        key = self.write("key.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
        env = {"APP_ID": "12345", "PRIVATE_KEY_PATH": key, "WEBHOOK_SECRET": "hunter2-very-secret"}
        code, out, err = self.run_cli("check-config", "--offline", self.write("ok.yml", "workers:\n  concurrency: 3\n"),
                                      env=env)
        self.assertEqual(code, 0, out + err)
        self.assertIn("ok:", out)
        env["PORT"] = "99999"
        code, out, err = self.run_cli("check-config", env=env)
        self.assertEqual(code, 2)
        self.assertIn("environment: PORT", out)
        self.assertNotIn("hunter2", out + err)

    def test_example_config_is_valid(self):
        example = os.path.join(harness.SOURCE_DIR, "config", "patchbay.yml")
        code, out, _ = self.run_cli("check-config", example)
        # only credentials are missing from the example
        self.assertEqual(code, 2)
        self.assertNotIn("patchbay.yml:", out)

    def test_run_refuses_a_bad_config_with_status_2(self):
        code, _, err = self.run_cli("run", env={"PATCHBAY_CONFIG": self.write("b.yml", "nope: 1\n")})
        self.assertEqual(code, 2)
        self.assertIn("b.yml:1: unknown key 'nope'", err)

    # -- run with its own Redis

    def test_run_owns_a_private_redis_and_jobs_survive_a_restart(self):
        pb = self.patchbay(command="run")
        self.assertIsNotNone(pb.find_log("private Redis started"))
        sock = os.path.join(pb.data_dir, "redis", "redis.sock")
        self.assertTrue(os.path.exists(sock))
        c = pb.conn()
        status, body, delivery = post_delivery(c, "issue_comment", harness.issue_comment())
        c.close()
        self.assertEqual(status, 202)
        job = body["job"]
        # `run` has workers: the fix job runs (and fails, until fix jobs are implemented)
        db = harness.RedisClient(sock)
        before = wait_for(lambda: (lambda j: j if j.get("status") in ("failed", "succeeded") else None)(db.job(job)),
                          15, what="the job to be run by run's workers")
        db.close()

        # a second patchbay on the same data dir is refused, not silently sharing
        other = harness.Patchbay(self.workdir, command="run", data_dir=pb.data_dir)
        other.start(wait_ready=False)
        self.assertEqual(other.proc.wait(timeout=30 * harness.SLOW), 1)
        self.assertIn("another patchbay already runs a Redis", other.log_text())
        other.stop()

        self.assertEqual(pb.stop(), 0)
        self.assertIsNotNone(pb.find_log("private Redis stopped"))
        self.assertFalse(harness.Redis(self.workdir)._pings.__func__(type("R", (), {"socket": sock})()))

        pb2 = self.patchbay(command="run", data_dir=pb.data_dir)
        code, out, err = self.run_cli("jobs", "show", job, "--json", env={"PATCHBAY_DATA_DIR": pb.data_dir})
        self.assertEqual(code, 0, err)
        shown = json.loads(out)
        self.assertEqual((shown["id"], shown["delivery"], shown["status"]), (job, delivery, before["status"]))
        # the redelivery is still known after the restart
        c = pb2.conn()
        self.assertEqual(post_delivery(c, "issue_comment", harness.issue_comment(), delivery=delivery)[:2],
                         (200, {"duplicate": job}))
        c.close()

    def test_run_survives_its_redis_dying(self):
        pb = self.patchbay(command="run")
        line = pb.find_log("private Redis started")
        pid = int(line["msg"].split("pid ")[1].split(")")[0])
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pb.find_log("restarting it"), 10, what="the private Redis to be restarted")
        c = pb.conn()

        def accepted():
            status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment())
            return status == 202 and "job" in body
        wait_for(accepted, 15, interval=0.2, what="jobs queued after the Redis restart")
        c.close()

    # -- jobs

    def test_jobs_list_and_show(self):
        r = self.redis()
        pb = self.patchbay(redis_url=r.url)
        c = pb.conn()
        made = [post_delivery(c, "issue_comment", harness.issue_comment(number=n)) for n in (1, 2, 3)]
        post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay stop", number=3))
        c.close()
        env = {"REDIS_URL": r.url}
        code, out, err = self.run_cli("jobs", "list", "--json", env=env)
        self.assertEqual(code, 0, err)
        jobs = json.loads(out)
        self.assertEqual(len(jobs), 4)
        for field in ("id", "kind", "repo", "number", "status", "attempts", "delivery", "created_at"):
            self.assertIn(field, jobs[0])
        self.assertNotIn("payload", jobs[0])
        self.assertEqual(jobs[0]["kind"], "stop")  # newest first
        self.assertIsInstance(jobs[0]["number"], int)
        self.assertEqual({j["delivery"] for j in jobs[1:]}, {m[2] for m in made})
        code, out, _ = self.run_cli("jobs", "list", "--json", "--status", "cancelled", env=env)
        cancelled = json.loads(out)
        self.assertEqual([(j["number"], j["status"]) for j in cancelled], [(3, "cancelled")])
        code, out, _ = self.run_cli("jobs", "list", env=env)
        self.assertEqual(code, 0)
        self.assertIn("octo-org/hello-world#2", out)
        code, out, _ = self.run_cli("jobs", "show", made[0][1]["job"], env=env)
        self.assertIn("instruction", out)
        code, _, err = self.run_cli("jobs", "show", "99999", env=env)
        self.assertEqual(code, 1)
        self.assertIn("no job 99999", err)

    def test_text_from_github_is_shown_not_obeyed(self):
        """A title, an instruction and a login that carry terminal controls (ESC, BEL, C1 CSI)
        come out escaped in jobs list, show and logs; --json keeps them exact."""
        r = self.redis()
        pb = self.patchbay(redis_url=r.url)
        title = "Crash \x1b]0;pwned\x07 \x1b[2J\u009b31m done"
        who = "mallory\x1b[8m"
        c = pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment(
            body="@patchbay fix \x1b[31mred\x07", title=title, sender=who, number=5, comment_id=51))
        self.assertEqual(status, 202, body)
        job = body["job"]
        status, _, _ = post_delivery(c, "issue_comment", harness.issue_comment(
            body="@patchbay stop", title=title, sender=who, number=5, comment_id=52))
        self.assertEqual(status, 202)
        c.close()
        env = {"REDIS_URL": r.url}
        shown = "Crash \\x1b]0;pwned\\x07 \\x1b[2J\\u009b31m done"
        raw = ("\x1b", "\x07", "\u009b")
        code, out, err = self.run_cli("jobs", "list", env=env)
        self.assertEqual(code, 0, err)
        self.assertIn(shown, out)
        code, show, err = self.run_cli("jobs", "show", job, env=env)
        self.assertEqual(code, 0, err)
        self.assertIn(shown, show)
        self.assertRegex(show, r"instruction +fix \\x1b\[31mred\\x07\n")
        self.assertRegex(show, r"sender +mallory\\x1b\[8m\n")
        code, logs, err = self.run_cli("jobs", "logs", job, env=env)
        self.assertEqual(code, 0, err)
        self.assertIn("stopped by mallory\\x1b[8m", logs)
        for text in (out, show, logs):
            for ch in raw:
                self.assertNotIn(ch, text)
        code, js, _ = self.run_cli("jobs", "show", job, "--json", env=env)
        self.assertEqual(json.loads(js)["title"], title)
        self.assertEqual(json.loads(js)["instruction"], "fix \x1b[31mred\x07")

    def test_jobs_without_redis_is_a_clear_error(self):
        code, _, err = self.run_cli("jobs", "list", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
        self.assertEqual(code, 1)
        self.assertIn("cannot connect to Redis", err)
        code, _, err = self.run_cli("jobs", "list", env={"REDIS_URL": "http://x"})
        self.assertEqual(code, 2)
        self.assertIn("REDIS_URL", err)

    # -- replay

    def test_replay_signs_and_posts_like_github(self):
        r = self.redis()
        pb = self.patchbay(redis_url=r.url)
        payload = self.write("issue_comment.created.json", json.dumps(harness.issue_comment()))
        ping = self.write("Capture.json", json.dumps({"zen": "Half measures are as bad as nothing at all."}))
        env = {"WEBHOOK_SECRET": SECRET, "PORT": str(pb.port)}
        code, out, err = self.run_cli("replay", payload, env=env)
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"issue_comment [0-9a-f-]{36} 202 \{\"job\":\"1\"\}")
        code, out, err = self.run_cli("replay", ping, "--event", "ping", "--delivery", "d-1", env=env)
        self.assertEqual(code, 0)
        self.assertIn("d-1 200", out)
        code, _, err = self.run_cli("replay", ping, env=env)
        self.assertEqual(code, 2)
        self.assertIn("--event", err)
        # a server that refuses is a failure, with its answer shown
        code, out, _ = self.run_cli("replay", payload, env={"WEBHOOK_SECRET": "wrong", "PORT": str(pb.port)})
        self.assertEqual(code, 1)
        self.assertIn("401", out)
        code, _, err = self.run_cli("replay", payload, env={"WEBHOOK_SECRET": SECRET, "PORT": "1"})
        self.assertEqual(code, 1)
        self.assertIn("cannot post", err)


if __name__ == "__main__":
    harness.main()
