"""Review jobs end to end: a pull request gets one review GitHub accepts.

The real binary (`patchbay run`), the local fake GitHub (which refuses a
whole review with 422 when one comment's anchor breaks GitHub's rules, as
GitHub does), and a scripted agent committed in the repository that reads
the numbered diff in its task and writes findings the way an agent would:
some on changed lines, some slightly off, some far outside the diff, one
malformed. Assertions are what people see on the pull request: the review,
its inline comments and summary, the check run, reactions and comments.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402

AGENT = r'''
import json, os, re, sys, time
mode = open(".agent-mode").read().strip()
task = open(os.environ["PATCHBAY_PROMPT_FILE"]).read()
assert sys.stdin.read() == task
out = os.environ["PATCHBAY_REVIEW_FILE"]
def right_line(text):
    """The RIGHT number of an added line, read from the numbered diff."""
    for line in task.splitlines():
        m = re.match(r"^ {0,6}\d* +(\d+) \+(.*)$", line)
        if m and m.group(2) == text:
            return int(m.group(1))
    raise SystemExit("no added line %r in the task" % text)
if mode.startswith("sleep"):
    time.sleep(float(mode.split()[1]))
if mode == "hang":
    time.sleep(3600)
if mode == "nothing":
    json.dump({"summary": "A clean change; nothing to add.", "findings": []}, open(out, "w"))
    sys.exit(0)
mul = right_line("    return a * b")
findings = [
    {"path": "calc.py", "line": mul, "severity": "error",
     "body": "mul() is fine, but @alice should see that <!-- hidden --> this has no test.",
     "suggestion": "    return a * b  # tested in test_calc.py\n"},
    {"path": "calc.py", "line": mul + 1, "severity": "warning",
     "body": "One line past the hunk: should move onto the nearest changed line."},
    {"path": "calc.py", "line": 400, "severity": "warning", "body": "Far outside the diff."},
    {"path": "nowhere.py", "line": 3, "severity": "info", "body": "A file not in the pull request."},
    {"path": "calc.py", "line": "x", "body": "malformed"},
]
with open(out, "w") as f:
    f.write(json.dumps({"summary": "add() now adds; mul() is new.", "findings": findings[:2]}) + "\n")
    for x in findings[2:]:
        f.write(json.dumps(x) + "\n")
'''

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
CALC_PR = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


class ReviewJobs(harness.AppCase):
    # -- set-up helpers

    def repo(self, mode, review="{ auto: true }", draft=False, name="octo/calc"):
        config = "agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 30\nreview: %s\n" % review
        self.gh.create_repo(name, private=True, files={
            "calc.py": CALC, ".agent-mode": mode + "\n", ".patchbay-agent.py": AGENT,
            ".github/patchbay.yml": config})
        self.gh.add_installation(7, name.split("/")[0], repositories=[name])
        self.gh.set_collaborator(name, "alice", "write")
        self.gh.set_collaborator(name, "rita", "read")
        self.gh.commit(name, "feature", {"calc.py": CALC_PR, "notes.bin": {"base64": "AAECAwQF"}},
                       message="Fix add, add mul")
        pr = self.gh.add_pull(name, "feature", title="Fix add() and add mul()", body="Please review.",
                              user="alice", draft=draft)
        return name, pr["number"]

    def start(self):
        self.start_app("workers:\n  concurrency: 1\n  retry_delay_ms: 200\n  max_attempts: 2\n"
                       "agent:\n  isolation: %s\n" % harness.ISOLATION)

    def post(self, event, payload):
        c = self.pb.conn()
        status, body, _ = post_delivery(c, event, payload)
        c.close()
        self.assertEqual(status, 202, body)
        return body["job"]

    def ask(self, repo, number, text="@patchbay review", user="alice"):
        comment = self.gh.add_comment(repo, number, text, user=user)
        payload = harness.issue_comment(body=text, association="COLLABORATOR", sender=user, number=number,
                                        repo=repo, installation=7, comment_id=comment["id"], on_pr=True,
                                        issue_author="alice", title="Fix add() and add mul()")
        return comment["id"], self.post("issue_comment", payload)

    def opened(self, repo, number, action="opened", draft=False):
        pr = [p for p in self.gh.state()["pulls"] if p["repo"] == repo and p["number"] == number][0]
        payload = harness.pull_request(action=action, author="alice", number=number, repo=repo, sender="alice",
                                       draft=draft)
        payload["pull_request"]["head"]["sha"] = pr["head_sha"]
        return self.post("pull_request", payload)

    def wait_job(self, job, timeout=90):
        final = ("succeeded", "failed", "dead", "cancelled")
        return wait_for(lambda: self.db.job(job) if self.db.job(job).get("status") in final else None,
                        timeout, interval=0.2, what="job %s to finish" % job)

    def reviews(self, repo, number):
        return [v for v in self.gh.state()["reviews"] if v["repo"] == repo and v["number"] == number]

    def review_comments(self, review_id):
        return [c for c in self.gh.state()["review_comments"] if c["review_id"] == review_id]

    def check_runs(self, repo):
        return [c for c in self.gh.state()["check_runs"] if c["repo"] == repo]

    def comments_by_bot(self, repo, number):
        return [c for c in self.gh.state()["comments"]
                if c["repo"] == repo and c["number"] == number and c["user"] == "patchbay[bot]"]

    def head(self, repo, number):
        return [p for p in self.gh.state()["pulls"] if p["repo"] == repo and p["number"] == number][0]["head_sha"]

    # -- what people see

    def test_review_on_request_is_anchored_and_complete(self):
        repo, number = self.repo("findings")
        self.start()
        comment_id, job = self.ask(repo, number)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [review] = self.reviews(repo, number)
        head = self.head(repo, number)
        self.assertEqual(review["user"], "patchbay[bot]")
        self.assertEqual(review["commit_id"], head)
        self.assertEqual(review["state"], "COMMENTED")
        self.assertIn("<!-- patchbay-review commit=%s" % head, review["body"])
        # two inline comments, each where GitHub put it (the fake refuses a bad anchor)
        comments = sorted(self.review_comments(review["id"]), key=lambda c: c["line"])
        self.assertEqual(len(comments), 2, [c["body"][:60] for c in comments])
        self.assertTrue(all(c["path"] == "calc.py" and c["side"] == "RIGHT" for c in comments))
        self.assertEqual(comments[0]["line"], 10)  # "    return a * b" in the head's calc.py
        self.assertIn("```suggestion\n    return a * b  # tested in test_calc.py\n```", comments[0]["body"])
        # the agent's text cannot ping anyone or hide anything
        self.assertNotIn("@alice", comments[0]["body"])
        self.assertNotIn("hidden", comments[0]["body"])
        # the rest is in the summary, with the coverage table; nothing is silently missed
        self.assertIn("add() now adds; mul() is new.", review["body"])
        self.assertIn("Far outside the diff.", review["body"])
        self.assertIn("nowhere.py", review["body"])
        self.assertIn("1 finding from the agent did not follow the findings schema", review["body"])
        self.assertIn("notes.bin", review["body"])
        self.assertRegex(review["body"], r"(?i)binary")
        # the check run on the head commit, completed with the counts
        [run] = self.check_runs(repo)
        self.assertEqual((run["name"], run["head_sha"], run["status"]), ("patchbay review", head, "completed"))
        self.assertEqual(run["conclusion"], "neutral")
        self.assertEqual(run["output"]["title"], "4 findings: 1 error, 2 warnings, 1 note")
        self.assertIn("2 inline, 2 in the review's summary", run["output"]["summary"])
        # eyes, then rocket, on the request
        [asked] = [c for c in self.gh.state()["comments"] if c["id"] == comment_id]
        self.assertEqual([r["content"] for r in asked["reactions"]], ["eyes", "rocket"])
        self.assertEqual(rec["reviewed_sha"], head)
        self.assertEqual(self.comments_by_bot(repo, number), [])

    def test_the_same_commit_is_reviewed_once(self):
        repo, number = self.repo("findings")
        self.start()
        _, first = self.ask(repo, number)
        self.assertEqual(self.wait_job(first)["status"], "succeeded")
        _, again = self.ask(repo, number, text="@patchbay review again please")
        rec = self.wait_job(again)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(len(self.reviews(repo, number)), 1)
        self.assertEqual(len(self.check_runs(repo)), 1)
        [said] = self.comments_by_bot(repo, number)
        self.assertIn("already reviewed", said["body"])
        # a new commit is a new review
        self.gh.commit(repo, "feature", {"calc.py": CALC_PR + "\n\ndef div(a, b):\n    return a / b\n"})
        _, third = self.ask(repo, number)
        self.assertEqual(self.wait_job(third)["status"], "succeeded")
        reviews = self.reviews(repo, number)
        self.assertEqual(len(reviews), 2)
        self.assertEqual(reviews[1]["commit_id"], self.head(repo, number))

    def test_auto_review_follows_the_repository_settings(self):
        repo, number = self.repo("nothing")
        self.start()
        rec = self.wait_job(self.opened(repo, number))
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [review] = self.reviews(repo, number)
        self.assertIn("A clean change; nothing to add.", review["body"])
        [run] = self.check_runs(repo)
        self.assertEqual((run["conclusion"], run["output"]["title"]), ("neutral", "No findings"))
        # a push reviews again only with review.synchronize
        self.gh.commit(repo, "feature", {"calc.py": CALC_PR + "# more\n"})
        rec = self.wait_job(self.opened(repo, number, action="synchronize"))
        self.assertEqual(rec["status"], "succeeded")
        self.assertIn("review.synchronize", rec["outcome"])
        self.assertEqual(len(self.reviews(repo, number)), 1)

    def test_auto_review_off_and_drafts_do_nothing(self):
        repo, number = self.repo("nothing", review="{ auto: false }")
        self.start()
        rec = self.wait_job(self.opened(repo, number))
        self.assertEqual(rec["status"], "succeeded")
        self.assertIn("review.auto", rec["outcome"])
        self.assertEqual((self.reviews(repo, number), self.check_runs(repo)), ([], []))
        # drafts: skipped when auto, reviewed when a person asks
        repo2, number2 = self.repo("nothing", draft=True, name="octo/drafty")
        rec = self.wait_job(self.opened(repo2, number2, draft=True))
        self.assertIn("draft", rec["outcome"])
        self.assertEqual(self.reviews(repo2, number2), [])
        _, job = self.ask(repo2, number2)
        self.assertEqual(self.wait_job(job)["status"], "succeeded")
        self.assertEqual(len(self.reviews(repo2, number2)), 1)

    def test_a_push_during_a_review_supersedes_it(self):
        repo, number = self.repo("sleep 4", review="{ auto: true, synchronize: true }")
        self.start()
        first = self.opened(repo, number)
        wait_for(lambda: self.db.job(first).get("status") == "running" and self.check_runs(repo), 30,
                 interval=0.1, what="the first review to start")
        old_head = self.head(repo, number)
        self.gh.commit(repo, "feature", {"calc.py": CALC_PR + "# pushed during the review\n"})
        second = self.opened(repo, number, action="synchronize")
        rec = self.wait_job(first)
        self.assertEqual(rec["status"], "cancelled", rec.get("error"))
        self.assertTrue(any("superseded by job %s" % second in line for line in self.db.job_log(first)))
        rec2 = self.wait_job(second)
        self.assertEqual(rec2["status"], "succeeded", rec2.get("error"))
        [review] = self.reviews(repo, number)
        self.assertEqual(review["commit_id"], self.head(repo, number))
        runs = {r["head_sha"]: r for r in self.check_runs(repo)}
        self.assertEqual(runs[old_head]["conclusion"], "cancelled")
        new_run = runs[self.head(repo, number)]
        self.assertEqual((new_run["status"], new_run["conclusion"]), ("completed", "neutral"))

    def test_request_changes_only_when_configured(self):
        repo, number = self.repo("findings", review="{ auto: false, request_changes: true }")
        self.start()
        _, job = self.ask(repo, number)
        self.assertEqual(self.wait_job(job)["status"], "succeeded")
        [review] = self.reviews(repo, number)
        self.assertEqual(review["state"], "CHANGES_REQUESTED")
        [run] = self.check_runs(repo)
        self.assertEqual(run["conclusion"], "failure")

    def test_a_reader_is_refused_politely(self):
        repo, number = self.repo("findings")
        self.start()
        comment_id, job = self.ask(repo, number, user="rita")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("refused", rec["error"])
        [said] = self.comments_by_bot(repo, number)
        self.assertIn("your access is **read**", said["body"])
        self.assertEqual((self.reviews(repo, number), self.check_runs(repo)), ([], []))

    def test_an_agent_that_hangs_fails_the_check_and_says_so(self):
        repo, number = self.repo("hang")
        self.gh.commit(repo, "main", {".github/patchbay.yml":
                                      "agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 2\n"})
        self.start()
        comment_id, job = self.ask(repo, number)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("timed out", rec["error"])
        [run] = self.check_runs(repo)
        self.assertEqual((run["status"], run["conclusion"]), ("completed", "failure"))
        [said] = self.comments_by_bot(repo, number)
        self.assertIn("could not review", said["body"])
        [asked] = [c for c in self.gh.state()["comments"] if c["id"] == comment_id]
        self.assertEqual([r["content"] for r in asked["reactions"]], ["eyes", "confused"])
        self.assertEqual(self.reviews(repo, number), [])


if __name__ == "__main__":
    harness.main()
