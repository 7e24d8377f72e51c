"""The fake GitHub's control side: the Python methods tests call to seed
state, inject faults and read back calls, the /_fake/ HTTP routes that call
them, and the state dump.  Mixed into FakeGitHub."""

import re
import uuid

import ghfake_keys
from ghfake_common import DEFAULT_EVENTS, DEFAULT_PERMISSIONS, rand_str, slugify
from ghfake_git import GitError
from ghfake_http import ApiError, Response
from ghfake_shapes import iso


class ControlMixin:
    # ------------------------------------------------------------------
    # Python control API (the /_fake/ HTTP routes call these)
    # ------------------------------------------------------------------
    def add_user(self, login, type="User", id=None, name=None):
        with self.lock:
            u = self.users.get(login.lower())
            if u is None:
                u = {"login": login, "id": int(id) if id else self._id(), "type": type,
                     "name": name, "created_at": self.now()}
                self.users[login.lower()] = u
            else:
                if id:
                    u["id"] = int(id)
                if type and type != "User":
                    u["type"] = type
                if name:
                    u["name"] = name
            return dict(u)

    def add_app(self, id, slug, public_key_pem=None, name=None, owner=None,
                permissions=None, events=None, client_id=None, client_secret=None,
                webhook_secret=None, pem=None, description="", external_url=None):
        """Register a GitHub App whose JWTs the fake accepts.  Its bot user
        "<slug>[bot]" (type Bot) is created with it."""
        with self.lock:
            id = int(id)
            if public_key_pem is None and pem:
                public_key_pem = ghfake_keys.public_pem_of(pem)
            if isinstance(public_key_pem, str):
                public_key_pem = public_key_pem.encode()
            owner = owner or "patchbay-owner"
            self.add_user(owner)
            app = {"id": id, "slug": slug, "name": name or slug,
                   "owner": owner, "public_key": public_key_pem,
                   "client_id": client_id or "Iv1.%016x" % (id * 7919),
                   "client_secret": client_secret or rand_str(40, "0123456789abcdef"),
                   "webhook_secret": webhook_secret, "pem": pem,
                   "permissions": dict(permissions or DEFAULT_PERMISSIONS),
                   "events": list(events or DEFAULT_EVENTS),
                   "description": description, "external_url": external_url,
                   "created_at": self.now()}
            self.apps[id] = app
            bot = self.add_user("%s[bot]" % slug, type="Bot",
                                id=100000000 + id)
            self.users[bot["login"].lower()]["app_slug"] = slug
            return self.app_json(app)

    def create_repo(self, full_name, default_branch="main", private=False, files=None,
                    description=None, owner_type=None, id=None, message="Initial commit"):
        """A bare repository <git-root>/<owner>/<repo>.git with one commit of
        `files` (fixed dates, so the same files give the same SHA) and its
        API record."""
        owner, name = full_name.split("/", 1)
        with self.lock:
            self.add_user(owner, type=owner_type or "User")
            self.git.create(full_name, default_branch, files or {}, message=message)
            t = self.now()
            repo = {"id": int(id) if id else self._id(), "owner": owner, "name": name,
                    "full_name": full_name, "private": bool(private),
                    "default_branch": default_branch, "description": description,
                    "created_at": t, "updated_at": t, "pushed_at": t,
                    "labels": {}, "collaborators": {}, "issues": {}, "next_number": 1}
            self.repos[full_name.lower()] = repo
            out = self.repo_json(repo)
            out["git_dir"] = self.git.path(full_name)
            return out

    def add_installation(self, id, account, repositories=None, permissions=None,
                         events=None, app_id=None, repository_selection=None,
                         account_type=None):
        """repositories: ["owner/repo", ...] (selected) or "all"."""
        with self.lock:
            app = self.apps[int(app_id or self.app_id)]
            self.add_user(account, type=account_type or "User")
            sel = repository_selection or ("all" if repositories == "all" else "selected")
            repos = [] if repositories in (None, "all") else list(repositories)
            for r in repos:
                self._repo_by_full(r)
            inst = {"id": int(id), "app_id": app["id"], "account": account,
                    "repository_selection": sel, "repos": [r.lower() for r in repos],
                    "permissions": dict(permissions or app["permissions"]),
                    "events": list(events or app["events"]), "created_at": self.now(),
                    "suspended": False}
            inst["permissions"].setdefault("metadata", "read")
            self.installations[inst["id"]] = inst
            return self.installation_json(inst)

    def set_collaborator(self, repo, user, permission="write"):
        """permission: admin | maintain | write | triage | read | none."""
        if permission not in ("admin", "maintain", "write", "triage", "read", "none"):
            raise ValueError("bad permission %r" % permission)
        with self.lock:
            r = self._repo_by_full(repo)
            self.add_user(user)
            r["collaborators"][user.lower()] = permission
            return {"repo": r["full_name"], "user": user, "permission": permission}

    def _new_issue(self, repo, title, body, user, association=None, labels=(),
                   state="open", app_id=None):
        t = self.now()
        n = repo["next_number"]
        repo["next_number"] += 1
        issue = {"id": self._id(), "number": n, "repo": repo["full_name"],
                 "title": title, "body": body, "user": user, "state": state,
                 "state_reason": None, "labels": [], "comment_ids": [],
                 "created_at": t, "updated_at": t, "closed_at": t if state == "closed" else None,
                 "author_association": association or self._association(repo, user),
                 "reactions": [], "history": [], "pull": None, "app_id": app_id}
        for lab in labels:
            issue["labels"].append(self._ensure_label(repo, lab))
        repo["issues"][n] = issue
        repo["updated_at"] = t
        return issue

    def add_issue(self, repo, title, body="", user="octocat", author_association=None,
                  labels=(), state="open"):
        with self.lock:
            r = self._repo_by_full(repo)
            self.add_user(user)
            issue = self._new_issue(r, title, body, user, author_association, labels, state)
            return self.issue_json(r, issue)

    def _new_comment(self, repo, issue, body, user, association=None, app_id=None):
        t = self.now()
        c = {"id": self._id(), "repo": repo["full_name"], "number": issue["number"],
             "body": body, "user": user, "created_at": t, "updated_at": t,
             "author_association": association or self._association(repo, user),
             "reactions": [], "history": [], "app_id": app_id}
        self.comments[c["id"]] = c
        issue["comment_ids"].append(c["id"])
        issue["updated_at"] = t
        return c

    def add_comment(self, repo, number, body, user="octocat", author_association=None):
        with self.lock:
            r = self._repo_by_full(repo)
            issue = r["issues"][int(number)]
            self.add_user(user)
            return self.comment_json(self._new_comment(r, issue, body, user,
                                                       author_association))

    def commit(self, repo, branch, files, base=None, message="Update", author=None):
        """Commit files ({path: text | None (delete) | {"base64": ...} |
        {"content": ..., "mode": "100755"}}) onto branch (created from base,
        default: the default branch).  Returns the commit SHA."""
        with self.lock:
            r = self._repo_by_full(repo)
            if isinstance(author, dict):
                author = (author.get("name"), author.get("email"))
            sha = self.git.commit(r["full_name"], branch, files,
                                  base=base or r["default_branch"], message=message,
                                  author=author, date=None)
            r["pushed_at"] = self.now()
            self._refresh_prs(r)
            return sha

    def add_pull(self, repo, head, base=None, title="Pull request", body="",
                 user="octocat", draft=False, head_repo=None, author_association=None):
        """A pull request from an existing branch (of repo, or of the fork
        head_repo "owner/repo"), with refs/pull/N/head."""
        with self.lock:
            r = self._repo_by_full(repo)
            self.add_user(user)
            hr = self._repo_by_full(head_repo) if head_repo else r
            issue = self._make_pull(r, hr, head, base or r["default_branch"], title, body,
                                    user, draft, author_association, None, head)
            return self.pull_json(r, issue)

    def add_review_comment(self, repo, number, body, path=None, line=None, side="RIGHT",
                           start_line=None, start_side=None, user="octocat",
                           in_reply_to=None, author_association=None):
        """A review comment by a person (e.g. a follow-up request on a
        patchbay PR), validated like the API does.  Returns its API shape."""
        with self.lock:
            r = self._repo_by_full(repo)
            issue = r["issues"][int(number)]
            self.add_user(user)
            spec = {"body": body, "path": path, "line": line, "side": side,
                    "start_line": start_line, "start_side": start_side}
            if in_reply_to:
                c = self._reply_comment(r, issue, int(in_reply_to), body, user, None)
            else:
                c = self._single_review_comment(r, issue, spec, user, None,
                                                issue["pull"]["head_sha"])
            if author_association:
                c["author_association"] = author_association
            return self.review_comment_json(c)

    def add_fault(self, type, count=1, path=None, method=None, target="api", status=None,
                  reset=None, retry_after=None, seconds=None, body=None, message=None, hold=False):
        """Inject a fault into the next `count` matching requests (-1 = until
        cleared).  type:
          primary   - 403 (or status=429) primary rate limit, x-ratelimit-remaining: 0
                      and x-ratelimit-reset: reset (epoch; default now+60)
          secondary - 403 (or status=429) secondary rate limit, retry-after if given
          429       - 429 "too many requests" with the secondary body, retry-after if given
          status    - answer `status` (default 502) with `body` (default GitHub-like)
          stall     - sleep `seconds` before answering normally
        path: regex searched in the request path; method: only this method;
        target: "api" (default), "git" or "any".
        hold (rate limits): as on github.com, the limit then holds for the
        whole installation (or App) until it ends - the reset, retry-after,
        or a minute - and every API request before that is refused the same
        way (and recorded as a rate violation, as every such request is)."""
        if type not in ("primary", "secondary", "429", "status", "stall"):
            raise ValueError("unknown fault type %r" % type)
        with self.lock:
            f = {"id": self._id(), "type": type, "count": int(count),
                 "path": path, "method": method, "target": target,
                 "status": status, "reset": reset, "retry_after": retry_after,
                 "seconds": seconds, "body": body, "message": message, "hits": 0,
                 "hold": bool(hold)}
            if path:
                re.compile(path)
            self.faults.append(f)
            return dict(f)

    def clear_faults(self):
        with self.lock:
            n = len(self.faults)
            self.faults = []
            return n

    def expire_tokens(self, token=None, installation_id=None):
        """Expire installation tokens now (all, one, or an installation's)."""
        with self.lock:
            n = 0
            for t in self.tokens.values():
                if token and t["token"] != token:
                    continue
                if installation_id and t["installation_id"] != int(installation_id):
                    continue
                if t["expires_at"] > self.now():
                    t["expires_at"] = self.now() - 1
                    t["expired_early"] = True
                    n += 1
            return n

    def refuse_push(self, repo=None, message="push refused by pre-receive hook (fake)",
                    count=1):
        """The next `count` pushes (-1: until cleared; 0: clear) to repo (or
        every repo) are refused by the pre-receive hook with `message`."""
        with self.lock:
            targets = [self._repo_by_full(repo)] if repo else list(self.repos.values())
            for r in targets:
                if int(count) == 0:
                    self.git.clear_refuse(r["full_name"])
                else:
                    self.git.set_refuse(r["full_name"], message, int(count))
            return {"repos": [r["full_name"] for r in targets], "count": int(count)}

    def add_delivery(self, event="issue_comment", action="created", status=None,
                     status_code=200, guid=None, delivered_at=None, redelivery=False,
                     duration=0.05, installation_id=None, repository_id=None,
                     payload=None, id=None, url=None):
        """An App webhook delivery as GitHub lists it.  status defaults to
        "OK" for 2xx, "Invalid HTTP Response: <code>" otherwise and
        "failed to connect" for status_code 0."""
        with self.lock:
            if status is None:
                code = int(status_code)
                status = ("OK" if 200 <= code < 300 else
                          "failed to connect" if code == 0 else
                          "Invalid HTTP Response: %d" % code)
            if isinstance(delivered_at, (int, float)):
                delivered_at = iso(delivered_at)
            d = {"id": int(id) if id else self._delivery_id(), "guid": guid or str(uuid.uuid4()),
                 "delivered_at": delivered_at or iso(self.now()),
                 "redelivery": bool(redelivery), "duration": duration, "status": status,
                 "status_code": int(status_code), "event": event, "action": action,
                 "installation_id": installation_id, "repository_id": repository_id,
                 "payload": payload, "url": url}
            self.deliveries.append(d)
            return self.delivery_json(d)

    def _delivery_id(self):
        # GitHub's delivery ids are large and increase with time
        return 10000000000 + self._id()

    def add_manifest_code(self, code, id=None, slug=None, name=None, owner=None, pem=None,
                          webhook_secret=None, client_id=None, client_secret=None,
                          permissions=None, events=None, url=None, description=""):
        """A code that POST /app-manifests/{code}/conversions exchanges (once)
        for a new App's credentials.  Missing fields are generated (a fresh
        RSA key when pem is absent).  After the conversion the fake accepts
        JWTs of that App."""
        with self.lock:
            name = name or slug or "patchbay"
            self.manifest_codes[code] = {
                "code": code, "id": int(id) if id else self._id(),
                "slug": slug or slugify(name), "name": name,
                "owner": owner or "patchbay-owner", "pem": pem,
                "webhook_secret": webhook_secret or rand_str(40, "0123456789abcdef"),
                "client_id": client_id, "client_secret": client_secret,
                "permissions": permissions, "events": events, "url": url,
                "description": description, "created_at": self.now()}
            return {"code": code, "id": self.manifest_codes[code]["id"],
                    "slug": self.manifest_codes[code]["slug"]}

    def set_webhook(self, url=None, secret=None):
        """Where redeliveries are really POSTed (signed with secret)."""
        with self.lock:
            self.webhook = {"url": url, "secret": secret} if url else None
            return {"webhook": self.webhook}

    def configure(self, token_ttl=None, clock_offset=None, rate_limit=None,
                  unauth_rate_limit=None, redelivery_status_code=None, content_limits=None):
        """content_limits: [[calls, seconds], ...] - GitHub's limits on
        content-generating requests (POST, PATCH, PUT, DELETE with an
        installation token), per installation, in any sliding window: GitHub
        documents 80 a minute and 500 an hour. Off by default (tests that want
        them scale them down). Beyond one, the request is refused as GitHub
        refuses it (403, a secondary rate limit, no retry-after) and recorded
        as a rate violation."""
        with self.lock:
            if content_limits is not None:
                self.content_limits = [(int(c), float(w)) for c, w in content_limits]
            if token_ttl is not None:
                self.token_ttl = int(token_ttl)
            if clock_offset is not None:
                self.clock_offset = float(clock_offset)
            if rate_limit is not None:
                self.rate_limit = int(rate_limit)
            if unauth_rate_limit is not None:
                self.unauth_rate_limit = int(unauth_rate_limit)
            if redelivery_status_code is not None:
                self.redelivery_status_code = int(redelivery_status_code)
            return {"token_ttl": self.token_ttl, "clock_offset": self.clock_offset,
                    "rate_limit": self.rate_limit,
                    "unauth_rate_limit": self.unauth_rate_limit,
                    "redelivery_status_code": self.redelivery_status_code,
                    "content_limits": [list(x) for x in self.content_limits]}

    def set_rate_limit(self, installation_id=None, app_id=None, limit=None,
                       remaining=None, reset=None):
        """Set the budget of an installation (or App JWTs) directly."""
        with self.lock:
            key = ("inst:%d" % int(installation_id)) if installation_id else \
                ("app:%d" % int(app_id or self.app_id))
            b = self._bucket(key, self.rate_limit)
            if limit is not None:
                b["limit"] = int(limit)
            if remaining is not None:
                b["used"] = b["limit"] - int(remaining)
            if reset is not None:
                b["reset"] = int(reset)
            return dict(b, key=key)

    def calls(self, since=0, path=None):
        with self.lock:
            out = [c for c in self.calls_log if c["seq"] > int(since)]
        if path:
            out = [c for c in out if re.search(path, c["path"])]
        return [dict(c) for c in out]

    def reset_calls(self):
        with self.lock:
            self.calls_log = []
            return {"ok": True}

    def violations(self):
        """Requests GitHub had asked not to be made: sent while a rate limit it
        answered was still in force (before x-ratelimit-reset, retry-after, or
        the minute), or past a content limit."""
        with self.lock:
            return [dict(v) for v in self.rate_violations]

    @property
    def mint_count(self):
        return len(self.mints)

    def seed(self, data):
        """Apply a seed document (the --state file): keys users, repos,
        installations, collaborators, commits, issues, comments, pulls,
        deliveries, manifest_codes - each a list of the matching control
        API's JSON objects - applied in that order."""
        out = {}
        for key, fn in (("users", self.add_user), ("repos", self.create_repo),
                        ("installations", self.add_installation),
                        ("collaborators", self.set_collaborator),
                        ("commits", self.commit), ("issues", self.add_issue),
                        ("comments", self.add_comment), ("pulls", self.add_pull),
                        ("deliveries", self.add_delivery),
                        ("manifest_codes", self.add_manifest_code)):
            for item in data.get(key, []):
                out.setdefault(key, []).append(fn(**item))
        return out

    # ------------------------------------------------------------------
    # state dump (GET /_fake/state)
    # ------------------------------------------------------------------
    def _reactions_state(self, rs):
        return [{"id": r["id"], "content": r["content"], "user": r["user"],
                 "created_at": iso(r["created_at"])} for r in rs]

    def state(self):
        with self.lock:
            for r in self.repos.values():
                self._refresh_prs(r)
            issues, pulls = [], []
            for r in self.repos.values():
                for i in r["issues"].values():
                    issues.append({
                        "repo": r["full_name"], "number": i["number"], "id": i["id"],
                        "title": i["title"], "body": i["body"], "user": i["user"],
                        "state": i["state"], "labels": list(i["labels"]),
                        "is_pull_request": bool(i["pull"]),
                        "author_association": i["author_association"],
                        "comment_ids": list(i["comment_ids"]),
                        "reactions": self._reactions_state(i["reactions"]),
                        "history": list(i["history"]),
                        "created_at": iso(i["created_at"]), "updated_at": iso(i["updated_at"])})
                    if i["pull"]:
                        p = i["pull"]
                        pulls.append({
                            "repo": r["full_name"], "number": i["number"], "id": p["id"],
                            "title": i["title"], "body": i["body"], "user": i["user"],
                            "state": i["state"], "draft": p["draft"], "head": p["head_ref"],
                            "head_repo": p["head_repo"], "head_sha": p["head_sha"],
                            "base": p["base_ref"], "base_sha": p["base_sha"],
                            "merged": bool(p.get("merged_at")), "labels": list(i["labels"]),
                            "history": list(i["history"])})
            return {
                "apps": [{k: a[k] for k in ("id", "slug", "name", "owner", "client_id",
                                            "permissions", "events", "webhook_secret")}
                         for a in self.apps.values()],
                "bot_users": {a["slug"]: {"login": "%s[bot]" % a["slug"],
                                          "id": self.users["%s[bot]" % a["slug"].lower()]["id"]}
                              for a in self.apps.values()},
                "installations": [self.installation_json(i) for i in self.installations.values()],
                "repos": [{"full_name": r["full_name"], "id": r["id"], "private": r["private"],
                           "default_branch": r["default_branch"],
                           "git_dir": self.git.path(r["full_name"]),
                           "labels": [lab["name"] for lab in r["labels"].values()],
                           "collaborators": dict(r["collaborators"]),
                           "branches": self.git.branches(r["full_name"])}
                          for r in self.repos.values()],
                "issues": issues,
                "comments": [{"id": c["id"], "repo": c["repo"], "number": c["number"],
                              "body": c["body"], "user": c["user"],
                              "author_association": c["author_association"],
                              "via_app": self.apps[c["app_id"]]["slug"] if c.get("app_id") else None,
                              "reactions": self._reactions_state(c["reactions"]),
                              "history": list(c["history"]),
                              "created_at": iso(c["created_at"]),
                              "updated_at": iso(c["updated_at"])}
                             for c in self.comments.values()],
                "pulls": pulls,
                "reviews": [{"id": v["id"], "repo": v["repo"], "number": v["number"],
                             "user": v["user"], "state": v["state"], "body": v["body"],
                             "commit_id": v["commit_id"], "comment_ids": list(v["comment_ids"]),
                             "submitted_at": iso(v.get("submitted_at"))}
                            for v in self.reviews.values()],
                "review_comments": [{k: c.get(k) for k in (
                    "id", "review_id", "repo", "number", "path", "line", "side", "start_line",
                    "start_side", "position", "body", "user", "in_reply_to_id",
                    "commit_id", "diff_hunk")}
                    | {"reactions": self._reactions_state(c["reactions"]),
                       "history": list(c["history"])}
                    for c in self.review_comments.values()],
                "check_runs": [{k: cr.get(k) for k in (
                    "id", "repo", "name", "head_sha", "status", "conclusion", "external_id",
                    "details_url", "output", "annotations", "history")}
                    | {"started_at": iso(cr.get("started_at")),
                       "completed_at": iso(cr.get("completed_at"))}
                    for cr in self.check_runs.values()],
                "deliveries": [dict(d) for d in self.deliveries],
                "redelivery_attempts": list(self.redelivery_attempts),
                "mint_count": len(self.mints),
                "mints": list(self.mints),
                "tokens": [{"token": t["token"], "installation_id": t["installation_id"],
                            "repositories": t["repos"], "permissions": t["permissions"],
                            "expires_at": iso(t["expires_at"]), "revoked": t["revoked"],
                            "expired": t["expires_at"] <= self.now()}
                           for t in self.tokens.values()],
                "faults": [dict(f) for f in self.faults],
                "rate_violations": [dict(v) for v in self.rate_violations],
                "holds": {k: dict(v) for k, v in self.holds.items()},
                "manifest_codes": sorted(self.manifest_codes),
                "git_root": self.git_root,
            }


    # ------------------------------------------------------------------
    # control API (/_fake/...)
    # ------------------------------------------------------------------
    def _control(self, req):
        routes = {
            ("POST", "/_fake/users"): self.add_user,
            ("POST", "/_fake/apps"): self.add_app,
            ("POST", "/_fake/repos"): self.create_repo,
            ("POST", "/_fake/installations"): self.add_installation,
            ("POST", "/_fake/collaborators"): self.set_collaborator,
            ("POST", "/_fake/issues"): self.add_issue,
            ("POST", "/_fake/comments"): self.add_comment,
            ("POST", "/_fake/commits"): lambda **kw: {"sha": self.commit(**kw)},
            ("POST", "/_fake/pulls"): self.add_pull,
            ("POST", "/_fake/review_comments"): self.add_review_comment,
            ("POST", "/_fake/faults"): self._control_faults,
            ("DELETE", "/_fake/faults"): lambda: {"cleared": self.clear_faults()},
            ("GET", "/_fake/faults"): lambda: [dict(f) for f in self.faults],
            ("POST", "/_fake/expire_tokens"): lambda **kw: {"expired": self.expire_tokens(**kw)},
            ("POST", "/_fake/refuse_push"): self.refuse_push,
            ("POST", "/_fake/deliveries"): self._control_deliveries,
            ("POST", "/_fake/manifest_codes"): self.add_manifest_code,
            ("POST", "/_fake/webhook"): self.set_webhook,
            ("POST", "/_fake/config"): self.configure,
            ("POST", "/_fake/ratelimit"): self.set_rate_limit,
            ("POST", "/_fake/seed"): lambda **kw: self.seed(kw),
            ("GET", "/_fake/state"): self.state,
            ("POST", "/_fake/reset_calls"): self.reset_calls,
            ("GET", "/_fake/violations"): self.violations,
            ("GET", "/_fake/health"): lambda: {"ok": True, "port": self.port},
        }
        if req.method == "GET" and req.path == "/_fake/calls":
            return Response(200, self.calls(since=req.q("since", 0), path=req.q("path")))
        fn = routes.get((req.method, req.path.rstrip("/")))
        if fn is None:
            return Response(404, {"error": "no control route %s %s" % (req.method, req.path)})
        try:
            body = req.json() if req.method != "GET" else None
        except ApiError:
            return Response(400, {"error": "body is not JSON"})
        try:
            if isinstance(body, dict):
                out = fn(**body)
            elif body is None:
                out = fn()
            else:
                out = fn(body)
        except ApiError as e:
            return Response(e.status, {"error": e.message, "github": e.body()})
        except (TypeError, ValueError, KeyError, GitError) as e:
            return Response(400, {"error": "%s: %s" % (type(e).__name__, e)})
        return Response(200 if req.method == "GET" else 201, out)

    def _control_faults(self, faults=None, clear=False, **one):
        """Body: one fault object, {"faults": [...]}, or {"clear": true}."""
        if clear:
            self.clear_faults()
        out = [self.add_fault(**f) for f in (faults or [])]
        if one:
            out.append(self.add_fault(**one))
        return out

    def _control_deliveries(self, deliveries=None, **one):
        out = [self.add_delivery(**d) for d in (deliveries or [])]
        if one:
            out.append(self.add_delivery(**one))
        return out
