"""Issues, issue comments, reactions, labels, collaborator permissions and
repository contents of the fake GitHub.  Mixed into FakeGitHub."""

import base64
import json
import urllib.parse

from ghfake_common import DOC, MAX_BODY
from ghfake_http import (ApiError, Response, invalid_request, missing_field, not_found,
                         paginate, validation_failed)
from ghfake_shapes import REACTIONS, iso


class IssuesMixin:
    # ------------------------------------------------------------------
    # Issues and comments
    # ------------------------------------------------------------------
    def _issue(self, repo, number):
        issue = repo["issues"].get(int(number))
        if issue is None:
            raise not_found()
        return issue

    @staticmethod
    def _issue_cats(issue):
        # Issue endpoints on a pull request accept either permission.
        return ("issues", "pull_requests") if issue.get("pull") else ("issues",)

    def _list(self, items, link, render):
        return Response(200, [render(x) for x in items], {"Link": link} if link else None)

    @staticmethod
    def _check_body(body, resource, field="body", required=True, doc=None):
        """GitHub's schema check (a string) and its 65536-character cap."""
        if body is None:
            if required:
                raise missing_field(field, doc)
            return
        if not isinstance(body, str):
            raise invalid_request("For 'properties/%s', %s is not a string."
                                  % (field, json.dumps(body)), doc)
        if len(body) > MAX_BODY:
            raise validation_failed([{"resource": resource, "code": "custom", "field": field,
                                      "message": "%s is too long (maximum is %d characters)"
                                                 % (field, MAX_BODY)}], doc)

    def api_get_issue(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        self._refresh_prs(repo)
        return Response(200, self.issue_json(repo, issue))

    def api_patch_issue(self, req, owner, name, number):
        repo = self._access(req, owner, name)
        issue = self._issue(repo, number)
        self._access(req, owner, name, self._issue_cats(issue), "write")
        body = req.json_object()
        self._check_body(body.get("body"), "Issue", required=False)
        self._edit_issue(repo, issue, body)
        return Response(200, self.issue_json(repo, issue))

    def _edit_issue(self, repo, issue, body):
        t = self.now()
        if "title" in body or "body" in body:
            issue["history"].append({"title": issue["title"], "body": issue["body"],
                                     "updated_at": iso(issue["updated_at"])})
        if "title" in body:
            if not isinstance(body["title"], str) or not body["title"]:
                raise validation_failed([{"resource": "Issue", "code": "missing_field",
                                          "field": "title"}])
            issue["title"] = body["title"]
        if "body" in body:
            issue["body"] = body["body"]
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                raise validation_failed([{"resource": "Issue", "code": "invalid",
                                          "field": "state"}])
            if body["state"] == "closed" and issue["state"] != "closed":
                issue["closed_at"] = t
                issue["state_reason"] = body.get("state_reason") or "completed"
            elif body["state"] == "open" and issue["state"] != "open":
                if issue.get("pull"):
                    self._no_duplicate_pr(repo, issue["pull"]["head_repo"],
                                          issue["pull"]["head_ref"], issue["pull"]["base_ref"],
                                          exclude=issue["number"])
                issue["closed_at"] = None
                issue["state_reason"] = "reopened"
            issue["state"] = body["state"]
        if "labels" in body and isinstance(body["labels"], list):
            issue["labels"] = []
            for lab in self._label_names(body["labels"]):
                issue["labels"].append(self._ensure_label(repo, lab))
        issue["updated_at"] = t

    def api_list_comments(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        items = [self.comments[i] for i in issue["comment_ids"]]
        since = req.q("since")
        if since:
            items = [c for c in items if iso(c["updated_at"]) >= since]
        items, link = paginate(items, req, self.api)
        return self._list(items, link, self.comment_json)

    def api_create_comment(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        self._access(req, owner, name, self._issue_cats(issue), "write")
        body = req.json_object(required=True).get("body")
        self._check_body(body, "IssueComment", doc=DOC["comment"])
        if issue.get("locked"):
            raise ApiError(403, "Unable to create comment because issue is locked.")
        login, app_id = self._actor(req)
        c = self._new_comment(repo, issue, body, login, "NONE", app_id)
        out = self.comment_json(c)
        return Response(201, out, {"Location": out["url"]})

    def _comment(self, repo, cid):
        c = self.comments.get(int(cid))
        if c is None or c["repo"].lower() != repo["full_name"].lower():
            raise not_found()
        return c

    def api_get_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        return Response(200, self.comment_json(self._comment(repo, cid)))

    def api_patch_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        c = self._comment(repo, cid)
        issue = repo["issues"][c["number"]]
        self._access(req, owner, name, self._issue_cats(issue), "write")
        body = req.json_object(required=True).get("body")
        self._check_body(body, "IssueComment")
        c["history"].append({"body": c["body"], "updated_at": iso(c["updated_at"])})
        c["body"] = body
        c["updated_at"] = self.now()
        return Response(200, self.comment_json(c))

    def api_delete_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        c = self._comment(repo, cid)
        issue = repo["issues"][c["number"]]
        self._access(req, owner, name, self._issue_cats(issue), "write")
        del self.comments[c["id"]]
        issue["comment_ids"].remove(c["id"])
        return Response(204)

    def api_permission(self, req, owner, name, login):
        """GitHub's legacy `permission` maps maintain -> write and triage ->
        read; role_name keeps the real role.  A non-collaborator has read
        on a public repository and none on a private one; the owner of a
        user-owned repository is admin."""
        repo = self._access(req, owner, name)
        if login.lower() not in self.users:
            raise not_found("https://docs.github.com/rest/collaborators/collaborators"
                            "#get-repository-permissions-for-a-user")
        if login.lower() == repo["owner"].lower():
            role = "admin"
        else:
            role = repo["collaborators"].get(login.lower()) or \
                ("none" if repo["private"] else "read")
        legacy = {"admin": "admin", "maintain": "write", "write": "write",
                  "triage": "read", "read": "read", "none": "none"}[role]
        user = self.user_json(login)
        user["permissions"] = {
            "admin": role == "admin", "maintain": role in ("admin", "maintain"),
            "push": role in ("admin", "maintain", "write"),
            "triage": role in ("admin", "maintain", "write", "triage"),
            "pull": role != "none"}
        user["role_name"] = role
        return Response(200, {"permission": legacy, "role_name": role, "user": user})

    # -- reactions ------------------------------------------------------------
    def _react(self, req, target, cats, owner, name):
        """201 for a new reaction; 200 with the existing one when this user
        already reacted with this content; 422 for an unknown content."""
        self._access(req, owner, name, cats, "write")
        body = req.json_object(required=True)
        content = body.get("content")
        if content is None:
            raise missing_field("content", DOC["reaction"])
        if content not in REACTIONS:
            raise validation_failed([{"resource": "Reaction", "code": "custom",
                                      "field": "content",
                                      "message": "content is not included in the list"}],
                                    DOC["reaction"])
        login, _ = self._actor(req)
        for r in target["reactions"]:
            if r["user"].lower() == login.lower() and r["content"] == content:
                return Response(200, self.reaction_json(r))
        r = {"id": self._id(), "user": login, "content": content, "created_at": self.now()}
        target["reactions"].append(r)
        return Response(201, self.reaction_json(r))

    def _list_reactions(self, req, target):
        items = target["reactions"]
        if req.q("content"):
            items = [r for r in items if r["content"] == req.q("content")]
        items, link = paginate(items, req, self.api)
        return self._list(items, link, self.reaction_json)

    def _unreact(self, req, target, rid, cats, owner, name):
        self._access(req, owner, name, cats, "write")
        before = len(target["reactions"])
        target["reactions"] = [r for r in target["reactions"] if r["id"] != int(rid)]
        if len(target["reactions"]) == before:
            raise not_found()
        return Response(204)

    def api_list_issue_reactions(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        return self._list_reactions(req, self._issue(repo, number))

    def api_react_issue(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        return self._react(req, issue, self._issue_cats(issue), owner, name)

    def api_unreact_issue(self, req, owner, name, number, rid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        return self._unreact(req, issue, rid, self._issue_cats(issue), owner, name)

    def api_list_comment_reactions(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        return self._list_reactions(req, self._comment(repo, cid))

    def api_react_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        c = self._comment(repo, cid)
        return self._react(req, c, self._issue_cats(repo["issues"][c["number"]]), owner, name)

    def api_unreact_comment(self, req, owner, name, cid, rid):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        c = self._comment(repo, cid)
        return self._unreact(req, c, rid, self._issue_cats(repo["issues"][c["number"]]),
                             owner, name)

    def _review_comment(self, repo, cid):
        c = self.review_comments.get(int(cid))
        if c is None or c["repo"].lower() != repo["full_name"].lower():
            raise not_found()
        return c

    def api_list_rc_reactions(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("pull_requests",))
        return self._list_reactions(req, self._review_comment(repo, cid))

    def api_react_rc(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("pull_requests",))
        return self._react(req, self._review_comment(repo, cid), ("pull_requests",),
                           owner, name)

    def api_unreact_rc(self, req, owner, name, cid, rid):
        repo = self._access(req, owner, name, ("pull_requests",))
        return self._unreact(req, self._review_comment(repo, cid), rid, ("pull_requests",),
                             owner, name)

    # -- labels ---------------------------------------------------------------
    def _ensure_label(self, repo, name, color="ededed", description=None):
        """Adding an unknown label to an issue creates it in the repository
        (GitHub does; color ededed)."""
        key = name.lower()
        if key not in repo["labels"]:
            repo["labels"][key] = {"id": self._id(), "name": name, "color": color,
                                   "default": False, "description": description}
        return repo["labels"][key]["name"]

    @staticmethod
    def _label_names(raw):
        """POST/PUT labels accept {"labels": [...]}, a bare array, strings
        or {"name": ...} objects."""
        if isinstance(raw, dict):
            raw = raw.get("labels")
            if raw is None:
                raise missing_field("labels", DOC["labels"])
        if not isinstance(raw, list):
            raise invalid_request("For 'properties/labels', %s is not an array."
                                  % json.dumps(raw), DOC["labels"])
        out = []
        for x in raw:
            n = x.get("name") if isinstance(x, dict) else x
            if not isinstance(n, str) or not n.strip():
                raise validation_failed([{"resource": "Label", "code": "invalid",
                                          "field": "name"}], DOC["labels"])
            out.append(n)
        return out

    def _labels_resp(self, repo, issue, status=200):
        return Response(status, [self.label_json(repo, n) for n in issue["labels"]])

    def api_list_issue_labels(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        items, link = paginate(issue["labels"], req, self.api)
        return self._list(items, link, lambda n: self.label_json(repo, n))

    def _writable_issue(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        issue = self._issue(repo, number)
        self._access(req, owner, name, self._issue_cats(issue), "write")
        return repo, issue

    def api_add_labels(self, req, owner, name, number):
        repo, issue = self._writable_issue(req, owner, name, number)
        have = {n.lower() for n in issue["labels"]}
        for n in self._label_names(req.json() if req.json() is not None else {}):
            if n.lower() not in have:
                issue["labels"].append(self._ensure_label(repo, n))
                have.add(n.lower())
        issue["updated_at"] = self.now()
        return self._labels_resp(repo, issue)

    def api_set_labels(self, req, owner, name, number):
        repo, issue = self._writable_issue(req, owner, name, number)
        issue["labels"] = []
        for n in self._label_names(req.json() if req.json() is not None else {"labels": []}):
            if n.lower() not in {x.lower() for x in issue["labels"]}:
                issue["labels"].append(self._ensure_label(repo, n))
        issue["updated_at"] = self.now()
        return self._labels_resp(repo, issue)

    def api_clear_labels(self, req, owner, name, number):
        repo, issue = self._writable_issue(req, owner, name, number)
        issue["labels"] = []
        return Response(204)

    def api_remove_label(self, req, owner, name, number, label):
        """DELETE .../labels/{name}: 200 with the labels left, or 404
        "Label does not exist" when the issue does not carry it."""
        repo, issue = self._writable_issue(req, owner, name, number)
        keep = [n for n in issue["labels"] if n.lower() != label.lower()]
        if len(keep) == len(issue["labels"]):
            raise ApiError(404, "Label does not exist",
                           doc="https://docs.github.com/rest/issues/labels"
                               "#remove-a-label-from-an-issue")
        issue["labels"] = keep
        issue["updated_at"] = self.now()
        return self._labels_resp(repo, issue)

    def api_list_repo_labels(self, req, owner, name):
        repo = self._access(req, owner, name, ("issues", "pull_requests"))
        items, link = paginate([lab["name"] for lab in repo["labels"].values()], req, self.api)
        return self._list(items, link, lambda n: self.label_json(repo, n))

    def api_create_repo_label(self, req, owner, name):
        repo = self._access(req, owner, name, ("issues", "pull_requests"), "write")
        body = req.json_object(required=True)
        if not isinstance(body.get("name"), str):
            raise missing_field("name", DOC["labels"])
        if body["name"].lower() in repo["labels"]:
            raise validation_failed([{"resource": "Label", "code": "already_exists",
                                      "field": "name"}], DOC["labels"])
        n = self._ensure_label(repo, body["name"], (body.get("color") or "ededed").lstrip("#"),
                               body.get("description"))
        return Response(201, self.label_json(repo, n))

    # ------------------------------------------------------------------
    # Contents
    # ------------------------------------------------------------------
    def api_contents(self, req, owner, name, path):
        """GET /repos/{o}/{r}/contents/{path}?ref=: read from the bare repo
        at ref (default branch).  Files: base64 wrapped at 60 columns as
        GitHub sends it; over 1 MB: content "" and encoding "none"; a
        directory: an array; missing path: 404; unknown ref: 404 "No commit
        found for the ref X"; Accept: application/vnd.github.raw -> bytes."""
        repo = self._access(req, owner, name, ("contents",))
        full = repo["full_name"]
        ref = req.q("ref") or repo["default_branch"]
        sha = self.git.rev_parse(full, ref)
        if sha is None:
            if not self.git.branches(full):
                raise ApiError(404, "This repository is empty.", doc=DOC["contents"])
            raise ApiError(404, "No commit found for the ref %s" % ref, doc=DOC["contents"])
        got = self.git.read_path(full, sha, path)
        if got is None:
            raise not_found(DOC["contents"])
        api = "%s/repos/%s" % (self.api, full)

        def entry(typ, bsha, size, p):
            self_url = "%s/contents/%s?ref=%s" % (api, p, urllib.parse.quote(ref, safe=""))
            git_url = "%s/git/%s/%s" % (api, "trees" if typ == "dir" else "blobs", bsha)
            html = "%s/%s/%s/%s/%s" % (self.web, full, "tree" if typ == "dir" else "blob",
                                       ref, p)
            return {"name": p.rsplit("/", 1)[-1], "path": p, "sha": bsha, "size": size,
                    "url": self_url, "html_url": html, "git_url": git_url,
                    "download_url": None if typ == "dir" else
                    "%s/%s/raw/%s/%s" % (self.web, full, ref, p),
                    "type": typ, "_links": {"self": self_url, "git": git_url, "html": html}}

        if got[0] == "dir":
            prefix = path.strip("/")
            return Response(200, [entry(t, s, sz, (prefix + "/" + n) if prefix else n)
                                  for t, s, sz, n in got[1]])
        kind, bsha, data = got
        accept = req.header("Accept") or ""
        if "application/vnd.github.raw" in accept or "application/vnd.github.v3.raw" in accept:
            return Response(200, data, content_type="application/vnd.github.raw; charset=utf-8")
        p = path.strip("/")
        out = entry("file" if kind == "file" else kind, bsha, len(data), p)
        if kind == "symlink":
            out["target"] = data.decode(errors="replace")
        if len(data) > 1024 * 1024:
            out["content"], out["encoding"] = "", "none"
        else:
            b64 = base64.b64encode(data).decode()
            out["content"] = "".join(b64[i:i + 60] + "\n" for i in range(0, len(b64), 60))
            out["encoding"] = "base64"
        return Response(200, out)
