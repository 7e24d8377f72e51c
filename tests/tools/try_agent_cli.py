#!/usr/bin/python3
"""Run a real agent CLI the way patchbay runs a command agent, against a local fake model.

    /usr/bin/python3 tests/tools/try_agent_cli.py NAME [--bin-dir DIR] [--timeout S] [--bwrap] [--keep]

NAME is a shipped section, config/agents/NAME.yml: claude-code, codex, qwen-code, opencode,
gemini-cli. Without patchbay: it makes a temporary git repository with calc.py (add() returns
a - b) and test_calc.py, starts the fake endpoint that CLI speaks (tests/fakes/anthropic.py,
responses.py, chat.py or gemini.py, in process, on 127.0.0.1), and runs the section's argv, parsed
from the yml with PyYAML, as patchbay's agent_cmd does:

  * cwd = the repository; HOME, TMPDIR, prompt.md and summary.md under a fresh scratch directory
    (scratch/home, scratch/tmp), as jobs/sandbox.c lays them out;
  * environment scrubbed to PATH=/usr/local/bin:/usr/bin:/bin, HOME, TMPDIR, LANG=C.UTF-8,
    TERM=dumb, PATCHBAY_PROMPT_FILE, PATCHBAY_SUMMARY_FILE, PATCHBAY_REVIEW_FILE, plus the
    names in the section's `agent.env` that have a value here (the fake's URL and key); a value
    this script would set for a name the section does not list is an error;
  * stdin = the task; stdout and stderr into one output file; its own process group, killed
    at --timeout.

--bin-dir (default tests/node_modules/.bin, where `npm install` in tests/ puts the CLIs) goes
in front of PATH, so the argv stays exactly as shipped; `--bin-dir ''` uses the CLIs installed
under /usr as patchbay's sandbox would. --bwrap runs the same under bubblewrap with patchbay's own
command line (jobs/sandbox.c), network on (shared, so the fake on 127.0.0.1 is reachable): /usr
read-only, /bin /lib /lib64 /sbin as symlinks, --proc /proc, --dev /dev, a private /tmp, the /etc
files patchbay binds (--etc to try others), a passwd and group naming the sandbox's user
(--no-passwd: none), the bin dir's node_modules read-only, the repository and the scratch
directory read-write; as root, a user namespace with --uid 1000 (--uid) and no capabilities.

It prints the exit status, whether calc.py was fixed, whether the tests pass, the summary the
pull request would get (summary.md's first line, else the output tail's, as patchbay takes it),
and what the fake saw (requests, model requests, the tools offered, the plan's steps, its
errors). Exit status 0 when all of that is right.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "fakes"))

try:
    import yaml
except ImportError:  # PyYAML is Debian's python3-yaml, for /usr/bin/python3
    sys.exit("PyYAML is missing: run this with /usr/bin/python3 (apt-get install python3-yaml)")

import anthropic  # noqa: E402
import chat  # noqa: E402
import gemini  # noqa: E402
import responses  # noqa: E402

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
KEY = "sk-patchbay-proof-0123456789"
TASK = """Fix the failing test.

