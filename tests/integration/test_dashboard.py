"""The jobs dashboard: access control, security headers, the JSON API, actions,
and a real browser (headless Chromium driven by playwright-core) using it."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

TOKEN = "dash-token-0123456789abcdef"
NODE_MODULES = os.path.join(harness.SOURCE_DIR, "tests", "node_modules")
CSP_NEEDED = ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"]


class Dashboard(harness.TestCase):
    def start(self, token=TOKEN, command="serve", env=None, data_dir=None):
        if getattr(self, "r", None) is None:
            self.r = self.redis()
            self.db = self.r.client()
        e = {"DASHBOARD_TOKEN": token} if token else {}
        e.update(env or {})
        self.pb = self.patchbay(command=command, redis_url=self.r.url, env=e, data_dir=data_dir)
        return self.pb

    def tearDown(self):
        if getattr(self, "db", None):
            self.db.close()
        super().tearDown()

    def request(self, method, path, headers=None, body=None):
        c = self.pb.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        c.close()
        return out

    def api(self, method, path, headers=None):
        h = {"Authorization": "Bearer " + TOKEN}
        h.update(headers or {})
        status, hdrs, data = self.request(method, path, h)
        return status, json.loads(data) if data else None

    def queue(self, **fields):
        rec = {"kind": "noop", "repo": "octo-org/hello-world", "number": 7, "sender": "octocat"}
        rec.update(fields)
        return harness.enqueue(self.db, [rec])[0]

    # -- access

    def test_token_is_required_and_traded_for_a_cookie(self):
        self.start()
        job = self.queue(title="Fix the parser")
        self.assertEqual(self.request("GET", "/api/jobs")[0], 401)
        self.assertEqual(self.request("GET", "/api/jobs", {"Authorization": "Bearer wrong"})[0], 401)
        self.assertEqual(self.request("GET", "/jobs")[0], 401)
        self.assertEqual(self.request("GET", "/jobs?token=wrong")[0], 401)
        status, hdrs, _ = self.request("GET", "/jobs/%s?token=%s" % (job, TOKEN))
        self.assertEqual(status, 303)
        self.assertEqual(hdrs["location"], "/jobs/%s" % job)
        cookie = hdrs["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        name_value = cookie.split(";")[0]
        status, _, page = self.request("GET", "/jobs/%s" % job, {"Cookie": name_value})
        self.assertEqual(status, 200)
        self.assertIn(b"/assets/dashboard.js", page)
        status, _, data = self.request("GET", "/api/jobs", {"Cookie": "other=1; " + name_value})
        self.assertEqual(status, 200)
        self.assertEqual([j["id"] for j in json.loads(data)], [job])
        # the assets hold no data and need no token
        self.assertEqual(self.request("GET", "/assets/dashboard.js")[0], 200)

    def test_closed_by_default_with_a_token_made_at_first_start(self):
        """No DASHBOARD_TOKEN, listening on loopback (as behind a reverse proxy): still closed. The
        first start makes a token, keeps it 0600 in the data dir and prints the link with it once."""
        self.start(token=None)
        job = self.queue()
        for path in ("/jobs", "/jobs/%s" % job, "/api/jobs", "/api/jobs/%s" % job, "/api/jobs/%s/log" % job):
            self.assertEqual(self.request("GET", path)[0], 401, path)
        self.assertEqual(self.request("POST", "/api/jobs/%s/cancel" % job, {"X-Patchbay-Action": "1"})[0], 401)
        path = os.path.join(self.pb.data_dir, "dashboard-token")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            token = f.read().strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        [line] = self.pb.find_logs("/jobs?token=")
        self.assertIn("http://127.0.0.1:%d/jobs?token=%s" % (self.pb.port, token), line["msg"])
        self.assertEqual(self.pb.log_text().count(token), 1)
        status, _, data = self.request("GET", "/api/jobs", {"Authorization": "Bearer " + token})
        self.assertEqual((status, [j["id"] for j in json.loads(data)]), (200, [job]))
        # the next start keeps the token and does not print it again
        data_dir = self.pb.data_dir
        self.pb.stop()
        self.start(token=None, data_dir=data_dir)
        self.assertNotIn(token, self.pb.log_text())
        self.assertTrue(self.pb.find_logs("its token is in the data dir"))
        self.assertEqual(self.request("GET", "/api/jobs")[0], 401)
        self.assertEqual(self.request("GET", "/api/jobs", {"Authorization": "Bearer " + token})[0], 200)

    def test_open_only_when_the_operator_says_so(self):
        cfg = os.path.join(self.workdir, "open.yml")
        with open(cfg, "w") as f:
            f.write("dashboard:\n  auth: none\n")
        self.start(token=None, env={"PATCHBAY_CONFIG": cfg})
        self.queue()
        status, _, data = self.request("GET", "/api/jobs")
        self.assertEqual((status, len(json.loads(data))), (200, 1))
        [warning] = self.pb.find_logs("dashboard.auth is none")
        self.assertEqual(warning["level"], "warn")
        self.assertFalse(os.path.exists(os.path.join(self.pb.data_dir, "dashboard-token")))
        # the same from the environment, and a warning at every start
        data_dir = self.pb.data_dir
        self.pb.stop()
        self.start(token=None, env={"DASHBOARD_AUTH": "none"}, data_dir=data_dir)
        self.assertEqual(self.request("GET", "/api/jobs")[0], 200)
        self.assertTrue(self.pb.find_logs("dashboard.auth is none"))

    def test_every_response_is_locked_down(self):
        self.start()
        job = self.queue()
        paths = [("GET", "/jobs", {}), ("GET", "/jobs/%s" % job, {}), ("GET", "/assets/dashboard.js", {}),
                 ("GET", "/assets/dashboard.css", {}), ("GET", "/api/jobs", {"Authorization": "Bearer " + TOKEN}),
                 ("GET", "/api/jobs/999", {"Authorization": "Bearer " + TOKEN}), ("GET", "/api/jobs", {})]
        for method, path, headers in paths:
            status, hdrs, _ = self.request(method, path, headers)
            for needed in CSP_NEEDED:
                self.assertIn(needed, hdrs.get("content-security-policy", ""), path)
            self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", path)
            self.assertEqual(hdrs.get("cache-control"), "no-store", path)
        # the status page too
        status, hdrs, _ = self.request("GET", "/")
        self.assertIn("default-src 'none'", hdrs["content-security-policy"])
        # no inline script in the page: the CSP would block it
        _, _, page = self.request("GET", "/jobs", {"Authorization": "Bearer " + TOKEN})
        self.assertNotRegex(page.decode(), r"<script(?![^>]*\bsrc=)")
        self.assertNotIn(b"style=", page)

    # -- the API

    def test_api_fields_links_filters_and_errors(self):
        self.start()
        a = self.queue(title="<script>alert(1)</script>")
        b = self.queue(number=8)
        status, jobs = self.api("GET", "/api/jobs")
        self.assertEqual(status, 200)
        self.assertEqual([j["id"] for j in jobs], [b, a])
        for field in ("id", "kind", "repo", "number", "status", "attempts", "delivery", "created_at", "html_url"):
            self.assertIn(field, jobs[0])
        self.assertEqual(jobs[1]["title"], "<script>alert(1)</script>")  # data, escaped by JSON itself
        self.assertEqual(jobs[0]["html_url"], "https://github.com/octo-org/hello-world/issues/8")
        self.assertEqual(self.api("GET", "/api/jobs?status=queued")[0], 200)
        self.assertEqual(self.api("GET", "/api/jobs?status=bogus")[0], 400)
        self.assertEqual(self.api("GET", "/api/jobs?limit=1")[1][0]["id"], b)
        status, job = self.api("GET", "/api/jobs/%s" % a)
        self.assertEqual((status, job["id"], job["status"]), (200, a, "queued"))
        self.assertEqual(self.api("GET", "/api/jobs/424242")[0], 404)
        self.assertEqual(self.api("GET", "/api/jobs/abc")[0], 404)
        status, lines = self.api("GET", "/api/jobs/%s/log" % a)
        self.assertEqual(status, 200)
        self.assertIsInstance(lines, list)

    def test_actions_need_the_header_and_follow_the_job_states(self):
        self.start()
        job = self.queue()
        self.assertEqual(self.api("POST", "/api/jobs/%s/cancel" % job)[0], 403)
        status, r = self.api("POST", "/api/jobs/%s/cancel" % job, {"X-Patchbay-Action": "cancel"})
        self.assertEqual((status, r["result"]), (200, "cancelled"))
        self.assertEqual(self.db.job(job)["status"], "cancelled")
        # a cancelled job cannot be cancelled again, but can be retried
        self.assertEqual(self.api("POST", "/api/jobs/%s/cancel" % job, {"X-Patchbay-Action": "cancel"})[0], 409)
        status, r = self.api("POST", "/api/jobs/%s/retry" % job, {"X-Patchbay-Action": "retry"})
        self.assertEqual((status, r["result"]), (200, "queued again"))
        self.assertEqual(self.db.job(job)["status"], "queued")
        self.assertEqual(self.api("POST", "/api/jobs/999/retry", {"X-Patchbay-Action": "retry"})[0], 404)
        self.assertEqual(self.api("GET", "/api/jobs/%s/cancel" % job)[0], 404)

    def test_redis_down_is_a_clear_503(self):
        self.start()
        self.r.kill()
        status, body = self.api("GET", "/api/jobs")
        self.assertEqual(status, 503)
        self.assertIn("Redis", body["error"])

    # -- in a browser

    def test_in_a_real_browser(self):
        if not os.path.exists("/usr/bin/chromium"):
            raise unittest.SkipTest("SKIPPED: Debian's chromium is not installed (apt-get install chromium)")
        if not os.path.isdir(os.path.join(NODE_MODULES, "playwright-core")):
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix",
                                os.path.join(harness.SOURCE_DIR, "tests")], capture_output=True, timeout=180)
            if r.returncode != 0:
                raise unittest.SkipTest("SKIPPED: npm could not install playwright-core (no registry?)")
        self.start(command="run")
        running = self.queue(title="Make the parser handle empty input", noop_sleep_ms=120000)
        script = self.queue(title="<script>alert('x')</script><img src=x onerror=alert(1)>", number=9)
        harness.wait_for(lambda: self.db.job(running)["status"] == "running" and
                         self.db.job(script)["status"] == "succeeded", 20, what="the jobs to run")
        signal = os.path.join(self.workdir, "watching")
        artifacts = os.path.join(os.getcwd(), "artifacts")
        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)

        def feed_log():
            # the job writes more of its log while the page watches
            harness.wait_for(lambda: os.path.exists(signal), 60, what="the browser to watch")
            for msg in ("step one done", "step two done"):
                self.db.call("XADD", "patchbay:log:" + running, "*", "ts", str(int(time.time() * 1000)),
                             "level", "info", "msg", msg)
                time.sleep(0.5)
        feeder = threading.Thread(target=feed_log, daemon=True)
        feeder.start()
        base = "http://127.0.0.1:%d" % self.pb.port
        p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "dashboard_browser.mjs"), base, TOKEN,
                            running, script, shot, signal], cwd=os.path.join(harness.SOURCE_DIR, "tests"),
                           capture_output=True, text=True, timeout=180)
        feeder.join(10)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertNotIn("error", seen, seen.get("error"))
        self.assertEqual(seen["without_token_status"], 401)
        self.assertTrue(seen["list_url"].endswith("/jobs"), "the token stays in the address bar")
        self.assertEqual({r["id"]: r["status"] for r in seen["rows"]}, {running: "running", script: "succeeded"})
        self.assertIn("queued -> running", seen["log_before"])
        self.assertNotIn("step two done", seen["log_before"])
        self.assertIn("step two done", seen["log_after"])
        self.assertEqual(seen["status_after_cancel"], "cancelled")
        harness.wait_for(lambda: self.db.job(running)["status"] == "cancelled", 10, what="the job to be cancelled")
        # the title with a script tag is text: no dialog ran, no element was made of it
        self.assertEqual(seen["script_title"], "<script>alert('x')</script><img src=x onerror=alert(1)>")
        self.assertEqual(seen["script_title_children"], 0)
        self.assertEqual(seen["dialogs"], [])
        self.assertEqual(seen["script_elements_on_job_page"], 1)  # only dashboard.js
        self.assertEqual(seen["console_errors"], [])
        self.assertTrue(os.path.getsize(shot) > 1000)
        print("\nscreenshot: %s" % shot)


if __name__ == "__main__":
    harness.main()
