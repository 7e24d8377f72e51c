"""Fix jobs end to end: a mention on an issue becomes a pull request.

The real binary (`patchbay run`: webhook server, workers, private queue),
the local fake GitHub with git over smart HTTP, and a scripted agent that
edits files the way a real agent would (committed in the test repository and
chosen by its .github/patchbay.yml, as a team would choose its agent).
Assertions are what a user sees on GitHub: the branch and its commit, the
pull request, the comments and reactions, and that no token leaks anywhere.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402

AGENT = r'''
import os, sys, time, subprocess
mode = open(".agent-mode").read().strip()
prompt = open(os.environ["PATCHBAY_PROMPT_FILE"]).read()
stdin = sys.stdin.read()
assert stdin == prompt, "the task comes on stdin too"
def summary(text):
    open(os.environ["PATCHBAY_SUMMARY_FILE"], "w").write(text)
def calc(body):
    src = open("calc.py").read().replace("return a - b", body)
    open("calc.py", "w").write(src)
if mode == "fix":
    calc("return a + b")
    summary("Make add() add\n\nadd() subtracted its arguments.")
elif mode == "two-rounds":
    if "The tests failed" in prompt:
        src = open("calc.py").read()
        open("calc.py", "w").write(src.replace("return a * b", "return a + b"))
        summary("Make add() add, second try\n\nThe first try multiplied.")
    else:
        calc("return a * b")
        summary("Make add() multiply\n\nA guess.")
elif mode == "two-rounds-testing":
    # as agents do: change, then run the tests themselves (Python writes __pycache__;
    # the guess differs in size from the fix, or a .pyc of the same second would be reused)
    if "The tests failed" in prompt:
        src = open("calc.py").read()
        open("calc.py", "w").write(src.replace("return a * b  # a guess", "return a + b"))
        summary("Make add() add, second try\n\nThe first try multiplied.")
    else:
        calc("return a * b  # a guess")
        summary("Make add() multiply\n\nA guess.")
    subprocess.run(["python3", "test_calc.py"], capture_output=True)
elif mode == "always-wrong":
    calc("return a * b")
    summary("Make add() multiply")
elif mode == "nochange":
    print("looked around, nothing to change")
    summary("The code is already right; nothing to change.")
elif mode == "silent":
    pass
elif mode == "forbidden":
    os.makedirs(".github/workflows", exist_ok=True)
    open(".github/workflows/deploy.yml", "w").write("on: push\n")
    calc("return a + b")
    summary("Fix add() and add a workflow")
elif mode == "snoop":
    seen = "\n".join("%s=%s" % kv for kv in sorted(os.environ.items()))
    seen += "\n" + open(".git/config").read()
    seen += subprocess.run(["git", "config", "--list"], capture_output=True, text=True).stdout
    calc("return a + b")
    summary("Fix add()\n\n```\n" + seen + "\n```")
elif mode == "sleep":
    print("thinking", flush=True)
    time.sleep(float(open(".agent-sleep").read()) if os.path.exists(".agent-sleep") else 60)
    calc("return a + b")
    summary("Make add() add, slowly")
elif mode == "followup":
    open("calc.py", "a").write("\n\ndef add_floats(a, b):\n    return float(a) + float(b)\n")
    summary("Add add_floats()")
elif mode == "hang":
    time.sleep(3600)
elif mode == "leak-file":
    calc("return a + b")
    open("settings.py", "w").write("API_KEY = %r\n" % os.environ["ANTHROPIC_API_KEY"])
    summary("Fix add() and configure the client")
elif mode == "leak-summary":
    calc("return a + b")
    summary("Make add() add\n\nMy key is %s and I found ghp_%s in the logs." % (
        os.environ["ANTHROPIC_API_KEY"], "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"))
'''

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\nassert add(2, 3) == 5, 'add(2, 3) is %r' % add(2, 3)\nprint('ok')\n"


class FixJobCase(harness.AppCase):
    # -- set-up helpers

    def repo(self, mode, name="octo/hello", config=None, extra=None, gitignore=True):
        files = {"calc.py": CALC, "test_calc.py": TEST, ".agent-mode": mode + "\n", ".patchbay-agent.py": AGENT,
                 ".github/patchbay.yml": config if config is not None else
                 "test: python3 -B test_calc.py\nagent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 60\n"}
        if gitignore:
            files[".gitignore"] = "__pycache__/\n"
        files.update(extra or {})
        self.gh.create_repo(name, private=True, files=files)
        self.gh.add_installation(7, name.split("/")[0], repositories=[name])
        self.gh.set_collaborator(name, "alice", "write")
        return name

    def start(self, agent_section=None, **env):
        if agent_section is None:
            agent_section = "agent:\n  isolation: %s\n  test_rounds: 1\n" % env.pop("isolation", harness.ISOLATION)
        return self.start_app("workers:\n  concurrency: 1\n  retry_delay_ms: 200\n  max_attempts: 2\n" +
                              agent_section, **env)

    def mention(self, repo, text, user="alice", title="add() is wrong"):
        issue = self.gh.add_issue(repo, title, body="add(2, 3) gives -1.", user="carol")
        comment = self.gh.add_comment(repo, issue["number"], text, user=user)
        payload = harness.issue_comment(body=text, association="COLLABORATOR", sender=user, number=issue["number"],
                                        repo=repo, installation=7, comment_id=comment["id"], title=title)
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        return issue["number"], comment["id"], body["job"]

    def wait_job(self, job, timeout=90, statuses=("succeeded", "failed", "dead", "cancelled")):
        return wait_for(lambda: self.db.job(job) if self.db.job(job).get("status") in statuses else None,
                        timeout, interval=0.2, what="job %s to finish" % job)

    def comments(self, repo, number):
        st = self.gh.state()
        return [c for c in st["comments"] if c["repo"] == repo and c["number"] == number]

    def git(self, repo, *args):
        return subprocess.run(["git", "--git-dir", self.gh.git.path(repo)] + list(args), capture_output=True,
                              text=True).stdout.strip()

    def pulls(self, repo):
        return [p for p in self.gh.state()["pulls"] if p["repo"] == repo]

    def assert_no_secret_anywhere(self, repo):
        tokens = [t["token"] for t in self.gh.state()["tokens"]]
        self.assertTrue(tokens)
        texts = [self.pb.log_text(), json.dumps(self.gh.state()["comments"]), json.dumps(self.pulls(repo)),
                 self.git(repo, "log", "--all", "-p")]
        for job in self.db.job_ids():
            texts.append(json.dumps({k: v for k, v in self.db.job(job).items() if k != "payload"}))
        for text in texts:
            for t in tokens:
                self.assertNotIn(t, text)
            self.assertNotIn(harness.SECRET, text)
            self.assertNotIn("BEGIN RSA PRIVATE KEY", text)


class FixJobs(FixJobCase):
    # -- the path a user takes

    def test_mention_becomes_a_pull_request(self):
        repo = self.repo("fix")
        self.start()
        number, comment_id, job = self.mention(repo, "@patchbay fix add() please")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        # the branch, with one commit by the App's bot, crediting the requester
        branch = "patchbay/%d-add-is-wrong" % number
        self.assertEqual(rec["branch"], branch)
        log = self.git(repo, "log", "-1", "--format=%an <%ae>|%cn|%B", branch)
        bot_id = self.gh.state()["bot_users"]["patchbay"]["id"]
        self.assertIn("patchbay[bot] <%d+patchbay[bot]@users.noreply.github.com>|patchbay[bot]" % bot_id, log)
        self.assertIn("Co-authored-by: alice <583231+alice@users.noreply.github.com>", log)
        self.assertIn("Fixes #%d." % number, log)
        self.assertIn("return a + b", self.git(repo, "show", branch + ":calc.py"))
        # the pull request
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Make add() add")
        self.assertEqual(pr["head"], branch)
        self.assertFalse(pr["draft"])
        self.assertIn("Fixes #%d" % number, pr["body"])
        self.assertIn("`python3 -B test_calc.py` passed", pr["body"])
        self.assertIn("<!-- patchbay:job=%s -->" % job, pr["body"])
        self.assertEqual(rec["pr_url"], "%s/%s/pull/%d" % (self.gh.web, repo, pr["number"]))
        # one progress comment, edited to its final words
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("patchbay finished", progress["body"])
        self.assertIn("Opened %s" % rec["pr_url"], progress["body"])
        self.assertIn("- [x] Run the tests", progress["body"])
        # edited only when a person would notice: at most once every 5 s while it ran, and at the end
        took_s = (int(rec["finished_at_ms"]) - int(rec["started_at_ms"])) / 1000
        self.assertGreaterEqual(len(progress["history"]), 1)
        self.assertLessEqual(len(progress["history"]), 1 + int(took_s / 5))
        # eyes first, rocket at the end, on the comment that asked
        [asked] = [c for c in self.comments(repo, number) if c["id"] == comment_id]
        self.assertEqual([r["content"] for r in asked["reactions"]], ["eyes", "rocket"])
        # the workspace is gone, the mirror stays for the next job
        self.assertFalse(os.path.exists(os.path.join(self.pb.data_dir, "workspaces", job)))
        self.assertTrue(os.path.isdir(os.path.join(self.pb.data_dir, "mirrors", "octo", "hello.git")))
        self.assert_no_secret_anywhere(repo)

    def test_failing_tests_go_back_to_the_agent(self):
        repo = self.repo("two-rounds")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertIn("round 1: `python3 -B test_calc.py` exited 1", pr["body"])
        self.assertIn("round 2: `python3 -B test_calc.py` passed", pr["body"])
        self.assertEqual(pr["title"], "Make add() add, second try")
        self.assertFalse(pr["draft"])

    def test_tests_still_failing_make_a_draft_that_says_so(self):
        repo = self.repo("always-wrong")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertTrue(pr["draft"])
        self.assertIn("**The tests fail**", pr["body"])
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("The tests still fail", progress["body"])

    def test_an_agent_that_changes_nothing_but_answers_ends_answered(self):
        repo = self.repo("nochange")
        self.start()
        number, comment_id, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        # an answer, plainly marked, and a success: never an empty pull request, never a silent one
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(rec["outcome"], "answered")
        self.assertEqual(self.pulls(repo), [])
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("patchbay answered; no change was made", progress["body"])
        self.assertIn("**No change was made**: the agent looked into it and answered instead.", progress["body"])
        self.assertIn("The code is already right", progress["body"])
        self.assertIn("~~Open a pull request~~", progress["body"])
        [asked] = [c for c in self.comments(repo, number) if c["id"] == comment_id]
        self.assertEqual([r["content"] for r in asked["reactions"]], ["eyes", "rocket"])
        # the dashboard's API shows how it ended, as `jobs show --json` does
        import urllib.request
        token = open(os.path.join(self.pb.data_dir, "dashboard-token")).read().strip()
        req = urllib.request.Request("http://127.0.0.1:%d/api/jobs/%s" % (self.pb.port, job),
                                     headers={"Authorization": "Bearer " + token})
        shown = json.loads(urllib.request.urlopen(req, timeout=10).read())
        self.assertEqual(shown["outcome"], "answered")

    def test_no_change_and_no_answer_is_a_failure(self):
        repo = self.repo("silent")
        self.start()
        number, comment_id, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertEqual(rec["error"], "the agent made no change")
        self.assertNotIn("outcome", rec)
        self.assertEqual(self.pulls(repo), [])
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("made no change", progress["body"])
        [asked] = [c for c in self.comments(repo, number) if c["id"] == comment_id]
        self.assertEqual([r["content"] for r in asked["reactions"]], ["eyes", "confused"])
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")

    def test_forbidden_paths_are_never_pushed(self):
        repo = self.repo("forbidden")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("forbidden path", rec["error"])
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("`.github/workflows/deploy.yml`", progress["body"])
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")

    def test_requester_without_write_access_is_refused_politely(self):
        repo = self.repo("fix")
        self.gh.set_collaborator(repo, "bob", "read")
        self.start()
        number, comment_id, job = self.mention(repo, "@patchbay fix add()", user="bob")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("refused: bob has read permission", rec["error"])
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("only take work from people with write access", progress["body"])
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")

    def test_invalid_repository_config_says_which_key(self):
        repo = self.repo("fix", config="test: python3 test_calc.py\ndraft: perhaps\n")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("line 2: key 'draft': must be true or false", progress["body"])

    def test_the_agent_sees_no_token_and_no_secret(self):
        repo = self.repo("snoop")
        self.start(isolation="auto", GITHUB_TOKEN="ghp_should_never_reach_the_agent",
                   ANTHROPIC_API_KEY="sk-ant-the-agents-own-key")
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        seen = pr["body"]
        self.assertIn("PATCHBAY_SUMMARY_FILE=", seen)        # the agent did report its environment
        # its own key was passed on purpose, and what it printed of it is redacted
        self.assertIn("ANTHROPIC_API_KEY=[ANTHROPIC_API_KEY redacted]", seen)
        self.assertNotIn("sk-ant-the-agents-own-key", seen)
        for name in ("GITHUB_TOKEN", "WEBHOOK_SECRET", "APP_ID", "PRIVATE_KEY_PATH", "REDIS_URL", "GITHUB_API_URL"):
            self.assertNotIn(name + "=", seen)
        self.assertIn("url = %s/%s.git" % (self.gh.web, repo), seen)  # origin, without credentials
        self.assertNotIn("x-access-token", seen)
        self.assert_no_secret_anywhere(repo)

    def test_the_agent_s_own_key_is_never_pushed_or_posted(self):
        key = "team-key-0123456789-abcdef"  # no known shape: only its value can give it away
        repo = self.repo("leak-file")
        self.start(ANTHROPIC_API_KEY=key)
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertEqual(rec["error"], "the agent's change contains the value of ANTHROPIC_API_KEY")
        self.assertEqual(self.pulls(repo), [])
        self.assertEqual(self.git(repo, "branch", "--list", "patchbay/*"), "")
        [said] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("`settings.py`", said["body"])
        self.assertNotIn(key, json.dumps(self.gh.state()))

    def test_keys_in_what_the_agent_says_are_redacted(self):
        key = "team-key-0123456789-abcdef"
        repo = self.repo("leak-summary")
        self.start(ANTHROPIC_API_KEY=key)
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertIn("My key is [ANTHROPIC_API_KEY redacted] and I found ghp_[redacted] in the logs.", pr["body"])
        state = json.dumps(self.gh.state())
        self.assertNotIn(key, state)
        self.assertNotIn("A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", state)
        self.assertNotIn(key, self.pb.log_text())

    def test_label_trigger_marks_the_issue_while_working(self):
        repo = self.repo("sleep", extra={".agent-sleep": "2\n"})
        self.start()
        issue = self.gh.add_issue(repo, "add() is wrong", body="add(2, 3) gives -1.", user="carol")
        payload = harness.issues_labeled(label="patchbay", sender="alice", number=issue["number"], repo=repo,
                                         installation=7)
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issues", payload)
        c.close()
        self.assertEqual(status, 202)
        wait_for(lambda: "patchbay:working" in self.issue_labels(repo, issue["number"]), 30,
                 what="the working label")
        rec = self.wait_job(body["job"])
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertNotIn("patchbay:working", self.issue_labels(repo, issue["number"]))
        self.assertEqual(len(self.pulls(repo)), 1)
        reactions = [r["content"] for r in self.issue_state(repo, issue["number"])["reactions"]]
        self.assertEqual(reactions, ["eyes", "rocket"])

    def issue_state(self, repo, number):
        return [i for i in self.gh.state()["issues"] if i["repo"] == repo and i["number"] == number][0]

    def issue_labels(self, repo, number):
        return [l if isinstance(l, str) else l.get("name") for l in self.issue_state(repo, number)["labels"]]

    def test_followup_pushes_to_patchbay_s_pull_request(self):
        repo = self.repo("fix")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        self.assertEqual(self.wait_job(job)["status"], "succeeded")
        [pr] = self.pulls(repo)
        first = self.git(repo, "rev-parse", pr["head"])
        # the reviewer asks for more on the pull request (the agent adds a line this time)
        comment = self.gh.add_comment(repo, pr["number"], "@patchbay also handle floats", user="alice")
        payload = harness.issue_comment(body="@patchbay also handle floats", association="COLLABORATOR",
                                        sender="alice", number=pr["number"], repo=repo, installation=7,
                                        comment_id=comment["id"], on_pr=True, issue_author="patchbay[bot]")
        self.gh.commit(repo, pr["head"], {".agent-mode": "followup\n"}, message="switch the scripted agent")
        before = self.git(repo, "rev-parse", pr["head"])
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        rec = self.wait_job(body["job"])
        self.assertEqual(rec["kind"], "followup")
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        after = self.git(repo, "rev-parse", pr["head"])
        self.assertNotEqual(after, before)
        self.assertEqual(self.git(repo, "rev-parse", after + "^"), before)  # on top of the branch, not a new one
        self.assertNotEqual(first, after)
        self.assertIn("def add_floats", self.git(repo, "show", after + ":calc.py"))
        self.assertEqual(len(self.pulls(repo)), 1)
        # the answer is on the pull request
        [progress] = [c for c in self.comments(repo, pr["number"]) if c["user"] == "patchbay[bot]"]
        self.assertIn("Pushed to %s" % pr["head"], progress["body"])

    def test_agent_timeout_is_a_clear_error(self):
        repo = self.repo("hang", config="agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 2\n")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("timed out", rec["error"])
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("timed out", progress["body"])

    def test_stop_while_the_agent_runs(self):
        repo = self.repo("hang")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        wait_for(lambda: "Run the agent" in "".join(c["body"] for c in self.comments(repo, number)
                                                    if c["user"] == "patchbay[bot]") and
                 "⏳ Run the agent" in self.comments(repo, number)[-1]["body"], 30, interval=0.2,
                 what="the agent to start")
        comment = self.gh.add_comment(repo, number, "@patchbay stop", user="alice")
        payload = harness.issue_comment(body="@patchbay stop", association="COLLABORATOR", sender="alice",
                                        number=number, repo=repo, installation=7, comment_id=comment["id"])
        c = self.pb.conn()
        post_delivery(c, "issue_comment", payload)
        c.close()
        t0 = time.monotonic()
        rec = self.wait_job(job, timeout=30)
        self.assertEqual(rec["status"], "cancelled")
        self.assertLess(time.monotonic() - t0, 10 * harness.SLOW)
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]" and
                      "patchbay:job=%s " % job in c["body"]]
        self.assertIn("Stopped on request", progress["body"])

    def say(self, repo, number, text, user, association):
        comment = self.gh.add_comment(repo, number, text, user=user)
        payload = harness.issue_comment(body=text, association=association, sender=user, number=number,
                                        repo=repo, installation=7, comment_id=comment["id"])
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        return comment["id"], body["job"]

    def test_stopping_someone_else_s_job_needs_write_access(self):
        repo = self.repo("hang")
        self.gh.set_collaborator(repo, "bob", "read")     # an org MEMBER with read access
        self.gh.set_collaborator(repo, "carol", "write")
        self.start_app("workers:\n  concurrency: 2\nagent:\n  isolation: none\n  test_rounds: 1\n")
        number, _, job = self.mention(repo, "@patchbay fix add()")
        wait_for(lambda: self.db.job(job).get("status") == "running", 30, what="alice's job to run")
        # bob may trigger patchbay (MEMBER), but stopping alice's job takes write access: checked live, refused once
        comment, stop = self.say(repo, number, "@patchbay stop", "bob", "MEMBER")
        rec = self.wait_job(stop, timeout=30)
        self.assertEqual((rec["status"], rec["claims"], rec["stops"]), ("succeeded", job, ""))
        said = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]" and c["id"] > comment
                and "patchbay:job=%s " % job not in c["body"]]  # not alice's progress checklist
        self.assertEqual(len(said), 1, said)
        self.assertIn("only for people with write access", said[0]["body"])
        self.assertIn("your access is **read**", said[0]["body"])
        self.assertEqual(self.db.job(job)["status"], "running")
        self.assertNotIn("cancel_requested", self.db.job(job))
        self.assertTrue(any("collaborators/bob/permission" in call["path"] for call in self.gh.calls()))
        # carol has write access: the same command stops alice's job
        comment, stop = self.say(repo, number, "@patchbay stop", "carol", "MEMBER")
        self.assertEqual(self.wait_job(stop, timeout=30)["status"], "succeeded")
        self.assertEqual(self.wait_job(job, timeout=30)["status"], "cancelled")
        said = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]" and c["id"] > comment]
        self.assertIn("Stopping job %s" % job, "".join(c["body"] for c in said))

    def test_a_worker_killed_mid_job_leaves_one_pull_request_and_one_comment(self):
        repo = self.repo("sleep", extra={".agent-sleep": "3\n"})
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        wait_for(lambda: self.db.job(job).get("status") == "running" and
                 self.db.job(job).get("progress_comment_id"), 30, interval=0.1, what="the job to start")
        time.sleep(1)
        worker = self.db.job(job)["worker"].rsplit(":", 1)[1]
        os.kill(int(worker), signal.SIGKILL)
        rec = self.wait_job(job, timeout=120)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertGreaterEqual(int(rec["attempts"]), 2)
        self.assertEqual(len(self.pulls(repo)), 1)
        mine = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertEqual(len(mine), 1, [c["body"][:80] for c in mine])
        self.assertIn("patchbay finished", mine[0]["body"])


class OnlyTheAgentsChange(FixJobCase):
    """A pull request holds the agent's change and nothing else: not what the
    repository's setup wrote, not the caches and reports its tests left (a
    Python repository without a .gitignore: every run of `python3
    test_calc.py` writes __pycache__/calc.cpython-311.pyc), whether patchbay
    ran the tests or the agent did."""

    def test_a_python_repository_without_a_gitignore(self):
        repo = self.repo("two-rounds-testing", gitignore=False,
                         config="setup: [\"echo ready > setup-ran\"]\n"
                                "test: python3 test_calc.py > test-report.txt\n"
                                "agent:\n  command: [python3, .patchbay-agent.py]\n  timeout: 60\n")
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Make add() add, second try")
        # round 1 failed, and left its report and cache in the work tree the agent went on with
        self.assertIn("round 1: `python3 test_calc.py > test-report.txt` exited 1", pr["body"])
        self.assertIn("round 2: `python3 test_calc.py > test-report.txt` passed", pr["body"])
        branch = rec["branch"]
        self.assertEqual(self.git(repo, "diff", "--name-only", "main", branch), "calc.py")
        tree = self.git(repo, "ls-tree", "-r", "--name-only", branch).split("\n")
        for stray in ("__pycache__/calc.cpython-311.pyc", "setup-ran", "test-report.txt"):
            self.assertNotIn(stray, tree)
        self.assertFalse([p for p in tree if "__pycache__" in p or p.endswith(".pyc")], tree)
        self.assertEqual(self.git(repo, "show", branch + ":calc.py"), CALC.replace("a - b", "a + b").strip())
        # what the issue's checklist says of the change: one file, one line each way
        [progress] = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertIn("1 file, +1 -1", progress["body"])


BEST_OF_AGENT = r'''
import os, sys, time
prompt = sys.stdin.read()
tree = os.path.basename(os.path.dirname(os.getcwd()))
attempt = int(tree.rsplit("-a", 1)[1]) if "-a" in tree else 1
time.sleep(3)
src = open("calc.py").read()
if attempt == 1:
    src = src.replace("return a - b", "return a * b")          # wrong: the tests fail
elif attempt == 2:
    src = src.replace("return a - b", "return a + b") + "".join("\n# note %d" % i for i in range(20))
else:
    src = src.replace("return a - b", "return a + b")          # right, and the smallest
open("calc.py", "w").write(src)
open(os.environ["PATCHBAY_SUMMARY_FILE"], "w").write(
    "Fix add() (attempt %d)\n\ninstruction clean: %s; setup ran: %s" % (
        attempt, "```text\nfix add() please\n```" in prompt, os.path.exists("setup-ran")))
'''


class BestOfN(FixJobCase):
    def repo_for(self, attempts_line=""):
        # no .gitignore, and the tests write Python's bytecode cache: the table
        # still counts only each attempt's own change
        return self.repo("unused", config="setup: [touch setup-ran]\ntest: python3 test_calc.py\n"
                                          "agent:\n  command: [python3, .best-of.py]\n  test_rounds: 0\n%s"
                                          % attempts_line,
                         extra={".best-of.py": BEST_OF_AGENT}, gitignore=False)

    def test_the_passing_smallest_change_wins(self):
        repo = self.repo_for("  attempts: 3\n")
        self.start()
        t0 = time.monotonic()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        took = time.monotonic() - t0
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        # three 3-second agents, at once (one after another: over 9 s), timed from the job's own log
        # (its entries' ids are milliseconds): from starting the attempts to choosing one
        stamps = {}
        for entry_id, fields in self.db.call("XRANGE", "patchbay:log:%s" % job, "-", "+"):
            msg = dict(zip(fields[::2], fields[1::2])).get(b"msg", b"").decode()
            for mark in ("attempts at once", "attempt 3 chosen"):
                if mark in msg:
                    stamps[mark] = int(entry_id.split(b"-")[0])
        self.assertLess(stamps["attempt 3 chosen"] - stamps["attempts at once"], 8500)
        self.assertLess(took, 9 + 6 * harness.SLOW)  # and the whole job does not wait on anything else
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Fix add() (attempt 3)")
        self.assertIn("setup ran: True", pr["body"])
        self.assertIn("### Best of 3", pr["body"])
        self.assertRegex(pr["body"], r"\| 1 \| `python3`: finished \| failed after 1 round \| 1 file, 2 lines \|")
        self.assertRegex(pr["body"], r"\| 2 \| `python3`: finished \| passed after 1 round \| 1 file, 2\d lines \|")
        self.assertRegex(pr["body"],
                         r"\| 3 \(chosen\) \| `python3`: finished \| passed after 1 round \| 1 file, 2 lines \|")
        self.assertEqual(self.git(repo, "show", rec["branch"] + ":calc.py"), CALC.replace("a - b", "a + b").strip())
        self.assertEqual(self.git(repo, "diff", "--name-only", "main", rec["branch"]), "calc.py")
        self.assertEqual(self.git(repo, "rev-list", "--count", "main.." + rec["branch"]), "1")
        # every attempt's work tree is gone
        self.assertEqual([d for d in os.listdir(os.path.join(self.pb.data_dir, "workspaces")) if d.startswith(job)], [])
        self.assertTrue(any("attempt 3 chosen" in line for line in self.db.job_log(job)))

    def test_a_request_asks_for_attempts(self):
        repo = self.repo_for()
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add() --attempts 2 please")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertIn("### Best of 2", pr["body"])
        self.assertEqual(pr["title"], "Fix add() (attempt 2)")  # attempt 1 fails its tests
        self.assertIn("instruction clean: True", pr["body"])

    def test_one_attempt_by_default(self):
        repo = self.repo_for()
        self.start()
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertNotIn("Best of", pr["body"])
        self.assertTrue(pr["draft"])  # the one attempt multiplies: tests fail, said plainly
        self.assertIn("**The tests fail**", pr["body"])


class KilledAtEachStep(FixJobCase):
    """A worker killed at any step leaves, once the job is retried, exactly
    one branch commit, one pull request and one progress comment. The fake
    GitHub stalls one request of the step (and then carries it out, as
    GitHub does with a request whose client went away); the worker is
    killed while it waits."""

    def kill_during(self, *stalls):
        """stalls: (method, path regex, target), reached in this order; the
        worker is killed while it waits on the last one."""
        repo = self.repo("fix")
        self.start()
        job = None
        for i, (method, path, target) in enumerate(stalls):
            self.gh.add_fault("stall", seconds=3 if i == len(stalls) - 1 else 1, method=method, path=path,
                              target=target)
            if job is None:
                number, _, job = self.mention(repo, "@patchbay fix add() please")
            wait_for(lambda: not self.gh.state()["faults"], 60, interval=0.02,
                     what="the worker to reach %s %s" % (method, path))
        worker = self.db.job(job)["worker"].rsplit(":", 1)[1]
        os.kill(int(worker), signal.SIGKILL)
        rec = self.wait_job(job, timeout=120)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertGreaterEqual(int(rec["attempts"]), 2)
        branch = "patchbay/%d-add-is-wrong" % number
        self.assertEqual(self.git(repo, "rev-list", "--count", "main.." + branch), "1")
        [pr] = self.pulls(repo)
        self.assertEqual(pr["head"], branch)
        mine = [c for c in self.comments(repo, number) if c["user"] == "patchbay[bot]"]
        self.assertEqual(len(mine), 1, [c["body"][:80] for c in mine])
        self.assertIn("patchbay finished", mine[0]["body"])
        self.assertIn("/pull/%d" % pr["number"], mine[0]["body"])

    def test_while_making_the_progress_comment(self):
        self.kill_during(("POST", r"/issues/\d+/comments$", "api"))

    def test_while_pushing(self):
        self.kill_during(("POST", r"git-receive-pack$", "git"))

    def test_while_opening_the_pull_request(self):
        self.kill_during(("POST", r"/pulls$", "api"))

    def test_while_writing_the_summary(self):
        # the first edit after the pull request exists is the last one
        self.kill_during(("POST", r"/pulls$", "api"), ("PATCH", r"/issues/comments/\d+$", "api"))


# Stands in for claude, codex and aider: takes the task the way the real CLI
# takes it with the example's flags, makes the fix, and reports its argv.
FAKE_CLI = r'''#!/usr/bin/python3
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
if name == "aider":
    task = open(args[args.index("--message-file") + 1]).read()
    assert task == open(os.environ["PATCHBAY_PROMPT_FILE"]).read()
elif name == "codex":
    assert args[-1] == "-", args
    task = sys.stdin.read()
else:
    task = sys.stdin.read()
assert "add() is wrong" in task, task[:200]
src = open("calc.py").read().replace("return a - b", "return a + b")
open("calc.py", "w").write(src)
print("Make add() add\n\n%s ran with %s" % (name, json.dumps(args)))
'''


class AgentExamples(FixJobCase):
    """config/agents/*.yml, as shipped, drive a fix job to a pull request.

    The CLIs themselves need accounts and the network (test_agent_clis.py
    runs the real ones against local fakes of their model APIs), so here a
    stand-in with the CLI's name takes their place, installed outside /usr as
    an operator with a non-/usr install would have it: its directory in
    `sandbox.path`. Every word of the section stays as written, and it runs in
    the sandbox wherever the machine has one.
    """

    def run_example(self, name, cli):
        with open(os.path.join(harness.SOURCE_DIR, "config", "agents", name)) as f:
            example = f.read()
        bindir = os.path.join(self.workdir, "bin")
        os.makedirs(bindir, exist_ok=True)
        fake = os.path.join(bindir, cli)
        with open(fake, "w") as f:
            f.write(FAKE_CLI)
        os.chmod(fake, 0o755)
        section = example[example.index("\nagent:\n") + 1:]
        if harness.ISOLATION == "none":
            section = re.sub(r"\n  isolation: \w+\n", "\n", section) + "  isolation: none\n"
        repo = self.repo("unused", config="test: python3 -B test_calc.py\n")
        self.start(agent_section=section + "sandbox:\n  path: [%s]\n" % bindir)
        number, _, job = self.mention(repo, "@patchbay fix add()")
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertIn("return a + b", self.git(repo, "show", rec["branch"] + ":calc.py"))
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Make add() add")
        self.assertIn("`python3 -B test_calc.py` passed", pr["body"])
        self.assertIn("%s ran with" % cli, pr["body"])
        if harness.ISOLATION == "bwrap":
            self.assertIn("in bubblewrap", pr["body"])
        return pr["body"]

    def test_claude_code(self):
        body = self.run_example("claude-code.yml", "claude")
        self.assertIn('&quot;--permission-mode&quot;, &quot;acceptEdits&quot;', body.replace('"', "&quot;"))

    def test_codex(self):
        self.run_example("codex.yml", "codex")

    def test_aider(self):
        body = self.run_example("aider.yml", "aider")
        self.assertIn("--no-auto-commits", body)

    def test_qwen_code(self):
        self.assertIn("--yolo", self.run_example("qwen-code.yml", "qwen"))

    def test_opencode(self):
        self.assertIn('[&quot;run&quot;]', self.run_example("opencode.yml", "opencode").replace('"', "&quot;"))

    def test_gemini_cli(self):
        self.assertIn("--skip-trust", self.run_example("gemini-cli.yml", "gemini"))


if __name__ == "__main__":
    harness.main()
