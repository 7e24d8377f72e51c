#!/usr/bin/python3
"""A faithful local GitHub for patchbay's tests (issue 3, "tests/fakes/").

One threaded HTTP/1.1 server on 127.0.0.1 that plays
  * api.github.com: App JWTs verified with the App's public key, installation
    tokens minted with expiry, repository scope and permissions, the REST calls
    patchbay makes with GitHub's answer shapes, status codes, error bodies,
    x-ratelimit-* headers, ETags and Link pagination;
  * github.com git: smart HTTP through the real `git http-backend`, Basic auth
    `x-access-token:<token>`, refs/pull/N/head, a pre-receive hook that can
    refuse a push;
  * the manifest flow: POST /settings/apps/new (the browser form) and
    POST /app-manifests/{code}/conversions;
and a control API under /_fake/ (no auth, JSON) with which tests seed state,
inject faults and read back every call.  Independent of patchbay's C code;
Python 3 standard library plus Debian's python3-jwt (PyJWT + cryptography).

Command line:
  /usr/bin/python3 tests/fakes/github.py --port 0 --app-id 1234 \
      --app-slug patchbay --public-key app.pub.pem [--state seed.json] \
      [--git-root DIR] [--ready-file FILE] [--verbose]
In process:
  fake = FakeGitHub(1234, "patchbay", public_pem, git_root); port = fake.start()
  ...; fake.stop()

The control API (routes and JSON fields) is documented in tests/fakes/README.md;
every /_fake/ route calls the FakeGitHub method of the same meaning with the
JSON body as keyword arguments (POST /_fake/issues -> add_issue(**body)).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import jwt  # noqa: E402  (Debian's python3-jwt)

from ghfake_app import AppMixin  # noqa: E402
from ghfake_common import DOC, JWT_UNDECODABLE, LEVEL, NOT_ACCESSIBLE, TOKEN_TTL  # noqa: E402
from ghfake_control import ControlMixin  # noqa: E402
from ghfake_git import GitError, GitStore, http_backend  # noqa: E402
from ghfake_http import ApiError, Response, Server, not_found  # noqa: E402
from ghfake_issues import IssuesMixin  # noqa: E402
from ghfake_pulls import PullsMixin  # noqa: E402
from ghfake_shapes import Shapes  # noqa: E402


class Auth:
    """Who is calling: kind is "jwt", "installation" or "none"."""

    def __init__(self, kind, app=None, token=None, installation=None, basic=False):
        self.kind = kind
        self.app = app
        self.token = token
        self.installation = installation
        self.basic = basic

    @property
    def installation_id(self):
        return self.installation["id"] if self.installation else None


class FakeGitHub(ControlMixin, AppMixin, IssuesMixin, PullsMixin, Shapes):
    """The fake.  Records live in plain dicts under self.lock; handlers
    run with the lock held (stalls and git CGI run outside it).  The
    control methods (ControlMixin) are the Python API for tests; the api_*
    methods of the mixins are the REST endpoints, routed by _build_routes."""

    def __init__(self, app_id=1234, slug="patchbay", public_key_pem=None, git_root=None,
                 host="127.0.0.1", port=0, name=None, permissions=None, events=None,
                 owner="patchbay-owner", verbose=False):
        self.host = host
        self.port = port
        self.verbose = verbose
        self.lock = threading.RLock()
        self._own_root = git_root is None
        self.git_root = os.path.abspath(git_root or tempfile.mkdtemp(prefix="fakegh-git-"))
        self.git = GitStore(self.git_root)
        self._server = None
        self._thread = None
        self.api = self.web = "http://%s:%d" % (host, port)
        self._next = 1000
        self.clock_offset = 0.0
        self.token_ttl = TOKEN_TTL
        self.rate_limit = 5000          # per installation / per App, per hour
        self.unauth_rate_limit = 60     # per IP, per hour
        self.redelivery_status_code = 200
        self.webhook = None             # {"url", "secret"} for real redeliveries
        # records
        self.users = {}
        self.apps = {}
        self.installations = {}
        self.repos = {}
        self.comments = {}
        self.reviews = {}
        self.review_comments = {}
        self.check_runs = {}
        self.tokens = {}
        self.mints = []
        self.deliveries = []
        self.redelivery_attempts = []
        self.manifest_codes = {}
        self.faults = []
        self.rate = {}
        self.content_limits = []        # [(calls, seconds)], see configure
        self.content_sent = {}          # installation id -> times of its content requests
        self.holds = {}                 # bucket key -> {"until", "kind", "status", "retry_after", "reset"}
        self.rate_violations = []
        self.calls_log = []
        self._seq = 0
        self.routes = []
        self._build_routes()
        if isinstance(public_key_pem, str):
            public_key_pem = public_key_pem.encode()
        self.add_user(owner, type="User")
        self.app_id = int(app_id)
        self.add_app(self.app_id, slug, public_key_pem, name=name, owner=owner,
                     permissions=permissions, events=events)

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------
    def start(self):
        """Listen on host:port (0 = a free port); returns the port."""
        self._server = Server((self.host, self.port), self, verbose=self.verbose)
        self.port = self._server.server_address[1]
        self.api = self.web = "http://%s:%d" % (self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="fake-github", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.git_root, ignore_errors=True)

    @property
    def base_url(self):
        return self.api

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------
    # small helpers
    # ------------------------------------------------------------------
    def now(self):
        return time.time() + self.clock_offset

    def _id(self):
        with self.lock:
            self._next += 1
            return self._next

    def _repo(self, owner, name):
        return self.repos.get(("%s/%s" % (owner, name)).lower())

    def _repo_by_full(self, full):
        r = self.repos.get(str(full).lower())
        if r is None:
            raise KeyError("no repository %r" % full)
        return r

    def bot_login(self, app_id=None):
        return "%s[bot]" % self.apps[app_id or self.app_id]["slug"]

    def _association(self, repo, login):
        """author_association GitHub would compute for login on repo."""
        if login.lower() == repo["owner"].lower():
            return "OWNER"
        perm = repo["collaborators"].get(login.lower())
        if perm and perm != "none":
            return "MEMBER" if self.users[repo["owner"].lower()]["type"] == "Organization" \
                else "COLLABORATOR"
        return "NONE"

    # ------------------------------------------------------------------
    # request entry point
    # ------------------------------------------------------------------
    GIT_RE = re.compile(r"^/([^/]+)/([^/]+?)(?:\.git)?/(info/refs|git-upload-pack|git-receive-pack)$")
    FORM_RE = re.compile(r"^(?:/organizations/([^/]+))?/settings/apps/new$")

    def handle(self, req):
        if req.path.startswith("/_fake/"):
            return self._control(req)
        m = self.GIT_RE.match(req.path)
        if m:
            return self._git_http(req, m)
        m = self.FORM_RE.match(req.path)
        if m and req.method == "POST":
            return self._manifest_form(req, m.group(1))
        return self._api(req)

    def _record(self, req, resp, kind, installation_id, t0, body=None, app_id=None):
        with self.lock:
            self._seq += 1
            self.calls_log.append({
                "seq": self._seq, "method": req.method, "path": req.path,
                "query": {k: v[-1] for k, v in req.query.items()},
                "status": resp.status, "token_kind": kind,
                "installation_id": installation_id, "app_id": app_id,
                "body": body, "ts": t0, "duration": round(time.time() - t0, 4),
                "request_id": resp.headers.get("x-github-request-id"),
                "headers": {k.lower(): v for k, v in req.headers.items()
                            if k.lower() in ("user-agent", "accept", "x-github-api-version",
                                             "if-none-match", "content-type",
                                             "content-encoding", "transfer-encoding")},
            })

    # ------------------------------------------------------------------
    # the REST API
    # ------------------------------------------------------------------
    def _api(self, req):
        t0 = time.time()
        request_id = "%04X:%04X:%06X:%06X:%08X" % tuple(
            secrets.randbelow(16 ** n) for n in (4, 4, 6, 6, 8))
        route, groups = self._match(req)
        resp = None
        try:
            self._stall(req, "api")
            resp = self._status_fault(req, "api")
            if resp is None:
                req.auth = self._authenticate(req, route)
                resp = self._held(req, request_id)
            if resp is None:
                resp = self._rate_fault(req, request_id)
            if resp is None:
                if route is None:
                    raise not_found()
                fn, auth_need, counted = route[2], route[3], route[4]
                self._check_route_auth(req, auth_need)
                bucket = self._bucket_for(req) if counted else None
                if bucket and bucket["used"] >= bucket["limit"] and bucket["reset"] > self.now():
                    resp = self._primary_response(req, bucket["reset"], bucket["limit"])
                    self._hold(req, "primary", resp, until=bucket["reset"])
                elif counted and (resp := self._content_limit(req, request_id, t0)) is not None:
                    pass
                else:
                    with self.lock:
                        resp = fn(req, *groups)
        except ApiError as e:
            resp = Response(e.status, e.body(), e.headers)
        except GitError as e:
            resp = Response(500, {"message": "git failed: %s" % e})
        resp.headers.setdefault("x-github-request-id", request_id)
        self._finish(req, resp, route)
        auth = req.auth
        self._record(req, resp, auth.kind if auth else "none",
                     auth.installation_id if auth else None, t0, req.json_or_none(),
                     auth.app["id"] if auth and auth.app else None)
        return resp

    def _finish(self, req, resp, route):
        """Headers every API answer carries; ETag and 304 for GETs."""
        h = resp.headers
        h.setdefault("x-github-api-version-selected", "2022-11-28")
        h.setdefault("x-github-media-type", "github.v3; format=json")
        h.setdefault("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
        counted = route is None or route[4]
        bucket = self._bucket_for(req)
        if resp.status == 200 and req.method == "GET":
            etag = 'W/"%s"' % hashlib.sha256(resp.payload()).hexdigest()
            h.setdefault("ETag", etag)
            inm = req.header("If-None-Match")
            if inm:
                wanted = {t.strip().removeprefix("W/") for t in inm.split(",")}
                if etag.removeprefix("W/") in wanted or "*" in wanted:
                    # A 304 does not count against the rate limit.
                    resp.status, resp.body = 304, None
        if bucket is not None:
            with self.lock:
                if counted and resp.status != 304 and "x-ratelimit-remaining" not in h:
                    bucket["used"] += 1
                self._rate_headers(h, bucket)

    # -- routing ----------------------------------------------------------
    def _build_routes(self):
        R = r"/repos/([^/]+)/([^/]+)"
        table = [
            # method, pattern, handler, auth ("jwt", "any", "installation", "none"), counted
            ("GET", r"/app", self.api_get_app, "jwt", True),
            ("GET", r"/app/installations", self.api_list_installations, "jwt", True),
            ("GET", r"/app/installations/(\d+)", self.api_get_installation, "jwt", True),
            ("POST", r"/app/installations/(\d+)/access_tokens", self.api_mint, "jwt", True),
            ("GET", r"/app/hook/deliveries", self.api_list_deliveries, "jwt", True),
            ("GET", r"/app/hook/deliveries/(\d+)", self.api_get_delivery, "jwt", True),
            ("POST", r"/app/hook/deliveries/(\d+)/attempts", self.api_redeliver, "jwt", True),
            ("GET", R + r"/installation", self.api_repo_installation, "jwt", True),
            ("GET", r"/(?:users|orgs)/([^/]+)/installation", self.api_account_installation,
             "jwt", True),
            ("POST", r"/app-manifests/([^/]+)/conversions", self.api_manifest_conversion,
             "any", True),
            ("GET", r"/rate_limit", self.api_rate_limit, "any", False),
            ("GET", r"/users/([^/]+)", self.api_get_user, "any", True),
            ("GET", r"/installation/repositories", self.api_installation_repos,
             "installation", True),
            ("DELETE", r"/installation/token", self.api_revoke_token, "installation", True),
            ("GET", R, self.api_get_repo, "any", True),
            ("GET", R + r"/branches/(.+)", self.api_get_branch, "any", True),
            ("GET", R + r"/git/ref/(.+)", self.api_get_git_ref, "any", True),
            ("GET", R + r"/issues/(\d+)", self.api_get_issue, "any", True),
            ("PATCH", R + r"/issues/(\d+)", self.api_patch_issue, "any", True),
            ("GET", R + r"/issues/(\d+)/comments", self.api_list_comments, "any", True),
            ("POST", R + r"/issues/(\d+)/comments", self.api_create_comment, "any", True),
            ("GET", R + r"/issues/comments/(\d+)", self.api_get_comment, "any", True),
            ("PATCH", R + r"/issues/comments/(\d+)", self.api_patch_comment, "any", True),
            ("DELETE", R + r"/issues/comments/(\d+)", self.api_delete_comment, "any", True),
            ("GET", R + r"/collaborators/([^/]+)/permission", self.api_permission, "any", True),
            ("GET", R + r"/issues/(\d+)/reactions", self.api_list_issue_reactions, "any", True),
            ("POST", R + r"/issues/(\d+)/reactions", self.api_react_issue, "any", True),
            ("DELETE", R + r"/issues/(\d+)/reactions/(\d+)", self.api_unreact_issue, "any", True),
            ("GET", R + r"/issues/comments/(\d+)/reactions", self.api_list_comment_reactions,
             "any", True),
            ("POST", R + r"/issues/comments/(\d+)/reactions", self.api_react_comment, "any", True),
            ("DELETE", R + r"/issues/comments/(\d+)/reactions/(\d+)", self.api_unreact_comment,
             "any", True),
            ("GET", R + r"/pulls/comments/(\d+)/reactions", self.api_list_rc_reactions,
             "any", True),
            ("POST", R + r"/pulls/comments/(\d+)/reactions", self.api_react_rc, "any", True),
            ("DELETE", R + r"/pulls/comments/(\d+)/reactions/(\d+)", self.api_unreact_rc,
             "any", True),
            ("GET", R + r"/issues/(\d+)/labels", self.api_list_issue_labels, "any", True),
            ("POST", R + r"/issues/(\d+)/labels", self.api_add_labels, "any", True),
            ("PUT", R + r"/issues/(\d+)/labels", self.api_set_labels, "any", True),
            ("DELETE", R + r"/issues/(\d+)/labels", self.api_clear_labels, "any", True),
            ("DELETE", R + r"/issues/(\d+)/labels/(.+)", self.api_remove_label, "any", True),
            ("GET", R + r"/labels", self.api_list_repo_labels, "any", True),
            ("POST", R + r"/labels", self.api_create_repo_label, "any", True),
            ("GET", R + r"/contents/?(.*)", self.api_contents, "any", True),
            ("GET", R + r"/pulls", self.api_list_pulls, "any", True),
            ("POST", R + r"/pulls", self.api_create_pull, "any", True),
            ("GET", R + r"/pulls/(\d+)", self.api_get_pull, "any", True),
            ("PATCH", R + r"/pulls/(\d+)", self.api_patch_pull, "any", True),
            ("GET", R + r"/pulls/(\d+)/files", self.api_pull_files, "any", True),
            ("GET", R + r"/pulls/(\d+)/commits", self.api_pull_commits, "any", True),
            ("GET", R + r"/pulls/(\d+)/reviews", self.api_list_reviews, "any", True),
            ("POST", R + r"/pulls/(\d+)/reviews", self.api_create_review, "any", True),
            ("GET", R + r"/pulls/(\d+)/reviews/(\d+)", self.api_get_review, "any", True),
            ("POST", R + r"/pulls/(\d+)/reviews/(\d+)/events", self.api_submit_review,
             "any", True),
            ("GET", R + r"/pulls/(\d+)/reviews/(\d+)/comments", self.api_review_comments_of,
             "any", True),
            ("GET", R + r"/pulls/(\d+)/comments", self.api_list_review_comments, "any", True),
            ("POST", R + r"/pulls/(\d+)/comments", self.api_create_review_comment, "any", True),
            ("POST", R + r"/pulls/(\d+)/comments/(\d+)/replies", self.api_reply_review_comment,
             "any", True),
            ("GET", R + r"/pulls/comments/(\d+)", self.api_get_review_comment, "any", True),
            ("PATCH", R + r"/pulls/comments/(\d+)", self.api_patch_review_comment, "any", True),
            ("POST", R + r"/check-runs", self.api_create_check_run, "any", True),
            ("GET", R + r"/check-runs/(\d+)", self.api_get_check_run, "any", True),
            ("PATCH", R + r"/check-runs/(\d+)", self.api_patch_check_run, "any", True),
            ("GET", R + r"/commits/([^/]+)/check-runs", self.api_list_check_runs, "any", True),
        ]
        self.routes = [(m, re.compile("^" + p + "/?$"), fn, auth, counted)
                       for m, p, fn, auth, counted in table]

    def _match(self, req):
        for route in self.routes:
            m = route[1].match(req.path)
            if not m:
                continue
            if route[0] == req.method or (route[0] == "GET" and req.method == "HEAD"):
                return route, [urllib.parse.unquote(g) for g in m.groups()]
        # wrong method on a known path: GitHub answers 404 too
        return None, []

    # -- authentication ---------------------------------------------------
    def _authenticate(self, req, route):
        h = req.header("Authorization")
        if not h:
            return Auth("none")
        scheme, _, cred = h.strip().partition(" ")
        scheme, cred = scheme.lower(), cred.strip()
        basic = False
        if scheme == "basic":
            try:
                _user, _, cred = base64.b64decode(cred).decode().partition(":")
            except Exception:
                raise ApiError(401, "Bad credentials")
            scheme, basic = "token", True
        if scheme not in ("token", "bearer") or not cred:
            raise ApiError(401, "Bad credentials")
        wants_jwt = route is not None and route[3] == "jwt"
        if cred.count(".") == 2 and not cred.startswith("gh"):
            return Auth("jwt", app=self._verify_jwt(cred))
        if wants_jwt:
            # /app endpoints decode whatever bearer they get as a JWT
            raise ApiError(401, JWT_UNDECODABLE)
        with self.lock:
            tok = self.tokens.get(cred)
            if tok is None or tok["revoked"] or tok["expires_at"] <= self.now():
                raise ApiError(401, "Bad credentials")
            inst = self.installations.get(tok["installation_id"])
            return Auth("installation", app=self.apps[inst["app_id"]], token=tok,
                        installation=inst, basic=basic)

    def _verify_jwt(self, token):
        """GitHub's App JWT rules (docs: "Generating a JSON Web Token (JWT)
        for a GitHub App"), each failure a 401 with GitHub's own message:
          - RS256 signature by the private key of the App named by `iss`
            (App ID, or the App's client ID)  -> "A JSON web token could not
            be decoded" for a wrong key, a foreign App or garbage;
          - iss present                       -> "'Issuer' claim ('iss') must be an Integer"
          - iat an integer, not more than 60 s in the future (clock drift)
          - exp in the future, and no more than 10 minutes from now."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except Exception:
            raise ApiError(401, JWT_UNDECODABLE)
        if header.get("alg") != "RS256":
            raise ApiError(401, JWT_UNDECODABLE)
        iss = claims.get("iss")
        if iss is None or isinstance(iss, bool) or not isinstance(iss, (int, str)) or iss == "":
            raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
        app = None
        with self.lock:
            for a in self.apps.values():
                if str(a["id"]) == str(iss) or a["client_id"] == iss:
                    app = a
                    break
        if app is None:
            if isinstance(iss, str) and not iss.isdigit() and not iss.startswith("Iv"):
                raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
            raise ApiError(401, JWT_UNDECODABLE)
        if not app.get("public_key"):
            raise ApiError(401, JWT_UNDECODABLE)
        try:
            jwt.decode(token, app["public_key"], algorithms=["RS256"],
                       options={"verify_exp": False, "verify_iat": False,
                                "verify_nbf": False, "verify_aud": False,
                                "verify_iss": False})
        except Exception:
            raise ApiError(401, JWT_UNDECODABLE)
        now = self.now()
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + 60:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing "
                                "the time that the assertion was issued")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value "
                                "representing the future time at which the assertion expires")
        if exp > now + 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        return app

    def _check_route_auth(self, req, need):
        kind = req.auth.kind
        if need == "jwt" and kind != "jwt":
            if kind == "none":
                raise ApiError(401, "Requires authentication")
            raise ApiError(401, JWT_UNDECODABLE)
        if need == "installation" and kind != "installation":
            if kind == "none":
                raise ApiError(401, "Requires authentication")
            raise ApiError(403, NOT_ACCESSIBLE)

    def _token_repos(self, tok):
        if tok["repos"] is not None:
            return set(tok["repos"])
        return self._installation_repos(self.installations[tok["installation_id"]])

    def _installation_repos(self, inst):
        if inst["repository_selection"] == "all":
            return {k for k, r in self.repos.items()
                    if r["owner"].lower() == inst["account"].lower()}
        return set(inst["repos"])

    def _access(self, req, owner, name, cats=("metadata",), level="read"):
        """The repository, if the caller may do `level` on one of `cats`.
        GitHub's rules for App installation tokens:
          - a repository outside the token's scope is invisible when private
            (404 "Not Found", never 403: GitHub hides what a token cannot see);
          - a public one can be read by anybody, but not written
            (403 "Resource not accessible by integration"; 401 "Requires
            authentication" without credentials);
          - inside the scope the token's permission for the resource must be
            at least `level`, else 403 "Resource not accessible by integration".
        An App JWT is the App itself: it has no repository scope."""
        repo = self._repo(owner, name)
        if repo is None:
            raise not_found()
        auth = req.auth
        in_scope = False
        perms = {}
        if auth.kind == "installation":
            in_scope = repo["full_name"].lower() in self._token_repos(auth.token)
            perms = dict(auth.token["permissions"], metadata="read")
        if not in_scope and repo["private"]:
            raise not_found()
        if in_scope:
            if not any(LEVEL.get(perms.get(c, "none"), 0) >= LEVEL[level] for c in cats):
                raise ApiError(403, NOT_ACCESSIBLE)
        elif level != "read":
            if auth.kind == "none":
                raise ApiError(401, "Requires authentication")
            raise ApiError(403, NOT_ACCESSIBLE)
        return repo

    def _actor(self, req):
        if req.auth.kind == "installation":
            return "%s[bot]" % req.auth.app["slug"], req.auth.app["id"]
        raise ApiError(403, NOT_ACCESSIBLE)

    # -- rate limits and faults --------------------------------------------
    def _bucket(self, key, limit):
        b = self.rate.get(key)
        now = self.now()
        if b is None or b["reset"] <= now:
            # GitHub's window: one hour from the first request of the window
            b = {"limit": limit if b is None else b["limit"], "used": 0,
                 "reset": int(now) + 3600, "resource": "core"}
            self.rate[key] = b
        return b

    def _bucket_for(self, req):
        """Installation tokens share their installation's budget (5000/h);
        App JWTs the App's; unauthenticated callers 60/h per IP."""
        with self.lock:
            a = req.auth
            if a is not None and a.kind == "installation":
                return self._bucket("inst:%d" % a.installation_id, self.rate_limit)
            if a is not None and a.kind == "jwt":
                return self._bucket("app:%d" % a.app["id"], self.rate_limit)
            return self._bucket("ip", self.unauth_rate_limit)

    def _rate_headers(self, h, b):
        h.setdefault("x-ratelimit-limit", str(b["limit"]))
        h.setdefault("x-ratelimit-remaining", str(max(0, b["limit"] - b["used"])))
        h.setdefault("x-ratelimit-used", str(min(b["used"], b["limit"])))
        h.setdefault("x-ratelimit-reset", str(b["reset"]))
        h.setdefault("x-ratelimit-resource", b["resource"])

    def _take_fault(self, req, types, target):
        with self.lock:
            for f in self.faults:
                if f["type"] not in types or f["count"] == 0:
                    continue
                if f["target"] != "any" and f["target"] != target:
                    continue
                if f["method"] and f["method"].upper() != req.method:
                    continue
                if f["path"] and not re.search(f["path"], req.path):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                taken = dict(f)
                self.faults = [x for x in self.faults if x["count"] != 0]
                return taken
        return None

    def _stall(self, req, target):
        f = self._take_fault(req, ("stall",), target)
        if f:
            time.sleep(float(f["seconds"] or 1))

    def _status_fault(self, req, target):
        f = self._take_fault(req, ("status",), target)
        if not f:
            return None
        status = int(f["status"] or 502)
        body = f["body"]
        if body is None:
            body = {"message": f["message"] or ("Server Error" if status == 500
                                                else HTTPStatus(status).phrase)}
            if status < 500:
                body["documentation_url"] = "https://docs.github.com/rest"
        return Response(status, body)

    def _primary_response(self, req, reset, limit):
        a = req.auth
        if a and a.kind == "installation":
            msg = "API rate limit exceeded for installation ID %d." % a.installation_id
        elif a and a.kind == "jwt":
            msg = "API rate limit exceeded for app ID %d." % a.app["id"]
        else:
            msg = ("API rate limit exceeded for 127.0.0.1. (But here's the good news: "
                   "Authenticated requests get a higher rate limit. Check out the "
                   "documentation for more details.)")
        return Response(403, ApiError(403, msg, doc=DOC["rate"]).body(), {
            "x-ratelimit-limit": str(limit), "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(limit), "x-ratelimit-reset": str(int(reset)),
            "x-ratelimit-resource": "core"})

    # -- GitHub's waits: what a client must not do after a rate limit ---------
    def _bucket_key(self, req):
        a = req.auth
        if a is not None and a.kind == "installation":
            return "inst:%d" % a.installation_id
        if a is not None and a.kind == "jwt":
            return "app:%d" % a.app["id"]
        return "ip"

    def _hold(self, req, kind, resp, until, hold=False):
        """A rate-limit answer was given: until `until` (epoch seconds) GitHub
        asks this installation (or App) to make no request. With hold, every
        request before then is refused again, as github.com does."""
        with self.lock:
            key = self._bucket_key(req)
            old = self.holds.get(key)
            if old is None or until > old["until"]:
                self.holds[key] = {"until": until, "kind": kind, "hold": hold, "since": self.now(),
                                   "status": resp.status, "body": resp.body,
                                   "headers": {k: v for k, v in resp.headers.items()
                                               if k.lower().startswith("x-ratelimit") or k.lower() == "retry-after"}}

    def _held(self, req, request_id):
        """A request while a wait GitHub asked for is in force: a violation,
        and refused again when the limit holds."""
        with self.lock:
            key = self._bucket_key(req)
            h = self.holds.get(key)
            now = self.now()
            if h is None or h["until"] <= now:
                return None
            self.rate_violations.append({"key": key, "kind": h["kind"], "method": req.method,
                                         "path": req.path, "at": now, "until": h["until"],
                                         "early_by": round(h["until"] - now, 3)})
            if not h["hold"]:
                return None
            headers = dict(h["headers"])
            if "retry-after" in headers:
                headers["retry-after"] = str(max(1, int(h["until"] - now + 0.999)))
            return Response(h["status"], dict(h["body"]), headers)

    def _content_limit(self, req, request_id, arrived):
        """GitHub's limits on content-generating requests (configure
        content_limits): past one, a secondary rate limit, without retry-after
        (the client must wait at least a minute). Counted by when each request
        arrived, as GitHub counts them, not by when this fake got to it."""
        a = req.auth
        if not self.content_limits or a is None or a.kind != "installation" or \
                req.method not in ("POST", "PATCH", "PUT", "DELETE"):
            return None
        with self.lock:
            now = arrived + self.clock_offset
            sent = self.content_sent.setdefault(a.installation_id, [])
            widest = max(w for _c, w in self.content_limits)
            sent[:] = [t for t in sent if t > self.now() - 2 * widest]
            for calls, window in self.content_limits:
                if sum(1 for t in sent if now - window < t <= now) >= calls:
                    msg = ("You have exceeded a secondary rate limit. Please wait a few minutes before "
                           "you try again. If you reach out to GitHub Support for help, please include "
                           "the request ID %s." % request_id)
                    r = Response(403, ApiError(403, msg, doc=DOC["secondary"]).body())
                    self.rate_violations.append({"key": self._bucket_key(req), "kind": "content",
                                                 "method": req.method, "path": req.path, "at": now,
                                                 "until": now, "early_by": 0,
                                                 "limit": "%d/%gs" % (calls, window),
                                                 "counted": sorted(round(t - now, 3) for t in sent
                                                                   if now - window < t <= now)})
                    self._hold(req, "secondary", r, until=now + 60)
                    return r
            sent.append(now)
        return None

    def _rate_fault(self, req, request_id):
        f = self._take_fault(req, ("primary", "secondary", "429"), "api")
        if not f:
            return None
        if f["type"] == "primary":
            # GitHub: 403 (sometimes 429) with x-ratelimit-remaining: 0; the
            # client waits until x-ratelimit-reset (epoch seconds).
            b = self._bucket_for(req)
            reset = int(f["reset"] if f["reset"] is not None else self.now() + 60)
            r = self._primary_response(req, reset, b["limit"])
            r.status = int(f["status"] or 403)
            r.body["status"] = str(r.status)
            self._hold(req, "primary", r, until=reset, hold=f.get("hold", False))
            return r
        # secondary: remaining budget is NOT zero; retry-after when GitHub
        # says how long, otherwise the client waits at least a minute.
        status = int(f["status"] or (429 if f["type"] == "429" else 403))
        msg = f["message"] or ("You have exceeded a secondary rate limit. Please wait a few "
                               "minutes before you try again. If you reach out to GitHub "
                               "Support for help, please include the request ID %s."
                               % request_id)
        headers = {}
        if f["retry_after"] is not None:
            headers["retry-after"] = str(int(f["retry_after"]))
        r = Response(status, ApiError(status, msg, doc=DOC["secondary"]).body(), headers)
        # GitHub: no request before retry-after, or for at least a minute without it
        wait = int(f["retry_after"]) if f["retry_after"] is not None else 60
        self._hold(req, "secondary", r, until=self.now() + wait, hold=f.get("hold", False))
        return r

    # ------------------------------------------------------------------
    # git smart HTTP
    # ------------------------------------------------------------------
    def _git_http(self, req, m):
        """/{owner}/{repo}(.git)/info/refs?service=..., /git-upload-pack,
        /git-receive-pack through `git http-backend`.  GitHub's rules for
        installation tokens: Basic auth with any user name (x-access-token
        by convention) and the token as password; anonymous or bad
        credentials -> 401 with WWW-Authenticate: Basic realm="GitHub"
        (public repositories can be fetched anonymously); a repository the
        token cannot see -> 404 "Repository not found."; a push without
        contents:write on it -> 403."""
        t0 = time.time()
        owner, name, rest = m.groups()
        service = req.q("service") if rest == "info/refs" else rest
        push = service == "git-receive-pack"
        kind, inst_id = "none", None

        def done(resp):
            self._record(req, resp, kind, inst_id, t0)
            return resp

        def text(status, msg, headers=None):
            return Response(status, msg.encode(), headers,
                            content_type="text/plain; charset=utf-8")

        self._stall(req, "git")
        fault = self._status_fault(req, "git")
        if fault:
            return done(fault)
        if service not in ("git-upload-pack", "git-receive-pack"):
            return done(text(403, "Service not enabled\n"))
        challenge = {"WWW-Authenticate": 'Basic realm="GitHub"'}
        repo = self._repo(owner, name)
        h = req.header("Authorization") or ""
        scheme, _, cred = h.partition(" ")
        token = None
        if scheme.lower() == "basic":
            kind = "basic"
            try:
                _u, _, token = base64.b64decode(cred.strip()).decode().partition(":")
            except Exception:
                token = ""
        elif scheme.lower() in ("bearer", "token"):
            kind, token = "installation", cred.strip()
        with self.lock:
            tok = self.tokens.get(token) if token else None
            live = tok is not None and not tok["revoked"] and tok["expires_at"] > self.now()
            if tok is not None:
                inst_id = tok["installation_id"]
            if token is not None and not live:
                return done(text(401, "Invalid username or token. Password authentication "
                                      "is not supported for Git operations.\n", challenge))
            if token is None:
                if push or repo is None or repo["private"]:
                    return done(text(401, "Authentication required\n", challenge))
                perms, in_scope = {}, False
            else:
                in_scope = repo is not None and \
                    repo["full_name"].lower() in self._token_repos(tok)
                perms = tok["permissions"]
                bot = "%s[bot]" % self.apps[self.installations[inst_id]["app_id"]]["slug"]
            if repo is None or (not in_scope and repo["private"]):
                return done(text(404, "Repository not found.\n"))
            need = "write" if push else "read"
            if token is not None and (not in_scope and push or in_scope and
                                      LEVEL.get(perms.get("contents", "none"), 0) < LEVEL[need]):
                return done(text(403, "Permission to %s.git denied to %s.\n"
                                      % (repo["full_name"], bot)))
            full = repo["full_name"]
        status, headers, body = http_backend(
            self.git_root, "/%s.git/%s" % (full, rest), req.method, req.query_string,
            req.body, req.header("Content-Type"), remote_user="x-access-token" if token else None,
            git_protocol=req.header("Git-Protocol"))
        if push and rest == "git-receive-pack" and status == 200:
            with self.lock:
                repo["pushed_at"] = self.now()
                self._refresh_prs(repo)
        return done(Response(status, body, dict(headers), content_type=None))



