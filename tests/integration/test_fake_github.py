#!/usr/bin/python3
"""Self-test of the local fake GitHub (tests/fakes/github.py).

Runs the fake in-process on a free loopback port and checks it with urllib,
http.client, PyJWT and the real git CLI: App JWT rules, installation tokens
and their scope, pagination, ETags, 422 bodies, review anchors, fault modes,
git smart HTTP (clone, chunked push, refused push, pull refs), deliveries,
the manifest flow, the command line and the call log.

    /usr/bin/python3 tests/integration/test_fake_github.py
"""

import base64
import calendar
import gzip
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKES = os.path.join(HERE, "..", "fakes")
sys.path.insert(0, os.path.abspath(FAKES))

import github as fakegithub  # noqa: E402  (tests/fakes/github.py)
import ghfake_keys  # noqa: E402

APP_ID = 1234
TMP = None
KEYS = None
OTHER_KEYS = None
FAKE = None

MAIN_C = "".join("line %d\n" % i for i in range(1, 31))


def setUpModule():
    global TMP, KEYS, OTHER_KEYS, FAKE
    TMP = tempfile.mkdtemp(prefix="test-fake-github-")
    KEYS = ghfake_keys.generate_rsa_keypair(os.path.join(TMP, "keys"))
    OTHER_KEYS = ghfake_keys.generate_rsa_keypair(os.path.join(TMP, "keys"), prefix="other")
    FAKE = fakegithub.FakeGitHub(APP_ID, "patchbay", KEYS["public_pem"],
                                 os.path.join(TMP, "git"))
    FAKE.start()
    FAKE.create_repo("acme/widgets", private=True, files={
        "README.md": "# widgets\n", "src/main.c": MAIN_C, "docs/old.md": "old doc\n" * 5,
        "obsolete.txt": "bye\n", "logo.bin": {"base64": base64.b64encode(
            bytes(range(256))).decode()},
        ".github/patchbay.yml": "test: make test\n"})
    FAKE.create_repo("acme/secret", private=True, files={"s.txt": "s\n"})
    FAKE.create_repo("acme/public-other", private=False, files={"p.txt": "p\n"})
    FAKE.create_repo("other/outside", private=True, files={"o.txt": "o\n"})
    FAKE.add_installation(77, "acme", ["acme/widgets", "acme/secret"])
    FAKE.add_installation(88, "other", ["other/outside"])
    FAKE.set_collaborator("acme/widgets", "alice", "write")
    FAKE.set_collaborator("acme/widgets", "tina", "triage")


def tearDownModule():
    if FAKE:
        FAKE.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def gh(method, path, body=None, auth=None, headers=None, raw_body=None):
    """One API call; returns (status, headers with lowercase names, body)."""
    h = {"Accept": "application/vnd.github+json", "User-Agent": "fake-selftest",
         "X-GitHub-Api-Version": "2022-11-28"}
    h.update(headers or {})
    if auth:
        h["Authorization"] = auth
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    url = path if path.startswith("http") else FAKE.api + path
    req = urllib.request.Request(url, data, h, method=method)
    try:
        resp = urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as e:
        resp = e
    raw = resp.read()
    hdrs = {k.lower(): v for k, v in resp.headers.items()}
    if "json" in hdrs.get("content-type", "") and raw:
        return resp.status, hdrs, json.loads(raw)
    return resp.status, hdrs, raw


def app_jwt(keys=None, **kw):
    return "Bearer " + ghfake_keys.make_app_jwt((keys or KEYS)["pkcs1_pem"], APP_ID, **kw)


def mint(installation=77, body=None):
    st, _h, b = gh("POST", "/app/installations/%d/access_tokens" % installation, body or {},
                   app_jwt())
    assert st == 201, (st, b)
    return b


def token(installation=77, body=None):
    return "token " + mint(installation, body)["token"]


