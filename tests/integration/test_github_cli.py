"""patchbay as a GitHub App, against the local fake GitHub: `token`,
`check-config`'s call to GET /app, `reconcile`, and the periodic reconcile of
`run`. JWTs are checked with PyJWT and the App's public key, independently
of the C code that signed them."""

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid

import jwt  # PyJWT, Debian's python3-jwt

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fakes"))
import harness  # noqa: E402
from harness import BIN  # noqa: E402
import ghfake_keys  # noqa: E402
from github import FakeGitHub  # noqa: E402


class GitHubCLI(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.keys = ghfake_keys.generate_rsa_keypair(os.path.join(self.workdir, "keys"))
        self.gh = FakeGitHub(app_id=1234, slug="patchbay", public_key_pem=self.keys["public_pem"],
                             git_root=os.path.join(self.workdir, "git"))
        self.gh.start()
        self.gh.create_repo("octo/hello", private=True, files={"README.md": "hi\n"})
        self.gh.add_installation(7, "octo", repositories=["octo/hello"])

    def tearDown(self):
        self.gh.stop()
        super().tearDown()

    def env(self, key="pkcs1", **more):
        e = {"PATH": os.environ.get("PATH", ""), "HOME": self.workdir, "PATCHBAY_CONFIG": "",
             "PATCHBAY_DATA_DIR": os.path.join(self.workdir, "data"), "APP_ID": "1234",
             "PRIVATE_KEY_PATH": self.keys[key], "WEBHOOK_SECRET": harness.SECRET,
             "GITHUB_API_URL": self.gh.api, "GITHUB_URL": self.gh.web, "LOG_LEVEL": "warn"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(more)
        return e

    def run_cli(self, *args, env=None):
        p = subprocess.run([BIN] + list(args), env=env or self.env(), capture_output=True, text=True,
                           timeout=60 * harness.SLOW)
        return p.returncode, p.stdout, p.stderr

    def run_tty(self, *args, env=None, cwd=None):
        """Runs with stdout on a pseudo-terminal, as a person at a shell would."""
        master, slave = pty.openpty()
        p = subprocess.Popen([BIN] + list(args), env=env or self.env(), stdout=slave, stderr=subprocess.PIPE,
                             cwd=cwd)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 60 * harness.SLOW
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        os.close(master)
        err = p.stderr.read().decode()
        p.wait(10)
        return p.returncode, out.decode().replace("\r\n", "\n"), err

    # -- token

    def test_token_only_to_a_terminal(self):
        code, out, err = self.run_cli("token")
        self.assertEqual(code, 2)
        self.assertEqual(out, "")
        self.assertIn("only to a terminal", err)

    def test_jwt_from_both_key_formats_verifies_with_the_public_key(self):
        other = ghfake_keys.generate_rsa_keypair(os.path.join(self.workdir, "other"))
        for key in ("pkcs1", "pkcs8"):
            code, out, err = self.run_tty("token", env=self.env(key))
            self.assertEqual(code, 0, err)
            token = out.strip()
            claims = jwt.decode(token, self.keys["public_pem"], algorithms=["RS256"])
            now = time.time()
            self.assertEqual(str(claims["iss"]), "1234")
            self.assertLessEqual(claims["iat"], now - 50)           # backdated for clock drift
            self.assertLessEqual(claims["exp"], now + 600)          # GitHub's 10-minute cap
            self.assertGreater(claims["exp"], now + 300)
            with self.assertRaises(jwt.InvalidSignatureError):
                jwt.decode(token, other["public_pem"], algorithms=["RS256"])

    def test_token_needs_no_redis_and_no_data_dir(self):
        """A fresh machine: no REDIS_URL, the default ./data not made yet. The JWT is signed from
        the key alone, an installation token is minted for the call, and neither leaves a data dir."""
        fresh = os.path.join(self.workdir, "fresh")
        os.mkdir(fresh)
        env = self.env()
        del env["PATCHBAY_DATA_DIR"]
        code, out, err = self.run_tty("token", env=env, cwd=fresh)
        self.assertEqual(code, 0, err)
        self.assertNotIn("REDIS_URL", err)
        claims = jwt.decode(out.strip(), self.keys["public_pem"], algorithms=["RS256"])
        self.assertEqual(str(claims["iss"]), "1234")
        code, out, err = self.run_tty("token", "--installation", "7", env=env, cwd=fresh)
        self.assertEqual(code, 0, err)
        self.assertTrue(out.strip().startswith("ghs_"), out)
        self.assertEqual(os.listdir(fresh), [])

    def test_installation_token_shared_by_two_processes(self):
        r = self.redis()
        env = self.env(REDIS_URL=r.url)
        code, first, err = self.run_tty("token", "--installation", "7", "--repo", "octo/hello", env=env)
        self.assertEqual(code, 0, err)
        self.assertIn("expires", err)
        code, second, err = self.run_tty("token", "--installation", "7", "--repo", "octo/hello", env=env)
        self.assertEqual(code, 0, err)
        self.assertEqual(first, second)
        self.assertEqual(self.gh.state()["mint_count"], 1)
        token = first.strip()
        # it works, narrowed to the one repository
        import urllib.request
        req = urllib.request.Request(self.gh.api + "/repos/octo/hello", headers={"Authorization": "token " + token})
        with urllib.request.urlopen(req) as resp:
            self.assertEqual(json.loads(resp.read())["full_name"], "octo/hello")
        # and never printed into a log or Redis in clear anywhere but the token key
        code, _, err = self.run_tty("token", "--installation", "7", "--repo", "other/repo", env=env)
        self.assertEqual(code, 1)

    # -- check-config

    def test_check_config_proves_the_credentials(self):
        code, out, err = self.run_cli("check-config")
        self.assertEqual(code, 0, out + err)
        self.assertIn("GitHub App: patchbay (id 1234)", out)
        self.gh.add_app(1234, "patchbay", public_key_pem=self.keys["public_pem"], events=["issues"])
        code, out, _ = self.run_cli("check-config")
        self.assertIn("not subscribed to the issue_comment event", out)
        self.assertIn("not subscribed to the pull_request_review_comment event", out)
        # a key GitHub does not know
        other = ghfake_keys.generate_rsa_keypair(os.path.join(self.workdir, "other"))
        code, out, _ = self.run_cli("check-config", env=self.env(PRIVATE_KEY_PATH=other["pkcs1"]))
        self.assertEqual(code, 2)
        self.assertIn("GitHub refused the App's credentials", out)

    # -- reconcile

    def seed_deliveries(self, db):
        now = time.time()
        failed = [str(uuid.uuid4()) for _ in range(3)]
        for g in failed:
            self.gh.add_delivery(guid=g, status_code=0, delivered_at=now - 3600)
        # failed twice: one ask, for its newest attempt
        twice = str(uuid.uuid4())
        self.gh.add_delivery(guid=twice, status_code=502, delivered_at=now - 7200)
        self.gh.add_delivery(guid=twice, status_code=503, delivered_at=now - 3000, redelivery=True)
        # failed at GitHub's end but patchbay has it (answered after GitHub's timeout)
        queued = str(uuid.uuid4())
        self.gh.add_delivery(guid=queued, status_code=0, delivered_at=now - 100)
        db.call("SET", "patchbay:delivery:" + queued, "42")
        # failed, then redelivered successfully
        recovered = str(uuid.uuid4())
        self.gh.add_delivery(guid=recovered, status_code=503, delivered_at=now - 500)
        self.gh.add_delivery(guid=recovered, status_code=202, delivered_at=now - 400, redelivery=True)
        # fine, and too old to matter
        self.gh.add_delivery(status_code=200, delivered_at=now - 60)
        self.gh.add_delivery(status_code=0, delivered_at=now - 4 * 86400)
        return set(failed + [twice])

    def test_reconcile_redelivers_exactly_the_missing_failed_ones(self):
        r = self.redis()
        db = r.client()
        missing = self.seed_deliveries(db)
        env = self.env(REDIS_URL=r.url)
        newest = {}
        for d in self.gh.state()["deliveries"]:
            if d["guid"] in missing and d["id"] > newest.get(d["guid"], 0):
                newest[d["guid"]] = d["id"]
        code, out, err = self.run_cli("reconcile", "--dry-run", env=env)
        self.assertEqual(code, 0, err)
        self.assertIn("4 would be redelivered", out)
        self.assertEqual(self.gh.state()["redelivery_attempts"], [])
        code, out, err = self.run_cli("reconcile", env=env)
        self.assertEqual(code, 0, err)
        self.assertIn("4 redelivered now", out)
        asked = {a["guid"] for a in self.gh.state()["redelivery_attempts"]}
        self.assertEqual(asked, missing)
        # each by its newest attempt (the failed-twice one by its redelivery)
        ids = {a["guid"]: a["delivery_id"] for a in self.gh.state()["redelivery_attempts"]}
        self.assertEqual(ids, newest)
        # a second run asks for nothing again
        code, out, _ = self.run_cli("reconcile", env=env)
        self.assertIn("0 redelivered now", out)
        self.assertEqual(len(self.gh.state()["redelivery_attempts"]), 4)
        db.close()

    def test_run_reconciles_periodically_with_one_process(self):
        r = self.redis()
        db = r.client()
        missing = self.seed_deliveries(db)
        env = {"APP_ID": "1234", "PRIVATE_KEY_PATH": self.keys["pkcs1"], "GITHUB_API_URL": self.gh.api,
               "GITHUB_URL": self.gh.web}
        a = self.patchbay(command="serve", redis_url=r.url, env=env)
        b = self.patchbay(command="serve", redis_url=r.url, env=env)
        harness.wait_for(lambda: len(self.gh.state()["redelivery_attempts"]) >= 4, 20,
                         what="the periodic reconcile")
        time.sleep(1)
        self.assertEqual({x["guid"] for x in self.gh.state()["redelivery_attempts"]}, missing)
        logs = a.log_text() + b.log_text()
        self.assertIn("missed deliveries redelivered", logs)
        db.close()


if __name__ == "__main__":
    harness.main()
