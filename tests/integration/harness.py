"""Shared harness for patchbay's integration tests.

Runs the real binary against a real redis-server, over real loopback sockets.
Every process started here is tracked by PID and stopped in cleanup, and every
wait is bounded. Only the Python standard library (plus PyJWT in the fake
GitHub) is used, so the tests run on a fresh Debian 12 with python3.

What lives here:
  Redis       a private redis-server on a unix socket in a temp dir, with a tiny
              RESP client (the stdlib has none)
  Patchbay    the patchbay binary as a child process: environment, the port it
              bound (read from its JSON log), its log lines, stop with SIGTERM
  sign/post   deliveries signed exactly as GitHub signs them
  payloads    realistic webhook payloads (the shapes of github.com's)
"""

import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

BIN = os.path.abspath(os.environ.get("PATCHBAY_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "patchbay"))
SOURCE_DIR = os.environ.get("PATCHBAY_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SANITIZED = os.environ.get("PATCHBAY_SANITIZED", "0") in ("1", "ON", "true")
# Sanitized binaries are several times slower; scale waits, never assertions on behaviour.
SLOW = 4 if SANITIZED else 1
SECRET = "It's a Secret to Everybody"


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))


# ---------------------------------------------------------------- Redis


class RespError(Exception):
    pass


class RedisClient:
    """A minimal blocking RESP2 client: enough for tests to look inside Redis."""

    def __init__(self, path=None, host=None, port=None, timeout=5.0):
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
            except OSError:
                self.sock.close()
                raise
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _readexact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _reply(self):
        line = self._readline()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._readexact(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply() for _ in range(n)]
        raise RespError("bad reply %r" % line)

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def hgetall(self, key):
        flat = self.call("HGETALL", key)
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    def job(self, job_id):
        """The record, as strings: the fields kept one apiece over those packed
        in its "webhook" field (a JSON object of strings)."""
        raw = {k: v.decode() for k, v in self.hgetall("patchbay:job:%s" % job_id).items()}
        rec = json.loads(raw.pop("webhook")) if "webhook" in raw else {}
        rec.update(raw)
        return rec

    def stream_len(self):
        return self.call("XLEN", "patchbay:queue")

    def job_log(self, job_id):
        """The job's log lines (patchbay:log:<id>), oldest first, as strings."""
        out = []
        for _, fields in self.call("XRANGE", "patchbay:log:%s" % job_id, "-", "+") or []:
            f = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
            out.append(f["msg"])
        return out

    def job_ids(self):
        """Ids of the jobs whose record exists, oldest first (ids are patchbay:seq's values)."""
        last = int(self.call("GET", "patchbay:seq") or 0)
        return [str(i) for i in range(1, last + 1) if self.call("EXISTS", "patchbay:job:%d" % i)]


class Redis:
    """A private redis-server on a unix socket (and optionally a TCP port)."""

    def __init__(self, workdir, tcp=False, appendonly=True, appendfsync="everysec"):
        self.dir = os.path.join(workdir, "redis-%d" % id(self))
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "redis.sock")
        self.port = free_port() if tcp else 0
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.proc = None

    @property
    def url(self):
        return "unix://" + self.socket

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._pings, 10, what="redis-server to start")
        return self

    def _pings(self):
        c = None
        try:
            c = RedisClient(self.socket, timeout=0.5)
            return c.call("PING") == "PONG"
        except (OSError, RespError):  # "LOADING": restarted with an AOF, not ready yet
            return False
        finally:
            if c is not None:
                c.close()

    def client(self):
        return RedisClient(self.socket)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        self.kill(signal.SIGTERM)


def bwrap_works():
    """Whether bubblewrap can make a sandbox here (it needs user namespaces)."""
    if shutil.which("bwrap") is None:
        return False
    r = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"], capture_output=True, timeout=30)
    return r.returncode == 0


def sandbox_works():
    """Whether jobs can run fully sandboxed here: bubblewrap and slirp4netns."""
    return bwrap_works() and shutil.which("slirp4netns") is not None


# What the end-to-end tests run their jobs with: the sandbox, fully on, where
# the machine can make one (CI installs bubblewrap and slirp4netns).
ISOLATION = "bwrap" if sandbox_works() else "none"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- patchbay