make add() in calc.py return a+b. Run the tests with `python3 -m unittest`.
"""
CALC = "def add(a, b):\n    return a - b\n"
TEST = ("import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\n"
        "if __name__ == \"__main__\":\n    unittest.main()\n")
# what patchbay binds from /etc with the network on (jobs/sandbox.c: etc_base + etc_net)
PATCHBAY_ETC = ("/etc/alternatives /etc/ld.so.cache /etc/ld.so.conf /etc/ld.so.conf.d /etc/localtime "
                "/etc/resolv.conf /etc/hosts /etc/nsswitch.conf /etc/host.conf /etc/gai.conf /etc/services "
                "/etc/protocols /etc/ssl/certs /etc/ssl/openssl.cnf /etc/ca-certificates "
                "/etc/ca-certificates.conf /etc/pki/tls/certs")


def fake_env(fake):
    """The variables each CLI is pointed at the fake with (they must be listed in agent.env)."""
    return {
        "claude-code": {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url},
        "codex": {"CODEX_API_KEY": KEY, "CODEX_BASE_URL": fake.url},
        "qwen-code": {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.url, "OPENAI_MODEL": "fake-model"},
        "opencode": {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.url, "OPENAI_MODEL": "fake-model"},
        "gemini-cli": {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url},
    }


FAKES = {"claude-code": anthropic.FakeAnthropic, "codex": responses.FakeResponses, "qwen-code": chat.FakeChat,
         "opencode": chat.FakeChat, "gemini-cli": gemini.FakeGemini}


def git(repo, *args):
    subprocess.run(["git", "-C", repo] + list(args), check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                            GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com"))


def make_repo(path):
    os.makedirs(path)
    with open(os.path.join(path, "calc.py"), "w") as f:
        f.write(CALC)
    with open(os.path.join(path, "test_calc.py"), "w") as f:
        f.write(TEST)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "calc")


def bwrap_argv(argv, repo, scratch, bin_dir, etc, uid, passwd, drop=()):
    """patchbay's own bubblewrap command line (jobs/sandbox.c, build_bwrap_argv), network on."""
    b = ["bwrap", "--die-with-parent", "--unshare-all", "--share-net"]
    if uid is not None:
        # as root: a user namespace in which the sandbox's uid is the caller; no capabilities
        b += ["--unshare-user", "--uid", str(uid), "--gid", str(uid), "--cap-drop", "ALL"]
    b += ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            b += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            b += ["--ro-bind", d, d]
    b += [] if "proc" in drop else ["--proc", "/proc"]
    b += ["--dev", "/dev"]
    b += [] if "tmp" in drop else ["--tmpfs", "/tmp"]
    for p in etc:
        b += ["--ro-bind-try", p, p]
    if passwd:
        etcdir = os.path.join(scratch, "etc")
        os.makedirs(etcdir, exist_ok=True)
        with open(os.path.join(etcdir, "passwd"), "w") as f:
            f.write("patchbay:x:%d:%d:patchbay agent:%s/home:/bin/sh\n" % (uid or 1000, uid or 1000, scratch))
        with open(os.path.join(etcdir, "group"), "w") as f:
            f.write("patchbay:x:%d:\n" % (uid or 1000))
        b += ["--ro-bind", os.path.join(etcdir, "passwd"), "/etc/passwd",
              "--ro-bind", os.path.join(etcdir, "group"), "/etc/group"]
    if bin_dir:
        # the .bin entries are symlinks into node_modules: node_modules read-only, whole
        real = os.path.realpath(bin_dir)
        nm = os.path.dirname(real) if os.path.basename(real) == ".bin" else real
        b += ["--ro-bind", nm, nm]
    b += ["--bind", scratch, scratch, "--bind", repo, repo]
    if "home" in drop:   # HOME read-only: what does the CLI need to write there?
        b += ["--ro-bind", os.path.join(scratch, "home"), os.path.join(scratch, "home")]
    b += ["--chdir", repo, "--"]
    return b + argv


