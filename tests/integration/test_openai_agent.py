"""The built-in agent (agent.backend: openai) end to end.

`patchbay run` against the local fake GitHub and a scripted fake
OpenAI-compatible endpoint (tests/fakes/openai.py), which checks every
request the way the real ones do (key, model, roles, tool schemas, tool
results answering their calls). The script plays the model: it calls the
tools the way a model would, and the test asserts what a user sees (the pull
request, the comment) and what the model was told (the tool results).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402
from openai import FakeOpenAI  # noqa: E402  (tests/fakes/openai.py)

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\nassert add(2, 3) == 5, 'add(2, 3) is %r' % add(2, 3)\nprint('ok')\n"


def call(name, **args):
    return {"name": name, "arguments": args}


def edit(old, new):
    return call("edit_file", path="calc.py", old=old, new=new)


class OpenAICase(harness.AppCase):
    def setUp(self):
        super().setUp()
        self.model = FakeOpenAI(api_key="sk-test-123").start()

    def tearDown(self):
        self.model.stop()
        super().tearDown()

    def repo(self, config="test: python3 -B test_calc.py\n", extra=None, name="octo/calc"):
        files = {"calc.py": CALC, "test_calc.py": TEST, ".gitignore": "__pycache__/\n",
                 ".github/patchbay.yml": config}
        files.update(extra or {})
        self.gh.create_repo(name, private=True, files=files)
        self.gh.add_installation(7, name.split("/")[0], repositories=[name])
        self.gh.set_collaborator(name, "alice", "write")
        return name

    def start(self, openai_extra="", test_rounds=2):
        self.start_app("workers:\n  concurrency: 1\n  retry_delay_ms: 200\n  max_attempts: 1\n"
                       "agent:\n  backend: openai\n  isolation: " + harness.ISOLATION + "\n  test_rounds: %d\n  timeout: 60\n"
                       "  openai:\n    base_url: %s\n    model: test-model\n    api_key_env: FAKE_OPENAI_KEY\n"
                       "    input_price: 2.5\n    output_price: 10\n%s"
                       % (test_rounds, self.model.url, openai_extra),
                       FAKE_OPENAI_KEY="sk-test-123")

    def mention(self, repo, text="@patchbay fix add()"):
        issue = self.gh.add_issue(repo, "add() is wrong", body="add(2, 3) gives -1.", user="carol")
        comment = self.gh.add_comment(repo, issue["number"], text, user="alice")
        payload = harness.issue_comment(body=text, association="COLLABORATOR", sender="alice",
                                        number=issue["number"], repo=repo, installation=7,
                                        comment_id=comment["id"], title="add() is wrong")
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        return issue["number"], body["job"]

    def wait_job(self, job, timeout=90):
        final = ("succeeded", "failed", "dead", "cancelled")
        return wait_for(lambda: self.db.job(job) if self.db.job(job).get("status") in final else None,
                        timeout, interval=0.2, what="job %s to finish" % job)

    def pulls(self, repo):
        return [p for p in self.gh.state()["pulls"] if p["repo"] == repo]

    def bot_comments(self, repo, number):
        return [c for c in self.gh.state()["comments"]
                if c["repo"] == repo and c["number"] == number and c["user"] == "patchbay[bot]"]

    def tool_result(self, request_index, call_index=0):
        """What the tools of the previous answer said, as the model read it in
        request number request_index (the trailing tool messages)."""
        trailing = []
        for m in reversed(self.model.requests[request_index]["messages"]):
            if m["role"] != "tool":
                break
            trailing.insert(0, m)
        return trailing[call_index]["content"]


class OpenAIAgent(OpenAICase):
    # -- what users get

    def test_a_fix_made_by_tool_calls_becomes_a_pull_request(self):
        repo = self.repo()
        self.model.script([
            {"tool_calls": [call("list_files"), call("search", pattern="def add")]},
            {"tool_calls": [call("read_file", path="calc.py")]},
            {"content": "I will fix the sign.", "tool_calls": [edit("return a - b", "return a + b")]},
            {"tool_calls": [call("run", command="python3 -B test_calc.py")]},
            {"tool_calls": [call("finish", summary="Make add() add\n\nIt subtracted its arguments.")]},
        ])
        self.start()
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.model.errors, [])  # every request was one a real endpoint takes
        self.assertEqual(len(self.model.requests), 5)
        self.assertEqual(set(self.model.auth), {"Bearer sk-test-123"})
        first = self.model.requests[0]
        self.assertEqual(first["model"], "test-model")
        self.assertEqual(first["messages"][0]["role"], "system")
        self.assertIn("add() is wrong", first["messages"][1]["content"])
        self.assertEqual(self.model.tool_names[0], ["edit_file", "finish", "list_files", "read_file", "run", "search",
                                                    "write_file"])
        # what the tools told the model
        self.assertIn("calc.py\n", self.tool_result(1, 0))
        self.assertIn("calc.py:1: def add(a, b):", self.tool_result(1, 1))
        self.assertIn("2\t    return a - b", self.tool_result(2))
        self.assertIn("edited calc.py at line 2", self.tool_result(3))
        self.assertIn("exited 0", self.tool_result(4))
        self.assertIn("ok", self.tool_result(4))
        # what the user sees
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Make add() add")
        self.assertIn("It subtracted its arguments.", pr["body"])
        self.assertIn("`python3 -B test_calc.py` passed", pr["body"])
        self.assertIn("with the model `test-model` (5 model calls, ", pr["body"])
        self.assertRegex(pr["body"], r"\d[\d,]* tokens, about \$0\.\d\d\)")
        self.assertIn("return a + b", subprocess_show(self.gh, repo, rec["branch"], "calc.py"))

    def test_failing_tests_continue_the_same_conversation(self):
        repo = self.repo()
        self.model.script([
            {"tool_calls": [edit("return a - b", "return a * b")]},
            {"tool_calls": [call("finish", summary="Make add() multiply")]},
            {"tool_calls": [edit("return a * b", "return a + b")]},
            {"tool_calls": [call("finish", summary="Make add() add, second try")]},
        ])
        self.start()
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.model.errors, [])
        round2 = self.model.requests[2]["messages"]
        # the whole first round is still there, then the test failure as the user's next turn
        self.assertEqual([m["role"] for m in round2[:6]], ["system", "user", "assistant", "tool", "assistant", "tool"])
        self.assertIn("The tests failed (round 1 of 2)", round2[6]["content"])
        self.assertIn("add(2, 3) is 6", round2[6]["content"])
        [pr] = self.pulls(repo)
        self.assertIn("round 1: `python3 -B test_calc.py` exited 1", pr["body"])
        self.assertIn("round 2: `python3 -B test_calc.py` passed", pr["body"])
        self.assertEqual(pr["title"], "Make add() add, second try")
        self.assertIn("4 model calls", pr["body"])

    def test_the_step_budget_ends_in_an_honest_failure(self):
        repo = self.repo()
        self.model.script([{"tool_calls": [call("read_file", path="calc.py")]}] * 10)
        self.start(openai_extra="    max_steps: 3\n")
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("step budget (3 model calls)", rec["error"])
        self.assertEqual(len(self.model.requests), 3)
        self.assertEqual(self.pulls(repo), [])
        [said] = self.bot_comments(repo, number)
        self.assertIn("used its step budget", said["body"])
        self.assertIn("read_file", said["body"])  # what it tried

    def test_the_token_and_cost_budgets(self):
        repo = self.repo()
        big = {"prompt_tokens": 600000, "completion_tokens": 1000}
        self.model.script([{"tool_calls": [call("list_files")], "usage": big}] * 5)
        self.start(openai_extra="    max_tokens: 1000000\n")
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("token budget (1202000 of 1000000 tokens)", rec["error"])
        self.assertEqual(len(self.model.requests), 2)

    def test_paths_out_of_the_workspace_are_refused(self):
        repo = self.repo(extra={"link": {"content": "/etc/passwd", "mode": "120000"}})
        self.model.script([
            {"tool_calls": [call("read_file", path="../../etc/passwd"), call("read_file", path="/etc/passwd"),
                            call("read_file", path="link"), call("write_file", path="../escaped.txt", content="x"),
                            call("read_file", path=".git/config")]},
            {"tool_calls": [call("finish", summary="Nothing I can reach needs changing.")]},
        ])
        self.start()
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        # it changed nothing and said so: an answer, not a pull request
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(rec["outcome"], "answered")
        self.assertEqual(self.pulls(repo), [])
        answers = [self.tool_result(1, i) for i in range(5)]
        for a in answers:
            self.assertIn("refused", a)
            self.assertNotIn("root:x:0:0", a)
        self.assertIn("symbolic link", answers[2])
        self.assertFalse(os.path.exists(os.path.join(self.pb.data_dir, "workspaces", "escaped.txt")))

    def test_endpoint_faults_are_retried(self):
        repo = self.repo()
        self.model.script([
            {"status": 429, "retry_after": 1},
            {"status": 503},
            {"garbage": "<html>bad gateway</html>"},
            {"truncated": True, "tool_calls": [call("list_files")]},
            {"tool_calls": [edit("return a - b", "return a + b")]},
            {"tool_calls": [call("read_file", path="calc.py")], "content": None},
            {"tool_calls": [{"name": "edit_file", "arguments": "{\"path\": \"calc.py\", \"old\": "}]},
            {"tool_calls": [call("finish", summary="Make add() add")]},
        ])
        self.start()
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(len(self.model.requests), 8)
        # cut-off arguments are the model's to resend, not the job's end
        self.assertIn("not a JSON object", self.tool_result(7))
        self.assertIn("4 model calls", self.pulls(repo)[0]["body"])

    def test_a_wrong_key_is_a_clear_error(self):
        repo = self.repo()
        self.start_app("workers:\n  concurrency: 1\n  max_attempts: 1\nagent:\n  backend: openai\n"
                       "  isolation: " + harness.ISOLATION + "\n  openai:\n    base_url: %s\n    model: test-model\n" % self.model.url,
                       OPENAI_API_KEY="sk-wrong")
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "failed")
        self.assertIn("HTTP 401: Incorrect API key provided.", rec["error"])
        self.assertEqual(len(self.model.requests), 0)
        self.assertEqual(len(self.model.auth), 1)  # a 401 is not retried

    def test_the_server_key_never_goes_to_a_repository_s_endpoint(self):
        other = FakeOpenAI(api_key=None).start()
        try:
            other.script([{"tool_calls": [edit("return a - b", "return a + b")]},
                          {"tool_calls": [call("finish", summary="Make add() add")]}])
            repo = self.repo(config="agent:\n  openai:\n    base_url: %s\n" % other.url)
            self.start()
            number, job = self.mention(repo)
            rec = self.wait_job(job)
            self.assertEqual(rec["status"], "succeeded", rec.get("error"))
            self.assertEqual(other.auth, [None, None])
            self.assertEqual(self.model.requests, [])
        finally:
            other.stop()

    def test_a_review_by_tool_calls(self):
        repo = self.repo(config="review: { auto: false }\n")
        self.gh.commit(repo, "feature", {"calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"
                                                    "    return a * b\n"})
        pr = self.gh.add_pull(repo, "feature", title="Fix add, add mul", user="alice")
        self.model.script([
            {"tool_calls": [call("read_file", path="calc.py"), call("write_file", path="x.txt", content="y")]},
            {"tool_calls": [call("report_finding", path="calc.py", line=6, severity="warning",
                                 body="mul() has no test."),
                            call("report_finding", path="calc.py", line="six", body="malformed")]},
            {"tool_calls": [call("finish", summary="A small, correct change.")]},
        ])
        self.start()
        comment = self.gh.add_comment(repo, pr["number"], "@patchbay review", user="alice")
        payload = harness.issue_comment(body="@patchbay review", association="COLLABORATOR", sender="alice",
                                        number=pr["number"], repo=repo, installation=7, comment_id=comment["id"],
                                        on_pr=True, issue_author="alice", title="Fix add, add mul")
        c = self.pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", payload)
        c.close()
        self.assertEqual(status, 202, body)
        rec = self.wait_job(body["job"])
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.model.errors, [])
        self.assertIn("report_finding", self.model.tool_names[0])
        self.assertNotIn("edit_file", self.model.tool_names[0])
        self.assertIn("a review changes nothing", self.tool_result(1, 1))
        self.assertEqual(self.tool_result(2, 0), "recorded")
        self.assertIn("not recorded", self.tool_result(2, 1))
        [review] = [v for v in self.gh.state()["reviews"] if v["repo"] == repo]
        self.assertIn("A small, correct change.", review["body"])
        [inline] = [c for c in self.gh.state()["review_comments"] if c["review_id"] == review["id"]]
        self.assertEqual((inline["path"], inline["line"]), ("calc.py", 6))
        self.assertIn("mul() has no test.", inline["body"])

    def test_best_of_two_models(self):
        repo = self.repo(config="test: python3 -B test_calc.py\nagent:\n  attempts: 2\n")

        def model_turn(body):
            turns = sum(1 for m in body["messages"] if m["role"] == "assistant")
            right = body["model"] == "careful-model"
            if turns == 0:
                return {"tool_calls": [edit("return a - b", "return a + b" if right else "return a * b")]}
            return {"tool_calls": [call("finish", summary="Fix add() (%s)" % body["model"])]}

        self.model.script([model_turn] * 8)
        self.start(openai_extra="    models: [hasty-model, careful-model]\n", test_rounds=0)
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.model.errors, [])
        self.assertEqual(sorted({r["model"] for r in self.model.requests}), ["careful-model", "hasty-model"])
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Fix add() (careful-model)")
        self.assertIn("### Best of 2", pr["body"])
        self.assertRegex(pr["body"], r"\| 1 \| `hasty-model`: finished \| failed after 1 round \|")
        self.assertRegex(pr["body"], r"\| 2 \(chosen\) \| `careful-model`: finished \| passed after 1 round \|")
        self.assertIn("with the model `careful-model`", pr["body"])

    def test_best_of_an_agent_cli_and_the_built_in_agent(self):
        cli = "open('calc.py', 'w').write(open('calc.py').read().replace('a - b', 'a * b'))\n" \
              "import os; open(os.environ['PATCHBAY_SUMMARY_FILE'], 'w').write('Multiply (the CLI)')\n"
        repo = self.repo(config="test: python3 -B test_calc.py\nagent:\n  attempts: 2\n"
                                "  command: [python3, .cli-agent.py]\n", extra={".cli-agent.py": cli})
        self.model.script([{"tool_calls": [edit("return a - b", "return a + b")]},
                           {"tool_calls": [call("finish", summary="Add (the built-in agent)")]}])
        self.start_app("workers:\n  concurrency: 1\n  max_attempts: 1\nagent:\n  isolation: " + harness.ISOLATION + "\n  test_rounds: 0\n"
                       "  backends: [command, openai]\n  openai:\n    base_url: %s\n    model: test-model\n"
                       "    api_key_env: FAKE_OPENAI_KEY\n" % self.model.url, FAKE_OPENAI_KEY="sk-test-123")
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], "Add (the built-in agent)")
        self.assertRegex(pr["body"], r"\| 1 \| `python3`: finished \| failed after 1 round \|")
        self.assertRegex(pr["body"], r"\| 2 \(chosen\) \| `test-model`: finished \| passed after 1 round \|")
        self.assertIn("with the model `test-model`", pr["body"])


class ShippedExamples(OpenAICase):
    """config/agents/{openai,ollama,vllm}.yml, as shipped but for the endpoint's
    address, drive a fix to a pull request."""

    def run_example(self, name, key_env):
        with open(os.path.join(harness.SOURCE_DIR, "config", "agents", name)) as f:
            example = f.read()
        section = example[example.index("\nagent:\n") + 1:]
        url_line = [l for l in section.splitlines() if l.strip().startswith("base_url:")][0]
        section = section.replace(url_line, "    base_url: %s" % self.model.url)
        self.model.api_key = "sk-example" if key_env else None
        repo = self.repo()
        self.model.script([{"tool_calls": [edit("return a - b", "return a + b")]},
                           {"tool_calls": [call("finish", summary="Make add() add")]}])
        env = {key_env: "sk-example"} if key_env else {}
        self.start_app("workers:\n  concurrency: 1\n  max_attempts: 1\n" +
                       section.replace("agent:\n", "agent:\n  isolation: %s\n" % harness.ISOLATION, 1), **env)
        number, job = self.mention(repo)
        rec = self.wait_job(job)
        self.assertEqual(rec["status"], "succeeded", rec.get("error"))
        self.assertEqual(self.model.errors, [])
        self.assertEqual(len(self.pulls(repo)), 1)
        return self.model.requests[0]

    def test_openai(self):
        req = self.run_example("openai.yml", "OPENAI_API_KEY")
        self.assertEqual((req["model"], req["max_tokens"]), ("gpt-4.1", 4096))
        self.assertIn("about $", self.pulls("octo/calc")[0]["body"])

    def test_ollama(self):
        self.assertEqual(self.run_example("ollama.yml", None)["model"], "qwen2.5-coder:32b")
        self.assertEqual(self.model.auth, [None, None])

    def test_vllm(self):
        self.assertEqual(self.run_example("vllm.yml", "VLLM_API_KEY")["model"], "Qwen/Qwen2.5-Coder-32B-Instruct")


def subprocess_show(gh, repo, branch, path):
    import subprocess
    return subprocess.run(["git", "--git-dir", gh.git.path(repo), "show", "%s:%s" % (branch, path)],
                          capture_output=True, text=True).stdout


if __name__ == "__main__":
    harness.main()
