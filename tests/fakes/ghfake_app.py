"""App-level endpoints of the fake GitHub: GET /app, installations, token
minting (JWT), webhook deliveries and redelivery, the manifest flow, and the
public/installation endpoints (users, rate_limit, repository, branches).
Mixed into FakeGitHub."""

import hmac
import http.client
import json
import re
import threading
import time
import urllib.parse

import ghfake_keys
from ghfake_common import DOC, LEVEL, rand_str
from ghfake_http import ApiError, Response, invalid_request, not_found, paginate
from ghfake_shapes import iso


class AppMixin:
    # ------------------------------------------------------------------
    # App endpoints (JWT)
    # ------------------------------------------------------------------
    def api_get_app(self, req):
        return Response(200, self.app_json(req.auth.app))

    def _app_installations(self, app):
        return [i for i in sorted(self.installations.values(), key=lambda i: i["id"])
                if i["app_id"] == app["id"]]

    def api_list_installations(self, req):
        items, link = paginate(self._app_installations(req.auth.app), req, self.api)
        return self._list(items, link, self.installation_json)

    def api_get_installation(self, req, iid):
        inst = self.installations.get(int(iid))
        if not inst or inst["app_id"] != req.auth.app["id"]:
            raise not_found()
        return Response(200, self.installation_json(inst))

    def api_repo_installation(self, req, owner, name):
        repo = self._repo(owner, name)
        if repo:
            for inst in self._app_installations(req.auth.app):
                if repo["full_name"].lower() in self._installation_repos(inst):
                    return Response(200, self.installation_json(inst))
        raise not_found()

    def api_account_installation(self, req, account):
        for inst in self._app_installations(req.auth.app):
            if inst["account"].lower() == account.lower():
                return Response(200, self.installation_json(inst))
        raise not_found()

    def api_mint(self, req, iid):
        """POST /app/installations/{id}/access_tokens.  GitHub's rules:
        `repositories` are names (not owner/name) and `repository_ids` ids,
        all inside the installation, else 422; `permissions` no more than
        the installation's, else 422; the token lives one hour."""
        inst = self.installations.get(int(iid))
        if not inst or inst["app_id"] != req.auth.app["id"]:
            raise not_found(DOC["token"])
        if inst.get("suspended"):
            raise ApiError(403, "This installation has been suspended", doc=DOC["token"])
        body = req.json_object()
        names = body.get("repositories")
        ids = body.get("repository_ids")
        perms = body.get("permissions")
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) for n in names)):
            raise invalid_request("For 'properties/repositories', %s is not an array of "
                                  "strings." % json.dumps(names), DOC["token"])
        if ids is not None and (not isinstance(ids, list)
                                or not all(isinstance(n, int) for n in ids)):
            raise invalid_request("For 'properties/repository_ids', %s is not an array of "
                                  "integers." % json.dumps(ids), DOC["token"])
        if perms is not None and not isinstance(perms, dict):
            raise invalid_request("For 'properties/permissions', %s is not an object."
                                  % json.dumps(perms), DOC["token"])
        available = self._installation_repos(inst)
        selected = None
        if names or ids:
            selected = []
            nope = ApiError(422, "There is at least one repository that does not exist or "
                                 "is not accessible to the parent installation.",
                            doc=DOC["token"])
            for n in names or []:
                full = ("%s/%s" % (inst["account"], n)).lower()
                if "/" in n or full not in available:
                    raise nope
                selected.append(full)
            for i in ids or []:
                hit = [k for k in available if self.repos[k]["id"] == i]
                if not hit:
                    raise nope
                selected.append(hit[0])
            selected = sorted(set(selected))
        granted = dict(inst["permissions"])
        if perms:
            for k, v in perms.items():
                if v not in ("read", "write", "admin") or \
                        LEVEL.get(granted.get(k, "none"), 0) < LEVEL[v]:
                    raise ApiError(422, "The permissions requested are not granted to this "
                                        "installation.", doc=DOC["token"])
            granted = dict(perms)
            granted.setdefault("metadata", "read")
        token = "ghs_" + rand_str(36)
        now = self.now()
        rec = {"token": token, "installation_id": inst["id"], "repos": selected,
               "permissions": granted, "expires_at": int(now) + self.token_ttl,
               "created_at": now, "revoked": False}
        self.tokens[token] = rec
        self.mints.append({"installation_id": inst["id"], "token": token,
                           "repositories": selected, "permissions": granted,
                           "expires_at": iso(rec["expires_at"]), "at": iso(now)})
        out = {"token": token, "expires_at": iso(rec["expires_at"]),
               "permissions": granted,
               "repository_selection": "selected" if selected is not None
               else inst["repository_selection"]}
        if selected is not None:
            out["repositories"] = [self.repo_json(self.repos[k]) for k in selected]
        return Response(201, out)

    def api_installation_repos(self, req):
        tok = req.auth.token
        repos = [self.repos[k] for k in sorted(self._token_repos(tok)) if k in self.repos]
        items, link = paginate(repos, req, self.api)
        sel = "selected" if tok["repos"] is not None else \
            req.auth.installation["repository_selection"]
        return Response(200, {"total_count": len(repos), "repository_selection": sel,
                               "repositories": [self.repo_json(r) for r in items]},
                        {"Link": link} if link else None)

    def api_revoke_token(self, req):
        req.auth.token["revoked"] = True
        return Response(204)

    # -- webhook deliveries --------------------------------------------------
    def api_list_deliveries(self, req):
        """Cursor pagination (not pages): per_page (default 30, max 100) and
        an opaque `cursor`; Link carries rel="next" while more remain.
        Newest first."""
        items = sorted(self.deliveries, key=lambda d: (d["delivered_at"], d["id"]),
                       reverse=True)
        if req.q("redelivery") in ("true", "false"):
            items = [d for d in items if d["redelivery"] == (req.q("redelivery") == "true")]
        try:
            per = int(req.q("per_page", 30))
        except ValueError:
            per = 30
        per = min(max(per, 1), 100)
        start = 0
        cursor = req.q("cursor")
        if cursor:
            m = re.fullmatch(r"v1_(\d+)", cursor)
            ids = [d["id"] for d in items]
            if not m or int(m.group(1)) not in ids:
                raise ApiError(400, "Invalid cursor")
            start = ids.index(int(m.group(1)))
        page = items[start:start + per]
        headers = {}
        if start + per < len(items):
            pairs = [(k, v) for k, v in urllib.parse.parse_qsl(req.query_string)
                     if k != "cursor"]
            if not any(k == "per_page" for k, _ in pairs):
                pairs.insert(0, ("per_page", str(per)))
            pairs.append(("cursor", "v1_%d" % items[start + per]["id"]))
            headers["Link"] = '<%s%s?%s>; rel="next"' % (self.api, req.path,
                                                         urllib.parse.urlencode(pairs))
        return Response(200, [self.delivery_json(d) for d in page], headers)

    def api_get_delivery(self, req, did):
        for d in self.deliveries:
            if d["id"] == int(did):
                return Response(200, self.delivery_json(d, full=True))
        raise not_found()

    def api_redeliver(self, req, did):
        """POST /app/hook/deliveries/{id}/attempts -> 202.  A redelivery is
        a new delivery with the same guid and redelivery: true."""
        orig = next((d for d in self.deliveries if d["id"] == int(did)), None)
        if orig is None:
            raise not_found()
        self.redelivery_attempts.append({"delivery_id": orig["id"], "guid": orig["guid"],
                                         "event": orig["event"], "action": orig["action"],
                                         "at": iso(self.now())})
        new = self.add_delivery(event=orig["event"], action=orig["action"],
                                status_code=self.redelivery_status_code, guid=orig["guid"],
                                redelivery=True, installation_id=orig["installation_id"],
                                repository_id=orig["repository_id"], payload=orig["payload"])
        if self.webhook and orig.get("payload") is not None:
            rec = next(d for d in self.deliveries if d["id"] == new["id"])
            threading.Thread(target=self._deliver, args=(rec,), daemon=True).start()
        return Response(202, {})

    def _deliver(self, d):
        """POST a delivery to the configured webhook as GitHub does."""
        wh = self.webhook
        data = json.dumps(d["payload"]).encode()
        headers = {"Content-Type": "application/json",
                   "User-Agent": "GitHub-Hookshot/fake",
                   "X-GitHub-Event": d["event"], "X-GitHub-Delivery": d["guid"],
                   "X-GitHub-Hook-ID": "1",
                   "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
                   "X-GitHub-Hook-Installation-Target-Type": "integration"}
        if wh.get("secret"):
            key = wh["secret"].encode()
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, data, "sha1").hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, data,
                                                                  "sha256").hexdigest()
        t0 = time.time()
        u = urllib.parse.urlsplit(wh["url"])
        try:
            # http.client keeps GitHub's header spelling (urllib would not)
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            conn = cls(u.hostname, u.port, timeout=10)
            conn.request("POST", (u.path or "/") + ("?" + u.query if u.query else ""), data,
                         headers)
            r = conn.getresponse()
            code, body = r.status, r.read().decode(errors="replace")
            conn.close()
            status = "OK" if 200 <= code < 300 else "Invalid HTTP Response: %d" % code
        except Exception:
            code, status, body = 0, "failed to connect", None
        with self.lock:
            d.update(status_code=code, status=status, duration=round(time.time() - t0, 3),
                     url=wh["url"], request_headers=headers, response_body=body)

    def api_manifest_conversion(self, req, code):
        """POST /app-manifests/{code}/conversions: no auth; a code works
        once (GitHub: and within an hour); 404 otherwise."""
        m = self.manifest_codes.pop(code, None)
        if m is None:
            raise not_found("https://docs.github.com/rest/apps/apps"
                            "#create-a-github-app-from-a-manifest")
        pem = m["pem"]
        if not pem:
            pem = ghfake_keys.generate_rsa_pems()[0].decode()
        if isinstance(pem, bytes):
            pem = pem.decode()
        self.add_app(m["id"], m["slug"], pem=pem.encode(), name=m["name"], owner=m["owner"],
                     permissions=m["permissions"], events=m["events"],
                     client_id=m["client_id"], client_secret=m["client_secret"],
                     webhook_secret=m["webhook_secret"], description=m["description"],
                     external_url=m["url"])
        app = self.apps[m["id"]]
        out = self.app_json(app)
        out.update({"client_id": app["client_id"], "client_secret": app["client_secret"],
                    "webhook_secret": app["webhook_secret"], "pem": pem})
        return Response(201, out)

    def _manifest_form(self, req, org):
        """The browser side of the manifest flow: the form POSTed to
        github.com/settings/apps/new (or /organizations/ORG/...) with a
        `manifest` JSON field.  GitHub shows a confirmation page; the fake
        confirms at once and redirects to redirect_url?code=...&state=..."""
        t0 = time.time()
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        try:
            manifest = json.loads((form.get("manifest") or ["{}"])[0])
        except ValueError:
            resp = Response(422, "Invalid manifest JSON\n", content_type="text/plain")
            self._record(req, resp, "none", None, t0)
            return resp
        state = req.q("state") or (form.get("state") or [None])[0]
        code = rand_str(20, "0123456789abcdef")
        self.add_manifest_code(code, name=manifest.get("name") or "patchbay",
                               owner=org or "patchbay-owner",
                               permissions=manifest.get("default_permissions"),
                               events=manifest.get("default_events"),
                               url=manifest.get("url"),
                               description=manifest.get("description", ""))
        with self.lock:
            self.manifest_codes[code]["manifest"] = manifest
        target = manifest.get("redirect_url")
        if target:
            q = {"code": code}
            if state is not None:
                q["state"] = state
            sep = "&" if "?" in target else "?"
            resp = Response(302, b"", {"Location": target + sep + urllib.parse.urlencode(q)},
                            content_type="text/html; charset=utf-8")
        else:
            resp = Response(200, "<html><body>code=%s</body></html>" % code,
                            content_type="text/html; charset=utf-8")
        self._record(req, resp, "none", None, t0, {"manifest": manifest, "state": state})
        return resp

    # ------------------------------------------------------------------
    # Public and installation endpoints
    # ------------------------------------------------------------------
    def api_rate_limit(self, req):
        b = self._bucket_for(req)
        core = {"limit": b["limit"], "used": b["used"],
                "remaining": max(0, b["limit"] - b["used"]), "reset": b["reset"],
                "resource": "core"}
        return Response(200, {"resources": {"core": core}, "rate": core})

    def api_get_user(self, req, login):
        if login.lower() not in self.users:
            raise not_found("https://docs.github.com/rest/users/users#get-a-user")
        return Response(200, self.user_json(login, full=True))

    def api_get_repo(self, req, owner, name):
        repo = self._access(req, owner, name)
        return Response(200, self.repo_json(repo))

    def api_get_branch(self, req, owner, name, branch):
        repo = self._access(req, owner, name, ("contents",), "read")
        sha = self.git.ref(repo["full_name"], "refs/heads/" + branch)
        if not sha:
            raise ApiError(404, "Branch not found",
                           doc="https://docs.github.com/rest/branches/branches#get-a-branch")
        api = "%s/repos/%s" % (self.api, repo["full_name"])
        return Response(200, {"name": branch,
                              "commit": {"sha": sha, "url": "%s/commits/%s" % (api, sha)},
                              "protected": False,
                              "_links": {"self": "%s/branches/%s" % (api, branch),
                                         "html": "%s/%s/tree/%s" % (self.web, repo["full_name"],
                                                                    branch)}})

    def api_get_git_ref(self, req, owner, name, ref):
        repo = self._access(req, owner, name, ("contents",), "read")
        sha = self.git.ref(repo["full_name"], "refs/" + ref)
        if not sha or not ref.startswith(("heads/", "tags/", "pull/")):
            raise not_found("https://docs.github.com/rest/git/refs#get-a-reference")
        api = "%s/repos/%s" % (self.api, repo["full_name"])
        return Response(200, {"ref": "refs/" + ref, "node_id": "REF_" + sha[:12],
                              "url": "%s/git/refs/%s" % (api, ref),
                              "object": {"sha": sha, "type": "commit",
                                         "url": "%s/git/commits/%s" % (api, sha)}})