def run(name, bin_dir, timeout, use_bwrap, etc, uid, passwd, keep, verbose, drop=()):
    section_path = os.path.join(SOURCE, "config", "agents", name + ".yml")
    with open(section_path) as f:
        section = yaml.safe_load(f)["agent"]
    argv = section["command"]
    allowed = set(section.get("env") or [])
    top = tempfile.mkdtemp(prefix="try-%s-" % name)
    os.chmod(top, 0o755)
    repo = os.path.join(top, "repo")
    scratch = os.path.join(top, "scratch")
    make_repo(repo)
    for d in ("home", "tmp"):
        os.makedirs(os.path.join(scratch, d))
    prompt = os.path.join(scratch, "prompt.md")
    summary = os.path.join(scratch, "summary.md")
    output = os.path.join(scratch, "agent-output.log")
    with open(prompt, "w") as f:
        f.write(TASK)

    fake = FAKES[name](api_key=KEY, log_file=os.path.join(top, "fake-log.jsonl"))
    fake.start()
    proc = None
    try:
        wanted = fake_env(fake)[name]
        missing = sorted(set(wanted) - allowed)
        if missing:
            print("FAIL: %s sets %s, which its agent.env does not list (patchbay would not pass them)"
                  % (section_path, ", ".join(missing)))
            return 2
        path = SANDBOX_PATH if not bin_dir else os.path.abspath(bin_dir) + ":" + SANDBOX_PATH
        env = {"PATH": path, "HOME": os.path.join(scratch, "home"), "TMPDIR": os.path.join(scratch, "tmp"),
               "LANG": "C.UTF-8", "TERM": "dumb", "PATCHBAY_PROMPT_FILE": prompt,
               "PATCHBAY_SUMMARY_FILE": summary, "PATCHBAY_REVIEW_FILE": os.path.join(scratch, "findings.json")}
        env.update({k: v for k, v in wanted.items() if k in allowed})
        cmd = bwrap_argv(argv, repo, scratch, bin_dir, etc, uid, passwd, drop) if use_bwrap else argv
        if verbose:
            print("argv: %s" % json.dumps(cmd))
            print("env:  %s" % json.dumps({k: v for k, v in env.items() if "KEY" not in k}))
        start = time.time()
        with open(prompt) as stdin, open(output, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=repo, env=env, stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
                ended = "exit %d" % rc
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                rc = None
                ended = "timed out after %d s" % timeout
        elapsed = time.time() - start
        # whatever the CLI left running in its group goes too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        with open(os.path.join(repo, "calc.py")) as f:
            calc = f.read()
        fixed = "return a + b" in calc
        tests = subprocess.run(["python3", "-m", "unittest", "-q"], cwd=repo, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={"PATH": SANDBOX_PATH}).returncode == 0
        with open(output, "rb") as f:
            out_text = f.read().decode("utf-8", "replace")
        tail = out_text[-4096:]
        summary_text = None
        if os.path.exists(summary):
            with open(summary) as f:
                summary_text = f.read()
        source = summary_text if summary_text and summary_text.strip() else tail
        title = next((line for line in source.splitlines() if line.strip()), "")
        print("cli:           %s (%s)" % (name, " ".join(argv)[:120]))
        print("ended:         %s in %.1f s%s" % (ended, elapsed, " under bubblewrap" if use_bwrap else ""))
        print("calc.py fixed: %s" % ("yes" if fixed else "no: " + calc.strip().replace("\n", " | ")))
        print("tests pass:    %s" % ("yes" if tests else "no"))
        print("summary.md:    %s" % ("first line %r" % summary_text.splitlines()[0] if summary_text and
                                     summary_text.strip() else "not written"))
        print("PR title:      %r (from %s)" % (title, "summary.md" if source is summary_text else "output tail"))
        model = fake.model_requests()
        print("fake:          %d requests, %d to the model; other: %s" % (
            len(fake.requests), len(model),
            sorted({"%s %s %s" % (r.method, r.path, r.status) for r in fake.requests if r not in model}) or "none"))
        offered = fake.tool_names()
        if offered:
            print("tools offered: %s" % ", ".join(max(offered, key=len)))
        print("plan steps:    %s" % ", ".join(
            ("%s:%s" % (s.role, s.tool.name if s.tool.kind != "nested" else "%s(%s)" % (s.wire()[0], s.tool.name)))
            if s.tool else ("answer" if not s.problem else "gave up")
            for _, s in fake.steps))
        auth = sorted({r.header("x-api-key") or r.header("authorization") or r.header("x-goog-api-key") or
                       "(none)" for r in model})
        print("auth sent:     %s" % ", ".join(a.replace(KEY, "<key>") for a in auth))
        home = os.path.join(scratch, "home")
        du = subprocess.run(["du", "-sh", home], stdout=subprocess.PIPE, text=True).stdout.split()[0]
        print("HOME after:    %s: %s" % (du, ", ".join(sorted(os.listdir(home))) or "empty"))
        for e in fake.errors:
            print("fake error:    %s" % e[:400])
        ok = (rc == 0 and fixed and tests and title == "Make add() return a + b" and not fake.errors
              and model)
        if not ok or verbose:
            print("--- output tail ---\n%s" % tail[-3000:])
        print("RESULT:        %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        fake.stop()
        if keep:
            print("kept:          %s" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", choices=sorted(FAKES))
    p.add_argument("--bin-dir", default=os.path.join(SOURCE, "tests", "node_modules", ".bin"),
                   help="directory with the CLIs, put before PATH ('' = only the sandbox PATH)")
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--bwrap", action="store_true", help="run under bubblewrap")
    p.add_argument("--etc", default=PATCHBAY_ETC, help="the /etc paths bound read-only (if present) under --bwrap; "
                   "default: patchbay's")
    p.add_argument("--no-passwd", action="store_true", help="under --bwrap, no /etc/passwd and /etc/group")
    p.add_argument("--drop", default="", help="under --bwrap, comma-separated experiments: proc (no /proc), "
                   "tmp (no /tmp), home (HOME read-only)")
    p.add_argument("--uid", type=int, default=1000 if os.geteuid() == 0 else None,
                   help="uid (and gid) inside bubblewrap (default 1000 as root; -1: keep root)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    if a.bin_dir and not os.path.isdir(a.bin_dir):
        sys.exit("no such directory: %s (npm install in tests/ first, or --bin-dir '')" % a.bin_dir)
    uid = None if a.uid is None or a.uid < 0 else a.uid
    if not a.bwrap:
        uid = None
    return run(a.name, a.bin_dir, a.timeout, a.bwrap, a.etc.split(), uid, not a.no_passwd, a.keep, a.verbose,
               [d for d in a.drop.split(",") if d])


if __name__ == "__main__":
    sys.exit(main())