def git_env():
    home = os.path.join(TMP, "home")
    os.makedirs(home, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(args, cwd=None, tok=None, check=True, extra_config=()):
    cmd = ["git", "-c", "protocol.version=2", "-c", "init.defaultBranch=main"]
    if tok:
        basic = base64.b64encode(("x-access-token:" + tok).encode()).decode()
        cmd += ["-c", "http.extraHeader=Authorization: Basic " + basic]
    for c in extra_config:
        cmd += ["-c", c]
    p = subprocess.run(cmd + list(args), cwd=cwd, env=git_env(), capture_output=True,
                       text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("git %s failed: %s" % (args, p.stderr))
    return p


def bare_ref(repo, ref):
    p = subprocess.run(["git", "--git-dir", FAKE.git.path(repo), "rev-parse", "--verify",
                        "--quiet", ref], capture_output=True, text=True, env=git_env())
    return p.stdout.strip() or None


class FakeTest(unittest.TestCase):
    def setUp(self):
        FAKE.clear_faults()

    def tearDown(self):
        FAKE.clear_faults()

    def assertGitHubError(self, st, body, status, message=None):
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict)
        self.assertIn("documentation_url", body)
        self.assertEqual(body.get("status"), str(status))
        if message is not None:
            self.assertEqual(body["message"], message)


# ---------------------------------------------------------------------------
# App JWTs
# ---------------------------------------------------------------------------
class TestJWT(FakeTest):
    def test_both_key_formats_accepted(self):
        for pem in (KEYS["pkcs1_pem"], KEYS["pkcs8_pem"]):
            tok = ghfake_keys.make_app_jwt(pem, APP_ID)
            st, h, b = gh("GET", "/app", auth="Bearer " + tok)
            self.assertEqual(st, 200, b)
            self.assertEqual(b["slug"], "patchbay")
            self.assertEqual(b["id"], APP_ID)
            for k in ("owner", "permissions", "events", "node_id", "html_url", "client_id"):
                self.assertIn(k, b)
            # and PyJWT verifies it with the public key on its own
            import jwt
            jwt.decode(tok, KEYS["public_pem"], algorithms=["RS256"])

    def test_rejections(self):
        now = int(time.time())
        cases = [
            (app_jwt(OTHER_KEYS), "A JSON web token could not be decoded"),
            (app_jwt(now=now - 1200), "'Expiration time' claim ('exp') must be a numeric "
                                      "value representing the future time at which the "
                                      "assertion expires"),
            (app_jwt(iat_offset=-60, exp_offset=700),
             "'Expiration time' claim ('exp') is too far in the future"),
            (app_jwt(iat_offset=120, exp_offset=300),
             "'Issued at' claim ('iat') must be an Integer representing the time that the "
             "assertion was issued"),
            (app_jwt(omit=("iss",)), "'Issuer' claim ('iss') must be an Integer"),
            (app_jwt(iss="999"), "A JSON web token could not be decoded"),
            ("Bearer not.a.jwt", "A JSON web token could not be decoded"),
        ]
        for auth, msg in cases:
            st, h, b = gh("POST", "/app/installations/77/access_tokens", {}, auth)
            self.assertGitHubError(st, b, 401, msg)
            self.assertIn("x-ratelimit-limit", h)

    def test_leeway(self):
        # iat 30 s ahead (clock drift) and exp exactly 10 minutes out are fine
        st, _h, b = gh("GET", "/app", auth=app_jwt(iat_offset=30, exp_offset=600))
        self.assertEqual(st, 200, b)
        # the App's client ID is accepted as iss too
        cid = FAKE.apps[APP_ID]["client_id"]
        st, _h, b = gh("GET", "/app", auth=app_jwt(iss=cid))
        self.assertEqual(st, 200, b)

    def test_wrong_credential_kind(self):
        st, _h, b = gh("GET", "/app", auth=token())
        self.assertGitHubError(st, b, 401, "A JSON web token could not be decoded")
        st, _h, b = gh("GET", "/app")
        self.assertEqual(st, 401)
        # an App JWT is not an installation: private repositories are invisible
        st, _h, b = gh("GET", "/repos/acme/widgets", auth=app_jwt())
        self.assertGitHubError(st, b, 404, "Not Found")

    def test_installations(self):
        st, _h, b = gh("GET", "/app/installations", auth=app_jwt())
        self.assertEqual(st, 200)
        self.assertEqual(sorted(i["id"] for i in b), [77, 88])
        st, _h, b = gh("GET", "/repos/acme/widgets/installation", auth=app_jwt())
        self.assertEqual((st, b["id"], b["account"]["login"]), (200, 77, "acme"))
        st, _h, b = gh("GET", "/repos/acme/public-other/installation", auth=app_jwt())
        self.assertEqual(st, 404)


# ---------------------------------------------------------------------------
# installation tokens
# ---------------------------------------------------------------------------
class TestTokens(FakeTest):
    def test_mint_shape_and_count(self):
        before = FAKE.mint_count
        b = mint()
        self.assertTrue(re.fullmatch(r"ghs_[A-Za-z0-9]{36}", b["token"]))
        self.assertTrue(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b["expires_at"]))
        exp = calendar.timegm(time.strptime(b["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertAlmostEqual(exp - time.time(), 3600, delta=5)
        self.assertEqual(b["permissions"]["issues"], "write")
        self.assertEqual(b["repository_selection"], "selected")
        self.assertNotIn("repositories", b)
        self.assertEqual(FAKE.mint_count, before + 1)
        st, _h, s = gh("GET", "/_fake/state")
        self.assertEqual(s["mint_count"], before + 1)

    def test_scope(self):
        b = mint(body={"repositories": ["widgets"]})
        self.assertEqual([r["full_name"] for r in b["repositories"]], ["acme/widgets"])
        t = "token " + b["token"]
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth=t)[0], 200)
        # private repository of the same installation, outside the token: hidden
        st, _h, body = gh("GET", "/repos/acme/secret", auth=t)
        self.assertGitHubError(st, body, 404, "Not Found")
        st, _h, body = gh("GET", "/repos/other/outside", auth=t)
        self.assertGitHubError(st, body, 404, "Not Found")
        # public repositories are readable by anyone, writable by no stranger
        self.assertEqual(gh("GET", "/repos/acme/public-other", auth=t)[0], 200)
        n = FAKE.add_issue("acme/public-other", "x")["number"]
        st, _h, body = gh("POST", "/repos/acme/public-other/issues/%d/comments" % n,
                          {"body": "hi"}, t)
        self.assertGitHubError(st, body, 403, "Resource not accessible by integration")
        # by id as well
        wid = FAKE.repos["acme/widgets"]["id"]
        b = mint(body={"repository_ids": [wid]})
        self.assertEqual(b["repositories"][0]["id"], wid)

    def test_mint_validation(self):
        for body in ({"repositories": ["outside"]}, {"repositories": ["acme/widgets"]},
                     {"repository_ids": [1]}):
            st, _h, b = gh("POST", "/app/installations/77/access_tokens", body, app_jwt())
            self.assertGitHubError(st, b, 422, "There is at least one repository that does "
                                               "not exist or is not accessible to the parent "
                                               "installation.")
        st, _h, b = gh("POST", "/app/installations/77/access_tokens",
                       {"permissions": {"administration": "write"}}, app_jwt())
        self.assertGitHubError(st, b, 422, "The permissions requested are not granted to "
                                           "this installation.")
        st, _h, b = gh("POST", "/app/installations/4242/access_tokens", {}, app_jwt())
        self.assertEqual(st, 404)

    def test_permissions_enforced(self):
        t = token(body={"repositories": ["widgets"], "permissions": {"issues": "read"}})
        n = FAKE.add_issue("acme/widgets", "perm test")["number"]
        self.assertEqual(gh("GET", "/repos/acme/widgets/issues/%d" % n, auth=t)[0], 200)
        st, _h, b = gh("POST", "/repos/acme/widgets/issues/%d/comments" % n, {"body": "x"}, t)
        self.assertGitHubError(st, b, 403, "Resource not accessible by integration")
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/README.md", auth=t)
        self.assertEqual(st, 403)

    def test_bad_and_expired_tokens(self):
        st, _h, b = gh("GET", "/repos/acme/widgets", auth="token ghs_" + "x" * 36)
        self.assertGitHubError(st, b, 401, "Bad credentials")
        t1, t2 = mint()["token"], mint()["token"]
        self.assertEqual(FAKE.expire_tokens(token=t1), 1)
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth="token " + t1)[0], 401)
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth="Bearer " + t2)[0], 200)
        st, _h, b = gh("POST", "/_fake/expire_tokens", {})
        self.assertEqual(st, 201)
        self.assertGreaterEqual(b["expired"], 1)
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth="token " + t2)[0], 401)
        # revocation
        t3 = token()
        self.assertEqual(gh("DELETE", "/installation/token", auth=t3)[0], 204)
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth=t3)[0], 401)

    def test_installation_repositories_and_user(self):
        t = token()
        st, _h, b = gh("GET", "/installation/repositories", auth=t)
        self.assertEqual(b["total_count"], 2)
        st, _h, b = gh("GET", "/users/patchbay%5Bbot%5D", auth=t)
        self.assertEqual((st, b["login"], b["type"]), (200, "patchbay[bot]", "Bot"))
        self.assertIsInstance(b["id"], int)
        self.assertEqual(gh("GET", "/users/nobody-here", auth=t)[0], 404)


