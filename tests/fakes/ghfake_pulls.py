"""Pull requests, their diffs and files, reviews with GitHub's anchor rules,
review comments and replies, and check runs of the fake GitHub.  Mixed into
FakeGitHub."""

import json
import re

from ghfake_common import DOC, MAX_BODY
from ghfake_http import (ApiError, Response, invalid_request, missing_field, not_found,
                         paginate, to_sentence, validation_failed)
from ghfake_shapes import iso, parse_iso


class PullsMixin:
    # ------------------------------------------------------------------
    # Pull requests
    # ------------------------------------------------------------------
    def _refresh_prs(self, repo):
        """Open PRs follow their head branch (a push updates head.sha and
        refs/pull/N/head) and their base branch tip, like GitHub."""
        full = repo["full_name"]
        for issue in repo["issues"].values():
            pr = issue.get("pull")
            if not pr or issue["state"] != "open":
                continue
            tip = self.git.ref(pr["head_repo"], "refs/heads/" + pr["head_ref"])
            if tip and tip != pr["head_sha"]:
                if pr["head_repo"].lower() == full.lower():
                    self.git.update_ref(full, "refs/pull/%d/head" % issue["number"], tip)
                else:
                    self.git.fetch_between(pr["head_repo"], full, "refs/heads/" + pr["head_ref"],
                                           "refs/pull/%d/head" % issue["number"])
                pr["head_sha"] = tip
                issue["updated_at"] = self.now()
            btip = self.git.ref(full, "refs/heads/" + pr["base_ref"])
            if btip:
                pr["base_sha"] = btip

    def _pull(self, repo, number):
        issue = repo["issues"].get(int(number))
        if issue is None or not issue.get("pull"):
            raise not_found("https://docs.github.com/rest/pulls/pulls#get-a-pull-request")
        self._refresh_prs(repo)
        return issue

    def _no_duplicate_pr(self, repo, head_full, head_ref, base_ref, exclude=None, label=None):
        """GitHub allows one open PR per (head, base) pair."""
        for other in repo["issues"].values():
            p = other.get("pull")
            if p and other["state"] == "open" and other["number"] != exclude and \
                    p["head_repo"].lower() == head_full.lower() and \
                    p["head_ref"] == head_ref and p["base_ref"] == base_ref:
                owner = self.repos[head_full.lower()]["owner"]
                raise validation_failed([{"resource": "PullRequest", "code": "custom",
                                          "message": "A pull request already exists for "
                                                     "%s:%s." % (owner, head_ref)}],
                                        DOC["create_pull"])

    def _make_pull(self, repo, head_repo, head_ref, base_ref, title, body, user, draft,
                   association, app_id, head_as_given):
        """Create a PR with GitHub's validations, in GitHub's order: base
        exists, head exists, no open PR for the same head and base, at least
        one commit between base and head."""
        full = repo["full_name"]
        base_sha = self.git.ref(full, "refs/heads/" + base_ref)
        if base_sha is None:
            raise validation_failed([{"resource": "PullRequest", "field": "base",
                                      "code": "invalid"}], DOC["create_pull"])
        head_sha = self.git.ref(head_repo["full_name"], "refs/heads/" + head_ref)
        if head_sha is None:
            raise validation_failed([{"resource": "PullRequest", "field": "head",
                                      "code": "invalid"}], DOC["create_pull"])
        self._no_duplicate_pr(repo, head_repo["full_name"], head_ref, base_ref)
        tmp = None
        if head_repo is not repo:
            tmp = "refs/fake/incoming-%d" % self._id()
            self.git.fetch_between(head_repo["full_name"], full, "refs/heads/" + head_ref, tmp)
        try:
            if self.git.count_commits(full, base_sha, head_sha) == 0:
                raise validation_failed([{"resource": "PullRequest", "code": "custom",
                                          "message": "No commits between %s and %s"
                                                     % (base_ref, head_as_given)}],
                                        DOC["create_pull"])
        finally:
            if tmp:
                self.git.delete_ref(full, tmp)
        issue = self._new_issue(repo, title, body, user, association, (), "open", app_id)
        issue["pull"] = {"id": self._id(), "head_repo": head_repo["full_name"],
                         "head_ref": head_ref, "head_sha": head_sha, "base_ref": base_ref,
                         "base_sha": base_sha, "draft": bool(draft), "merged_at": None,
                         "maintainer_can_modify": False}
        ref = "refs/pull/%d/head" % issue["number"]
        if head_repo is repo:
            self.git.update_ref(full, ref, head_sha)
        else:
            self.git.fetch_between(head_repo["full_name"], full, "refs/heads/" + head_ref, ref)
        return issue

    def _pr_stats(self, repo, issue):
        pr = issue["pull"]
        d = self.git.diff(repo["full_name"], pr["base_sha"], pr["head_sha"])
        mb = self.git.merge_base(repo["full_name"], pr["base_sha"], pr["head_sha"])
        return {"commits": self.git.count_commits(repo["full_name"], mb or pr["base_sha"],
                                                  pr["head_sha"]),
                "additions": sum(f.additions for f in d.files),
                "deletions": sum(f.deletions for f in d.files),
                "changed_files": len(d.files)}

    def api_create_pull(self, req, owner, name):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        body = req.json_object(required=True)
        for f in ("head", "base"):
            if body.get(f) is None:
                raise missing_field(f, DOC["create_pull"])
            if not isinstance(body[f], str):
                raise invalid_request("For 'properties/%s', %s is not a string."
                                      % (f, json.dumps(body[f])), DOC["create_pull"])
        if not body.get("title") and body.get("issue") is None:
            raise validation_failed([{"resource": "Issue", "code": "missing_field",
                                      "field": "title"}], DOC["create_pull"])
        self._check_body(body.get("body"), "Issue", required=False, doc=DOC["create_pull"])
        head = body["head"]
        head_repo = repo
        head_ref = head
        if ":" in head:
            howner, head_ref = head.split(":", 1)
            if howner.lower() != repo["owner"].lower():
                head_repo = self.repos.get(("%s/%s" % (howner, body.get("head_repo")
                                                       or repo["name"])).lower())
                if head_repo is None:
                    raise validation_failed([{"resource": "PullRequest", "field": "head",
                                              "code": "invalid"}], DOC["create_pull"])
        login, app_id = self._actor(req)
        issue = self._make_pull(repo, head_repo, head_ref, body["base"], body.get("title"),
                                body.get("body"), login, body.get("draft", False), "NONE",
                                app_id, head)
        issue["pull"]["maintainer_can_modify"] = bool(body.get("maintainer_can_modify"))
        out = self.pull_json(repo, issue)
        return Response(201, out, {"Location": out["url"]})

    def api_list_pulls(self, req, owner, name):
        """state (open|closed|all, default open), head "user:ref" (a head
        without the "user:" part is ignored, as on GitHub), base, sort
        created|updated, direction (default desc)."""
        repo = self._access(req, owner, name, ("pull_requests",))
        self._refresh_prs(repo)
        state = req.q("state", "open")
        items = [i for i in repo["issues"].values() if i.get("pull")]
        if state in ("open", "closed"):
            items = [i for i in items if i["state"] == state]
        head = req.q("head")
        if head and ":" in head:
            howner, href = head.split(":", 1)
            items = [i for i in items if i["pull"]["head_ref"] == href and
                     self.repos[i["pull"]["head_repo"].lower()]["owner"].lower()
                     == howner.lower()]
        if req.q("base"):
            items = [i for i in items if i["pull"]["base_ref"] == req.q("base")]
        key = "updated_at" if req.q("sort") == "updated" else "created_at"
        items.sort(key=lambda i: (i[key], i["number"]), reverse=req.q("direction", "desc")
                   != "asc")
        items, link = paginate(items, req, self.api)
        return self._list(items, link, lambda i: self.pull_json(repo, i, full=False))

    def api_get_pull(self, req, owner, name, number):
        """Accept: application/vnd.github.diff (or .v3.diff) -> the unified
        diff (merge-base...head, renames detected); .patch -> format-patch."""
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        pr = issue["pull"]
        accept = req.header("Accept") or ""
        if re.search(r"application/vnd\.github(\.v3)?\.diff", accept):
            d = self.git.diff(repo["full_name"], pr["base_sha"], pr["head_sha"])
            return Response(200, d.text.encode(),
                            content_type="application/vnd.github.diff; charset=utf-8")
        if re.search(r"application/vnd\.github(\.v3)?\.patch", accept):
            return Response(200, self.git.format_patch(repo["full_name"], pr["base_sha"],
                                                       pr["head_sha"]),
                            content_type="application/vnd.github.patch; charset=utf-8")
        return Response(200, self.pull_json(repo, issue))

    def api_patch_pull(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        issue = self._pull(repo, number)
        body = req.json_object()
        self._check_body(body.get("body"), "Issue", required=False)
        if "base" in body:
            if not self.git.ref(repo["full_name"], "refs/heads/%s" % body["base"]):
                raise validation_failed([{"resource": "PullRequest", "field": "base",
                                          "code": "invalid"}])
            issue["pull"]["base_ref"] = body["base"]
        if "maintainer_can_modify" in body:
            issue["pull"]["maintainer_can_modify"] = bool(body["maintainer_can_modify"])
        self._edit_issue(repo, issue, {k: v for k, v in body.items()
                                       if k in ("title", "body", "state")})
        self._refresh_prs(repo)
        return Response(200, self.pull_json(repo, issue))

    def api_pull_files(self, req, owner, name, number):
        """Paginated (30 per page, max 100; GitHub stops at 3000 files)."""
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        pr = issue["pull"]
        d = self.git.diff(repo["full_name"], pr["base_sha"], pr["head_sha"])
        items, link = paginate(d.files[:3000], req, self.api)
        return self._list(items, link, lambda f: self.pr_file_json(repo, issue, f))

    def api_pull_commits(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        pr = issue["pull"]
        full = repo["full_name"]
        mb = self.git.merge_base(full, pr["base_sha"], pr["head_sha"]) or pr["base_sha"]
        shas = self.git.commits_between(full, mb, pr["head_sha"])
        items, link = paginate(shas, req, self.api, maximum=100)

        def render(sha):
            fmt = "%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%P%x00%B"
            f = self.git.git(full, ["show", "-s", "--format=" + fmt, sha]).decode().split("\0")
            api = "%s/repos/%s" % (self.api, full)
            return {"sha": sha, "node_id": "C_" + sha[:16],
                    "commit": {"author": {"name": f[0], "email": f[1], "date": f[2]},
                               "committer": {"name": f[3], "email": f[4], "date": f[5]},
                               "message": f[8].rstrip("\n"),
                               "tree": {"sha": f[6], "url": "%s/git/trees/%s" % (api, f[6])},
                               "url": "%s/git/commits/%s" % (api, sha), "comment_count": 0},
                    "url": "%s/commits/%s" % (api, sha),
                    "html_url": "%s/%s/commit/%s" % (self.web, full, sha),
                    "author": None, "committer": None,
                    "parents": [{"sha": p, "url": "%s/commits/%s" % (api, p)}
                                for p in f[7].split()]}
        return self._list(items, link, render)

    # -- reviews and review comments -----------------------------------------
    def _anchor(self, diff, c):
        """Validate one review comment's anchor exactly as GitHub does and
        return (anchor, errors).  GitHub's rules:
          - `path` must be a file of the PR's diff;
          - `line` on `side` (LEFT = base numbering, RIGHT = head numbering;
            default RIGHT) must be inside one of that file's hunks: an
            added/context line for RIGHT, a removed/context line for LEFT;
          - a multi-line comment's `start_line` must be < `line`, on the
            same side (start_side defaults to side), in the same hunk;
          - or the deprecated `position` (rows below the file's first @@,
            later @@ headers counted) must land on a diff line.
        Messages are GitHub's, joined like Rails' to_sentence."""
        path = c.get("path")
        if not isinstance(path, str) or not path:
            return None, ["Path can't be blank"]
        f = diff.by_path.get(path)
        if f is None:
            return None, ["Pull request review thread path is invalid",
                          "Pull request review thread diff hunk can't be blank"]
        line, position = c.get("line"), c.get("position")
        side = c.get("side") or "RIGHT"
        if side not in ("LEFT", "RIGHT"):
            return None, ["Pull request review thread side is not included in the list"]
        if line is None and position is not None:
            idx = f.row_for_position(int(position)) if isinstance(position, int) else None
            if idx is None:
                return None, ["Pull request review thread position is invalid",
                              "Pull request review thread diff hunk can't be blank"]
            kind, o, n, _h, _t = f.rows[idx]
            side = "LEFT" if kind == "-" else "RIGHT"
            line = o if kind == "-" else n
            return {"path": path, "line": line, "side": side, "start_line": None,
                    "start_side": None, "position": idx, "diff_hunk": f.diff_hunk(idx)}, []
        if not isinstance(line, int) or isinstance(line, bool):
            return None, ["Pull request review thread line must be part of the diff",
                          "Pull request review thread diff hunk can't be blank"]
        idx = f.find(side, line)
        if idx is None:
            return None, ["Pull request review thread line must be part of the diff",
                          "Pull request review thread diff hunk can't be blank"]
        start_line = c.get("start_line")
        start_side = c.get("start_side")
        if start_line is not None:
            start_side = start_side or side
            if not isinstance(start_line, int) or isinstance(start_line, bool):
                return None, ["Pull request review thread start line must be part of the "
                              "same hunk as the line."]
            if start_side not in ("LEFT", "RIGHT") or start_side != side:
                return None, ["Pull request review thread start side must be the same as "
                              "the side"]
            if start_line >= line:
                return None, ["pull_request_review_thread.start_line must precede the end line."]
            sidx = f.find(start_side, start_line)
            if sidx is None or f.rows[sidx][3] != f.rows[idx][3]:
                return None, ["Pull request review thread start line must be part of the "
                              "same hunk as the line."]
        elif start_side is not None:
            start_side = None
        return {"path": path, "line": line, "side": side, "start_line": start_line,
                "start_side": start_side, "position": idx,
                "diff_hunk": f.diff_hunk(idx)}, []

    def _pr_diff_at(self, repo, issue, commit_id):
        pr = issue["pull"]
        return self.git.diff(repo["full_name"], pr["base_sha"], commit_id)

    def _new_review_comment(self, repo, issue, anchor, body, user, app_id, review_id,
                            commit_id, association, in_reply_to=None):
        t = self.now()
        c = {"id": self._id(), "repo": repo["full_name"], "number": issue["number"],
             "review_id": review_id, "body": body, "user": user, "created_at": t,
             "updated_at": t, "commit_id": commit_id, "author_association": association,
             "reactions": [], "history": [], "app_id": app_id, "in_reply_to_id": in_reply_to}
        c.update(anchor)
        self.review_comments[c["id"]] = c
        issue["updated_at"] = t
        return c

    def api_create_review(self, req, owner, name, number):
        """POST .../pulls/{n}/reviews -> 200 (not 201).  All comments are
        validated first; one bad anchor -> 422 and nothing is created.
        event APPROVE | REQUEST_CHANGES | COMMENT, absent = PENDING (one
        pending review per user).  Nobody may approve or request changes on
        their own PR; REQUEST_CHANGES and a COMMENT without inline
        comments need a body."""
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        issue = self._pull(repo, number)
        body = req.json_object(required=True)
        event = body.get("event")
        text = body.get("body")
        comments = body.get("comments") or []
        doc = DOC["create_review"]
        self._check_body(text, "PullRequestReview", required=False, doc=doc)
        if not isinstance(comments, list):
            raise invalid_request("For 'properties/comments', %s is not an array."
                                  % json.dumps(comments), doc)
        if event is not None and event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            raise invalid_request("For 'properties/event', %s is not one of APPROVE, "
                                  "REQUEST_CHANGES, COMMENT." % json.dumps(event), doc)
        login, app_id = self._actor(req)
        pr = issue["pull"]
        if event in ("APPROVE", "REQUEST_CHANGES") and issue["user"].lower() == login.lower():
            what = "approve" if event == "APPROVE" else "request changes on"
            raise ApiError(422, "Unprocessable Entity",
                           ["Can not %s your own pull request" % what], doc)
        if event == "REQUEST_CHANGES" and not text:
            raise ApiError(422, "Unprocessable Entity",
                           ["Body is required when requesting changes"], doc)
        if event == "COMMENT" and not text and not comments:
            raise ApiError(422, "Unprocessable Entity",
                           ["Body is required when commenting without inline comments"], doc)
        if event is None and any(v["state"] == "PENDING" and v["user"].lower() == login.lower()
                                 and v["repo"] == repo["full_name"]
                                 and v["number"] == issue["number"]
                                 for v in self.reviews.values()):
            raise ApiError(422, "Unprocessable Entity",
                           ["User can only have one pending review per pull request"], doc)
        commit_id = body.get("commit_id") or pr["head_sha"]
        full_sha = self.git.commit_exists(repo["full_name"], commit_id)
        if not full_sha:
            raise ApiError(422, "Unprocessable Entity",
                           ["Commit SHA could not be resolved"], doc)
        diff = self._pr_diff_at(repo, issue, full_sha)
        anchors = []
        for c in comments:
            if not isinstance(c, dict):
                raise invalid_request("For 'items', %s is not an object." % json.dumps(c), doc)
            if c.get("body") is None:
                raise missing_field("body", doc)
            self._check_body(c.get("body"), "PullRequestReviewComment", doc=doc)
            a, errs = self._anchor(diff, c)
            if errs:
                raise ApiError(422, "Unprocessable Entity", [to_sentence(errs)], doc)
            anchors.append((a, c["body"]))
        state = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                 "COMMENT": "COMMENTED", None: "PENDING"}[event]
        t = self.now()
        rv = {"id": self._id(), "repo": repo["full_name"], "number": issue["number"],
              "user": login, "body": text or "", "state": state, "commit_id": full_sha,
              "submitted_at": t if state != "PENDING" else None,
              "author_association": "NONE", "comment_ids": [], "app_id": app_id}
        self.reviews[rv["id"]] = rv
        for a, cbody in anchors:
            c = self._new_review_comment(repo, issue, a, cbody, login, app_id, rv["id"],
                                         full_sha, "NONE")
            rv["comment_ids"].append(c["id"])
        return Response(200, self.review_json(rv))

    def _review(self, repo, issue, rid):
        rv = self.reviews.get(int(rid))
        if rv is None or rv["repo"] != repo["full_name"] or rv["number"] != issue["number"]:
            raise not_found()
        return rv

    def api_list_reviews(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        login = self._actor(req)[0] if req.auth.kind == "installation" else None
        items = [v for v in self.reviews.values()
                 if v["repo"] == repo["full_name"] and v["number"] == issue["number"]
                 and (v["state"] != "PENDING" or v["user"] == login)]
        items, link = paginate(items, req, self.api)
        return self._list(items, link, self.review_json)

    def api_get_review(self, req, owner, name, number, rid):
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        return Response(200, self.review_json(self._review(repo, issue, rid)))

    def api_submit_review(self, req, owner, name, number, rid):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        issue = self._pull(repo, number)
        rv = self._review(repo, issue, rid)
        body = req.json_object(required=True)
        event = body.get("event")
        if rv["state"] != "PENDING":
            raise ApiError(422, "Unprocessable Entity", ["Can not submit a non-pending review"])
        if event not in ("APPROVE", "REQUEST_CHANGES", "COMMENT"):
            raise missing_field("event")
        rv["state"] = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                       "COMMENT": "COMMENTED"}[event]
        if body.get("body"):
            rv["body"] = body["body"]
        rv["submitted_at"] = self.now()
        return Response(200, self.review_json(rv))

    def api_review_comments_of(self, req, owner, name, number, rid):
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        rv = self._review(repo, issue, rid)
        items, link = paginate([self.review_comments[i] for i in rv["comment_ids"]
                                if i in self.review_comments], req, self.api)
        return self._list(items, link, self.review_comment_json)

    def api_list_review_comments(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("pull_requests",))
        issue = self._pull(repo, number)
        visible = {v["id"] for v in self.reviews.values() if v["state"] != "PENDING"}
        items = sorted((c for c in self.review_comments.values()
                        if c["repo"] == repo["full_name"] and c["number"] == issue["number"]
                        and c["review_id"] in visible), key=lambda c: c["id"])
        items, link = paginate(items, req, self.api)
        return self._list(items, link, self.review_comment_json)

    def _single_review_comment(self, repo, issue, spec, login, app_id, commit_id):
        """One review comment outside a review (POST .../pulls/{n}/comments):
        GitHub wraps it in a COMMENTED review of its own.  Errors come as
        "Validation Failed" with a PullRequestReviewComment error."""
        doc = DOC["review_comment"]
        self._check_body(spec.get("body"), "PullRequestReviewComment", doc=doc)
        full_sha = self.git.commit_exists(repo["full_name"], commit_id)
        if not full_sha:
            raise validation_failed([{"resource": "PullRequestReviewComment", "code": "custom",
                                      "field": "commit_id",
                                      "message": "commit_id is not part of the pull request"}],
                                    doc)
        diff = self._pr_diff_at(repo, issue, full_sha)
        if spec.get("subject_type") == "file":
            if spec.get("path") not in diff.by_path:
                errs = ["Pull request review thread path is invalid"]
            else:
                a, errs = {"path": spec["path"], "line": None, "side": None,
                           "start_line": None, "start_side": None, "position": None,
                           "diff_hunk": "", "subject_type": "file"}, []
        else:
            a, errs = self._anchor(diff, spec)
        if errs:
            raise validation_failed([{"resource": "PullRequestReviewComment", "code": "custom",
                                      "field": "pull_request_review_thread",
                                      "message": to_sentence(errs)}], doc)
        t = self.now()
        assoc = self._association(repo, login) if not app_id else "NONE"
        rv = {"id": self._id(), "repo": repo["full_name"], "number": issue["number"],
              "user": login, "body": "", "state": "COMMENTED", "commit_id": full_sha,
              "submitted_at": t, "author_association": assoc, "comment_ids": [],
              "app_id": app_id}
        self.reviews[rv["id"]] = rv
        c = self._new_review_comment(repo, issue, a, spec["body"], login, app_id, rv["id"],
                                     full_sha, assoc)
        rv["comment_ids"].append(c["id"])
        return c

    def _reply_comment(self, repo, issue, to_id, body, login, app_id):
        """A reply joins the thread of the top-level comment (a reply to a
        reply attaches to the thread's first comment)."""
        parent = self.review_comments.get(to_id)
        if parent is None or parent["repo"] != repo["full_name"] or \
                parent["number"] != issue["number"]:
            raise not_found()
        root = self.review_comments.get(parent.get("in_reply_to_id") or parent["id"], parent)
        self._check_body(body, "PullRequestReviewComment", doc=DOC["review_comment"])
        anchor = {k: root.get(k) for k in ("path", "line", "side", "start_line", "start_side",
                                           "position", "diff_hunk")}
        t = self.now()
        assoc = self._association(repo, login) if not app_id else "NONE"
        rv = {"id": self._id(), "repo": repo["full_name"], "number": issue["number"],
              "user": login, "body": "", "state": "COMMENTED", "commit_id": root["commit_id"],
              "submitted_at": t, "author_association": assoc, "comment_ids": [],
              "app_id": app_id}
        self.reviews[rv["id"]] = rv
        c = self._new_review_comment(repo, issue, anchor, body, login, app_id, rv["id"],
                                     root["commit_id"], assoc, in_reply_to=root["id"])
        rv["comment_ids"].append(c["id"])
        return c

    def api_create_review_comment(self, req, owner, name, number):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        issue = self._pull(repo, number)
        body = req.json_object(required=True)
        login, app_id = self._actor(req)
        if body.get("in_reply_to") is not None:
            c = self._reply_comment(repo, issue, int(body["in_reply_to"]), body.get("body"),
                                    login, app_id)
        else:
            for f in ("body", "commit_id", "path"):
                if body.get(f) is None:
                    raise missing_field(f, DOC["review_comment"])
            c = self._single_review_comment(repo, issue, body, login, app_id, body["commit_id"])
        out = self.review_comment_json(c)
        return Response(201, out, {"Location": out["url"]})

    def api_reply_review_comment(self, req, owner, name, number, cid):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        issue = self._pull(repo, number)
        body = req.json_object(required=True)
        login, app_id = self._actor(req)
        c = self._reply_comment(repo, issue, int(cid), body.get("body"), login, app_id)
        out = self.review_comment_json(c)
        return Response(201, out, {"Location": out["url"]})

    def api_get_review_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("pull_requests",))
        return Response(200, self.review_comment_json(self._review_comment(repo, cid)))

    def api_patch_review_comment(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("pull_requests",), "write")
        c = self._review_comment(repo, cid)
        body = req.json_object(required=True).get("body")
        self._check_body(body, "PullRequestReviewComment")
        c["history"].append({"body": c["body"], "updated_at": iso(c["updated_at"])})
        c["body"] = body
        c["updated_at"] = self.now()
        return Response(200, self.review_comment_json(c))

    # ------------------------------------------------------------------
    # Check runs
    # ------------------------------------------------------------------
    CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
    CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success",
                   "skipped", "stale", "timed_out")

    def _apply_check(self, cr, body, creating):
        """GitHub's check-run rules: a conclusion makes the run completed;
        status completed needs a conclusion; output needs title and summary;
        at most 50 annotations per request (they accumulate)."""
        doc = DOC["check"]
        if "status" in body and body["status"] not in self.CHECK_STATUSES:
            raise invalid_request("For 'properties/status', %s is not one of %s."
                                  % (json.dumps(body["status"]),
                                     ", ".join(self.CHECK_STATUSES)), doc)
        if body.get("conclusion") is not None and body["conclusion"] not in self.CONCLUSIONS:
            raise invalid_request("For 'properties/conclusion', %s is not one of %s."
                                  % (json.dumps(body["conclusion"]), ", ".join(self.CONCLUSIONS)),
                                  doc)
        status = body.get("status", cr.get("status", "queued"))
        conclusion = body.get("conclusion", cr.get("conclusion"))
        if body.get("conclusion"):
            status = "completed"
        if status == "completed" and not conclusion:
            raise invalid_request('"conclusion" wasn\'t supplied.', doc)
        out = body.get("output")
        if out is not None:
            if not isinstance(out, dict):
                raise invalid_request("For 'properties/output', %s is not an object."
                                      % json.dumps(out), doc)
            for k in ("title", "summary"):
                if not out.get(k) and not cr["output"].get(k):
                    raise invalid_request('"%s" wasn\'t supplied.' % k, doc)
            for k in ("title", "summary", "text"):
                if k in out:
                    if len(out[k] or "") > MAX_BODY:
                        raise validation_failed([{"resource": "CheckRun", "code": "custom",
                                                  "field": "output.%s" % k,
                                                  "message": "%s is too long" % k}], doc)
                    cr["output"][k] = out[k]
            ann = out.get("annotations") or []
            if len(ann) > 50:
                raise ApiError(422, "Only 50 annotations are allowed per request", doc=doc)
            cr["annotations"].extend(ann)
        for k in ("name", "details_url", "external_id", "actions"):
            if k in body:
                cr[k] = body[k]
        stamps = {}
        for k in ("started_at", "completed_at"):
            if body.get(k) is not None:
                stamps[k] = parse_iso(body[k]) if isinstance(body[k], str) else None
                if stamps[k] is None:
                    raise invalid_request("For 'properties/%s', %s is not a date-time." % (k, json.dumps(body[k])),
                                          doc)
        t = self.now()
        cr["status"] = status
        cr["conclusion"] = conclusion if status == "completed" else None
        if "started_at" in stamps:
            cr["started_at"] = stamps["started_at"]
        elif creating or (status == "in_progress" and not cr.get("started_at")):
            cr.setdefault("started_at", t)
        if "completed_at" in stamps and status == "completed":
            cr["completed_at"] = stamps["completed_at"]
        elif status == "completed" and not cr.get("completed_at"):
            cr["completed_at"] = t
        cr["history"].append({k: v for k, v in body.items() if k != "output"}
                             | ({"output": {k: out.get(k) for k in ("title", "summary")}}
                                if out else {}) | {"at": iso(t)})

    def api_create_check_run(self, req, owner, name):
        repo = self._access(req, owner, name, ("checks",), "write")
        body = req.json_object(required=True)
        doc = DOC["check"]
        for f in ("name", "head_sha"):
            if body.get(f) is None:
                raise missing_field(f, doc)
        if not isinstance(body["head_sha"], str) or not isinstance(body["name"], str):
            raise invalid_request("For 'properties/head_sha', %s is not a string."
                                  % json.dumps(body["head_sha"]), doc)
        sha = self.git.commit_exists(repo["full_name"], body["head_sha"])
        if not sha or len(body["head_sha"]) != 40:
            raise ApiError(422, "No commit found for SHA: %s" % body["head_sha"], doc=doc)
        _login, app_id = self._actor(req)
        cr = {"id": self._id(), "repo": repo["full_name"], "name": body["name"],
              "head_sha": sha, "status": "queued", "conclusion": None, "output": {},
              "annotations": [], "history": [], "app_id": app_id,
              "check_suite_id": self._check_suite(repo, sha, app_id)}
        self._apply_check(cr, body, True)
        self.check_runs[cr["id"]] = cr
        out = self.check_run_json(cr)
        return Response(201, out, {"Location": out["url"]})

    def _check_suite(self, repo, sha, app_id):
        for cr in self.check_runs.values():
            if cr["repo"] == repo["full_name"] and cr["head_sha"] == sha and \
                    cr["app_id"] == app_id:
                return cr["check_suite_id"]
        return self._id()

    def _check_run(self, repo, cid):
        cr = self.check_runs.get(int(cid))
        if cr is None or cr["repo"] != repo["full_name"]:
            raise not_found()
        return cr

    def api_get_check_run(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("checks",))
        return Response(200, self.check_run_json(self._check_run(repo, cid)))

    def api_patch_check_run(self, req, owner, name, cid):
        repo = self._access(req, owner, name, ("checks",), "write")
        cr = self._check_run(repo, cid)
        _login, app_id = self._actor(req)
        if cr["app_id"] != app_id:
            raise ApiError(403, "Invalid app_id `%d` - check run can only be modified by the "
                                "GitHub App that created it." % app_id)
        self._apply_check(cr, req.json_object(required=True), False)
        return Response(200, self.check_run_json(cr))

    def api_list_check_runs(self, req, owner, name, ref):
        repo = self._access(req, owner, name, ("checks",))
        sha = self.git.rev_parse(repo["full_name"], ref)
        if not sha:
            raise ApiError(422, "No commit found for SHA: %s" % ref, doc=DOC["check"])
        items = [cr for cr in self.check_runs.values()
                 if cr["repo"] == repo["full_name"] and cr["head_sha"] == sha]
        if req.q("check_name"):
            items = [cr for cr in items if cr["name"] == req.q("check_name")]
        if req.q("status"):
            items = [cr for cr in items if cr["status"] == req.q("status")]
        items.sort(key=lambda cr: cr["id"], reverse=True)
        page, link = paginate(items, req, self.api)
        return Response(200, {"total_count": len(items),
                              "check_runs": [self.check_run_json(cr) for cr in page]},
                        {"Link": link} if link else None)
