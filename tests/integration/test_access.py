"""Only the operator gets in: set-up, the dashboard and the Host rule, end to end.

patchbay bound to 127.0.0.1 behind a reverse proxy on the same machine
(tests/integration/revproxy.py, which forwards Host and X-Forwarded-For as the
documented nginx set-up does), so every visitor reaches patchbay from
loopback, as on a real deployment. An anonymous visitor can neither register
the App, nor read jobs, nor act on them; the operator, holding the set-up code
and the dashboard token patchbay printed, can do all three; a request for any
other name than PUBLIC_URL's or a loopback one is refused with 421 on every
route but the webhook, including a DNS-rebinding page's same-origin requests
to a loopback-bound patchbay.
"""

import html.parser
import http.client
import json
import os
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import post_delivery  # noqa: E402
from revproxy import ReverseProxy  # noqa: E402

PUBLIC_NAME = "patchbay.test"


class Forms(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.forms = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "fields": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a.get("name")] = a.get("value", "")


def request(port, method, path, host, headers=None, body=None):
    """One request to 127.0.0.1:port naming `host` in Host, as a browser that resolved it would."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * harness.SLOW)
    h = {"Host": host}
    h.update(headers or {})
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        c.close()


class BehindAProxy(harness.AppCase):
    def setUp(self):
        super().setUp()
        pb_port = harness.free_port()
        self.proxy = ReverseProxy(pb_port).start()
        self._procs.append(self.proxy)
        self.public = "%s:%d" % (PUBLIC_NAME, self.proxy.port)
        # nothing of the App's: the state in which anyone could once register it
        self.pb = harness.Patchbay(self.workdir, command="serve", redis_url=self.redis_server.url, secret=None,
                                   env={"PORT": str(pb_port), "HOST": "127.0.0.1",
                                        "PUBLIC_URL": "http://" + self.public,
                                        "GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web})
        self.pb.start()
        self.job = harness.enqueue(self.db, [{"kind": "noop", "repo": "acme/private-plans", "number": 7,
                                              "sender": "alice", "title": "Layoffs in March"}])[0]

    def via(self, method, path, headers=None, body=None, host=None):
        return request(self.proxy.port, method, path, host or self.public, headers, body)

    def test_an_anonymous_visitor_cannot_register_read_or_act(self):
        forged = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}  # claims change nothing
        # the status page says what is missing, and asks for the set-up code: no form, no state
        status, _, page = self.via("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("Not connected to GitHub yet", page)
        self.assertEqual([f["action"] for f in Forms(page).forms], ["/setup/code"])
        self.assertNotIn("state=", page)
        self.assertNotIn("settings/apps/new", page)
        for path in ("/setup/org?org=acme", "/setup/callback?code=abc&state=" + "0" * 64):
            status, _, page = self.via("GET", path, forged)
            self.assertEqual(status, 403, path)
            self.assertNotIn("state=", page)
        status, headers, _ = self.via("POST", "/setup/code", dict(forged, **{
            "Content-Type": "application/x-www-form-urlencoded"}), body="code=0000-0000-0000-0000")
        self.assertEqual(status, 403)
        self.assertNotIn("set-cookie", headers)
        self.assertFalse(os.path.exists(os.path.join(self.pb.data_dir, "github-app", "setup-state")))
        # the jobs, their logs and their actions: all closed, with no token configured at all
        for path in ("/jobs", "/jobs/%s" % self.job, "/api/jobs", "/api/jobs/%s" % self.job,
                     "/api/jobs/%s/log" % self.job):
            status, _, body = self.via("GET", path, forged)
            self.assertEqual(status, 401, path)
            self.assertNotIn("Layoffs", body)
        for action in ("cancel", "retry"):
            status, _, _ = self.via("POST", "/api/jobs/%s/%s" % (self.job, action),
                                    dict(forged, **{"X-Patchbay-Action": action}))
            self.assertEqual(status, 401, action)
        self.assertEqual(self.db.job(self.job)["status"], "queued")
        # what stays open holds no job's data
        self.assertEqual(self.via("GET", "/healthz")[0], 200)
        self.assertEqual(self.via("GET", "/readyz")[0], 200)
        status, _, metrics = self.via("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("patchbay_queue_depth", metrics)
        for private in ("acme", "Layoffs", "alice"):
            self.assertNotIn(private, metrics)
        # and all of it came to patchbay from loopback, as nginx passes it on
        method, path, seen = self.proxy.requests[-1]
        self.assertEqual((seen["Host"], seen["X-Forwarded-For"].split(", ")[-1]), (PUBLIC_NAME, "127.0.0.1"))

    def test_the_operator_registers_with_the_code_and_works_with_the_token(self):
        # the set-up code, as the operator finds it in the log
        [line] = self.pb.find_logs("enter the set-up code")
        self.assertIn("http://%s/" % self.public, line["msg"])
        code = line["msg"].split("set-up code ")[1].split(" ")[0]
        status, headers, _ = self.via("POST", "/setup/code", {"Content-Type": "application/x-www-form-urlencoded"},
                                      body=urllib.parse.urlencode({"code": code}))
        self.assertEqual(status, 303)
        cookie = headers["set-cookie"].split(";")[0]
        status, _, page = self.via("GET", "/", {"Cookie": cookie})
        [account, _org] = Forms(page).forms
        manifest = json.loads(account["fields"]["manifest"])
        self.assertEqual(manifest["hook_attributes"]["url"], "http://%s/api/github/webhooks" % self.public)
        # GitHub shows the App, the operator confirms, GitHub sends the browser back through the proxy
        req = urllib.request.Request(account["action"], urllib.parse.urlencode(account["fields"]).encode())
        opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                                  {"redirect_request": lambda *a, **k: None}))
        try:
            opener.open(req, timeout=30)
            self.fail("GitHub's form did not redirect")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 302)
            back = urllib.parse.urlsplit(e.headers["Location"])
        self.assertEqual(back.netloc, self.public)
        status, _, page = self.via("GET", back.path + "?" + back.query, {"Cookie": cookie})
        self.assertEqual(status, 200, page)
        self.assertIn("Registered the GitHub App", page)
        [app] = [a for a in self.gh.state()["apps"] if a["id"] != 1234]
        # GitHub's deliveries come through the proxy too
        c = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        status, body, _ = post_delivery(c, "ping", {"zen": "Speak like a human.", "hook_id": 1},
                                        secret=app["webhook_secret"], headers={"Host": self.public})
        c.close()
        self.assertEqual((status, body), (200, {"ignored": "event ping is not a trigger"}))

        # the dashboard, with the token patchbay made and printed at its first start
        with open(os.path.join(self.pb.data_dir, "dashboard-token")) as f:
            token = f.read().strip()
        self.assertTrue(self.pb.find_log("http://%s/jobs?token=%s" % (self.public, token)))
        status, headers, _ = self.via("GET", "/jobs?token=" + token)
        self.assertEqual((status, headers["location"]), (303, "/jobs"))
        dash = headers["set-cookie"].split(";")[0]
        status, _, body = self.via("GET", "/api/jobs", {"Cookie": dash})
        self.assertEqual((status, [j["title"] for j in json.loads(body)]), (200, ["Layoffs in March"]))
        status, _, body = self.via("POST", "/api/jobs/%s/cancel" % self.job,
                                   {"Authorization": "Bearer " + token, "X-Patchbay-Action": "cancel"})
        self.assertEqual((status, json.loads(body)["result"]), (200, "cancelled"))
        self.assertEqual(self.db.job(self.job)["status"], "cancelled")

    def test_a_foreign_host_is_refused_everywhere_but_the_webhook(self):
        with open(os.path.join(self.pb.data_dir, "dashboard-token")) as f:
            token = f.read().strip()
        for host in ("attacker.example", "attacker.example:%d" % self.proxy.port, PUBLIC_NAME + ".attacker.example"):
            for method, path, headers in (
                    ("GET", "/", {}), ("GET", "/healthz", {}), ("GET", "/readyz", {}), ("GET", "/metrics", {}),
                    ("GET", "/nope", {}), ("GET", "/setup/org?org=acme", {}), ("POST", "/setup/code", {}),
                    ("GET", "/jobs?token=" + token, {}),
                    ("GET", "/api/jobs", {"Authorization": "Bearer " + token}),
                    ("POST", "/api/jobs/%s/cancel" % self.job,
                     {"Authorization": "Bearer " + token, "X-Patchbay-Action": "cancel"})):
                status, _, body = self.via(method, path, headers, host=host)
                self.assertEqual(status, 421, (host, path))
                self.assertIn("PUBLIC_URL", json.loads(body)["error"])
        self.assertEqual(self.db.job(self.job)["status"], "queued")
        # an address literal that is not the one dialled is as foreign as a name
        # (a probe naming the address it dialled is served: tests/unit/test_access.c)
        for path in ("/healthz", "/metrics", "/"):
            status, _, _ = self.via("GET", path, {}, host="10.0.0.5:3000")
            self.assertEqual(status, 421, path)
        # the webhook is GitHub's and answers whatever Host says (here: no secret yet, 503)
        status, _, _ = self.via("POST", "/api/github/webhooks", {"X-GitHub-Event": "ping"}, body="{}",
                                host="attacker.example")
        self.assertEqual(status, 503)


class DnsRebinding(harness.TestCase):
    """A page on attacker.example whose name now resolves to 127.0.0.1: its requests are
    same-origin for the browser, so they may carry any header, but Host is still its own."""

    def test_a_rebound_name_reaches_nothing(self):
        token = "rebinding-test-token-0123456789"
        r = self.redis()
        pb = self.patchbay(redis_url=r.url, env={"DASHBOARD_TOKEN": token})
        db = r.client()
        [job] = harness.enqueue(db, [{"kind": "noop", "repo": "acme/app", "number": 3, "sender": "alice"}])
        evil = "attacker.example:%d" % pb.port
        origin = {"Origin": "http://" + evil}
        for method, path, headers in (("GET", "/api/jobs", {}), ("GET", "/jobs", {}), ("GET", "/", {}),
                                      ("POST", "/api/jobs/%s/cancel" % job, {"X-Patchbay-Action": "cancel"}),
                                      ("POST", "/api/jobs/%s/cancel" % job,
                                       {"X-Patchbay-Action": "cancel", "Authorization": "Bearer " + token})):
            status, _, _ = request(pb.port, method, path, evil, dict(origin, **headers))
            self.assertEqual(status, 421, path)
        self.assertEqual(db.job(job)["status"], "queued")
        # the same requests under the machine's own name, with the token, are the operator's
        host = "127.0.0.1:%d" % pb.port
        status, _, body = request(pb.port, "GET", "/api/jobs", host, {"Authorization": "Bearer " + token})
        self.assertEqual((status, [j["id"] for j in json.loads(body)]), (200, [job]))
        status, _, _ = request(pb.port, "POST", "/api/jobs/%s/cancel" % job, "localhost:%d" % pb.port,
                               {"Authorization": "Bearer " + token, "X-Patchbay-Action": "cancel"})
        self.assertEqual(status, 200)
        self.assertEqual(db.job(job)["status"], "cancelled")
        db.close()


if __name__ == "__main__":
    harness.main()
