"""The shipped agent sections with the real agent CLIs, end to end.

Each test runs one of config/agents/{claude-code,codex,qwen-code,opencode,gemini-cli}.yml exactly
as shipped, through `patchbay run`, the local fake GitHub and bubblewrap with the network on, with
the real CLI (pinned in tests/package.json; ./test.sh installs them in tests/node_modules) against
the fake model service that speaks its wire protocol (tests/fakes/anthropic.py, responses.py,
chat.py, gemini.py) on 127.0.0.1. What a user with a local model does, the test does:

  * the endpoint and the key are the only values it sets, in patchbay's environment, under the
    names the section's `agent.env` lists;
  * the sandbox reaches the model on the host only because `sandbox.egress_allow` names its
    127.0.0.1 port (the host's loopback is closed otherwise);
  * the CLIs live outside /usr, so the operator's config names them as a user with a non-/usr
    install would: `sandbox.path: [tests/node_modules/.bin]` and, for what npm's links point
    into, `sandbox.read_only: [tests/node_modules]`. Nothing is installed under /usr.

The repository is a Python one without a .gitignore whose tests the CLI runs itself and patchbay
runs again (both leave __pycache__). Each test asserts what the user sees: the pull request, its
clean title (the answer's, never a banner, never an escape), that it changes calc.py and nothing
else, that the tests pass on its branch (run again here from a clone), and that the fake saw the
CLI's own requests: the tools it offered, the fix carried out through them, its key.

Skipped, with the reason, where the sandbox cannot run or a CLI is not installed.
"""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
from test_fix_jobs import CALC, FixJobCase  # noqa: E402

import anthropic  # noqa: E402
import chat  # noqa: E402
import gemini  # noqa: E402
import responses  # noqa: E402

NODE_MODULES = os.path.join(harness.SOURCE_DIR, "tests", "node_modules")
BIN = os.path.join(NODE_MODULES, ".bin")
KEY = "sk-patchbay-cli-test-0123456789"
MODEL = "fake-model"
TEST = ("import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\n"
        "if __name__ == \"__main__\":\n    unittest.main()\n")
TITLE = "Make add() return a + b"

