"""GitHub's REST answer shapes, rendered from the fake's in-memory records.

Field names and nesting follow api.github.com (REST API version 2022-11-28).
URLs point at the fake: `self.api` plays https://api.github.com and
`self.web` plays https://github.com (same server: git lives there too).
Mixed into FakeGitHub, which owns the records these read.
"""

import base64
import time

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def iso(t):
    """GitHub's timestamps: ISO 8601, UTC, seconds, 'Z'."""
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_iso(text):
    """An ISO 8601 timestamp as GitHub takes it (YYYY-MM-DDTHH:MM:SS, an
    optional fraction, Z or an offset) to epoch seconds; None if it is not one."""
    import calendar
    import re
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text or "")
    if not m:
        return None
    t = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    if m.group(8) != "Z":
        sign = 1 if m.group(8)[0] == "+" else -1
        t -= sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    return t


def node_id(kind, ident):
    return base64.b64encode(("0%d:%s%d" % (len(kind), kind, ident)).encode()).decode().rstrip("=")


class Shapes:
    # -- users, apps, installations -------------------------------------------
    def user_json(self, login, full=False):
        u = self.users[login.lower()]
        login = u["login"]
        base = "%s/users/%s" % (self.api, login)
        d = {
            "login": login, "id": u["id"], "node_id": node_id(u["type"], u["id"]),
            "avatar_url": "%s/avatars/u/%d?v=4" % (self.web, u["id"]),
            "gravatar_id": "", "url": base,
            "html_url": ("%s/apps/%s" % (self.web, u["app_slug"])) if u.get("app_slug")
            else "%s/%s" % (self.web, login),
            "followers_url": base + "/followers",
            "following_url": base + "/following{/other_user}",
            "gists_url": base + "/gists{/gist_id}",
            "starred_url": base + "/starred{/owner}{/repo}",
            "subscriptions_url": base + "/subscriptions",
            "organizations_url": base + "/orgs", "repos_url": base + "/repos",
            "events_url": base + "/events{/privacy}",
            "received_events_url": base + "/received_events",
            "type": u["type"], "user_view_type": "public", "site_admin": False,
        }
        if full:
            d.update({"name": u.get("name"), "company": None, "blog": "",
                      "location": None, "email": None, "hireable": None,
                      "bio": None, "twitter_username": None,
                      "public_repos": 0, "public_gists": 0, "followers": 0,
                      "following": 0, "created_at": iso(u["created_at"]),
                      "updated_at": iso(u["created_at"])})
        return d

    def app_json(self, app):
        return {
            "id": app["id"], "slug": app["slug"], "node_id": node_id("Integration", app["id"]),
            "client_id": app["client_id"], "owner": self.user_json(app["owner"]),
            "name": app["name"], "description": app.get("description", ""),
            "external_url": app.get("external_url") or self.web,
            "html_url": "%s/apps/%s" % (self.web, app["slug"]),
            "created_at": iso(app["created_at"]), "updated_at": iso(app["created_at"]),
            "permissions": dict(app["permissions"]), "events": list(app["events"]),
            "installations_count": sum(1 for i in self.installations.values()
                                       if i["app_id"] == app["id"]),
        }

    def installation_json(self, inst):
        app = self.apps[inst["app_id"]]
        acct = self.users[inst["account"].lower()]
        return {
            "id": inst["id"], "account": self.user_json(inst["account"]),
            "repository_selection": inst["repository_selection"],
            "access_tokens_url": "%s/app/installations/%d/access_tokens" % (self.api, inst["id"]),
            "repositories_url": "%s/installation/repositories" % self.api,
            "html_url": "%s/settings/installations/%d" % (self.web, inst["id"]),
            "app_id": app["id"], "app_slug": app["slug"],
            "client_id": app["client_id"],
            "target_id": acct["id"], "target_type": acct["type"],
            "permissions": dict(inst["permissions"]), "events": list(inst["events"]),
            "created_at": iso(inst["created_at"]), "updated_at": iso(inst["created_at"]),
            "single_file_name": None, "has_multiple_single_files": False,
            "single_file_paths": [], "suspended_by": None, "suspended_at": None,
        }

    # -- repositories ---------------------------------------------------------
    def repo_json(self, repo):
        full = repo["full_name"]
        api = "%s/repos/%s" % (self.api, full)
        return {
            "id": repo["id"], "node_id": node_id("Repository", repo["id"]),
            "name": repo["name"], "full_name": full, "private": repo["private"],
            "owner": self.user_json(repo["owner"]),
            "html_url": "%s/%s" % (self.web, full),
            "description": repo.get("description"), "fork": bool(repo.get("fork")),
            "url": api,
            "issues_url": api + "/issues{/number}",
            "pulls_url": api + "/pulls{/number}",
            "contents_url": api + "/contents/{+path}",
            "labels_url": api + "/labels{/name}",
            "comments_url": api + "/comments{/number}",
            "collaborators_url": api + "/collaborators{/collaborator}",
            "git_url": "%s/%s.git" % (self.web.replace("http", "git", 1), full),
            "ssh_url": "git@127.0.0.1:%s.git" % full,
            "clone_url": "%s/%s.git" % (self.web, full),
            "svn_url": "%s/%s" % (self.web, full),
            "homepage": None, "size": 0, "stargazers_count": 0, "watchers_count": 0,
            "language": None, "has_issues": True, "has_projects": True,
            "has_downloads": True, "has_wiki": True, "has_pages": False,
            "has_discussions": False, "forks_count": 0, "mirror_url": None,
            "archived": bool(repo.get("archived")), "disabled": False,
            "open_issues_count": sum(1 for i in repo["issues"].values() if i["state"] == "open"),
            "license": None, "allow_forking": True, "is_template": False,
            "web_commit_signoff_required": False, "topics": [],
            "visibility": "private" if repo["private"] else "public",
            "forks": 0, "open_issues": sum(1 for i in repo["issues"].values()
                                           if i["state"] == "open"),
            "watchers": 0, "default_branch": repo["default_branch"],
            "created_at": iso(repo["created_at"]), "updated_at": iso(repo["updated_at"]),
            "pushed_at": iso(repo["pushed_at"]),
        }

    def label_json(self, repo, name):
        lab = repo["labels"][name.lower()]
        return {"id": lab["id"], "node_id": node_id("Label", lab["id"]),
                "url": "%s/repos/%s/labels/%s" % (self.api, repo["full_name"], lab["name"]),
                "name": lab["name"], "color": lab["color"], "default": lab["default"],
                "description": lab["description"]}

    def reactions_summary(self, url, reactions):
        d = {"url": url + "/reactions", "total_count": len(reactions)}
        for r in REACTIONS:
            d[r] = sum(1 for x in reactions if x["content"] == r)
        return d

    def reaction_json(self, r):
        return {"id": r["id"], "node_id": node_id("Reaction", r["id"]),
                "user": self.user_json(r["user"]), "content": r["content"],
                "created_at": iso(r["created_at"])}

    # -- issues, comments -----------------------------------------------------
    def issue_json(self, repo, issue):
        full = repo["full_name"]
        api = "%s/repos/%s/issues/%d" % (self.api, full, issue["number"])
        d = {
            "url": api, "repository_url": "%s/repos/%s" % (self.api, full),
            "labels_url": api + "/labels{/name}", "comments_url": api + "/comments",
            "events_url": api + "/events",
            "html_url": "%s/%s/%s/%d" % (self.web, full,
                                         "pull" if issue.get("pull") else "issues",
                                         issue["number"]),
            "id": issue["id"], "node_id": node_id("Issue", issue["id"]),
            "number": issue["number"], "title": issue["title"],
            "user": self.user_json(issue["user"]),
            "labels": [self.label_json(repo, n) for n in issue["labels"]],
            "state": issue["state"], "locked": issue.get("locked", False),
            "assignee": None, "assignees": [], "milestone": None,
            "comments": len(issue["comment_ids"]),
            "created_at": iso(issue["created_at"]), "updated_at": iso(issue["updated_at"]),
            "closed_at": iso(issue.get("closed_at")),
            "author_association": issue["author_association"],
            "active_lock_reason": None, "body": issue["body"],
            "closed_by": None,
            "reactions": self.reactions_summary(api, issue["reactions"]),
            "timeline_url": api + "/timeline",
            "performed_via_github_app": self._app_or_none(issue.get("app_id")),
            "state_reason": issue.get("state_reason"),
        }
        if issue.get("pull"):
            pr = issue["pull"]
            papi = "%s/repos/%s/pulls/%d" % (self.api, full, issue["number"])
            phtml = "%s/%s/pull/%d" % (self.web, full, issue["number"])
            d["draft"] = pr["draft"]
            d["pull_request"] = {"url": papi, "html_url": phtml,
                                 "diff_url": phtml + ".diff", "patch_url": phtml + ".patch",
                                 "merged_at": iso(pr.get("merged_at"))}
        return d

    def _app_or_none(self, app_id):
        return self.app_json(self.apps[app_id]) if app_id in self.apps else None

    def comment_json(self, c):
        full = c["repo"]
        api = "%s/repos/%s/issues/comments/%d" % (self.api, full, c["id"])
        repo = self.repos[full.lower()]
        issue = repo["issues"][c["number"]]
        kind = "pull" if issue.get("pull") else "issues"
        return {
            "url": api,
            "html_url": "%s/%s/%s/%d#issuecomment-%d" % (self.web, full, kind,
                                                         c["number"], c["id"]),
            "issue_url": "%s/repos/%s/issues/%d" % (self.api, full, c["number"]),
            "id": c["id"], "node_id": node_id("IssueComment", c["id"]),
            "user": self.user_json(c["user"]),
            "created_at": iso(c["created_at"]), "updated_at": iso(c["updated_at"]),
            "author_association": c["author_association"], "body": c["body"],
            "reactions": self.reactions_summary(api, c["reactions"]),
            "performed_via_github_app": self._app_or_none(c.get("app_id")),
        }

    # -- pull requests --------------------------------------------------------
    def _branch_json(self, repo_full, ref, sha):
        repo = self.repos[repo_full.lower()]
        return {"label": "%s:%s" % (repo["owner"], ref), "ref": ref, "sha": sha,
                "user": self.user_json(repo["owner"]), "repo": self.repo_json(repo)}

    def pull_json(self, repo, issue, full=True):
        pr = issue["pull"]
        full_name = repo["full_name"]
        n = issue["number"]
        api = "%s/repos/%s/pulls/%d" % (self.api, full_name, n)
        html = "%s/%s/pull/%d" % (self.web, full_name, n)
        iapi = "%s/repos/%s/issues/%d" % (self.api, full_name, n)
        d = {
            "url": api, "id": pr["id"], "node_id": node_id("PullRequest", pr["id"]),
            "html_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
            "issue_url": iapi, "commits_url": api + "/commits",
            "review_comments_url": api + "/comments",
            "review_comment_url": "%s/repos/%s/pulls/comments{/number}" % (self.api, full_name),
            "comments_url": iapi + "/comments",
            "statuses_url": "%s/repos/%s/statuses/%s" % (self.api, full_name, pr["head_sha"]),
            "number": n, "state": issue["state"], "locked": issue.get("locked", False),
            "title": issue["title"], "user": self.user_json(issue["user"]),
            "body": issue["body"],
            "labels": [self.label_json(repo, x) for x in issue["labels"]],
            "milestone": None, "active_lock_reason": None,
            "created_at": iso(issue["created_at"]), "updated_at": iso(issue["updated_at"]),
            "closed_at": iso(issue.get("closed_at")), "merged_at": iso(pr.get("merged_at")),
            "merge_commit_sha": pr.get("merge_commit_sha"),
            "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [],
            "head": self._branch_json(pr["head_repo"], pr["head_ref"], pr["head_sha"]),
            "base": self._branch_json(full_name, pr["base_ref"], pr["base_sha"]),
            "_links": {"self": {"href": api}, "html": {"href": html},
                       "issue": {"href": iapi}, "comments": {"href": iapi + "/comments"},
                       "review_comments": {"href": api + "/comments"},
                       "review_comment": {"href": "%s/repos/%s/pulls/comments{/number}"
                                          % (self.api, full_name)},
                       "commits": {"href": api + "/commits"},
                       "statuses": {"href": "%s/repos/%s/statuses/%s"
                                    % (self.api, full_name, pr["head_sha"])}},
            "author_association": issue["author_association"], "auto_merge": None,
            "active_lock_reason": None, "draft": pr["draft"],
        }
        if full:
            stats = self._pr_stats(repo, issue)
            d.update({
                "merged": bool(pr.get("merged_at")), "mergeable": True,
                "rebaseable": True, "mergeable_state": "clean", "merged_by": None,
                "comments": len(issue["comment_ids"]),
                "review_comments": sum(1 for c in self.review_comments.values()
                                       if c["repo"] == full_name and c["number"] == n),
                "maintainer_can_modify": pr.get("maintainer_can_modify", False),
                "commits": stats["commits"], "additions": stats["additions"],
                "deletions": stats["deletions"], "changed_files": stats["changed_files"],
            })
        return d

    def pr_file_json(self, repo, issue, f):
        full = repo["full_name"]
        sha = issue["pull"]["head_sha"]
        path = f.filename
        blob = f.new_sha if f.status != "removed" else f.old_sha
        d = {
            "sha": blob, "filename": path, "status": f.status,
            "additions": f.additions, "deletions": f.deletions,
            "changes": f.additions + f.deletions,
            "blob_url": "%s/%s/blob/%s/%s" % (self.web, full, sha, path),
            "raw_url": "%s/%s/raw/%s/%s" % (self.web, full, sha, path),
            "contents_url": "%s/repos/%s/contents/%s?ref=%s" % (self.api, full, path, sha),
        }
        # GitHub omits "patch" for binary files (and for diffs it will not
        # render, e.g. a pure rename or an empty file).
        if f.patch is not None and not f.binary:
            d["patch"] = f.patch
        if f.previous_filename:
            d["previous_filename"] = f.previous_filename
        return d

    def review_json(self, rv):
        full = rv["repo"]
        n = rv["number"]
        api = "%s/repos/%s/pulls/%d" % (self.api, full, n)
        html = "%s/%s/pull/%d#pullrequestreview-%d" % (self.web, full, n, rv["id"])
        d = {"id": rv["id"], "node_id": node_id("PullRequestReview", rv["id"]),
             "user": self.user_json(rv["user"]), "body": rv["body"] or "",
             "state": rv["state"], "html_url": html, "pull_request_url": api,
             "author_association": rv["author_association"],
             "_links": {"html": {"href": html}, "pull_request": {"href": api}},
             "commit_id": rv["commit_id"]}
        if rv["state"] != "PENDING":
            d["submitted_at"] = iso(rv["submitted_at"])
        return d

    def review_comment_json(self, c):
        full = c["repo"]
        n = c["number"]
        api = "%s/repos/%s/pulls/comments/%d" % (self.api, full, c["id"])
        html = "%s/%s/pull/%d#discussion_r%d" % (self.web, full, n, c["id"])
        papi = "%s/repos/%s/pulls/%d" % (self.api, full, n)
        d = {
            "url": api, "pull_request_review_id": c["review_id"], "id": c["id"],
            "node_id": node_id("PullRequestReviewComment", c["id"]),
            "diff_hunk": c["diff_hunk"], "path": c["path"],
            "position": c["position"], "original_position": c["position"],
            "commit_id": c["commit_id"], "original_commit_id": c["commit_id"],
            "user": self.user_json(c["user"]), "body": c["body"],
            "created_at": iso(c["created_at"]), "updated_at": iso(c["updated_at"]),
            "html_url": html, "pull_request_url": papi,
            "author_association": c["author_association"],
            "_links": {"self": {"href": api}, "html": {"href": html},
                       "pull_request": {"href": papi}},
            "reactions": self.reactions_summary(api, c["reactions"]),
            "start_line": c["start_line"], "original_start_line": c["start_line"],
            "start_side": c["start_side"], "line": c["line"],
            "original_line": c["line"], "side": c["side"],
            "subject_type": c.get("subject_type", "line"),
            "performed_via_github_app": self._app_or_none(c.get("app_id")),
        }
        if c.get("in_reply_to_id"):
            d["in_reply_to_id"] = c["in_reply_to_id"]
        return d

    # -- checks -----------------------------------------------------------------
    def check_run_json(self, cr):
        full = cr["repo"]
        api = "%s/repos/%s/check-runs/%d" % (self.api, full, cr["id"])
        repo = self.repos[full.lower()]
        prs = []
        for issue in repo["issues"].values():
            pr = issue.get("pull")
            if pr and issue["state"] == "open" and pr["head_sha"] == cr["head_sha"]:
                prs.append({"url": "%s/repos/%s/pulls/%d" % (self.api, full, issue["number"]),
                            "id": pr["id"], "number": issue["number"],
                            "head": {"ref": pr["head_ref"], "sha": pr["head_sha"],
                                     "repo": {"id": repo["id"], "url": "%s/repos/%s" % (self.api, full),
                                              "name": repo["name"]}},
                            "base": {"ref": pr["base_ref"], "sha": pr["base_sha"],
                                     "repo": {"id": repo["id"], "url": "%s/repos/%s" % (self.api, full),
                                              "name": repo["name"]}}})
        out = cr["output"]
        return {
            "id": cr["id"], "head_sha": cr["head_sha"],
            "node_id": node_id("CheckRun", cr["id"]), "external_id": cr.get("external_id") or "",
            "url": api, "html_url": "%s/%s/runs/%d" % (self.web, full, cr["id"]),
            "details_url": cr.get("details_url") or "%s/%s/runs/%d" % (self.web, full, cr["id"]),
            "status": cr["status"], "conclusion": cr.get("conclusion"),
            "started_at": iso(cr.get("started_at")), "completed_at": iso(cr.get("completed_at")),
            "output": {"title": out.get("title"), "summary": out.get("summary"),
                       "text": out.get("text"),
                       "annotations_count": len(cr["annotations"]),
                       "annotations_url": api + "/annotations"},
            "name": cr["name"], "check_suite": {"id": cr["check_suite_id"]},
            "app": self._app_or_none(cr.get("app_id")),
            "pull_requests": prs,
        }

    # -- webhook deliveries -----------------------------------------------------
    def delivery_json(self, d, full=False):
        out = {k: d.get(k) for k in ("id", "guid", "redelivery", "duration", "status",
                                     "status_code", "event", "action",
                                     "installation_id", "repository_id")}
        out["delivered_at"] = d["delivered_at"]
        out["throttled_at"] = None
        if full:
            out["url"] = d.get("url") or ""
            out["request"] = {"headers": d.get("request_headers") or {},
                              "payload": d.get("payload")}
            out["response"] = {"headers": d.get("response_headers") or {},
                               "payload": d.get("response_body")}
        return out