# ---------------------------------------------------------------------------
# REST shapes, pagination, headers
# ---------------------------------------------------------------------------
LINK_RE = re.compile(r'<([^>]+)>; rel="(prev|next|last|first)"')


class TestRest(FakeTest):
    def test_headers_and_etag(self):
        t = token()
        st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual(st, 200)
        for k in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used",
                  "x-ratelimit-reset", "x-ratelimit-resource", "x-github-request-id", "etag"):
            self.assertIn(k, h)
        self.assertEqual(h["x-ratelimit-limit"], "5000")
        self.assertEqual(h["x-ratelimit-resource"], "core")
        self.assertTrue(h["content-type"].startswith("application/json"))
        for k in ("id", "node_id", "full_name", "private", "owner", "html_url", "url",
                  "clone_url", "default_branch", "created_at", "updated_at"):
            self.assertIn(k, b)
        rem = int(h["x-ratelimit-remaining"])
        st, h2, _ = gh("GET", "/repos/acme/widgets", auth=t,
                       headers={"If-None-Match": h["etag"]})
        self.assertEqual(st, 304)
        self.assertEqual(int(h2["x-ratelimit-remaining"]), rem)   # a 304 is free
        st, h3, _ = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual(int(h3["x-ratelimit-remaining"]), rem - 1)

    def test_keep_alive(self):
        t = token()
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=10)
        sock = None
        for method, path, body in (("GET", "/repos/acme/widgets", None),
                                   ("GET", "/repos/acme/nope", None),
                                   ("POST", "/repos/acme/widgets/pulls", b"{}"),
                                   ("GET", "/rate_limit", None)):
            conn.request(method, path, body, {"Authorization": t,
                                              "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            self.assertEqual(int(r.getheader("Content-Length")), len(data))
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock, "connection was not kept alive")
        conn.close()

    def test_chunked_gzip_json_body(self):
        t = token()
        n = FAKE.add_issue("acme/widgets", "gzip")["number"]
        data = gzip.compress(json.dumps({"body": "compressed hello"}).encode())
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=10)
        conn.putrequest("POST", "/repos/acme/widgets/issues/%d/comments" % n)
        for k, v in (("Authorization", t), ("Content-Type", "application/json"),
                     ("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")):
            conn.putheader(k, v)
        conn.endheaders()
        for i in range(0, len(data), 7):
            chunk = data[i:i + 7]
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        self.assertEqual(r.status, 201, body)
        self.assertEqual(body["body"], "compressed hello")

    def test_pagination_250_comments(self):
        n = FAKE.add_issue("acme/widgets", "many comments", user="alice")["number"]
        for i in range(250):
            FAKE.add_comment("acme/widgets", n, "comment %d" % i, user="alice")
        t = token()
        path = "/repos/acme/widgets/issues/%d/comments" % n
        st, h, b = gh("GET", path, auth=t)
        self.assertEqual((st, len(b)), (200, 30))
        self.assertEqual(h["link"], '<%s%s?page=2>; rel="next", <%s%s?page=9>; rel="last"'
                         % (FAKE.api, path, FAKE.api, path))
        st, h, b = gh("GET", path + "?per_page=100&page=2", auth=t)
        self.assertEqual(len(b), 100)
        rels = [rel for _u, rel in LINK_RE.findall(h["link"])]
        self.assertEqual(rels, ["prev", "next", "last", "first"])
        self.assertIn('<%s%s?per_page=100&page=1>; rel="prev"' % (FAKE.api, path), h["link"])
        # walk rel="next" to the end
        url, seen = FAKE.api + path + "?per_page=100", []
        while url:
            st, h, b = gh("GET", url, auth=t)
            seen += [c["body"] for c in b]
            links = {rel: u for u, rel in LINK_RE.findall(h.get("link", ""))}
            url = links.get("next")
        self.assertEqual(seen, ["comment %d" % i for i in range(250)])
        self.assertEqual(set(links), {"prev", "first"})
        st, h, b = gh("GET", path + "?per_page=500", auth=t)
        self.assertEqual(len(b), 100)   # max 100
        c = b[0]
        for k in ("id", "node_id", "url", "html_url", "body", "user", "created_at",
                  "updated_at", "author_association", "issue_url"):
            self.assertIn(k, c)
        self.assertEqual(c["user"]["login"], "alice")
        self.assertEqual(c["author_association"], "COLLABORATOR")

    def test_comments_reactions_labels_history(self):
        t = token()
        n = FAKE.add_issue("acme/widgets", "fix parser", body="crash", user="alice")["number"]
        st, _h, issue = gh("GET", "/repos/acme/widgets/issues/%d" % n, auth=t)
        self.assertEqual((issue["title"], issue["user"]["login"], issue["state"]),
                         ("fix parser", "alice", "open"))
        st, h, c = gh("POST", "/repos/acme/widgets/issues/%d/comments" % n,
                      {"body": "working on it"}, t)
        self.assertEqual(st, 201)
        self.assertEqual(h["location"], c["url"])
        self.assertEqual(c["user"]["login"], "patchbay[bot]")
        self.assertEqual(c["performed_via_github_app"]["slug"], "patchbay")
        st, _h, c2 = gh("PATCH", "/repos/acme/widgets/issues/comments/%d" % c["id"],
                        {"body": "done"}, t)
        self.assertEqual((st, c2["body"]), (200, "done"))
        st, _h, c3 = gh("GET", "/repos/acme/widgets/issues/comments/%d" % c["id"], auth=t)
        self.assertEqual(c3["body"], "done")
        st, _h, b = gh("POST", "/repos/acme/widgets/issues/%d/comments" % n, {}, t)
        self.assertGitHubError(st, b, 422)
        st, _h, b = gh("POST", "/repos/acme/widgets/issues/%d/comments" % n,
                       {"body": "x" * 65537}, t)
        self.assertGitHubError(st, b, 422, "Validation Failed")
        # reactions: 201 new, 200 same again, 422 unknown content
        path = "/repos/acme/widgets/issues/%d/reactions" % n
        st, _h, r1 = gh("POST", path, {"content": "eyes"}, t)
        self.assertEqual((st, r1["content"], r1["user"]["login"]), (201, "eyes", "patchbay[bot]"))
        st, _h, r2 = gh("POST", path, {"content": "eyes"}, t)
        self.assertEqual((st, r2["id"]), (200, r1["id"]))
        st, _h, b = gh("POST", path, {"content": "thumbsup"}, t)
        self.assertGitHubError(st, b, 422, "Validation Failed")
        st, _h, b = gh("POST", "/repos/acme/widgets/issues/comments/%d/reactions" % c["id"],
                       {"content": "rocket"}, t)
        self.assertEqual(st, 201)
        # labels
        lpath = "/repos/acme/widgets/issues/%d/labels" % n
        st, _h, b = gh("POST", lpath, {"labels": ["patchbay:working", "bug"]}, t)
        self.assertEqual((st, [x["name"] for x in b]), (200, ["patchbay:working", "bug"]))
        st, _h, b = gh("DELETE", lpath + "/patchbay%3Aworking", auth=t)
        self.assertEqual((st, [x["name"] for x in b]), (200, ["bug"]))
        st, _h, b = gh("DELETE", lpath + "/patchbay%3Aworking", auth=t)
        self.assertGitHubError(st, b, 404, "Label does not exist")
        # state shows reactions and the edit history
        s = FAKE.state()
        cs = [x for x in s["comments"] if x["id"] == c["id"]][0]
        self.assertEqual(cs["history"][0]["body"], "working on it")
        self.assertEqual([r["content"] for r in cs["reactions"]], ["rocket"])
        iss = [x for x in s["issues"] if x["repo"] == "acme/widgets" and x["number"] == n][0]
        self.assertEqual([r["content"] for r in iss["reactions"]], ["eyes"])
        self.assertEqual(iss["labels"], ["bug"])

    def test_collaborator_permission(self):
        t = token()
        cases = (("widgets", "alice", "write", "write"), ("widgets", "tina", "read", "triage"),
                 ("widgets", "bob", "none", "none"), ("widgets", "acme", "admin", "admin"),
                 ("public-other", "bob", "read", "read"))
        FAKE.add_user("bob")
        FAKE.set_collaborator("acme/public-other", "alice", "admin")
        for repo, user, perm, role in cases:
            st, _h, b = gh("GET", "/repos/acme/%s/collaborators/%s/permission" % (repo, user),
                           auth=t)
            self.assertEqual((st, b["permission"], b["role_name"], b["user"]["login"]),
                             (200, perm, role, user))

    def test_contents(self):
        t = token()
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/.github/patchbay.yml", auth=t)
        self.assertEqual((st, b["type"], b["encoding"]), (200, "file", "base64"))
        self.assertEqual(base64.b64decode(b["content"]), b"test: make test\n")
        for k in ("name", "path", "sha", "size", "url", "html_url", "git_url", "download_url"):
            self.assertIn(k, b)
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/nope.yml", auth=t)
        self.assertGitHubError(st, b, 404, "Not Found")
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/README.md?ref=nobranch", auth=t)
        self.assertGitHubError(st, b, 404, "No commit found for the ref nobranch")
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/src", auth=t)
        self.assertEqual([e["name"] for e in b], ["main.c"])
        FAKE.commit("acme/widgets", "cfg-branch", {".github/patchbay.yml": "test: other\n"})
        st, _h, b = gh("GET", "/repos/acme/widgets/contents/.github/patchbay.yml"
                              "?ref=cfg-branch", auth=t)
        self.assertEqual(base64.b64decode(b["content"]), b"test: other\n")
        st, _h, raw = gh("GET", "/repos/acme/widgets/contents/README.md", auth=t,
                         headers={"Accept": "application/vnd.github.raw"})
        self.assertEqual(raw, b"# widgets\n")

    def test_check_runs(self):
        t = token()
        sha = FAKE.git.rev_parse("acme/widgets", "main")
        st, _h, cr = gh("POST", "/repos/acme/widgets/check-runs",
                        {"name": "patchbay review", "head_sha": sha, "status": "in_progress"}, t)
        self.assertEqual((st, cr["status"], cr["conclusion"]), (201, "in_progress", None))
        self.assertIsNotNone(cr["started_at"])
        st, _h, cr2 = gh("PATCH", "/repos/acme/widgets/check-runs/%d" % cr["id"],
                         {"conclusion": "success",
                          "output": {"title": "3 findings", "summary": "ok"}}, t)
        self.assertEqual((st, cr2["status"], cr2["conclusion"], cr2["output"]["title"]),
                         (200, "completed", "success", "3 findings"))
        self.assertIsNotNone(cr2["completed_at"])
        st, _h, b = gh("POST", "/repos/acme/widgets/check-runs",
                       {"name": "x", "head_sha": "0" * 40}, t)
        self.assertGitHubError(st, b, 422)
        st, _h, b = gh("POST", "/repos/acme/widgets/check-runs",
                       {"name": "x", "head_sha": sha, "status": "completed"}, t)
        self.assertGitHubError(st, b, 422)
        st, _h, b = gh("GET", "/repos/acme/widgets/commits/%s/check-runs" % sha, auth=t)
        self.assertEqual(b["total_count"], 1)