# section -> (the program, its fake, the endpoint and key in the names its agent.env lists)
CLIS = {
    "claude-code": ("claude", anthropic.FakeAnthropic,
                    lambda url: {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": url}),
    "codex": ("codex", responses.FakeResponses, lambda url: {"CODEX_API_KEY": KEY, "CODEX_BASE_URL": url}),
    "qwen-code": ("qwen", chat.FakeChat,
                  lambda url: {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "OPENAI_MODEL": MODEL}),
    "opencode": ("opencode", chat.FakeChat,
                 lambda url: {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "OPENAI_MODEL": MODEL}),
    "gemini-cli": ("gemini", gemini.FakeGemini, lambda url: {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": url}),
}


class RealAgentCLIs(FixJobCase):
    def run_cli(self, name):
        program, fake_class, env_for = CLIS[name]
        if not harness.sandbox_works():
            raise unittest.SkipTest("SKIPPED: the sandbox cannot run here (bubblewrap with user namespaces and "
                                    "slirp4netns are needed for a network-on job)")
        if not os.access(os.path.join(BIN, program), os.X_OK):
            raise unittest.SkipTest("SKIPPED: %s is not installed in tests/node_modules (./test.sh installs the "
                                    "CLIs pinned in tests/package.json from npm)" % program)
        with open(os.path.join(harness.SOURCE_DIR, "config", "agents", name + ".yml")) as f:
            shipped = f.read()
        section = shipped[shipped.index("\nagent:\n") + 1:]

        fake = fake_class(api_key=KEY, log_file=os.path.join(self.workdir, "model-requests.jsonl"))
        port = fake.start()
        self.addCleanup(fake.stop)
        env = env_for(fake.url)
        listed = section.split("\n  env: [", 1)[1].split("]", 1)[0].split(", ")
        self.assertEqual(sorted(set(env) - set(listed)), [], "the section's agent.env must list what a user sets")

        repo = "octo/%s" % name
        self.gh.create_repo(repo, private=True, files={
            "calc.py": CALC, "test_calc.py": TEST,
            ".github/patchbay.yml": "test: python3 -m unittest\n"})
        self.gh.add_installation(7, "octo", repositories=[repo])
        self.gh.set_collaborator(repo, "alice", "write")
        operator = ("workers:\n  concurrency: 1\n  retry_delay_ms: 200\n  max_attempts: 1\n" + section +
                    "sandbox:\n  egress_allow: [\"127.0.0.1:%d\"]\n  path: [%s]\n  read_only: [%s]\n"
                    % (port, BIN, NODE_MODULES))
        self.start_app(operator, **env)

        number, _, job = self.mention(repo, "@patchbay make add() in calc.py return a+b")
        rec = self.wait_job(job, timeout=240)
        errors = "\n".join(fake.errors)
        self.assertEqual(rec["status"], "succeeded", "%s\n%s\njob log:\n%s" % (
            rec.get("error"), errors, "\n".join(self.db.job_log(job))[-4000:]))

        # the pull request, titled with the answer's first line: no banner, no escape
        [pr] = self.pulls(repo)
        self.assertEqual(pr["title"], TITLE, "the fake's problems: %s; what it was asked: %s" % (
            errors or "none", [(r.path, len((r.body or {}).get("messages") or (r.body or {}).get("input") or []))
                               for r in fake.model_requests()]))
        self.assertNotIn("\x1b", pr["body"])
        self.assertIn("add() in calc.py returned the wrong value", pr["body"])
        self.assertIn("round 1: `python3 -m unittest` passed", pr["body"])
        self.assertIn("in bubblewrap", pr["body"])
        self.assertNotIn(KEY, pr["body"] + self.pb.log_text())
        # the change is calc.py's one line, whatever the CLI and the tests left (__pycache__)
        branch = rec["branch"]
        self.assertEqual(self.git(repo, "diff", "--name-only", "main", branch), "calc.py")
        self.assertEqual(self.git(repo, "diff", "--numstat", "main", branch), "1\t1\tcalc.py")
        # the tests pass on the branch, run here from a clone of it
        clone = os.path.join(self.workdir, "clone")
        subprocess.run(["git", "clone", "-q", "-b", branch, self.gh.git.path(repo), clone], check=True)
        run = subprocess.run(["python3", "-B", "-m", "unittest", "-q"], cwd=clone, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        shutil.rmtree(clone)

        # the fake saw the CLI itself: its requests with its key, its own tools, the fix done through them
        model = fake.model_requests()
        self.assertTrue(model, "no request reached the model")
        self.assertEqual(errors, "")
        roles = [s.role for _, s in fake.steps if s.tool is not None]
        for role in ("read", "edit", "test"):
            self.assertIn(role, roles, "the plan's steps through %s's tools: %s" % (program, roles))
        offered = set().union(*fake.tool_names())
        self.assertTrue(offered, "the CLI offered no tools")
        keys = {r.header("x-api-key") or r.header("x-goog-api-key") or r.header("authorization") for r in model}
        self.assertTrue(keys and all(k and KEY in k for k in keys), keys)
        agents = {r.header("user-agent") or "" for r in model}
        return offered, fake, agents

    def test_claude_code(self):
        offered, fake, agents = self.run_cli("claude-code")
        self.assertIn("Bash", offered)
        self.assertTrue(any("claude-cli" in a for a in agents), agents)

    def test_codex(self):
        offered, fake, agents = self.run_cli("codex")
        # Codex tries a WebSocket first and falls back to SSE when refused
        self.assertTrue(any(r.status == 426 for r in fake.requests), [r for r in fake.requests])
        self.assertTrue(any("codex" in a for a in agents), agents)

    def test_qwen_code(self):
        offered, fake, agents = self.run_cli("qwen-code")
        self.assertIn("run_shell_command", offered)

    def test_opencode(self):
        offered, fake, agents = self.run_cli("opencode")
        self.assertIn("bash", offered)
        self.assertTrue(any("opencode" in a for a in agents), agents)

    def test_gemini_cli(self):
        offered, fake, agents = self.run_cli("gemini-cli")
        self.assertIn("run_shell_command", offered)


if __name__ == "__main__":
    harness.main()
