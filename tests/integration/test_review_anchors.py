#!/usr/bin/python3
"""Reviews built by patchbay's anchoring engine are accepted by GitHub's rules.

The unit test binary test_anchor, in its export mode, writes pairs of file
trees (before and after: edits, CRLF files, files without a final newline,
new, deleted, renamed, binary and mode-changed files, odd names). For each
pair this test makes a repository and a pull request in the local fake
GitHub (tests/fakes), whose real git computes the diff, and saves what the
API serves: the diff media type, the files JSON (all pages) and the head
SHA. The binary then parses both, aims findings in and around the hunks and
far outside them, and writes the review bodies it would POST. Each is POSTed
to /repos/{o}/{r}/pulls/{n}/reviews as the App's installation: the fake
rejects the whole review with 422 if a single anchor breaks GitHub's rules,
so a 200 for every review, with as many inline comments as the engine
placed, proves the anchors. A tampered comment must still get a 422, so the
check is known to bite.

    /usr/bin/python3 tests/integration/test_review_anchors.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "fakes")))

import harness  # noqa: E402
import github as fakegithub  # noqa: E402  (tests/fakes/github.py)
import ghfake_keys  # noqa: E402

APP_ID = 4242
INSTALLATION = 91
OWNER = "acme"


def unit_binary():
    """test_anchor sits next to the patchbay binary's tests/ directory."""
    path = os.path.join(os.path.dirname(harness.BIN), "tests", "test_anchor")
    if not os.access(path, os.X_OK):
        raise AssertionError("unit test binary not built: %s" % path)
    return path


class ReviewAnchorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pbtest-review-")
        cls.keys = ghfake_keys.generate_rsa_keypair(os.path.join(cls.tmp, "keys"))
        cls.fake = fakegithub.FakeGitHub(APP_ID, "patchbay", cls.keys["public_pem"],
                                         os.path.join(cls.tmp, "git"))
        cls.fake.start()
        cls.cases = os.path.join(cls.tmp, "cases")
        os.makedirs(cls.cases)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        if os.environ.get("PATCHBAY_KEEP_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- API as the App's installation ---------------------------------------
    def token(self):
        jwt = ghfake_keys.make_app_jwt(self.keys["pkcs1_pem"], APP_ID)
        st, tok = self.api("POST", "/app/installations/%d/access_tokens" % INSTALLATION, {},
                           auth="Bearer " + jwt)
        self.assertEqual(st, 201, tok)
        return "token " + tok["token"]

    def api(self, method, path, body=None, auth=None, accept="application/vnd.github+json"):
        h = {"Accept": accept, "User-Agent": "patchbay-test", "X-GitHub-Api-Version": "2022-11-28"}
        if auth:
            h["Authorization"] = auth
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(self.fake.api + path, data, h, method=method)
        try:
            resp = urllib.request.urlopen(req, timeout=60 * harness.SLOW)
        except urllib.error.HTTPError as e:
            resp = e
        raw = resp.read()
        if "json" in (resp.headers.get("Content-Type") or ""):
            return resp.status, json.loads(raw)
        return resp.status, raw

    def run_export(self, stage):
        env = dict(os.environ, PATCHBAY_REVIEW_EXPORT_DIR=self.cases,
                   PATCHBAY_REVIEW_EXPORT_STAGE=stage)
        p = subprocess.run([unit_binary()], env=env, capture_output=True, text=True,
                           timeout=120 * harness.SLOW)
        self.assertEqual(p.returncode, 0, "test_anchor export %s failed:\n%s\n%s"
                         % (stage, p.stdout, p.stderr))
        return p.stdout

    # -- the test ------------------------------------------------------------
    def test_every_review_is_accepted(self):
        self.run_export("cases")
        names = sorted(n for n in os.listdir(self.cases) if n.startswith("case-"))
        self.assertGreaterEqual(len(names), 5)
        repos = []
        for name in names:
            d = os.path.join(self.cases, name)
            with open(os.path.join(d, "base.json"), encoding="utf-8") as f:
                base = json.load(f)
            with open(os.path.join(d, "head.json"), encoding="utf-8") as f:
                head = json.load(f)
            full = "%s/review-%s" % (OWNER, name)
            self.fake.create_repo(full, files=base)
            self.fake.commit(full, "feature", head, message="Change " + name)
            pr = self.fake.add_pull(full, "feature", title="Review me " + name, user="octocat")
            repos.append((name, full, pr["number"]))
        self.fake.add_installation(INSTALLATION, OWNER, [r[1] for r in repos])
        token = self.token()

        # what GitHub serves for each pull request
        for name, full, number in repos:
            d = os.path.join(self.cases, name)
            st, diff = self.api("GET", "/repos/%s/pulls/%d" % (full, number), auth=token,
                                accept="application/vnd.github.diff")
            self.assertEqual(st, 200)
            with open(os.path.join(d, "diff.txt"), "wb") as f:
                f.write(diff)
            files, page = [], 1
            while True:
                st, batch = self.api("GET", "/repos/%s/pulls/%d/files?per_page=100&page=%d"
                                     % (full, number, page), auth=token)
                self.assertEqual(st, 200, batch)
                files += batch
                if len(batch) < 100:
                    break
                page += 1
            with open(os.path.join(d, "files.json"), "w", encoding="utf-8") as f:
                json.dump(files, f)
            st, pr = self.api("GET", "/repos/%s/pulls/%d" % (full, number), auth=token)
            with open(os.path.join(d, "head_sha"), "w") as f:
                f.write(pr["head"]["sha"])

        out = self.run_export("reviews")
        print(out, end="")

        totals = {"inline": 0, "summary": 0, "moved": 0, "suggestions": 0, "changes": 0}
        for name, full, number in repos:
            d = os.path.join(self.cases, name)
            with open(os.path.join(d, "expect.json")) as f:
                expect = json.load(f)
            for which, key in (("review-diff.json", "inline_diff"),
                               ("review-files.json", "inline_files")):
                with open(os.path.join(d, which), encoding="utf-8") as f:
                    body = json.load(f)
                self.assertIn(body["event"], ("COMMENT", "REQUEST_CHANGES"))
                self.assertEqual(len(body["comments"]), expect[key])
                st, rv = self.api("POST", "/repos/%s/pulls/%d/reviews" % (full, number), body,
                                  auth=token)
                self.assertEqual(st, 200, "%s %s refused: %s" % (name, which, rv))
                self.assertEqual(rv["commit_id"], body["commit_id"])
                self.assertEqual(rv["state"], {"COMMENT": "COMMENTED",
                                               "REQUEST_CHANGES": "CHANGES_REQUESTED"}[body["event"]])
                st, posted = self.api("GET", "/repos/%s/pulls/%d/reviews/%d/comments?per_page=100"
                                      % (full, number, rv["id"]), auth=token)
                self.assertEqual(len(posted), expect[key])
                # what people see: the summary with its coverage table, nobody pinged
                self.assertIn("#### Coverage", rv["body"])
                self.assertIn("| File | Status | Diff lines | Note |", rv["body"])
                for text in [rv["body"]] + [c["body"] for c in posted]:
                    self.assertNotIn("@octocat", text)
                    self.assertNotIn("hidden", text)
                if which == "review-diff.json":
                    totals["inline"] += expect["inline_diff"]
                    totals["summary"] += expect["summary_diff"]
                    totals["moved"] += expect["moved_diff"]
                    totals["suggestions"] += sum("```suggestion" in c["body"] for c in posted)
                    totals["changes"] += body["event"] == "REQUEST_CHANGES"
        print("accepted: %s" % totals)
        # the cases must reach every path, or a pass proves little
        for k, v in totals.items():
            self.assertGreater(v, 0, k)

        # and the fake does bite: one comment moved off the diff refuses the review
        name, full, number = repos[0]
        with open(os.path.join(self.cases, name, "review-diff.json"), encoding="utf-8") as f:
            body = json.load(f)
        self.assertTrue(body["comments"])
        body["comments"][0]["line"] = 99999
        body["comments"][0].pop("start_line", None)
        body["comments"][0].pop("start_side", None)
        st, err = self.api("POST", "/repos/%s/pulls/%d/reviews" % (full, number), body, auth=token)
        self.assertEqual(st, 422, err)
        self.assertIn("must be part of the diff", err["errors"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
