"""What a fix job asks of GitHub: few calls, and never one twice.

GitHub lets an installation make 80 content-generating calls a minute and 500
an hour, so each call a job saves is capacity for another job. Read from the
fake GitHub's call log, as GitHub would count them: a fix job makes five
content calls (eyes, the progress comment, the pull request, the final edit,
rocket), reads nothing the webhook already told it, asks for the bot's
identity once for all jobs, and edits its checklist only when a person would
notice: at most once every five seconds while it runs, always at the end.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402
from test_fix_jobs import FixJobCase  # noqa: E402

CONTENT = ("POST", "PATCH", "PUT", "DELETE")


class GitHubCalls(FixJobCase):
    def first_mention(self, repo, text="@patchbay fix add() please", title="add() is wrong"):
        """A mention on a new issue, delivered as GitHub delivers it: the
        payload's issue is the issue, with the comments it had before this one."""
        issue = self.gh.add_issue(repo, title, body="add(2, 3) gives -1.", user="carol")
        comment = self.gh.add_comment(repo, issue["number"], text, user="alice")
        payload = harness.issue_comment(body=text, association="COLLABORATOR", sender="alice",
                                        number=issue["number"], repo=repo, installation=7,
                                        comment_id=comment["id"], title=title)
        payload["issue"]["body"] = issue["body"]
        payload["issue"]["comments"] = 0
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        return issue["number"], comment["id"], body["job"]

    def rest_calls(self, since=0):
        return [c for c in self.gh.calls(since) if c["installation_id"] == 7 and c["token_kind"] == "installation"]

    def content_calls(self, rec, calls):
        """The job's content calls, with its checklist's edits while it ran set
        apart: at most one every 5 s, so a job done within 5 s has none (a slow
        machine, or the sanitizer build, may take longer)."""
        edit = "/issues/comments/%s" % rec["progress_comment_id"]
        content = [c for c in calls if c["method"] in CONTENT]
        final = max(i for i, c in enumerate(content) if c["method"] == "PATCH" and c["path"].endswith(edit))
        meanwhile = [c for i, c in enumerate(content) if i != final and c["method"] == "PATCH" and c["path"].endswith(edit)]
        took_s = (int(rec["finished_at_ms"]) - int(rec["started_at_ms"])) / 1000
        self.assertLessEqual(len(meanwhile), int(took_s / 5), took_s)
        return [c for c in content if c not in meanwhile], len(meanwhile)

    def test_a_fix_job_makes_five_content_calls_and_reads_nothing_twice(self):
        repo = self.repo("fix")
        self.start(agent_section="agent:\n  isolation: none\n  test_rounds: 1\n")
        number, comment_id, job = self.first_mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        calls = self.rest_calls()
        content, edits_meanwhile = self.content_calls(rec, calls)
        content = [(c["method"], c["path"]) for c in content]
        self.assertEqual(content, [
            ("POST", "/repos/%s/issues/comments/%d/reactions" % (repo, comment_id)),  # eyes
            ("POST", "/repos/%s/issues/%d/comments" % (repo, number)),               # the checklist
            ("POST", "/repos/%s/pulls" % repo),
            ("PATCH", "/repos/%s/issues/comments/%s" % (repo, rec["progress_comment_id"])),  # its last words
            ("POST", "/repos/%s/issues/comments/%d/reactions" % (repo, comment_id)),  # rocket
        ])
        reads = [c["path"] + ("?" + "&".join("%s=%s" % kv for kv in sorted(c["query"].items())) if c["query"] else "")
                 for c in calls if c["method"] == "GET"]
        self.assertEqual(len(reads), len(set(reads)), reads)
        # the issue and its (empty) conversation came with the webhook; the pull
        # request is created, not looked for first
        self.assertNotIn("/repos/%s/issues/%d" % (repo, number), reads)
        self.assertNotIn("/repos/%s/issues/%d/comments" % (repo, number), reads)
        self.assertFalse([r for r in reads if r.startswith("/repos/%s/pulls" % repo)], reads)
        # what the job still has to ask: the requester's permission, live, and the repository's settings
        self.assertIn("/repos/%s/collaborators/alice/permission" % repo, reads)
        self.assertIn("/repos/%s/contents/.github/patchbay.yml" % repo, reads)

        # a second job asks no more of GitHub: not even the bot's identity again
        seq = max(c["seq"] for c in self.gh.calls())
        number2, _, job2 = self.first_mention(repo, title="add() is wrong again")
        rec2 = self.wait_job(job2)
        self.assertEqual(rec2["status"], "succeeded", rec2.get("error"))
        calls2 = self.rest_calls(seq)
        content2, edits_meanwhile2 = self.content_calls(rec2, calls2)
        self.assertEqual(len(content2), 5)
        self.assertEqual([c for c in self.gh.calls() if c["path"].startswith("/users/")][1:], [])
        # what the person sees is unchanged: one checklist, finished, and both reactions
        [progress] = [c for c in self.comments(repo, number2) if c["user"] == "patchbay[bot]"]
        self.assertIn("patchbay finished", progress["body"])
        self.assertIn("- [x] Run the agent", progress["body"])
        self.assertEqual(len(progress["history"]), 1 + edits_meanwhile2)  # within 5 s: once, at the end

    def test_a_label_started_fix_adds_only_the_working_label(self):
        repo = self.repo("fix")
        self.start(agent_section="agent:\n  isolation: none\n  test_rounds: 1\n")
        issue = self.gh.add_issue(repo, "add() is wrong", body="add(2, 3) gives -1.", user="carol")
        payload = harness.issues_labeled(label="patchbay", sender="alice", number=issue["number"], repo=repo,
                                         installation=7)
        payload["issue"].update({"title": issue["title"], "body": issue["body"], "comments": 0})
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issues", payload)
        c.close()
        self.assertEqual(status, 202, body)
        rec = self.wait_job(body["job"])
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        content, _ = self.content_calls(rec, self.rest_calls())
        content = [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in content]
        # eyes, the working label, the checklist, the pull request, its last edit, rocket, the label off
        self.assertEqual(content, [("POST", "reactions"), ("POST", "labels"), ("POST", "comments"), ("POST", "pulls"),
                                   ("PATCH", rec["progress_comment_id"]), ("POST", "reactions"),
                                   ("DELETE", "patchbay%3Aworking")])

    def test_a_long_step_shows_while_it_runs_and_edits_stay_seconds_apart(self):
        repo = self.repo("sleep", extra={".agent-sleep": "9\n"})
        self.start(agent_section="agent:\n  isolation: none\n  test_rounds: 1\n")
        number, _, job = self.first_mention(repo)

        def shown_running():
            mine = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
            return mine and "⏳ Run the agent" in mine[0]["body"] and self.db.job(job)["status"] == "running"

        # the agent's step shows within the interval of its start, while the agent still thinks
        wait_for(shown_running, 30, interval=0.1, what="the checklist to show the agent at work")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        edits = [c["ts"] for c in self.rest_calls()
                 if c["method"] == "PATCH" and c["path"].endswith("/comments/%s" % rec["progress_comment_id"])]
        self.assertGreaterEqual(len(edits), 2)
        # at most one edit every 5 s while it ran; the last one comes at the end, whenever that is
        for a, b in zip(edits[:-2], edits[1:-1]):
            self.assertGreaterEqual(b - a, 5 - 0.05, edits)
        took_s = (int(rec["finished_at_ms"]) - int(rec["started_at_ms"])) / 1000
        self.assertLessEqual(len(edits), 1 + int(took_s / 5) + 1)
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("patchbay finished", progress["body"])


if __name__ == "__main__":
    harness.main()