# ---------------------------------------------------------------------------
# pull requests and reviews
# ---------------------------------------------------------------------------
class TestPulls(FakeTest):
    @classmethod
    def setUpClass(cls):
        lines = MAIN_C.splitlines(True)
        lines[2] = "line 3 changed\n"
        lines[24] = "line 25 changed\n"
        del lines[26]                       # line 27 removed
        cls.head = FAKE.commit("acme/widgets", "feature", {
            "src/main.c": "".join(lines), "docs/old.md": None, "docs/new.md": "old doc\n" * 5,
            "obsolete.txt": None, "logo.bin": {"base64": base64.b64encode(
                bytes(range(255, -1, -1))).decode()}, "added.txt": "a\nb\n"},
            message="Change things")
        cls.pr = FAKE.add_pull("acme/widgets", "feature", title="Change things", user="alice")
        cls.n = cls.pr["number"]

    def test_create_and_duplicate(self):
        t = token()
        FAKE.commit("acme/widgets", "patchbay/1-fix", {"new.c": "int x;\n"})
        st, h, pr = gh("POST", "/repos/acme/widgets/pulls",
                       {"title": "Fix", "head": "patchbay/1-fix", "base": "main",
                        "body": "Fixes #1"}, t)
        self.assertEqual(st, 201, pr)
        self.assertEqual(pr["user"]["login"], "patchbay[bot]")
        self.assertEqual((pr["head"]["ref"], pr["base"]["ref"], pr["state"]),
                         ("patchbay/1-fix", "main", "open"))
        self.assertEqual(bare_ref("acme/widgets", "refs/pull/%d/head" % pr["number"]),
                         pr["head"]["sha"])
        st, _h, b = gh("POST", "/repos/acme/widgets/pulls",
                       {"title": "Fix", "head": "acme:patchbay/1-fix", "base": "main"}, t)
        self.assertEqual(st, 422)
        self.assertEqual(b, {"message": "Validation Failed",
                             "errors": [{"resource": "PullRequest", "code": "custom",
                                         "message": "A pull request already exists for "
                                                    "acme:patchbay/1-fix."}],
                             "documentation_url": "https://docs.github.com/rest/pulls/pulls"
                                                  "#create-a-pull-request",
                             "status": "422"})
        # no commits beyond base
        subprocess.run(["git", "--git-dir", FAKE.git.path("acme/widgets"), "update-ref",
                        "refs/heads/same", "refs/heads/main"], check=True, env=git_env())
        st, _h, b = gh("POST", "/repos/acme/widgets/pulls",
                       {"title": "x", "head": "same", "base": "main"}, t)
        self.assertGitHubError(st, b, 422, "Validation Failed")
        self.assertEqual(b["errors"][0]["message"], "No commits between main and same")
        st, _h, b = gh("POST", "/repos/acme/widgets/pulls",
                       {"title": "x", "head": "no-such-branch", "base": "main"}, t)
        self.assertEqual(b["errors"], [{"resource": "PullRequest", "field": "head",
                                        "code": "invalid"}])
        # list by head
        st, _h, b = gh("GET", "/repos/acme/widgets/pulls?head=acme:patchbay/1-fix&state=open",
                       auth=t)
        self.assertEqual([p["number"] for p in b], [pr["number"]])
        st, _h, b = gh("GET", "/repos/acme/widgets/pulls?head=acme:nothing", auth=t)
        self.assertEqual(b, [])
        # PATCH
        st, _h, b = gh("PATCH", "/repos/acme/widgets/pulls/%d" % pr["number"],
                       {"body": "Fixes #1\n\nmore"}, t)
        self.assertEqual((st, b["body"]), (200, "Fixes #1\n\nmore"))
        # a PR is an issue too
        st, _h, b = gh("GET", "/repos/acme/widgets/issues/%d" % pr["number"], auth=t)
        self.assertIn("pull_request", b)
        # the bot may not approve its own PR
        st, _h, b = gh("POST", "/repos/acme/widgets/pulls/%d/reviews" % pr["number"],
                       {"event": "APPROVE"}, t)
        self.assertGitHubError(st, b, 422, "Unprocessable Entity")
        self.assertEqual(b["errors"], ["Can not approve your own pull request"])

    def test_diff_and_files(self):
        t = token()
        st, h, diff = gh("GET", "/repos/acme/widgets/pulls/%d" % self.n, auth=t,
                         headers={"Accept": "application/vnd.github.diff"})
        self.assertEqual(st, 200)
        diff = diff.decode()
        self.assertIn("diff --git a/src/main.c b/src/main.c", diff)
        self.assertIn("rename from docs/old.md", diff)
        self.assertIn("Binary files a/logo.bin and b/logo.bin differ", diff)
        st, _h, pr = gh("GET", "/repos/acme/widgets/pulls/%d" % self.n, auth=t)
        self.assertEqual((pr["head"]["sha"], pr["changed_files"], pr["merged"]),
                         (self.head, 5, False))
        st, h, files = gh("GET", "/repos/acme/widgets/pulls/%d/files" % self.n, auth=t)
        by = {f["filename"]: f for f in files}
        self.assertEqual(by["docs/new.md"]["status"], "renamed")
        self.assertEqual(by["docs/new.md"]["previous_filename"], "docs/old.md")
        self.assertEqual(by["obsolete.txt"]["status"], "removed")
        self.assertEqual(by["added.txt"]["status"], "added")
        self.assertNotIn("patch", by["logo.bin"])
        m = by["src/main.c"]
        self.assertEqual((m["status"], m["additions"], m["deletions"], m["changes"]),
                         ("modified", 2, 3, 5))
        self.assertTrue(m["patch"].startswith("@@ -1,6 +1,6 @@"))
        st, h, page = gh("GET", "/repos/acme/widgets/pulls/%d/files?per_page=2" % self.n,
                         auth=t)
        self.assertEqual(len(page), 2)
        self.assertIn('rel="last"', h["link"])

    def _review(self, comments, event="COMMENT", body="review"):
        return gh("POST", "/repos/acme/widgets/pulls/%d/reviews" % self.n,
                  {"event": event, "body": body, "comments": comments}, token())

    def test_review_anchors(self):
        bad = [
            ([{"path": "src/main.c", "line": 15, "body": "outside any hunk"}],
             "Pull request review thread line must be part of the diff and Pull request "
             "review thread diff hunk can't be blank"),
            ([{"path": "nope.c", "line": 1, "body": "x"}],
             "Pull request review thread path is invalid and Pull request review thread "
             "diff hunk can't be blank"),
            ([{"path": "src/main.c", "line": 27, "side": "RIGHT", "body": "x"},
              {"path": "src/main.c", "line": 27, "side": "LEFT", "start_line": 3,
               "body": "start in another hunk"}],
             "Pull request review thread start line must be part of the same hunk as the "
             "line."),
            ([{"path": "src/main.c", "line": 4, "start_line": 4, "body": "x"}],
             "pull_request_review_thread.start_line must precede the end line."),
            ([{"path": "src/main.c", "line": 4, "start_line": 2, "start_side": "LEFT",
               "body": "x"}], None),
            ([{"path": "logo.bin", "line": 1, "body": "binary"}],
             "Pull request review thread line must be part of the diff and Pull request "
             "review thread diff hunk can't be blank"),
            ([{"path": "src/main.c", "line": 31, "side": "LEFT", "body": "x"}],
             "Pull request review thread line must be part of the diff and Pull request "
             "review thread diff hunk can't be blank"),
        ]
        before = len(FAKE.reviews), len(FAKE.review_comments)
        for comments, msg in bad:
            st, _h, b = self._review(comments)
            self.assertGitHubError(st, b, 422, "Unprocessable Entity")
            if msg:
                self.assertEqual(b["errors"], [msg], comments)
        self.assertEqual((len(FAKE.reviews), len(FAKE.review_comments)), before)
        good = [{"path": "src/main.c", "line": 3, "body": "added line"},
                {"path": "src/main.c", "line": 5, "start_line": 1, "body": "range"},
                {"path": "src/main.c", "line": 27, "side": "LEFT", "body": "removed line"},
                {"path": "src/main.c", "line": 24, "side": "LEFT", "body": "context, left"},
                {"path": "added.txt", "line": 2, "body": "new file"}]
        st, _h, rv = self._review(good)
        self.assertEqual((st, rv["state"]), (200, "COMMENTED"), rv)
        self.assertEqual(rv["commit_id"], self.head)
        st, _h, cs = gh("GET", "/repos/acme/widgets/pulls/%d/reviews/%d/comments"
                        % (self.n, rv["id"]), auth=token())
        self.assertEqual([(c["line"], c["side"]) for c in cs],
                         [(3, "RIGHT"), (5, "RIGHT"), (27, "LEFT"), (24, "LEFT"), (2, "RIGHT")])
        self.assertEqual(cs[1]["start_line"], 1)
        self.assertTrue(cs[0]["diff_hunk"].startswith("@@ -1,6 +1,6 @@"))
        self.assertTrue(cs[0]["diff_hunk"].endswith("+line 3 changed"))
        st, _h, rvs = gh("GET", "/repos/acme/widgets/pulls/%d/reviews" % self.n, auth=token())
        self.assertIn(rv["id"], [r["id"] for r in rvs])
        # a review comment by a person, and the bot's reply in its thread
        hc = FAKE.add_review_comment("acme/widgets", self.n, "@patchbay rename this",
                                     path="src/main.c", line=25, user="alice")
        st, _h, reply = gh("POST", "/repos/acme/widgets/pulls/%d/comments/%d/replies"
                           % (self.n, hc["id"]), {"body": "done"}, token())
        self.assertEqual((st, reply["in_reply_to_id"], reply["path"], reply["line"]),
                         (201, hc["id"], "src/main.c", 25))
        st, _h, r = gh("POST", "/repos/acme/widgets/pulls/comments/%d/reactions" % hc["id"],
                       {"content": "eyes"}, token())
        self.assertEqual(st, 201)

    def test_push_moves_pr_head(self):
        FAKE.commit("acme/widgets", "moving", {"m.txt": "1\n"})
        pr = FAKE.add_pull("acme/widgets", "moving", title="moving")
        sha2 = FAKE.commit("acme/widgets", "moving", {"m.txt": "2\n"})
        st, _h, b = gh("GET", "/repos/acme/widgets/pulls/%d" % pr["number"], auth=token())
        self.assertEqual(b["head"]["sha"], sha2)
        self.assertEqual(bare_ref("acme/widgets", "refs/pull/%d/head" % pr["number"]), sha2)


