"""Replays all of github.com's example payloads from @octokit/webhooks-examples.

Every one must be answered 200 or 202 (never an error, never a crash), and the
jobs queued must be exactly those a reference reading of DESIGN.md's trigger
rules expects: nothing unexpected is queued. The package is installed with
npm during the test; without the npm registry the test is skipped and says so.
"""

import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import post_delivery  # noqa: E402

NPM_DIR = os.path.join(harness.SOURCE_DIR, "tests")  # tests/package.json lists the test tools
PACKAGE = "@octokit/webhooks-examples"
INDEX = os.path.join(NPM_DIR, "node_modules", "@octokit", "webhooks-examples", "api.github.com", "index.json")
TRUSTED = {"OWNER", "MEMBER", "COLLABORATOR"}
MENTION = re.compile(r"(?<![\w@./`-])@patchbay(?![\w-]|/)", re.I)


def install():
    if os.path.exists(INDEX):
        return None
    os.makedirs(NPM_DIR, exist_ok=True)
    try:
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR],
                           capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "npm is not available (%s)" % e
    if p.returncode != 0 or not os.path.exists(INDEX):
        return "npm could not install %s (no registry?): %s" % (PACKAGE, p.stderr.strip()[-300:])
    return None


def expected_kind(event, p):
    """The reference: what DESIGN.md says should happen, written independently of the C router."""
    if "installation" not in p:
        return None
    sender = p.get("sender") or {}
    if sender.get("type") == "Bot" or sender.get("login", "").lower() == "patchbay[bot]":
        return None
    action = p.get("action")
    if event == "issue_comment" and action == "created":
        c = p["comment"]
        if MENTION.search(c["body"] or "") and c["author_association"] in TRUSTED:
            return "mention"
    if event == "issues" and action == "labeled" and p.get("label", {}).get("name", "").lower() == "patchbay":
        return "fix"
    if event == "pull_request" and action in ("opened", "ready_for_review", "synchronize"):
        pr = p["pull_request"]
        if pr["user"]["login"].lower() != "patchbay[bot]" and pr["author_association"] in TRUSTED:
            return "review"
    if event == "pull_request_review_comment" and action == "created":
        c = p["comment"]
        if MENTION.search(c["body"] or "") and c["author_association"] in TRUSTED:
            return "mention"
    return None


def identity(event, p):
    """The event itself, whatever delivery carries it: the corpus holds copies of one event
    (the same pull request opened, with the same head), and those make one job."""
    repo = p["repository"]["full_name"]
    if event in ("issue_comment", "pull_request_review_comment"):
        return (event, p["action"], repo, p["comment"]["id"])
    if event == "issues":
        return (event, p["action"], repo, p["issue"]["number"], p["issue"].get("updated_at"), p["label"]["name"])
    return (event, p["action"], repo, p["pull_request"]["number"], p["pull_request"]["head"]["sha"])


class OctokitExamples(harness.TestCase):
    def test_every_github_example_is_answered_and_only_triggers_queue(self):
        why = install()
        if why:
            raise unittest.SkipTest("SKIPPED: " + why)
        with open(INDEX) as f:
            groups = json.load(f)
        r = self.redis()
        pb = self.patchbay(redis_url=r.url)
        c = pb.conn()
        answered, queued, expected, duplicates, duplicates_expected = {}, set(), set(), set(), set()
        seen = set()
        total = 0
        for group in groups:
            for i, example in enumerate(group["examples"]):
                total += 1
                key = (group["name"], i)
                status, body, _ = post_delivery(c, group["name"], json.dumps(example).encode())
                answered[status] = answered.get(status, 0) + 1
                self.assertIn(status, (200, 202), (key, body))
                if status == 202:
                    queued.add(key)
                elif isinstance(body, dict) and "duplicate" in body:
                    duplicates.add(key)
                if expected_kind(group["name"], example):
                    event = identity(group["name"], example)
                    (duplicates_expected if event in seen else expected).add(key)
                    seen.add(event)
        c.close()
        print("\n%d payloads: %s; %d queued, %d copies of an event already queued" %
              (total, answered, len(queued), len(duplicates)))
        self.assertEqual(total, 329)
        self.assertEqual(queued, expected)
        self.assertEqual(duplicates, duplicates_expected)
        db = r.client()
        self.assertEqual(db.stream_len(), len(queued))
        db.close()
        self.assertIsNone(pb.proc.poll())


if __name__ == "__main__":
    harness.main()
