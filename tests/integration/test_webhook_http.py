"""Every row of DESIGN.md's HTTP table, against the real binary and a real redis-server.

Each test asserts what GitHub (or an operator) would see: the status, the JSON
answer, whether the connection stayed open, and what landed in Redis.
"""

import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import SECRET, post_delivery, sign  # noqa: E402


def raw_request(port, data, read_timeout=10):
    """Sends raw bytes and returns everything the server answers until it closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout * harness.SLOW)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and len(body) >= int(line.split(b":")[1]):
                        return out
        return out
    finally:
        s.close()


class WebhookHTTP(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.r = self.redis()
        self.pb = self.patchbay(redis_url=self.r.url)
        self.db = self.r.client()
        self.conn = self.pb.conn()

    def tearDown(self):
        self.conn.close()
        self.db.close()
        super().tearDown()

    def post(self, event, payload, **kw):
        return post_delivery(self.conn, event, payload, **kw)

    # -- 202: actionable, durably queued

    def test_mention_queues_a_fix_job_with_what_a_worker_needs(self):
        status, body, delivery = self.post("issue_comment", harness.issue_comment(
            body="Thanks!\n\n@patchbay fix the null check in parser.c", comment_id=555, installation=99))
        self.assertEqual(status, 202)
        job = self.db.job(body["job"])
        self.assertEqual(job["kind"], "fix")
        self.assertEqual(job["status"], "queued")
        self.assertEqual(job["repo"], "octo-org/hello-world")
        self.assertEqual(job["number"], "42")
        self.assertEqual(job["installation"], "99")
        self.assertEqual(job["comment_id"], "555")
        self.assertEqual(job["sender"], "octocat")
        self.assertEqual(job["event"], "issue_comment")
        self.assertEqual(job["instruction"], "fix the null check in parser.c")
        self.assertEqual(job["delivery"], delivery)
        self.assertEqual(job["attempts"], "0")
        self.assertRegex(job["created_at_ms"], r"^\d{13}$")  # `jobs show` prints it as created_at
        # what the scripts read is a field apiece; the rest is one field: Redis pays per argument
        raw = self.db.hgetall("patchbay:job:" + body["job"])
        self.assertEqual(sorted(raw), ["attempts", "created_at_ms", "delivery", "id", "kind", "number", "repo",
                                       "sender", "status", "webhook"])
        self.assertEqual(json.loads(raw["webhook"])["instruction"], "fix the null check in parser.c")
        # what the worker reads of the webhook is in the record; the body itself is not stored
        sent = harness.issue_comment(body="Thanks!\n\n@patchbay fix the null check in parser.c", comment_id=555,
                                     installation=99)
        self.assertEqual(job["issue_body"], sent["issue"]["body"])
        self.assertEqual(job["issue_comments"], "3")
        self.assertEqual(job["comment_body"], "Thanks!\n\n@patchbay fix the null check in parser.c")
        self.assertEqual(job["sender_id"], "583231")
        self.assertEqual(job["private"], "0")
        self.assertNotIn("payload_key", job)
        self.assertEqual(self.db.call("KEYS", "patchbay:payload:*"), [])
        entries = self.db.call("XRANGE", "patchbay:queue", "-", "+")
        self.assertEqual([e[1] for e in entries], [[b"job", body["job"].encode()]])

    def test_deliveries_gather_while_redis_is_busy(self):
        # group commit: while a loop's transaction is in flight, its next deliveries wait for the
        # answer and go to Redis together (Redis pays per transaction); each is still one job
        self.db.call("CONFIG", "RESETSTAT")
        self.db.call("CLIENT", "PAUSE", "400", "WRITE")  # the first transactions wait in Redis
        answers = []

        def deliver(i):
            c = self.pb.conn()
            try:
                answers.append(post_delivery(c, "issue_comment", harness.issue_comment(number=100 + i))[:2])
            finally:
                c.close()
        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * harness.SLOW)
        self.assertEqual(sorted(a[0] for a in answers), [202] * 24)
        self.assertEqual(len({a[1]["job"] for a in answers}), 24)
        stats = self.db.call("INFO", "commandstats").decode()
        execs = int(re.search(r"cmdstat_exec:calls=(\d+)", stats).group(1))
        # each event loop: one transaction sent at once, one with everything that came meanwhile
        self.assertLessEqual(execs, 6, stats)

    def test_trigger_label_queues_a_fix(self):
        status, body, _ = self.post("issues", harness.issues_labeled(label="patchbay"))
        self.assertEqual(status, 202)
        job = self.db.job(body["job"])
        self.assertEqual((job["kind"], job["label"], job["number"]), ("fix", "patchbay", "7"))

    def test_commands_and_followups(self):
        cases = [
            (harness.issue_comment(body="@patchbay review", on_pr=True, number=5), "review"),
            (harness.issue_comment(body="@patchbay help", number=6), "help"),
            (harness.issue_comment(body="@PatchBay please also add a test", on_pr=True,
                                   issue_author="patchbay[bot]", number=8), "followup"),
        ]
        for payload, kind in cases:
            status, body, _ = self.post("issue_comment", payload)
            self.assertEqual(status, 202, body)
            self.assertEqual(self.db.job(body["job"])["kind"], kind)
        status, body, _ = self.post("pull_request_review_comment", harness.review_comment(line=17))
        self.assertEqual(status, 202, body)
        job = self.db.job(body["job"])
        self.assertEqual((job["kind"], job["path"], job["line"]), ("followup", "src/parser.c", "17"))
        status, body, _ = self.post("pull_request", harness.pull_request(action="opened"))
        self.assertEqual(status, 202, body)
        job = self.db.job(body["job"])
        self.assertEqual((job["kind"], job["auto"], job["head_sha"]),
                         ("review", "1", "ec26c3e57ca3a959ca5aad62de7213c562f8c821"))

    def test_stop_cancels_the_queued_job_at_once(self):
        status, body, _ = self.post("issue_comment", harness.issue_comment(number=77))
        first = body["job"]
        status, body, _ = self.post("issue_comment", harness.issue_comment(body="@patchbay stop", number=77))
        self.assertEqual(status, 202)
        self.assertEqual(self.db.job(body["job"])["kind"], "stop")
        self.assertEqual(self.db.job(first)["status"], "cancelled")
        self.assertIn("stopped by octocat", self.db.job(first)["error"])

    # -- 200: not actionable, with the reason

    def test_not_actionable_deliveries_are_ignored_with_a_reason(self):
        cases = [
            ("issue_comment", harness.issue_comment(body="no mention here"), "no mention of @patchbay"),
            ("issue_comment", harness.issue_comment(body="`@patchbay fix`"), "no mention"),
            ("issue_comment", harness.issue_comment(body="> @patchbay fix\nthanks"), "no mention"),
            ("issue_comment", harness.issue_comment(action="edited"), "issue_comment.edited is not a trigger"),
            ("issue_comment", harness.issue_comment(association="NONE"), "author_association NONE"),
            ("issue_comment", harness.issue_comment(association="CONTRIBUTOR"), "not allowed"),
            ("issue_comment", harness.issue_comment(sender="dependabot[bot]", sender_type="Bot"), "is a bot"),
            ("issue_comment", harness.issue_comment(sender="patchbay[bot]", sender_type="Bot"), "patchbay itself"),
            ("issues", harness.issues_labeled(label="bug"), "label bug is not a trigger label"),
            ("issues", harness.issues_labeled(action="opened"), "issues.opened is not a trigger"),
            ("pull_request", harness.pull_request(action="closed"), "pull_request.closed"),
            ("pull_request", harness.pull_request(author="patchbay[bot]"), "own pull requests"),
            ("pull_request_review_comment", harness.review_comment(pr_author="octocat"), "patchbay's own"),
            ("ping", {"zen": "Design for failure.", "hook_id": 1}, "event ping is not a trigger"),
            ("installation", {"action": "created"}, "event installation is not a trigger"),
            ("issue_comment", {k: v for k, v in harness.issue_comment().items() if k != "installation"},
             "no installation in the payload"),
        ]
        for event, payload, reason in cases:
            status, body, _ = self.post(event, payload)
            self.assertEqual(status, 200, (event, body))
            self.assertIn(reason, body["ignored"], event)
        self.assertEqual(self.db.stream_len(), 0)

    def test_a_megabyte_of_at_signs_is_ignored_quickly(self):
        payload = harness.issue_comment(body="@" * (1 << 20))
        t0 = time.monotonic()
        status, body, _ = self.post("issue_comment", payload)
        self.assertEqual(status, 200)
        self.assertIn("no mention", body["ignored"])
        self.assertLess(time.monotonic() - t0, 5 * harness.SLOW)

    # -- 200: duplicate

    def test_redelivery_answers_duplicate_and_makes_no_second_job(self):
        payload = harness.issue_comment()
        status, first, delivery = self.post("issue_comment", payload)
        self.assertEqual(status, 202)
        for _ in range(3):
            status, body, _ = self.post("issue_comment", payload, delivery=delivery)
            self.assertEqual((status, body), (200, {"duplicate": first["job"]}))
        self.assertEqual(self.db.stream_len(), 1)

    def test_a_replayed_body_under_a_new_delivery_id_is_a_duplicate(self):
        """GitHub signs the body only: a captured delivery posted again with a fresh
        X-GitHub-Delivery is still the same comment, label or push, and makes no second job."""
        events = [("issue_comment", harness.issue_comment(number=61)),
                  ("issue_comment", harness.issue_comment(body="@patchbay stop", number=61)),
                  ("issues", harness.issues_labeled(number=62)),
                  ("pull_request", harness.pull_request(action="synchronize", number=63)),
                  ("pull_request_review_comment", harness.review_comment(number=64))]
        for event, payload in events:
            body = json.dumps(payload).encode()
            status, first, _ = self.post(event, body)
            self.assertEqual(status, 202, (event, first))
            for _ in range(2):
                status, again, _ = self.post(event, body)  # the same bytes, a new delivery id each time
                self.assertEqual((status, again), (200, {"duplicate": first["job"]}), event)
        self.assertEqual(self.db.stream_len(), len(events))
        self.assertEqual(len(self.db.job_ids()), len(events))
        # a replay leaves nothing behind but its delivery id
        self.assertEqual(self.db.call("KEYS", "patchbay:payload:*"), [])
        self.assertEqual(len(self.db.call("KEYS", "patchbay:event:*")), len(events))

    def test_the_same_trigger_again_later_is_a_new_event(self):
        # the label taken off and put on again: the issue's updated_at moved
        p = harness.issues_labeled(number=65)
        status, first, _ = self.post("issues", p)
        p["issue"]["updated_at"] = "2026-11-24T09:30:00Z"
        status, second, _ = self.post("issues", p)
        self.assertEqual((status, second["job"] != first["job"]), (202, True))
        # a new push to a pull request
        p = harness.pull_request(action="synchronize", number=66)
        status, first, _ = self.post("pull_request", p)
        p["pull_request"]["head"]["sha"] = "0" * 40
        status, second, _ = self.post("pull_request", p)
        self.assertEqual((status, second["job"] != first["job"]), (202, True))
        # another comment with the same words
        status, a, _ = self.post("issue_comment", harness.issue_comment(number=67))
        status, b, _ = self.post("issue_comment", harness.issue_comment(number=67))
        self.assertEqual((status, a["job"] != b["job"]), (202, True))

    # -- 401

    def test_bad_signatures_are_refused_and_nothing_is_queued(self):
        payload = harness.issue_comment()
        body = json.dumps(payload).encode()
        other = json.dumps(harness.issue_comment(body="@patchbay something else")).encode()
        cases = {
            "missing": {"X-Hub-Signature-256": None},
            "wrong secret": {"X-Hub-Signature-256": sign(body, "not the secret")},
            "over other bytes": {"X-Hub-Signature-256": sign(other)},
            "sha1 only": {"X-Hub-Signature-256": None, "X-Hub-Signature": "sha1=" + "0" * 40},
            "truncated": {"X-Hub-Signature-256": sign(body)[:-2]},
            "uppercase prefix": {"X-Hub-Signature-256": sign(body).replace("sha256", "SHA256")},
        }
        for name, headers in cases.items():
            status, answer, _ = self.post("issue_comment", body, headers=headers)
            self.assertEqual(status, 401, name)
            self.assertIn("X-Hub-Signature-256", answer["error"])
        self.assertEqual(self.db.stream_len(), 0)
        metrics = self.metrics()
        for reason in ("missing", "malformed", "mismatch"):
            self.assertIn('patchbay_webhook_signature_failures_total{reason="%s"} 2' % reason, metrics)

    # -- 400

    def test_malformed_requests_are_bad_requests(self):
        good = harness.issue_comment()
        cases = [
            ("missing event", json.dumps(good).encode(), {"X-GitHub-Event": None}, "X-GitHub-Event"),
            ("missing delivery", json.dumps(good).encode(), {"X-GitHub-Delivery": None}, "X-GitHub-Delivery"),
            ("delivery with spaces", json.dumps(good).encode(), {"X-GitHub-Delivery": "a b"}, "X-GitHub-Delivery"),
            ("delivery too long", json.dumps(good).encode(), {"X-GitHub-Delivery": "a" * 65}, "X-GitHub-Delivery"),
            ("delivery with a colon", json.dumps(good).encode(), {"X-GitHub-Delivery": "patchbay:seq"},
             "X-GitHub-Delivery"),
            ("not json", b"action=created&x=1", {}, "not valid JSON"),
            ("truncated json", json.dumps(good).encode()[:-10], {}, "not valid JSON"),
            ("json array", b"[1,2,3]", {}, "not a JSON object"),
            ("empty body", b"", {}, "not valid JSON"),
        ]
        for name, body, headers, reason in cases:
            status, answer, _ = self.post("issue_comment", body, headers=headers)
            self.assertEqual(status, 400, name)
            self.assertIn(reason, answer["error"], name)
        self.assertEqual(self.db.stream_len(), 0)

    def test_json_of_the_wrong_shape_is_a_bad_request(self):
        def mutate(f):
            p = harness.issue_comment()
            f(p)
            return p
        cases = [
            (mutate(lambda p: p.pop("repository")), "repository.full_name is missing"),
            (mutate(lambda p: p["repository"].update(full_name=5)), "repository.full_name is of the wrong type"),
            (mutate(lambda p: p["issue"].update(number="42")), "issue.number is of the wrong type"),
            (mutate(lambda p: p["issue"].update(number=-1)), "issue.number"),
            (mutate(lambda p: p.update(installation={"id": "7"})), "installation.id is of the wrong type"),
            # a payload that holds the handle is read whole (here in the title, where it does not count)
            (mutate(lambda p: (p["comment"].update(body=None), p["issue"].update(title="@patchbay"))), "comment.body"),
            (mutate(lambda p: p.pop("action")), "action is missing"),
            (mutate(lambda p: p.update(sender=[])), "sender.login"),
        ]
        for payload, reason in cases:
            status, answer, _ = self.post("issue_comment", payload)
            self.assertEqual(status, 400, reason)
            self.assertIn(reason, answer["error"])
        self.assertEqual(self.db.stream_len(), 0)
        # one that cannot mention patchbay is ignored without being read: it could only be ignored
        status, answer, _ = self.post("issue_comment", mutate(lambda p: p["comment"].update(body=None)))
        self.assertEqual((status, answer.get("ignored")), (200, "no mention of @patchbay"))

    def test_header_injection_in_the_delivery_id_is_refused(self):
        body = json.dumps(harness.issue_comment()).encode()

        def request(delivery_header):
            return (b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"X-GitHub-Event: issue_comment\r\n" + delivery_header +
                    b"\r\nX-Hub-Signature-256: " + sign(body).encode() +
                    b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

        # values that would reach a Redis key, a log line or a JSON answer
        for value in (b"abc\x00evil", b"abc\x7fevil", b"abc\tevil", b"a b", b"patchbay:seq", b"../../x",
                      b"abc\xc3\xa9", b"%0d%0aX-Evil: 1", b"{\"a\":1}"):
            answer = raw_request(self.pb.port, request(b"X-GitHub-Delivery: " + value))
            self.assertTrue(answer.startswith(b"HTTP/1.1 400"), (value, answer[:80]))
        # an obsolete line folding cannot smuggle a second line into the id:
        # h2o drops the continuation, and the id is what came before it
        answer = raw_request(self.pb.port, request(b"X-GitHub-Delivery: abc\r\n evil"))
        if answer.startswith(b"HTTP/1.1 202"):
            job = json.loads(answer.split(b"\r\n\r\n", 1)[1])["job"]
            self.assertEqual(self.db.job(job)["delivery"], "abc")
        else:
            self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:80])
        self.assertLessEqual(self.db.stream_len(), 1)
        for line in self.pb.log_lines():
            self.assertNotIn("evil", json.dumps(line))

    # -- 413

    def test_a_26_mib_body_gets_413_before_it_is_read(self):
        size = 26 * 1024 * 1024
        head = (b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issue_comment\r\n"
                b"X-GitHub-Delivery: big\r\nX-Hub-Signature-256: sha256=" + b"0" * 64 +
                b"\r\nContent-Length: %d\r\n\r\n" % size)
        answer = raw_request(self.pb.port, head + b"{" * 4096)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:80])
        # and the server is fine afterwards
        status, _, _ = self.post("issue_comment", harness.issue_comment())
        self.assertEqual(status, 202)

    # -- keep-alive on every answer

    def test_keep_alive_survives_every_kind_of_answer(self):
        self.post("issue_comment", harness.issue_comment())
        sock = self.conn.sock
        self.assertIsNotNone(sock)
        answers = [
            self.post("issue_comment", harness.issue_comment())[0],                      # 202
            self.post("issue_comment", harness.issue_comment(body="hi"))[0],             # 200
            self.post("issue_comment", harness.issue_comment(), signature="sha256=0")[0],  # 401
            self.post("issue_comment", b"nope")[0],                                      # 400
        ]
        for path in ("/nope", "/healthz", "/metrics", "/"):
            self.conn.request("GET", path)
            r = self.conn.getresponse()
            r.read()
            answers.append(r.status)
        self.conn.request("GET", "/api/github/webhooks")
        r = self.conn.getresponse()
        r.read()
        answers.append(r.status)
        self.assertEqual(answers, [202, 200, 401, 400, 404, 200, 200, 200, 405])
        self.assertIs(self.conn.sock, sock, "the connection was closed and reopened")

    # -- slow and many clients

    def test_a_body_that_stalls_half_way_is_cut_off(self):
        # request_timeout_ms is 10 s by default; this server uses 1 s (below)
        pb = self.patchbay(redis_url=self.r.url, env={"PATCHBAY_CONFIG": self.write_config(
            "server:\n  request_timeout_ms: 1000\n")})
        body = json.dumps(harness.issue_comment()).encode()
        s = socket.create_connection(("127.0.0.1", pb.port), timeout=15)
        s.sendall(b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issue_comment\r\n"
                  b"X-GitHub-Delivery: stall\r\nX-Hub-Signature-256: " + sign(body).encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])
        t0 = time.monotonic()
        data = s.recv(4096)
        while data and not data.endswith(b"\r\n\r\n") and b"Content-Length" not in data:
            more = s.recv(4096)
            if not more:
                break
            data += more
        elapsed = time.monotonic() - t0
        s.close()
        # h2o closes a request that does not arrive in time (possibly with a 408)
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 408"), data[:60])
        self.assertLess(elapsed, 8 * harness.SLOW)
        self.assertEqual(self.db.stream_len(), 0)

    def test_thousands_of_concurrent_connections(self):
        socks = []
        try:
            for _ in range(2000):
                socks.append(socket.create_connection(("127.0.0.1", self.pb.port), timeout=10))
            # idle connections hold nothing up: deliveries on fresh ones still go through
            results = []

            def worker(n):
                c = self.pb.conn()
                for i in range(5):
                    results.append(post_delivery(c, "issue_comment", harness.issue_comment(number=1000 + n * 10 + i))[0])
                c.close()
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(results, [202] * 100)
            # and one of the idle ones can still speak
            body = json.dumps(harness.issue_comment(number=1)).encode()
            s = socks[-1]
            s.sendall(b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issue_comment\r\n"
                      b"X-GitHub-Delivery: idle-one\r\nX-Hub-Signature-256: " + sign(body).encode() +
                      b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 202"))
        finally:
            for s in socks:
                s.close()
        self.assertIsNone(self.pb.proc.poll())

    def test_sigterm_with_idle_keep_alive_connections_exits_cleanly(self):
        # connections that made a request and stay open, and ones that never spoke
        conns = [self.pb.conn() for _ in range(5)]
        for c in conns:
            self.assertEqual(post_delivery(c, "issue_comment", harness.issue_comment(body="hi"))[0], 200)
        idle = [socket.create_connection(("127.0.0.1", self.pb.port)) for _ in range(5)]
        t0 = time.monotonic()
        self.assertEqual(self.pb.stop(), 0)
        self.assertLess(time.monotonic() - t0, 5 * harness.SLOW)
        self.assertIsNotNone(self.pb.find_log("stopped"))
        self.assertIsNone(self.pb.find_log("still open at exit"))
        for c in conns:
            c.close()
        for sck in idle:
            sck.close()

    def test_json_logs_carry_delivery_and_job_and_no_secret(self):
        status, body, delivery = self.post("issue_comment", harness.issue_comment())
        self.assertEqual(status, 202)
        self.post("issue_comment", harness.issue_comment(), signature="sha256=" + "0" * 64)
        lines = self.pb.log_lines()
        self.assertTrue(lines)
        for line in lines:
            self.assertNotIn("raw", line, "a log line that is not one JSON object: %r" % line)
            self.assertIn(line["level"], ("debug", "info", "warn", "error"))
            self.assertRegex(line["ts"], r"^\d{4}-\d\d-\d\dT")
        queued = [l for l in lines if l.get("msg") == "job queued"]
        self.assertEqual([(l["delivery"], l["job"]) for l in queued], [(delivery, body["job"])])
        self.assertNotIn(SECRET, self.pb.log_text())
        self.assertNotIn(sign(json.dumps(harness.issue_comment()).encode()), self.pb.log_text())

    # -- health, readiness, metrics

    def test_health_readiness_and_metrics(self):
        self.conn.request("GET", "/healthz")
        r = self.conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        self.conn.request("GET", "/readyz")
        r = self.conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"ready\n"))
        self.post("issue_comment", harness.issue_comment())
        self.post("issue_comment", harness.issue_comment(body="hi"))
        m = self.metrics()
        self.assertIn('patchbay_webhook_deliveries_total{event="issue_comment",outcome="queued"} 1', m)
        self.assertIn('patchbay_webhook_deliveries_total{event="issue_comment",outcome="ignored"} 1', m)
        self.assertIn("patchbay_enqueue_duration_seconds_count 1", m)
        self.assertIn("patchbay_spool_depth 0", m)
        self.r.kill()
        wait_ready = lambda: self.get("/readyz")[0] == 503  # noqa: E731
        harness.wait_for(wait_ready, 10, what="readyz to report Redis down")
        self.assertIn(b"Redis unreachable", self.get("/readyz")[1])
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_status_page_says_what_is_missing(self):
        status, page = self.get("/")
        self.assertEqual(status, 200)
        self.assertIn(b"Not connected to GitHub yet", page)
        # a checklist: a line per missing setting (the webhook secret is set here), each saying how
        items = re.findall(rb"<li>(.*?)</li>", page)
        self.assertEqual(len(items), 2, items)
        self.assertTrue(items[0].startswith(b"APP_ID is not set: the App&#39;s ID, from its settings page"), items)
        self.assertTrue(items[1].startswith(b"no private key: PRIVATE_KEY_PATH, the .pem file"), items)
        self.assertNotIn(b"WEBHOOK_SECRET is not set", page)
        self.assertNotIn(b"shows how to register", page)
        # and the same list in the log at start, a line each
        missing = [line["msg"] for line in self.pb.find_logs("missing: ")]
        self.assertEqual([m.split(":")[1].strip() for m in missing], ["APP_ID is not set", "no private key"])
        self.assertIsNotNone(self.pb.find_log("not connected to GitHub yet: open http://127.0.0.1:%d/" % self.pb.port))

    def test_no_webhook_secret_means_503_not_acceptance(self):
        pb = self.patchbay(redis_url=self.r.url, secret=None)
        c = pb.conn()
        status, body, _ = post_delivery(c, "issue_comment", harness.issue_comment())
        c.close()
        self.assertEqual(status, 503)
        self.assertIn("WEBHOOK_SECRET", body["error"])
        self.assertEqual(self.db.stream_len(), 0)

    # -- helpers

    def get(self, path):
        c = self.pb.conn()
        c.request("GET", path)
        r = c.getresponse()
        out = (r.status, r.read())
        c.close()
        return out

    def metrics(self):
        return self.get("/metrics")[1].decode()

    def write_config(self, text):
        path = os.path.join(self.workdir, "patchbay-%d.yml" % len(os.listdir(self.workdir)))
        with open(path, "w") as f:
            f.write(text)
        return path


if __name__ == "__main__":
    harness.main()
