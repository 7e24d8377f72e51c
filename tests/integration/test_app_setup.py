"""Registering the GitHub App from the status page (GitHub's manifest flow).

`patchbay run` with no credentials, the local fake GitHub playing github.com
(the form GitHub shows, its redirect with a code, the conversion API): the
operator enters the set-up code patchbay printed at start, the page's form is
posted as a browser would, the callback exchanges the code, the credentials
land in the data dir with mode 0600, and the running patchbay verifies the
next delivery with the new secret and answers jobs as the new App: no restart.
A browser without the set-up code gets no form, no state and no callback.
"""

import hashlib
import hmac
import html.parser
import json
import os
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402


class Forms(html.parser.HTMLParser):
    """The forms of a page: [{"action", "method", "fields": {name: value}}]."""

    def __init__(self, text):
        super().__init__()
        self.forms = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method", "get"), "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a.get("name")] = a.get("value", "")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def http(url, data=None, method=None, cookie=None):
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, method=method, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def sign(body, secret):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AppSetup(harness.AppCase):
    def start_bare(self):
        """patchbay with nothing of the App's: no id, key or secret."""
        self.pb = harness.Patchbay(self.workdir, command="run", redis_url=self.redis_server.url, secret=None,
                                   env={"GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web})
        self.pb.start()
        return "http://127.0.0.1:%d" % self.pb.port

    def setup_code(self):
        """The code as the operator reads it: from patchbay's log, which says where the file is too."""
        [line] = self.pb.find_logs("enter the set-up code")
        code = line["msg"].split("set-up code ")[1].split(" ")[0]
        with open(os.path.join(self.pb.data_dir, "github-app", "setup-code")) as f:
            self.assertEqual(f.read().strip(), code)
        return code

    def enter_code(self, base, code=None):
        """The browser presents the set-up code; returns the cookie it gets for it."""
        status, headers, _ = http(base + "/setup/code",
                                  urllib.parse.urlencode({"code": code or self.setup_code()}).encode())
        self.assertEqual((status, headers.get("Location")), (303, "/"))
        cookie = headers["Set-Cookie"]
        for attr in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"):
            self.assertIn(attr, cookie)
        return cookie.split(";")[0]

    def register(self, base, cookie=None):
        # a visitor without the code sees what is missing and where to enter the code, nothing more
        status, headers, page = http(base + "/")
        self.assertEqual(status, 200)
        self.assertIn("Not connected to GitHub yet", page)
        self.assertEqual([f["action"] for f in Forms(page).forms], ["/setup/code"])
        self.assertNotIn("state=", page)
        cookie = cookie or self.enter_code(base)
        self.cookie = cookie
        status, headers, page = http(base + "/", cookie=cookie)
        self.assertEqual(status, 200)
        self.assertIn("form-action 'self' %s" % self.gh.web, headers["content-security-policy"])
        [account, org] = Forms(page).forms
        self.assertTrue(account["action"].startswith(self.gh.web + "/settings/apps/new?state="))
        manifest = json.loads(account["fields"]["manifest"])
        self.assertEqual(manifest["hook_attributes"]["url"], base + "/api/github/webhooks")
        self.assertEqual(manifest["redirect_url"], base + "/setup/callback")
        self.assertEqual(manifest["default_permissions"]["contents"], "write")
        self.assertIn("issue_comment", manifest["default_events"])
        self.assertIs(manifest["public"], False)
        self.assertEqual(org["action"], "/setup/org")
        # the browser posts the form to GitHub, which sends it back with a code
        status, headers, _ = http(account["action"], urllib.parse.urlencode(account["fields"]).encode())
        self.assertEqual(status, 302)
        callback = headers["Location"]
        self.assertTrue(callback.startswith(base + "/setup/callback?code="))
        return callback

    def new_app(self):
        [app] = [a for a in self.gh.state()["apps"] if a["id"] != 1234]
        return app

    def test_register_then_work_without_a_restart(self):
        base = self.start_bare()
        # nothing can be verified yet
        c = self.pb.conn()
        status, _, _ = post_delivery(c, "issue_comment", harness.issue_comment(), secret="anything")
        self.assertEqual(status, 503)
        callback = self.register(base)
        status, _, page = http(callback, cookie=self.cookie)
        self.assertEqual(status, 200, page)
        app = self.new_app()
        self.assertIn("Registered the GitHub App", page)
        self.assertIn("/installations/new", page)
        # the credentials: 0600 files in a 0700 directory
        d = os.path.join(self.pb.data_dir, "github-app")
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        for name in ("app.json", "private-key.pem"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode), 0o600, name)
        with open(os.path.join(d, "app.json")) as f:
            saved = json.load(f)
        self.assertEqual((saved["id"], saved["webhook_secret"]), (app["id"], app["webhook_secret"]))
        self.assertNotIn(app["webhook_secret"], self.pb.log_text())
        # the next delivery is verified with the new secret, by the running server
        repo = "acme/widgets"
        self.gh.create_repo(repo, files={"README.md": "hi\n"})
        self.gh.add_installation(55, "acme", repositories=[repo], app_id=app["id"])
        issue = self.gh.add_issue(repo, "Help?", user="alice")
        self.gh.set_collaborator(repo, "alice", "write")
        comment = self.gh.add_comment(repo, issue["number"], "@%s help" % app["slug"], user="alice")
        payload = harness.issue_comment(body="@%s help" % app["slug"], association="COLLABORATOR", sender="alice",
                                        number=issue["number"], repo=repo, installation=55,
                                        comment_id=comment["id"])
        status, _, _ = post_delivery(c, "issue_comment", payload, secret=harness.SECRET)
        self.assertEqual(status, 401)
        status, body, _ = post_delivery(c, "issue_comment", payload, secret=app["webhook_secret"])
        c.close()
        # the handle is still the configured one; a "help" for another name is ignored, answered 200
        self.assertIn(status, (200, 202), body)
        # and a worker acts as the new App: a help job answered by its bot
        c = self.pb.conn()
        comment = self.gh.add_comment(repo, issue["number"], "@patchbay help", user="alice")
        payload = harness.issue_comment(body="@patchbay help", association="COLLABORATOR", sender="alice",
                                        number=issue["number"], repo=repo, installation=55,
                                        comment_id=comment["id"])
        status, body, _ = post_delivery(c, "issue_comment", payload, secret=app["webhook_secret"])
        c.close()
        self.assertEqual(status, 202, body)
        said = wait_for(lambda: [x for x in self.gh.state()["comments"]
                                 if x["repo"] == repo and x["user"] == "%s[bot]" % app["slug"]], 30,
                        what="the new App's bot to answer")
        self.assertIn("How to use patchbay", said[0]["body"])
        # set-up is over: the callback cannot run again, even with a fresh code, and the code is gone
        status, _, page = http(callback, cookie=self.cookie)
        self.assertEqual(status, 409)
        self.assertIn("already has a GitHub App", page)
        self.assertFalse(os.path.exists(os.path.join(d, "setup-code")))
        self.assertEqual(http(base + "/setup/code", b"code=x")[0], 409)
        self.assertEqual(len([a for a in self.gh.state()["apps"] if a["id"] != 1234]), 1)

    def test_missed_deliveries_are_reconciled_once_the_app_is_registered(self):
        cfg = os.path.join(self.workdir, "fast.yml")
        with open(cfg, "w") as f:
            f.write("github:\n  reconcile_interval_s: 1\n")
        self.pb = harness.Patchbay(self.workdir, command="run", redis_url=self.redis_server.url, secret=None,
                                   env={"GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web,
                                        "PATCHBAY_CONFIG": cfg})
        self.pb.start()
        base = "http://127.0.0.1:%d" % self.pb.port
        status, _, _ = http(self.register(base), cookie=self.cookie)
        self.assertEqual(status, 200)
        app = self.new_app()
        # the reconcile thread, running since the start, now lists the new App's deliveries
        wait_for(lambda: [c for c in self.gh.calls() if "/app/hook/deliveries" in c["path"]
                          and c.get("app_id") == app["id"]], 20, what="a reconcile pass as the new App")
        self.assertTrue(self.pb.find_logs("reconcile waits for the App's credentials"))

    def test_after_a_restart_the_saved_app_is_the_config(self):
        base = self.start_bare()
        status, _, _ = http(self.register(base), cookie=self.cookie)
        self.assertEqual(status, 200)
        self.pb.stop()
        self.pb = harness.Patchbay(self.workdir, command="run", redis_url=self.redis_server.url, secret=None,
                                   env={"GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web})
        self.pb.start()
        status, _, page = http("http://127.0.0.1:%d/" % self.pb.port)
        self.assertIn("GitHub App configured", page)
        r = harness.subprocess.run([harness.BIN, "check-config", "--offline"], env=self.pb.env, capture_output=True,
                                   text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_forged_or_stale_callbacks_are_refused(self):
        base = self.start_bare()
        # without the set-up code's cookie, nothing of set-up answers
        status, _, page = http(base + "/setup/callback?code=abc&state=" + "0" * 64)
        self.assertEqual(status, 403)
        self.assertIn("set-up code first", page)
        cookie = self.enter_code(base)
        status, _, page = http(base + "/setup/callback?code=abc&state=" + "0" * 64, cookie=cookie)
        self.assertEqual(status, 400)
        self.assertIn("expired or was not made here", page)
        callback = self.register(base, cookie)
        parts = urllib.parse.urlsplit(callback)
        q = urllib.parse.parse_qs(parts.query)
        # the state is bound to the browser that entered the code: another one's cookie cannot use it
        # (nor spoil it for its owner)
        other = self.enter_code(base)
        status, _, _ = http(callback, cookie=other)
        self.assertEqual(status, 400)
        self.assertEqual(http(callback)[0], 403)
        # the right state with a code GitHub never issued: GitHub's 404, said plainly
        status, _, page = http(base + "/setup/callback?code=deadbeef&state=" + q["state"][0], cookie=cookie)
        self.assertEqual(status, 502)
        self.assertIn("GitHub answered 404", page)
        self.assertFalse(os.path.exists(os.path.join(self.pb.data_dir, "github-app", "app.json")))
        status, _, _ = http(callback, cookie=cookie)
        self.assertEqual(status, 400)
        self.assertEqual([a for a in self.gh.state()["apps"] if a["id"] != 1234], [])

    def test_the_set_up_code_is_the_key(self):
        base = self.start_bare()
        code = self.setup_code()
        d = os.path.join(self.pb.data_dir, "github-app")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "setup-code")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
        # wrong, or almost right: refused, and the refusal does not echo what was typed
        for wrong in ("AAAA-BBBB-CCCC-DDDD", code[:-1], code + "Z", ""):
            status, headers, page = http(base + "/setup/code", urllib.parse.urlencode({"code": wrong}).encode())
            self.assertEqual(status, 403, wrong)
            self.assertNotIn("Set-Cookie", headers)
            self.assertIn("not the set-up code", page)
        self.assertEqual(http(base + "/setup/code")[0], 405)
        self.assertNotIn(code, self.pb.log_text().replace(self.pb.find_logs("enter the set-up code")[0]["msg"], ""))
        # as a person types it
        self.enter_code(base, code.lower().replace("-", " "))
        # a forged or stale cookie is no session
        for forged in ("patchbay_setup=1.%s.%s" % ("0" * 32, "0" * 64), "patchbay_setup=x"):
            self.assertEqual(http(base + "/setup/org?org=acme", cookie=forged)[0], 403)
        # a restart makes a new code: the old one, and cookies made with it, open nothing
        cookie = self.enter_code(base)
        self.pb.stop()
        self.pb = harness.Patchbay(self.workdir, command="run", redis_url=self.redis_server.url, secret=None,
                                   env={"GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web})
        self.pb.start()
        base = "http://127.0.0.1:%d" % self.pb.port
        self.assertNotEqual(self.setup_code(), code)
        self.assertEqual(http(base + "/setup/org?org=acme", cookie=cookie)[0], 403)
        status, _, _ = http(base + "/setup/code", urllib.parse.urlencode({"code": code}).encode())
        self.assertEqual(status, 403)

    def test_organization_form(self):
        base = self.start_bare()
        self.assertEqual(http(base + "/setup/org?org=acme-corp")[0], 403)
        cookie = self.enter_code(base)
        status, _, page = http(base + "/setup/org?org=acme-corp", cookie=cookie)
        self.assertEqual(status, 200)
        [form] = Forms(page).forms
        self.assertTrue(form["action"].startswith(self.gh.web + "/organizations/acme-corp/settings/apps/new?state="))
        status, headers, _ = http(form["action"], urllib.parse.urlencode(form["fields"]).encode())
        self.assertEqual(status, 302)
        status, _, _ = http(headers["Location"], cookie=cookie)
        self.assertEqual(status, 200)
        self.assertEqual(self.new_app()["owner"], "acme-corp")
        status, _, page = http(base + "/setup/org?org=%3Cscript%3E", cookie=cookie)
        self.assertNotIn("<script>", page)


if __name__ == "__main__":
    harness.main()
