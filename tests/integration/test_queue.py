"""The job queue and the worker pool as a user meets them: jobs made by the
webhook or by the enqueue transaction itself run through `patchbay work`,
retry with backoff, die into the dead-letter stream, wait for their issue's
lock, get cancelled and superseded, and show up in `patchbay jobs` and in
/metrics. The faults (kills, Redis restarts, hangs, SIGTERM, garbage) are in
test_queue_faults.py."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import BIN, post_delivery, wait_for  # noqa: E402

FINAL = ("succeeded", "failed", "cancelled", "dead")


class QueueCase(harness.TestCase):
    """A Redis, and helpers to start workers with a test-sized config."""

    def setUp(self):
        super().setUp()
        self.r = None
        self.db = None

    def tearDown(self):
        if self.db is not None:
            self.db.close()
        super().tearDown()

    def use_redis(self, **kw):
        self.r = self.redis(**kw)
        self.db = self.r.client()
        return self.r

    def config(self, **workers):
        settings = {"lease_seconds": 2, "retry_delay_ms": 100, "retry_max_delay_ms": 1000, "grace_seconds": 30}
        settings.update(workers)
        path = os.path.join(self.workdir, "patchbay-%d.yml" % len(os.listdir(self.workdir)))
        with open(path, "w") as f:
            f.write("workers:\n" + "".join("  %s: %s\n" % kv for kv in settings.items()))
        return path

    def work(self, n=2, env=None, start=True, **workers):
        if self.r is None:
            self.use_redis()
        e = {"PATCHBAY_CONFIG": self.config(**workers)}
        e.update(env or {})
        return self.patchbay(command="work", redis_url=self.r.url, env=e, args=["--concurrency", str(n)],
                             start=start)

    def enqueue(self, *jobs):
        return harness.enqueue(self.db, list(jobs))

    def job(self, job_id):
        return self.db.job(job_id)

    def wait_status(self, job_id, statuses, timeout=15):
        statuses = (statuses,) if isinstance(statuses, str) else statuses
        return wait_for(lambda: (lambda j: j if j.get("status") in statuses else None)(self.job(job_id)), timeout,
                        what="job %s to be %s (now %s)" % (job_id, "/".join(statuses), self.job(job_id).get("status")))

    def cli(self, *args, env=None, timeout=30):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.workdir, "PATCHBAY_CONFIG": "",
             "PATCHBAY_DATA_DIR": os.path.join(self.workdir, "data"), "REDIS_URL": self.r.url}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        p = subprocess.run([BIN, "jobs"] + list(args), env=e, cwd=self.workdir, capture_output=True, text=True,
                           timeout=timeout * harness.SLOW)
        return p.returncode, p.stdout, p.stderr

    def metrics(self, pb):
        c = pb.conn()
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return text


class Jobs(QueueCase):
    def test_outcomes_logs_and_json(self):
        self.use_redis()
        self.db.call("ZADD", "patchbay:jobs", 1, "1")  # the index of every job versions before kept
        self.work(2, max_attempts=2)
        ok, perm, dead = self.enqueue({"kind": "noop", "noop_trace": "1"},
                                      {"kind": "noop", "noop_fail": "permanent"},
                                      {"kind": "noop", "noop_fail": "retry"})
        self.assertEqual(self.wait_status(ok, "succeeded")["noop_done"], "1")
        rec = self.wait_status(perm, FINAL)
        self.assertEqual((rec["status"], rec["attempts"]), ("failed", "1"))  # permanent: never retried
        self.assertIn("failing permanently", rec["error"])
        rec = self.wait_status(dead, FINAL)
        self.assertEqual((rec["status"], rec["attempts"]), ("dead", "2"))
        self.assertIn("gave up after 2 attempts", rec["error"])
        # the dead-letter stream has it, and the kind's on_dead hook ran
        dead_entries = self.db.call("XRANGE", "patchbay:dead", "-", "+")
        self.assertIn(dead.encode(), [e[1][1] for e in dead_entries])
        # the hook runs after the job is marked dead (seen late under the sanitizers): wait for its line
        wait_for(lambda: any("on_dead hook" in line for line in self.db.job_log(dead)), 10, interval=0.1,
                 what="the on_dead hook's log line")
        # finished jobs expire after the retention period; nothing is acked twice or left behind
        self.assertGreater(self.db.call("TTL", "patchbay:job:" + ok), 6 * 86400)
        self.assertGreater(self.db.call("TTL", "patchbay:log:" + ok), 6 * 86400)
        self.assertEqual(self.db.call("XLEN", "patchbay:queue"), 0)

        code, out, err = self.cli("show", ok, "--json")
        self.assertEqual(code, 0, err)
        shown = json.loads(out)
        for field in ("id", "kind", "status", "attempts", "delivery", "created_at", "started_at_ms", "finished_at_ms"):
            self.assertIn(field, shown)
        self.assertEqual((shown["kind"], shown["status"], shown["attempts"]), ("noop", "succeeded", 1))
        self.assertGreaterEqual(shown["finished_at_ms"], shown["started_at_ms"])
        code, out, _ = self.cli("list", "--json", "--status", "dead")
        self.assertEqual([j["id"] for j in json.loads(out)], [dead])
        # listing walks the ids down from patchbay:seq: newest first, an expired record skipped;
        # the old index, never trimmed, is gone once a worker has started
        self.assertEqual(self.db.call("EXISTS", "patchbay:jobs"), 0)
        self.db.call("DEL", "patchbay:job:" + perm)
        code, out, _ = self.cli("list", "--json")
        self.assertEqual([j["id"] for j in json.loads(out)], [dead, ok])
        code, out, _ = self.cli("logs", dead)
        self.assertEqual(code, 0)
        self.assertRegex(out, r"Z info +queued -> running: attempt 1 of 2")
        self.assertIn("running -> queued: noop: failing (retryable), as asked (attempt 1 of 2; next in", out)
        self.assertIn("running -> dead: gave up after 2 attempts", out)
        code, out, _ = self.cli("logs", ok, "--json")
        lines = [json.loads(x) for x in out.splitlines()]
        self.assertEqual([x["msg"] for x in lines][-1], "running -> succeeded")
        self.assertTrue(all(isinstance(x["ts"], int) for x in lines))
        code, _, err = self.cli("logs", "424242")
        self.assertEqual(code, 1)

    def test_backoff_doubles_with_jitter_then_succeeds(self):
        self.work(1, retry_delay_ms=200, retry_max_delay_ms=300, max_attempts=4)
        [job] = self.enqueue({"kind": "noop", "noop_fail_until": "3", "noop_trace": "1"})
        rec = self.wait_status(job, FINAL)
        self.assertEqual((rec["status"], rec["attempts"], rec["noop_done"]), ("succeeded", "4", "1"))
        delays = [int(m) for m in re.findall(r"next in (\d+) ms", "\n".join(self.db.job_log(job)))]
        self.assertEqual(len(delays), 3)
        self.assertTrue(150 <= delays[0] <= 250, delays)  # 200 +-25%
        self.assertTrue(225 <= delays[1] <= 375, delays)  # doubled, capped at 300, +-25%
        self.assertTrue(225 <= delays[2] <= 375, delays)
        self.assertEqual(self.db.call("ZCARD", "patchbay:delayed"), 0)

    def test_one_job_per_issue_at_a_time(self):
        self.work(2)
        a, b = self.enqueue({"kind": "noop", "noop_sleep_ms": "600", "repo": "o/r", "number": "5"},
                            {"kind": "noop", "noop_sleep_ms": "600", "repo": "o/r", "number": "5"})
        ra, rb = self.wait_status(a, FINAL), self.wait_status(b, FINAL)
        self.assertEqual((ra["status"], rb["status"]), ("succeeded", "succeeded"))
        first, second = sorted((ra, rb), key=lambda j: int(j["started_at_ms"]))
        # never in parallel: the second started after the first finished
        self.assertGreaterEqual(int(second["started_at_ms"]), int(first["finished_at_ms"]))
        self.assertTrue(any("waiting: job %s is running on o/r#5" % first["id"] in line
                            for line in self.db.job_log(second["id"])))
        self.assertEqual(self.db.call("EXISTS", "patchbay:lock:o/r#5"), 0)
        # other issues are not held up
        c, d = self.enqueue({"kind": "noop", "noop_sleep_ms": "600", "repo": "o/r", "number": "6"},
                            {"kind": "noop", "noop_sleep_ms": "600", "repo": "o/r", "number": "7"})
        rc, rd = self.wait_status(c, FINAL), self.wait_status(d, FINAL)
        self.assertLess(int(rd["started_at_ms"]), int(rc["finished_at_ms"]))

    def test_cancel_queued_and_running_and_retry(self):
        pb = self.work(1)
        running, queued = self.enqueue({"kind": "noop", "noop_child": "1"}, {"kind": "noop"})
        wait_for(lambda: any("child process group" in line for line in self.db.job_log(running)), 10,
                 what="the job's child process group")
        pgid = int(re.search(r"child process group (\d+)", "\n".join(self.db.job_log(running))).group(1))
        os.killpg(pgid, 0)  # alive

        # queued: cancelled at once, never runs
        code, out, err = self.cli("cancel", queued)
        self.assertEqual((code, out.strip()), (0, "job %s cancelled" % queued), err)
        self.assertEqual(self.job(queued)["status"], "cancelled")

        # running: cancelled within 2 s, its whole process group killed
        code, out, err = self.cli("cancel", running)
        self.assertEqual(code, 0, err)
        self.assertIn("asked its worker to stop it", out)
        rec = self.wait_status(running, FINAL, timeout=3)
        self.assertEqual(rec["status"], "cancelled")
        wait_for(lambda: not _group_alive(pgid), 3, what="the process group to be gone")
        code, _, err = self.cli("cancel", running)
        self.assertEqual(code, 1)
        self.assertIn("already cancelled", err)
        self.assertEqual(self.job(queued)["attempts"], "0")
        self.assertEqual([p for p, _ in pb.workers().values()], [p for p, _ in pb.workers().values()])

        # retry: a cancelled (or failed, or dead) job runs again with fresh attempts
        # a field set later wins over the one the record was made with
        self.db.call("HSET", "patchbay:job:" + running, "noop_child", "0")
        code, out, err = self.cli("retry", running)
        self.assertEqual((code, out.strip()), (0, "job %s queued again" % running), err)
        rec = self.wait_status(running, "succeeded")
        self.assertEqual(rec["attempts"], "1")
        self.assertEqual(self.db.call("TTL", "patchbay:job:" + running) > 0, True)
        code, _, err = self.cli("retry", running)
        self.assertEqual(code, 1)
        self.assertIn("is succeeded; only failed, dead or cancelled jobs can be retried", err)
        self.assertEqual(self.cli("retry", "999999")[0], 1)
        self.assertEqual(self.cli("cancel")[0], 2)


class Supervisor(QueueCase):
    """`patchbay work` becomes the small patchbay-supervisor when it sits next
    to it, and supervises in its own process when it does not."""

    def jobs_run(self, pb):
        ids = self.enqueue({"kind": "noop"}, {"kind": "noop"}, {"kind": "noop"})
        for i in ids:
            wait_for(lambda: self.job(i).get("status") == "succeeded", 30, what="job %s" % i)

    def test_work_runs_as_the_small_supervisor(self):
        pb = self.work(2)
        exe = os.readlink("/proc/%d/exe" % pb.proc.pid)
        self.assertEqual(os.path.basename(exe), "patchbay-supervisor")
        self.jobs_run(pb)
        # its workers are patchbay itself
        with open("/proc/%d/task/%d/children" % (pb.proc.pid, pb.proc.pid)) as f:
            kids = [int(p) for p in f.read().split()]
        self.assertEqual(len(kids), 2)
        for k in kids:
            self.assertEqual(os.path.realpath(os.readlink("/proc/%d/exe" % k)), os.path.realpath(harness.BIN))

    def test_without_it_work_supervises_in_its_own_process(self):
        lone = os.path.join(self.workdir, "bin")
        os.makedirs(lone)
        shutil.copy(harness.BIN, os.path.join(lone, "patchbay"))
        saved = harness.BIN
        harness.BIN = os.path.join(lone, "patchbay")
        try:
            pb = self.work(2)
        finally:
            harness.BIN = saved
        self.assertEqual(os.readlink("/proc/%d/exe" % pb.proc.pid), os.path.join(lone, "patchbay"))
        self.jobs_run(pb)


class Script(QueueCase):
    """The work script's contract, driven directly: what a worker, the supervisor
    and the reaper rely on, without their timing in the way."""

    KINDS = "fix:3:1 followup:3:1 review:3:1 help:3:0 stop:3:0 noop:3:1"

    def op(self, *args):
        out = self.db.call("EVAL", harness.queue_script("work"), 0, args[0], 86400, self.KINDS, *args[1:])
        return [x.decode() if isinstance(x, bytes) else x for x in out[:3]]

    def start(self, consumer):
        try:
            self.db.call("XGROUP", "CREATE", "patchbay:queue", "workers", "0", "MKSTREAM")
        except harness.RespError as e:
            self.assertIn("BUSYGROUP", str(e))
        entry = self.db.call("XREADGROUP", "GROUP", "workers", consumer, "COUNT", 1, "STREAMS", "patchbay:queue", ">")
        eid, fields = entry[0][1][0]
        return self.op("start", eid.decode(), fields[1].decode(), consumer, 2000, 1000, "")

    def test_a_run_taken_away_cannot_finish_the_job(self):
        self.use_redis()
        [job] = self.enqueue({"kind": "noop"})
        outcome, run_a, _ = self.start("A")
        self.assertEqual((outcome, run_a), ("run", "1"))
        # A is declared dead: its entry goes back, and B takes the job
        self.assertEqual(self.op("handback", "A", "crash", "was killed by signal 9", "1")[:2], ["ok", "1"])
        self.assertEqual(self.op("finish", job, run_a, "A", "succeeded", "", 1)[0], "lost")  # not "already"
        outcome, run_b, _ = self.start("B")
        self.assertEqual((outcome, run_b), ("run", "2"))
        # A comes back to life: neither its heartbeat nor its result count any more
        self.assertEqual(self.op("heartbeat", job, run_a, "A", 2000)[0], "lost")
        self.assertEqual(self.op("finish", job, run_a, "A", "succeeded", "", 1)[0], "lost")
        self.assertEqual(self.job(job)["status"], "running")
        self.assertEqual(self.op("finish", job, run_b, "B", "succeeded", "", 1)[0], "succeeded")
        # B's answer got lost and B sends it again: nothing changes
        self.assertEqual(self.op("finish", job, run_b, "B", "succeeded", "", 1)[:2], ["already", "succeeded"])
        self.assertEqual(len([m for m in self.db.job_log(job) if "-> succeeded" in m]), 1)
        self.assertEqual((self.job(job)["attempts"], self.job(job)["reclaims"]), ("2", "1"))
        self.assertEqual(self.db.call("XPENDING", "patchbay:queue", "workers")[0], 0)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Webhook(QueueCase):
    def test_webhook_jobs_reach_workers_and_fail_clearly_without_credentials(self):
        self.use_redis()
        pb = self.patchbay(redis_url=self.r.url)
        c = pb.conn()
        status, body, delivery = post_delivery(c, "issue_comment", harness.issue_comment(number=3))
        self.assertEqual(status, 202)
        help_job = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay help", number=4))[1]["job"]
        c.close()
        self.work(2)
        rec = self.wait_status(body["job"], FINAL)
        self.assertEqual((rec["kind"], rec["status"], rec["attempts"], rec["delivery"]), ("fix", "failed", "1", delivery))
        # no APP_ID: nothing can be said to GitHub, and retrying will not change that
        self.assertIn("APP_ID is not set", rec["error"])
        self.assertEqual(self.wait_status(help_job, FINAL)["status"], "failed")
        self.assertTrue(any("APP_ID is not set" in line for line in self.db.job_log(body["job"])))

    def test_supersede_and_stop(self):
        self.use_redis()
        pb = self.patchbay(redis_url=self.r.url)
        c = pb.conn()
        first = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay fix a", number=8))[1]["job"]
        second = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay fix b", number=8))[1]["job"]
        rec = self.job(first)
        self.assertEqual((rec["status"], rec["error"]), ("cancelled", "superseded by job %s" % second))
        self.assertEqual(self.db.call("TTL", "patchbay:job:" + first) > 0, True)  # final: retention applies
        # someone else's newer instruction supersedes nothing: nobody's request is dropped by another's comment
        third = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay fix c", number=8,
                                                                        sender="hubot"))[1]["job"]
        self.assertEqual(self.job(second)["status"], "queued")
        self.assertNotIn("supersedes", self.job(third))

        # "@patchbay stop" on an issue whose job is running: cancelled within 2 s. A noop
        # that sleeps stands in for a long fix job of octocat's on issue 9.
        self.work(1)
        [long_job] = self.enqueue({"kind": "noop", "noop_sleep_ms": "60000", "repo": "octo-org/hello-world",
                                   "number": "9", "sender": "octocat"})
        self.db.call("HSET", "patchbay:active:octo-org/hello-world#9", "fix:octocat", long_job)
        self.wait_status(long_job, "running")
        # another person's stop only claims it: the permission check is a worker's, and without
        # the App (no APP_ID here) it never passes, so the job runs on
        status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay stop", number=9,
                                                                                 sender="mallory"))
        self.assertEqual(status, 202)
        self.assertEqual((self.job(body["job"])["stops"], self.job(body["job"])["claims"]), ("", long_job))
        self.assertEqual(self.job(long_job)["status"], "running")
        self.assertNotIn("cancel_requested", self.job(long_job))
        # its own sender's stop needs nobody's leave and no free worker
        status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment(body="@patchbay stop", number=9))
        self.assertEqual(status, 202)
        self.assertEqual((self.job(body["job"])["stops"], self.job(body["job"])["claims"]), (long_job, ""))
        self.assertEqual(self.wait_status(long_job, FINAL, timeout=3)["status"], "cancelled")
        self.assertTrue(any("cancel requested: stopped by octocat" in line for line in self.db.job_log(long_job)))
        c.close()
        # the superseded job never ran; the one that superseded it did
        self.assertEqual(self.wait_status(second, FINAL)["status"], "failed")
        self.assertEqual(self.job(first)["attempts"], "0")

    def test_metrics_show_the_queue(self):
        self.use_redis()
        pb = self.patchbay(redis_url=self.r.url)
        self.enqueue({"kind": "noop"}, {"kind": "fix", "repo": "o/r", "number": "1"})

        def has(*needles):
            text = self.metrics(pb)
            return text if all(n in text for n in needles) else None
        # no workers yet: the jobs wait, and the oldest one ages
        text = wait_for(lambda: has('patchbay_queue_depth{kind="noop"} 1', 'patchbay_queue_depth{kind="fix"} 1'), 10,
                        what="queue depth in /metrics")
        age = float(re.search(r'patchbay_queue_oldest_age_seconds\{kind="noop"\} ([0-9.]+)', text).group(1))
        self.assertGreaterEqual(age, 0)
        self.assertIn("patchbay_queue_metrics_up 1", text)
        self.work(2)
        wait_for(lambda: has('patchbay_jobs_total{kind="noop",outcome="succeeded"} 1',
                             'patchbay_jobs_total{kind="fix",outcome="failed"} 1',
                             'patchbay_queue_depth{kind="noop"} 0', 'patchbay_workers{state="idle"} 2',
                             'patchbay_job_runs_started_total{kind="noop"} 1',
                             'patchbay_job_duration_seconds_count{kind="noop"} 1'), 15,
                 what="job outcomes and idle workers in /metrics")
        [busy] = self.enqueue({"kind": "noop", "noop_sleep_ms": "30000"})
        self.wait_status(busy, "running")
        wait_for(lambda: has('patchbay_workers{state="busy"} 1'), 10, what="a busy worker in /metrics")
        # Redis gone: the section says so instead of showing stale figures
        self.r.kill()
        wait_for(lambda: has("patchbay_queue_metrics_up 0"), 15, what="queue metrics marked down")
        self.r.start()


class Run(QueueCase):
    def test_run_is_server_workers_and_redis(self):
        pb = self.patchbay(command="run", env={"PATCHBAY_CONFIG": self.config()})
        sock = os.path.join(pb.data_dir, "redis", "redis.sock")
        db = harness.RedisClient(sock)
        [job] = harness.enqueue(db, [{"kind": "noop", "noop_trace": "1"}])
        wait_for(lambda: db.job(job).get("status") == "succeeded", 15, what="the job to run inside `run`")
        c = pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment())
        c.close()
        self.assertEqual(status, 202)
        wait_for(lambda: db.job(body["job"]).get("status") == "failed", 15, what="the webhook's job to run")
        db.close()
        self.assertEqual(pb.stop(), 0)
        log = pb.log_text()
        # workers stop before the Redis they write to
        self.assertLess(log.index("exited with status 0"), log.index("private Redis stopped"))


if __name__ == "__main__":
    harness.main()