# ---------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------
class TestFaults(FakeTest):
    def test_primary_rate_limit(self):
        t = token()
        reset = int(time.time()) + 123
        st, _h, _b = gh("POST", "/_fake/faults", {"type": "primary", "count": 2,
                                                  "reset": reset})
        self.assertEqual(st, 201)
        for _ in range(2):
            st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
            self.assertGitHubError(st, b, 403, "API rate limit exceeded for installation ID 77.")
            self.assertEqual((h["x-ratelimit-remaining"], h["x-ratelimit-reset"]),
                             ("0", str(reset)))
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth=t)[0], 200)
        FAKE.add_fault("primary", status=429)
        st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual((st, h["x-ratelimit-remaining"]), (429, "0"))

    def test_secondary_rate_limit(self):
        t = token()
        FAKE.add_fault("secondary", retry_after=30)
        st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual((st, h.get("retry-after")), (403, "30"))
        self.assertTrue(b["message"].startswith("You have exceeded a secondary rate limit"))
        self.assertNotEqual(h["x-ratelimit-remaining"], "0")
        FAKE.add_fault("secondary")
        st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual(st, 403)
        self.assertNotIn("retry-after", h)
        FAKE.add_fault("429", retry_after=5)
        st, h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual((st, h.get("retry-after")), (429, "5"))

    def test_server_errors_with_path(self):
        t = token()
        FAKE.add_fault("status", status=502, count=2, path=r"/pulls$")
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth=t)[0], 200)
        self.assertEqual(gh("GET", "/repos/acme/widgets/pulls", auth=t)[0], 502)
        self.assertEqual(gh("GET", "/repos/acme/widgets/pulls", auth=t)[0], 502)
        self.assertEqual(gh("GET", "/repos/acme/widgets/pulls", auth=t)[0], 200)
        FAKE.add_fault("status", status=500)
        st, _h, b = gh("GET", "/repos/acme/widgets", auth=t)
        self.assertEqual((st, b["message"]), (500, "Server Error"))

    def test_stall(self):
        t = token()
        FAKE.add_fault("stall", seconds=1.0, path="/contents/")
        t0 = time.time()
        self.assertEqual(gh("GET", "/repos/acme/widgets", auth=t)[0], 200)
        self.assertLess(time.time() - t0, 0.9)
        t0 = time.time()
        self.assertEqual(gh("GET", "/repos/acme/widgets/contents/README.md", auth=t)[0], 200)
        self.assertGreaterEqual(time.time() - t0, 1.0)

    def test_budget_exhaustion(self):
        t = token(installation=88)
        FAKE.set_rate_limit(installation_id=88, remaining=1, reset=int(time.time()) + 999)
        st, h, _b = gh("GET", "/repos/other/outside", auth=t)
        self.assertEqual((st, h["x-ratelimit-remaining"]), (200, "0"))
        st, h, b = gh("GET", "/repos/other/outside", auth=t)
        self.assertGitHubError(st, b, 403, "API rate limit exceeded for installation ID 88.")
        FAKE.set_rate_limit(installation_id=88, remaining=5000)