class Patchbay:
    """The real binary as a child process, logging JSON to a file we read."""

    def __init__(self, workdir, command="serve", env=None, redis_url=None, secret=SECRET,
                 data_dir=None, args=None, nofile=None):
        self.workdir = workdir
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) to start it with, else inherited
        self.command = command
        self.args = list(args or [])
        self.data_dir = data_dir or os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "patchbay-%d.log" % id(self))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            "HOST": "127.0.0.1",
            "PORT": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "debug",
            "PATCHBAY_DATA_DIR": self.data_dir,
            "PATCHBAY_CONFIG": "",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                self.env[k] = os.environ[k]
        if secret is not None:
            self.env["WEBHOOK_SECRET"] = secret
        if redis_url is not None:
            self.env["REDIS_URL"] = redis_url
        self.env.update(env or {})
        self.proc = None
        self.port = None

    def start(self, wait_ready=True):
        self.log_file = open(self.log_path, "ab")
        preexec = None
        if self.nofile is not None:
            import resource
            limit = self.nofile
            preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))  # noqa: E731
        self.proc = subprocess.Popen([BIN, self.command] + self.args, env=self.env, cwd=self.workdir,
                                     stdout=self.log_file, stderr=self.log_file, preexec_fn=preexec)
        if wait_ready and self.command == "work":
            n = int(self.args[self.args.index("--concurrency") + 1]) if "--concurrency" in self.args else 2
            if wait_for(lambda: len(self.find_logs(" ready (")) >= n or self._died(), 20,
                        what="%d workers to be ready" % n) == "died":
                raise AssertionError("patchbay work exited at start:\n" + self.log_text())
        elif wait_ready:
            line = wait_for(lambda: self.find_log("listening on") or self._died(), 20,
                            what="patchbay to listen")
            if line == "died":
                raise AssertionError("patchbay exited at start:\n" + self.log_text())
            self.port = int(line["msg"].split(" ")[2].rsplit(":", 1)[1])
        return self

    def _died(self):
        return "died" if self.proc.poll() is not None else None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        out = []
        for raw in self.log_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"raw": raw})
        return out

    def find_log(self, needle):
        for line in self.log_lines():
            if needle in line.get("msg", ""):
                return line
        return None

    def find_logs(self, needle):
        return [line for line in self.log_lines() if needle in line.get("msg", "")]

    def workers(self):
        """The live workers the supervisor started: {slot: (pid, consumer)}, from its log."""
        out = {}
        for line in self.log_lines():
            msg = line.get("msg", "")
            if msg.startswith("worker ") and " started (pid " in msg:
                slot = int(msg.split()[1])
                pid = int(msg.split("(pid ")[1].split(",")[0])
                out[slot] = (pid, msg.split("consumer ")[1].rstrip(")"))
            elif msg.startswith("worker ") and "(pid " in msg and (" exited " in msg or " was killed " in msg):
                slot = int(msg.split()[1])
                pid = int(msg.split("(pid ")[1].split(")")[0])
                if out.get(slot, (None,))[0] == pid:
                    del out[slot]
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("patchbay did not stop within %ds" % timeout)
        self.log_file.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_delivery(conn, event, payload, delivery=None, secret=SECRET, headers=None,
                  path="/api/github/webhooks", signature=None):
    """POSTs as GitHub does; returns (status, parsed JSON or raw text, delivery)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    delivery = delivery or str(uuid.uuid4())
    h = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/test",
         "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
         "X-Hub-Signature-256": signature if signature is not None else sign(body, secret)}
    for k, v in (headers or {}).items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    conn.request("POST", path, body=body, headers=h)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        data = json.loads(raw)
    except ValueError:
        data = raw.decode("utf-8", "replace")
    return resp.status, data, delivery


# ---------------------------------------------------------------- payloads
# The shapes of github.com's webhook payloads (fields patchbay reads and the
# bulk around them), so sizes and nesting resemble real traffic.


def _user(login, kind="User", uid=1):
    return {"login": login, "id": uid, "node_id": "MDQ6VXNlcjE=",
            "avatar_url": "https://avatars.githubusercontent.com/u/%d?v=4" % uid, "gravatar_id": "",
            "url": "https://api.github.com/users/" + login, "html_url": "https://github.com/" + login,
            "followers_url": "https://api.github.com/users/%s/followers" % login,
            "repos_url": "https://api.github.com/users/%s/repos" % login, "type": kind, "site_admin": False}


def _repo(full_name="octo-org/hello-world"):
    owner = full_name.split("/")[0]
    return {"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": full_name.split("/")[1],
            "full_name": full_name, "private": False, "owner": _user(owner, "Organization", 9919),
            "html_url": "https://github.com/" + full_name, "description": "A test repository",
            "fork": False, "url": "https://api.github.com/repos/" + full_name,
            "default_branch": "main", "topics": ["c", "webhooks"], "visibility": "public",
            "open_issues_count": 3, "watchers": 10, "forks": 2}


_ids = iter(range(1001, 1 << 40))


def next_id():
    """A fresh comment id: GitHub never gives two comments one id, and patchbay makes one job of one comment."""
    return next(_ids)


def issue_comment(body="@patchbay fix the null check in parser.c", association="OWNER",
                  sender="octocat", sender_type="User", action="created", number=42,
                  on_pr=False, issue_author="octocat", repo="octo-org/hello-world",
                  installation=7, comment_id=None, title="Parser crashes on empty input"):
    comment_id = next_id() if comment_id is None else comment_id
    issue = {"url": "https://api.github.com/repos/%s/issues/%d" % (repo, number),
             "html_url": "https://github.com/%s/issues/%d" % (repo, number), "id": 5000 + number,
             "node_id": "I_kwDOAAAB", "number": number, "title": title, "user": _user(issue_author),
             "labels": [{"id": 1, "name": "bug", "color": "d73a4a", "default": True}],
             "state": "open", "locked": False, "assignees": [], "comments": 3,
             "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z",
             "author_association": "OWNER",
             "body": "Steps to reproduce:\n\n```\n./parser ''\n```\n\nIt segfaults." * 20,
             "reactions": {"url": "x", "total_count": 0, "+1": 0, "-1": 0}}
    if on_pr:
        issue["pull_request"] = {"url": "https://api.github.com/repos/%s/pulls/%d" % (repo, number),
                                 "html_url": "https://github.com/%s/pull/%d" % (repo, number),
                                 "diff_url": "x", "patch_url": "x", "merged_at": None}
    return {"action": action, "issue": issue,
            "comment": {"url": "https://api.github.com/repos/%s/issues/comments/%d" % (repo, comment_id),
                        "html_url": "https://github.com/%s/issues/%d#issuecomment-%d" % (repo, number, comment_id),
                        "id": comment_id, "node_id": "IC_kwDOAAAB", "user": _user(sender, sender_type, 583231),
                        "created_at": "2026-11-23T21:00:00Z", "updated_at": "2026-11-23T21:00:00Z",
                        "author_association": association, "body": body,
                        "reactions": {"url": "x", "total_count": 0}, "performed_via_github_app": None},
            "repository": _repo(repo), "organization": {"login": repo.split("/")[0], "id": 9919},
            "sender": _user(sender, sender_type, 583231),
            "installation": {"id": installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNw=="}}


def issues_labeled(label="patchbay", sender="octocat", sender_type="User", number=7,
                   repo="octo-org/hello-world", installation=7, action="labeled"):
    p = issue_comment(sender=sender, sender_type=sender_type, number=number, repo=repo,
                      installation=installation)
    del p["comment"]
    p["action"] = action
    p["label"] = {"id": 208045946, "name": label, "color": "f29513", "default": False}
    return p


def pull_request(action="opened", author="octocat", association="MEMBER", draft=False, number=9,
                 sender="octocat", repo="octo-org/hello-world", installation=7):
    return {"action": action, "number": number,
            "pull_request": {"url": "https://api.github.com/repos/%s/pulls/%d" % (repo, number),
                             "id": 279147437, "number": number, "state": "open", "title": "Add a parser test",
                             "user": _user(author), "body": "Adds a test.", "draft": draft,
                             "author_association": association,
                             "head": {"label": "octocat:feature", "ref": "feature",
                                      "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "repo": _repo(repo)},
                             "base": {"label": "octo-org:main", "ref": "main",
                                      "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "repo": _repo(repo)}},
            "repository": _repo(repo), "sender": _user(sender),
            "installation": {"id": installation}}


def review_comment(body="@patchbay rename this variable", association="COLLABORATOR",
                   pr_author="patchbay[bot]", sender="octocat", number=11, path="src/parser.c", line=17,
                   repo="octo-org/hello-world", installation=7):
    p = pull_request(author=pr_author, number=number, repo=repo, installation=installation, sender=sender)
    p["action"] = "created"
    p["comment"] = {"id": next_id(), "path": path, "line": line, "side": "RIGHT", "body": body,
                    "author_association": association, "user": _user(sender),
                    "diff_hunk": "@@ -10,6 +10,8 @@ int parse(void)", "commit_id": "ec26c3e"}
    return p


class TestCase(unittest.TestCase):
    """A unittest case with a temp dir and a cleanup list for processes."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="pbtest-")
        self._procs = []

    def tearDown(self):
        # a patchbay still running here must stop cleanly: SIGTERM -> exit 0,
        # or the test fails (a crash at shutdown is a bug like any other)
        bad = []
        for p in reversed(self._procs):
            running = getattr(p, "proc", None) is not None and p.proc.poll() is None
            try:
                code = p.stop()
            except Exception as e:  # a failed stop must not hide the test's own failure
                code = str(e)
            if isinstance(p, Patchbay) and running and code != 0:
                bad.append("patchbay %s exited with %s on SIGTERM; log:\n%s" % (p.command, code, p.log_text()[-3000:]))
        if os.environ.get("PATCHBAY_KEEP_TMP"):
            print("kept", self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if bad:
            self.fail("\n".join(bad))

    def redis(self, **kw):
        r = Redis(self.workdir, **kw).start()
        self._procs.append(r)
        return r

    def patchbay(self, start=True, **kw):
        pb = Patchbay(self.workdir, **kw)
        self._procs.append(pb)
        return pb.start() if start else pb


class AppCase(TestCase):
    """A test against the local fake GitHub (tests/fakes) as App 1234
    "patchbay", with a Redis: self.gh, self.keys, self.redis_server, self.db;
    self.start_app(config_text) runs `patchbay run` against them as self.pb."""

    def setUp(self):
        super().setUp()
        fakes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")
        if fakes not in sys.path:
            sys.path.insert(0, fakes)
        import ghfake_keys
        from github import FakeGitHub
        self.keys = ghfake_keys.generate_rsa_keypair(os.path.join(self.workdir, "keys"))
        self.gh = FakeGitHub(app_id=1234, slug="patchbay", public_key_pem=self.keys["public_pem"],
                             git_root=os.path.join(self.workdir, "git"))
        self.gh.start()
        self.redis_server = self.redis()
        self.db = self.redis_server.client()
        self.pb = None

    def tearDown(self):
        self.db.close()
        if self.pb is not None:
            self.pb.stop()
        self.gh.stop()
        super().tearDown()

    def start_app(self, config_text, **env):
        cfg = os.path.join(self.workdir, "patchbay.yml")
        with open(cfg, "w") as f:
            f.write(config_text)
        e = {"APP_ID": "1234", "PRIVATE_KEY_PATH": self.keys["pkcs1"], "GITHUB_API_URL": self.gh.api,
             "GITHUB_URL": self.gh.web, "PATCHBAY_CONFIG": cfg}
        e.update(env)
        self.pb = Patchbay(self.workdir, command="run", redis_url=self.redis_server.url, env=e)
        self.pb.start()
        return self.pb


def main():
    unittest.main(verbosity=2)


# ---------------------------------------------------------------- jobs without a webhook
# Tests and benchmarks make jobs of any kind (noop among them) through the very
# enqueue transaction the webhook server sends: the script text comes from the
# build (tests/tools/print_script), the arguments are laid out as
# queue_enqueue_cmd lays them out. Nothing in the product takes this path.

PRINT_SCRIPT = os.environ.get("PATCHBAY_PRINT_SCRIPT") or os.path.join(os.path.dirname(BIN), "tests", "print_script")
_scripts = {}


def queue_script(name):
    if name not in _scripts:
        _scripts[name] = subprocess.run([PRINT_SCRIPT, name], check=True, capture_output=True).stdout
    return _scripts[name]


def enqueue(db, jobs, ttl=7 * 86400, batch=200):
    """Queues jobs, each a dict of record fields (kind required; repo and number
    make it an issue's job), in MULTI/EVAL/EXEC transactions like the
    webhook's. Returns the job ids in order."""
    script = queue_script("enqueue")
    apart = ("kind", "repo", "number", "sender", "head_sha", "event_id")
    ids = []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        deliveries = [str(uuid.uuid4()) for _ in chunk]
        keys = ["patchbay:seq", "patchbay:queue"]
        argv = [len(chunk), ttl]
        db.call("MULTI")
        for job, d in zip(chunk, deliveries):
            now = int(time.time() * 1000)
            fields = {k: str(v) for k, v in job.items() if not k.startswith("_")}
            keys += ["patchbay:delivery:" + d,
                     "patchbay:event:" + fields["event_id"] if "event_id" in fields else "patchbay:delivery:" + d]
            packed = json.dumps({k: v for k, v in fields.items() if k not in apart})
            argv += [now, fields.get("kind", ""), fields.get("repo", ""), fields.get("number", ""),
                     fields.get("sender", "test"), fields.get("head_sha", ""), d, packed]
        db.call("EVAL", script, len(keys), *keys, *argv)
        out = db.call("EXEC")
        results = out[-1]
        if isinstance(results, RespError) or not isinstance(results, list):
            raise AssertionError("enqueue failed: %r" % (results,))
        ids += [r[1].decode() if isinstance(r[1], bytes) else str(r[1]) for r in results]
    return ids
