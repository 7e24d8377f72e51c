"""GitHub's rate limits, as a user of a busy installation meets them.

The real binary (`patchbay run`, two or three workers) against the local
fake GitHub, which plays GitHub's limits as github.com does: a limit it
answered holds the whole installation until it ends (x-ratelimit-reset,
retry-after, or a minute), and every request before that is refused again
and recorded as a violation; with content limits configured, a
content-generating request past one is refused as a secondary limit. What a
user sees is asserted: every job still ends with its pull request and its
reactions, GitHub was never called while it had asked patchbay to wait, the
calls GitHub saw stayed under both content budgets, and /metrics and the
dashboard said which installation waited and until when.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402
from test_fix_jobs import FixJobCase  # noqa: E402

CONTENT = ("POST", "PATCH", "PUT", "DELETE")
TOKEN = "rate-limit-test-dashboard-token-0123456789"


class RateLimits(FixJobCase):
    def start_workers(self, extra="", workers=2):
        # the agent runs unsandboxed: these jobs are about GitHub's limits, and
        # several sandboxes starting at once on a shared test machine is another test's subject
        return self.start_app("workers:\n  concurrency: %d\n  retry_delay_ms: 200\n  max_attempts: 2\n"
                              "agent:\n  isolation: none\n  test_rounds: 1\n%s" % (workers, extra),
                              DASHBOARD_TOKEN=TOKEN)

    def api_calls(self, since=0):
        """GitHub API calls made with installation 7's tokens, in order."""
        return [c for c in self.gh.calls(since) if c["installation_id"] == 7 and c["token_kind"] == "installation"]

    def assert_every_job_made_its_pull_request(self, repo, jobs):
        for job in jobs:
            rec = self.wait_job(job, timeout=120)
            self.assertEqual(rec["status"], "succeeded", rec.get("error"))
            self.assertTrue(rec.get("pr_url"), rec)
        self.assertEqual(len(self.pulls(repo)), len(jobs))

    def reactions(self, repo, number, comment_id):
        [asked] = [c for c in self.comments(repo, number) if c["id"] == comment_id]
        return [r["content"] for r in asked["reactions"]]

    def two_jobs(self, repo):
        """A first job that meets GitHub's limit, and a second one that starts
        on the other worker while the limit holds: both must wait it out.
        (One started earlier could have a request on its way when the limit
        was answered, which GitHub cannot tell from one sent after it.)"""
        first = self.mention(repo, "@patchbay fix add() please", title="add() is wrong")
        wait_for(lambda: any(c["status"] == 403 for c in self.api_calls()), 30, what="GitHub's limit")
        second = self.mention(repo, "@patchbay fix add() please", title="add() is still wrong")
        return first, second

    # ------------------------------------------------------------------

    def test_primary_limit_stops_every_worker_until_the_reset(self):
        repo = self.repo("fix")
        self.start_workers()
        # GitHub answers the first reaction with 403, x-ratelimit-remaining: 0 and
        # a reset two seconds away; until then it refuses everything of installation 7
        reset = int(time.time()) + 3
        self.gh.add_fault("primary", method="POST", path=r"/reactions$", reset=reset, hold=True)
        (n1, c1, j1), (n2, c2, j2) = self.two_jobs(repo)
        self.assert_every_job_made_its_pull_request(repo, [j1, j2])

        calls = self.api_calls()
        refused = [c for c in calls if c["status"] == 403]
        self.assertEqual(len(refused), 1, [(c["method"], c["path"], c["status"]) for c in refused])
        answered_at = refused[0]["ts"] + refused[0]["duration"]
        # no request from any worker between GitHub's 403 and its reset
        early = [(c["method"], c["path"], round(reset - c["ts"], 3)) for c in calls if answered_at <= c["ts"] < reset]
        self.assertEqual(early, [])
        self.assertEqual(self.gh.violations(), [])
        # both workers were at it while GitHub's limit held
        for job in (j1, j2):
            self.assertLess(int(self.db.job(job)["started_at_ms"]) / 1000, reset)
        # the refused reaction was sent again after the wait, and both comments got theirs
        self.assertEqual(self.reactions(repo, n1, c1), ["eyes", "rocket"])
        self.assertEqual(self.reactions(repo, n2, c2), ["eyes", "rocket"])
        again = [c for c in calls if c["method"] == "POST" and c["path"] == refused[0]["path"] and c["status"] < 300]
        self.assertEqual(len(again), 2)  # the same eyes, then the rocket
        self.assertGreaterEqual(again[0]["ts"], reset)
        self.assertEqual(again[0]["body"], refused[0]["body"])

    def test_retry_after_is_honoured_across_two_workers(self):
        repo = self.repo("fix")
        self.start_workers()
        # a secondary limit with retry-after: 3 on the first progress comment
        self.gh.add_fault("secondary", method="POST", path=r"/issues/\d+/comments$", retry_after=3, hold=True)
        (n1, _, j1), (n2, _, j2) = self.two_jobs(repo)
        self.assert_every_job_made_its_pull_request(repo, [j1, j2])

        calls = self.api_calls()
        refused = [c for c in calls if c["status"] == 403]
        self.assertEqual(len(refused), 1, [(c["method"], c["path"], c["status"]) for c in refused])
        answered_at = refused[0]["ts"] + refused[0]["duration"]
        early = [(c["method"], c["path"]) for c in calls if answered_at <= c["ts"] < answered_at + 3 - 0.05]
        self.assertEqual(early, [])
        self.assertEqual(self.gh.violations(), [])
        # each issue still has exactly one progress comment
        for n in (n1, n2):
            mine = [c for c in self.comments(repo, n) if c["user"] == "patchbay[bot]"]
            self.assertEqual(len(mine), 1)
            self.assertIn("patchbay finished", mine[0]["body"])

    def test_a_refused_reaction_arrives_after_the_wait(self):
        repo = self.repo("fix")
        self.start_workers(workers=1)
        self.gh.add_fault("secondary", method="POST", path=r"/reactions$", retry_after=2, hold=True)
        number, comment_id, job = self.mention(repo, "@patchbay fix add() please")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.reactions(repo, number, comment_id), ["eyes", "rocket"])
        posts = [c for c in self.api_calls() if c["method"] == "POST" and c["path"].endswith("/reactions")]
        self.assertEqual([c["status"] for c in posts][:2], [403, 201])
        self.assertEqual(posts[1]["body"], {"content": "eyes"})
        self.assertGreaterEqual(posts[1]["ts"], posts[0]["ts"] + posts[0]["duration"] + 2 - 0.05)
        self.assertEqual(self.gh.violations(), [])

    def test_a_burst_stays_under_both_content_budgets(self):
        # GitHub's 80 a minute and 500 an hour, scaled down so the test runs in
        # seconds: 5 in any 2 s and 12 in any 10 s, for patchbay and for the fake alike
        limits = [(5, 2), (12, 10)]
        self.gh.configure(content_limits=limits)
        repo = self.repo("fix")
        self.start_workers('github:\n  content_limits: ["5/2s", "12/10s"]\n', workers=3)
        seen = {"metrics": set(), "dashboard": set()}
        stop = threading.Event()

        def watch():
            # what an operator sees while it happens
            while not stop.is_set():
                try:
                    c = self.pb.conn(timeout=2)
                    c.request("GET", "/metrics")
                    for line in c.getresponse().read().decode().splitlines():
                        if line.startswith("patchbay_github_waiting{"):
                            seen["metrics"].add(line)
                    c.request("GET", "/api/github", headers={"Authorization": "Bearer " + TOKEN})
                    for w in json.loads(c.getresponse().read())["waits"]:
                        seen["dashboard"].add((w["installation"], w["reason"]))
                    c.close()
                except (OSError, ValueError):
                    pass
                stop.wait(0.3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            jobs = []
            for i in range(5):
                jobs.append(self.mention(repo, "@patchbay fix add() please", title="add() is wrong %d" % i)[2])
            self.assert_every_job_made_its_pull_request(repo, jobs)
        finally:
            stop.set()
            watcher.join(5)
        sent = sorted(c["ts"] for c in self.api_calls() if c["method"] in CONTENT)
        self.assertEqual(self.gh.violations(), [], [(round(t - sent[0], 3)) for t in sent])
        # every job made its content calls (reactions, comment, pull request, edits)
        self.assertGreaterEqual(len(sent), 5 * 4)
        for calls, window in limits:
            worst = max(sum(1 for t in sent if s <= t < s + window) for s in sent)
            self.assertLessEqual(worst, calls, "%d content calls within %d s" % (worst, window))
        # the budget was what held them back, and the operator could see it
        self.assertIn('patchbay_github_waiting{installation="7",reason="content"} 1', seen["metrics"])
        self.assertIn((7, "content"), seen["dashboard"])

    def test_a_wait_longer_than_max_wait_hands_the_job_back(self):
        repo = self.repo("fix")
        self.start_workers("github:\n  max_wait_s: 1\n", workers=1)
        reset = int(time.time()) + 8  # far enough that even the sanitizer build meets it with seconds to go
        self.gh.add_fault("primary", method="POST", path=r"/issues/\d+/comments$", reset=reset, hold=True)
        number, comment_id, job = self.mention(repo, "@patchbay fix add() please")
        # the job waits in the queue, holding no worker and spending no attempt
        wait_for(lambda: "waiting" if self.db.job(job).get("retry_at_ms") else None, 30,
                 what="the job to be handed back")
        rec = self.wait_job(job, timeout=60)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(int(rec["attempts"]), 1)
        log = "\n".join(self.db.job_log(job))
        self.assertIn("this attempt does not count", log)
        self.assertEqual(self.gh.violations(), [])
        self.assertEqual(len(self.pulls(repo)), 1)
        mine = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertEqual(len(mine), 1)


if __name__ == "__main__":
    harness.main()