# ---------------------------------------------------------------------------
# git smart HTTP
# ---------------------------------------------------------------------------
class TestGit(FakeTest):
    def test_clone_push_refuse_pullrefs(self):
        t = mint(body={"repositories": ["widgets"]})["token"]
        url = FAKE.web + "/acme/widgets.git"
        work = os.path.join(TMP, "clone")
        # no credentials, bad credentials: 401 -> git fails
        p = git(["clone", "--quiet", url, work + "-anon"], check=False)
        self.assertNotEqual(p.returncode, 0)
        p = git(["clone", "--quiet", url, work + "-bad"], tok="ghs_" + "y" * 36, check=False)
        self.assertNotEqual(p.returncode, 0)
        # a token without this repository: not found
        t_other = mint(body={"repositories": ["secret"]})["token"]
        p = git(["clone", "--quiet", url, work + "-other"], tok=t_other, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not found", p.stderr.lower())
        git(["clone", "--quiet", url, work], tok=t)
        with open(os.path.join(work, "README.md")) as f:
            self.assertEqual(f.read(), "# widgets\n")
        # pull refs are fetchable
        FAKE.commit("acme/widgets", "feature-for-git", {"g.txt": "g\n"})
        n = FAKE.add_pull("acme/widgets", "feature-for-git", title="x")
        git(["fetch", "--quiet", "origin", "refs/pull/%d/head:pr" % n["number"]], cwd=work, tok=t)
        self.assertEqual(git(["rev-parse", "pr"], cwd=work).stdout.strip(), n["head"]["sha"])
        # a chunked push: a pack larger than http.postBuffer
        git(["checkout", "--quiet", "-b", "patchbay/7-big"], cwd=work)
        with open(os.path.join(work, "big.bin"), "wb") as f:
            f.write(os.urandom(300 * 1024))
        git(["add", "big.bin"], cwd=work)
        git(["commit", "--quiet", "-m", "big"], cwd=work)
        FAKE.reset_calls()
        git(["push", "--quiet", "origin", "+HEAD:refs/heads/patchbay/7-big"], cwd=work, tok=t,
            extra_config=["http.postBuffer=1024"])
        head = git(["rev-parse", "HEAD"], cwd=work).stdout.strip()
        self.assertEqual(bare_ref("acme/widgets", "refs/heads/patchbay/7-big"), head)
        rp = [c for c in FAKE.calls() if c["path"].endswith("/git-receive-pack")]
        self.assertTrue(rp and rp[-1]["status"] == 200)
        self.assertEqual(rp[-1]["token_kind"], "basic")
        self.assertEqual(rp[-1]["installation_id"], 77)
        self.assertEqual(rp[-1]["headers"].get("transfer-encoding"), "chunked")
        # refused push, then accepted
        st, _h, _b = gh("POST", "/_fake/refuse_push", {"repo": "acme/widgets",
                                                       "message": "no pushes today"})
        self.assertEqual(st, 201)
        with open(os.path.join(work, "x.txt"), "w") as f:
            f.write("x\n")
        git(["add", "x.txt"], cwd=work)
        git(["commit", "--quiet", "-m", "x"], cwd=work)
        p = git(["push", "origin", "+HEAD:refs/heads/patchbay/7-big"], cwd=work, tok=t,
                check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no pushes today", p.stderr)
        self.assertIn("pre-receive hook declined", p.stderr)
        self.assertEqual(bare_ref("acme/widgets", "refs/heads/patchbay/7-big"), head)
        git(["push", "--quiet", "origin", "+HEAD:refs/heads/patchbay/7-big"], cwd=work, tok=t)
        self.assertNotEqual(bare_ref("acme/widgets", "refs/heads/patchbay/7-big"), head)
        # read-only token cannot push
        ro = mint(body={"repositories": ["widgets"], "permissions": {"contents": "read"}})
        p = git(["push", "origin", "HEAD:refs/heads/ro-branch"], cwd=work, tok=ro["token"],
                check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("403", p.stderr)
        # expired token is refused
        FAKE.expire_tokens(token=t)
        p = git(["fetch", "origin"], cwd=work, tok=t, check=False)
        self.assertNotEqual(p.returncode, 0)


    def test_gzip_upload_pack_request(self):
        """git gzips large upload-pack requests; the fake inflates them
        before git http-backend sees them."""
        t = mint(body={"repositories": ["widgets"]})["token"]
        sha = bare_ref("acme/widgets", "refs/heads/main")
        req = ("0032want %s\n" % sha).encode() + b"0000" + b"0009done\n"
        basic = base64.b64encode(("x-access-token:" + t).encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=10)
        conn.request("POST", "/acme/widgets.git/git-upload-pack", gzip.compress(req),
                     {"Authorization": "Basic " + basic, "Content-Encoding": "gzip",
                      "Content-Type": "application/x-git-upload-pack-request"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/x-git-upload-pack-result")
        self.assertIn(b"PACK", data)
        # GitHub's answer to a missing credential
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=10)
        conn.request("GET", "/acme/widgets.git/info/refs?service=git-upload-pack")
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual((r.status, r.getheader("WWW-Authenticate")),
                         (401, 'Basic realm="GitHub"'))


# ---------------------------------------------------------------------------
# deliveries, manifest, call log, command line
# ---------------------------------------------------------------------------
class TestAppSide(FakeTest):
    def test_deliveries_and_redelivery(self):
        got = []

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.headers, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        th = threading.Thread(target=hook.serve_forever, daemon=True)
        th.start()
        try:
            FAKE.set_webhook("http://127.0.0.1:%d/hook" % hook.server_address[1], "s3cret")
            base = int(time.time()) - 3600
            ids = []
            for i in range(5):
                d = FAKE.add_delivery(event="issue_comment", action="created",
                                      status_code=502 if i % 2 else 200,
                                      delivered_at=base + i * 60, installation_id=77,
                                      payload={"n": i})
                ids.append(d["id"])
            st, h, page = gh("GET", "/app/hook/deliveries?per_page=2", auth=app_jwt())
            self.assertEqual([d["id"] for d in page], [ids[4], ids[3]])
            for k in ("id", "guid", "delivered_at", "redelivery", "duration", "status",
                      "status_code", "event", "action", "installation_id", "repository_id"):
                self.assertIn(k, page[0])
            seen = [d["id"] for d in page]
            while "link" in h:
                nxt = LINK_RE.findall(h["link"])
                self.assertEqual(nxt[0][1], "next")
                self.assertIn("cursor=", nxt[0][0])
                st, h, page = gh("GET", nxt[0][0], auth=app_jwt())
                seen += [d["id"] for d in page]
            self.assertEqual(seen[:5], ids[::-1])
            st, _h, b = gh("POST", "/app/hook/deliveries/%d/attempts" % ids[3], None, app_jwt())
            self.assertEqual((st, b), (202, {}))
            st, _h, b = gh("POST", "/app/hook/deliveries/1/attempts", None, app_jwt())
            self.assertEqual(st, 404)
            for _ in range(100):
                if got:
                    break
                time.sleep(0.05)
            headers, body = got[0]
            self.assertEqual(json.loads(body), {"n": 3})
            sig = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            self.assertEqual(headers["X-Hub-Signature-256"], sig)
            orig = [d for d in FAKE.deliveries if d["id"] == ids[3]][0]
            self.assertEqual(headers["X-GitHub-Delivery"], orig["guid"])
            s = FAKE.state()
            self.assertEqual(s["redelivery_attempts"][-1]["delivery_id"], ids[3])
            red = [d for d in s["deliveries"] if d["redelivery"]][-1]
            self.assertEqual(red["guid"], orig["guid"])
        finally:
            FAKE.set_webhook(None)
            hook.shutdown()
            hook.server_close()

    def test_manifest_flow(self):
        st, _h, b = gh("POST", "/app-manifests/nope/conversions")
        self.assertEqual(st, 404)
        # the browser form, then the code exchange
        manifest = {"name": "My Patchbay", "url": "https://example.com",
                    "redirect_url": "http://127.0.0.1:9/callback",
                    "default_permissions": {"issues": "write"},
                    "default_events": ["issues"]}
        form = urllib.parse.urlencode({"manifest": json.dumps(manifest)}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=10)
        conn.request("POST", "/settings/apps/new?state=xyz", form,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual(r.status, 302)
        loc = urllib.parse.urlparse(r.getheader("Location"))
        q = urllib.parse.parse_qs(loc.query)
        self.assertEqual((loc.path, q["state"]), ("/callback", ["xyz"]))
        st, _h, app = gh("POST", "/app-manifests/%s/conversions" % q["code"][0])
        self.assertEqual(st, 201, app)
        self.assertEqual((app["slug"], app["permissions"], app["events"]),
                         ("my-patchbay", {"issues": "write"}, ["issues"]))
        for k in ("id", "pem", "webhook_secret", "client_id", "client_secret", "owner"):
            self.assertTrue(app[k], k)
        # single use
        self.assertEqual(gh("POST", "/app-manifests/%s/conversions" % q["code"][0])[0], 404)
        # the new App's JWTs are accepted
        tok = ghfake_keys.make_app_jwt(app["pem"].encode(), app["id"])
        st, _h, b = gh("GET", "/app", auth="Bearer " + tok)
        self.assertEqual((st, b["slug"]), (200, "my-patchbay"))
        # a code registered by the test through the control API
        st, _h, _b = gh("POST", "/_fake/manifest_codes", {"code": "abc123", "slug": "pb2",
                                                          "webhook_secret": "w"})
        st, _h, app2 = gh("POST", "/app-manifests/abc123/conversions")
        self.assertEqual((st, app2["slug"], app2["webhook_secret"]), (201, "pb2", "w"))

    def test_call_log(self):
        t = token()
        n = FAKE.add_issue("acme/widgets", "log")["number"]
        gh("POST", "/_fake/reset_calls")
        gh("GET", "/repos/acme/widgets/issues/%d/comments?per_page=5" % n, auth=t)
        gh("POST", "/repos/acme/widgets/issues/%d/comments" % n, {"body": "hi"}, t)
        gh("GET", "/app", auth=app_jwt())
        gh("GET", "/repos/acme/widgets")
        st, _h, calls = gh("GET", "/_fake/calls")
        self.assertEqual([(c["method"], c["path"], c["status"], c["token_kind"],
                           c["installation_id"]) for c in calls],
                         [("GET", "/repos/acme/widgets/issues/%d/comments" % n, 200,
                           "installation", 77),
                          ("POST", "/repos/acme/widgets/issues/%d/comments" % n, 201,
                           "installation", 77),
                          ("GET", "/app", 200, "jwt", None),
                          ("GET", "/repos/acme/widgets", 404, "none", None)])
        self.assertEqual(calls[0]["query"], {"per_page": "5"})
        self.assertEqual(calls[1]["body"], {"body": "hi"})
        self.assertIsNone(calls[0]["body"])
        self.assertEqual(calls[0]["headers"]["user-agent"], "fake-selftest")
        self.assertLessEqual(calls[0]["ts"], calls[1]["ts"])
        st, _h, c2 = gh("GET", "/_fake/calls?since=%d" % calls[1]["seq"])
        self.assertEqual(len(c2), 2)

    def test_command_line(self):
        ready = os.path.join(TMP, "ready")
        seed = os.path.join(TMP, "seed.json")
        with open(seed, "w") as f:
            json.dump({"repos": [{"full_name": "cli/r", "files": {"a": "b\n"}}],
                       "installations": [{"id": 5, "account": "cli",
                                          "repositories": ["cli/r"]}]}, f)
        proc = subprocess.Popen([sys.executable, os.path.join(FAKES, "github.py"),
                                 "--port", "0", "--app-id", str(APP_ID), "--app-slug",
                                 "patchbay", "--public-key", KEYS["public"], "--state", seed,
                                 "--git-root", os.path.join(TMP, "cli-git"),
                                 "--ready-file", ready],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
            self.assertTrue(m, line)
            with open(ready) as f:
                self.assertEqual(int(f.read()), int(m.group(1)))
            base = "http://127.0.0.1:%s" % m.group(1)
            st, _h, b = gh("POST", base + "/app/installations/5/access_tokens", {}, app_jwt())
            self.assertEqual(st, 201, b)
            st, _h, r = gh("GET", base + "/repos/cli/r", auth="token " + b["token"])
            self.assertEqual((st, r["full_name"]), (200, "cli/r"))
        finally:
            proc.terminate()
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(rc, 0)

    def test_process_helper(self):
        with fakegithub.FakeGitHubProcess(KEYS["public"]) as p:
            p.control("repos", {"full_name": "proc/r", "private": True,
                                "files": {"x": "y\n"}})
            p.control("installations", {"id": 9, "account": "proc",
                                         "repositories": ["proc/r"]})
            n = p.control("issues", {"repo": "proc/r", "title": "t", "user": "alice"})
            self.assertEqual(n["number"], 1)
            st, _h, b = gh("POST", p.base_url + "/app/installations/9/access_tokens", {},
                           app_jwt())
            self.assertEqual(st, 201)
            self.assertEqual(p.control("state", method="GET")["mint_count"], 1)
            proc = p.proc
        self.assertIsNotNone(proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