# --------------------------------------------------------------------------
# running the fake as a separate process
# --------------------------------------------------------------------------
class FakeGitHubProcess:
    """The fake as a child process (for tests that want it outside their own
    interpreter):  with FakeGitHubProcess(pub_path) as p: p.base_url ...
    p.control("repos", {...}) posts to /_fake/repos; stop() terminates it."""

    def __init__(self, public_key_path, app_id=1234, slug="patchbay", git_root=None,
                 state=None, python="/usr/bin/python3", timeout=15):
        self._dir = tempfile.mkdtemp(prefix="fakegh-proc-")
        ready = os.path.join(self._dir, "port")
        cmd = [python if os.path.exists(python) else sys.executable,
               os.path.abspath(__file__), "--port", "0", "--app-id", str(app_id),
               "--app-slug", slug, "--public-key", public_key_path, "--ready-file", ready]
        if git_root:
            cmd += ["--git-root", git_root]
        if state:
            cmd += ["--state", state]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") \
                    if self.proc.poll() is not None else "timeout"
                self.stop()
                raise RuntimeError("fake github did not start: " + err)
            time.sleep(0.02)
        with open(ready) as f:
            self.port = int(f.read())
        self.base_url = "http://127.0.0.1:%d" % self.port

    def control(self, route, body=None, method="POST"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("%s/_fake/%s" % (self.base_url, route), data,
                                     {"Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError("control %s: %s" % (route, e.read().decode(errors="replace")))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="A faithful local GitHub for patchbay tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--app-id", type=int, default=1234)
    ap.add_argument("--app-slug", default="patchbay")
    ap.add_argument("--app-name", default=None)
    ap.add_argument("--public-key", required=True, help="the App's public key (PEM)")
    ap.add_argument("--state", help="seed file (JSON, see FakeGitHub.seed)")
    ap.add_argument("--git-root", help="where bare repos live (default: a temp dir)")
    ap.add_argument("--ready-file", help="write the port here once listening")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    with open(args.public_key, "rb") as f:
        pub = f.read()
    fake = FakeGitHub(args.app_id, args.app_slug, pub, args.git_root, host=args.host,
                      port=args.port, name=args.app_name, verbose=args.verbose)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        port = fake.start()
        if args.state:
            with open(args.state) as f:
                fake.seed(json.load(f))
        if args.ready_file:
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % port)
            os.replace(tmp, args.ready_file)
        print("listening on %s:%d" % (args.host, port), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
