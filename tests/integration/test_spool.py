"""Redis outages: a delivery answered 202 is never lost and never queued twice.

Real redis-server processes are killed (SIGKILL), frozen (SIGSTOP) and
restarted under a running patchbay; the spool under the data dir carries what
Redis could not take.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import post_delivery, wait_for  # noqa: E402


class Spool(harness.TestCase):
    def start(self, **env):
        self.r = self.redis()
        self.pb = self.patchbay(redis_url=self.r.url, env=env)
        return self.pb

    def send(self, n, first=0, pb=None):
        c = (pb or self.pb).conn()
        out = []
        for i in range(n):
            out.append(post_delivery(c, "issue_comment", harness.issue_comment(number=first + i)))
        c.close()
        return out

    def jobs_by_delivery(self):
        db = self.r.client()
        ids = db.job_ids()
        by = {}
        for i in ids:
            by.setdefault(db.job(i)["delivery"], []).append(i)
        db.close()
        return by

    def spool_depth(self, pb=None):
        c = (pb or self.pb).conn()
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        for line in text.splitlines():
            if line.startswith("patchbay_spool_depth "):
                return int(line.split()[1])
        raise AssertionError("no spool depth in metrics")

    def test_redis_down_then_back_exactly_one_job_each(self):
        self.start()
        self.r.kill()
        answers = self.send(20)
        self.assertEqual({a[0] for a in answers}, {202})
        self.assertTrue(all("spooled" in a[1] for a in answers), answers[0])
        self.assertEqual(self.spool_depth(), 20)
        self.r.start()
        wait_for(lambda: self.spool_depth() == 0, 15, what="the spool to drain")
        by = self.jobs_by_delivery()
        self.assertEqual(sorted(by), sorted(a[2] for a in answers))
        self.assertTrue(all(len(v) == 1 for v in by.values()))
        # in order: job ids follow the order the deliveries were spooled
        ids = [int(by[a[2]][0]) for a in answers]
        self.assertEqual(ids, sorted(ids))
        self.assertIsNotNone(self.pb.find_log("spool drained"))

    def test_redis_killed_mid_stream(self):
        self.start()
        answers = []
        stop = threading.Event()

        def sender():
            c = self.pb.conn()
            for i in range(600):  # bounded in count; the event bounds it in time
                if stop.is_set():
                    break
                answers.append(post_delivery(c, "issue_comment", harness.issue_comment(number=i)))
            c.close()
        t = threading.Thread(target=sender)
        t.start()
        wait_for(lambda: len(answers) > 50, 10, what="traffic")
        self.r.kill()
        wait_for(lambda: sum(1 for a in answers if "spooled" in a[1]) >= 20, 10, what="spooled answers")
        self.r.start()
        t.join(120)
        stop.set()
        self.assertFalse(t.is_alive())
        self.assertTrue(all(a[0] == 202 for a in answers), {a[0] for a in answers})
        wait_for(lambda: self.spool_depth() == 0, 20, what="the spool to drain")
        by = self.jobs_by_delivery()
        accepted = [a[2] for a in answers]
        missing = [d for d in accepted if d not in by]
        self.assertEqual(missing, [])
        self.assertEqual([d for d, ids in by.items() if len(ids) != 1], [])
        self.assertEqual(len(by), len(accepted))

    def test_frozen_redis_times_out_into_the_spool_without_a_duplicate(self):
        self.r = self.redis()
        cfg = os.path.join(self.workdir, "fast.yml")
        with open(cfg, "w") as f:
            f.write("server:\n  redis_timeout_ms: 300\n")
        self.pb = self.patchbay(redis_url=self.r.url, env={"PATCHBAY_CONFIG": cfg})
        self.r.proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            answers = self.send(3)
            self.assertLess(time.monotonic() - t0, 5 * harness.SLOW)
            self.assertEqual([a[0] for a in answers], [202] * 3)
            self.assertTrue(all("spooled" in a[1] for a in answers))
        finally:
            self.r.proc.send_signal(signal.SIGCONT)
        # Redis now runs the commands it had buffered, and the drain replays the spool
        wait_for(lambda: self.spool_depth() == 0, 15, what="the spool to drain")
        by = self.jobs_by_delivery()
        self.assertEqual(sorted(by), sorted(a[2] for a in answers))
        self.assertTrue(all(len(v) == 1 for v in by.values()), by)

    def test_spool_survives_a_restart_of_patchbay(self):
        self.start()
        self.r.kill()
        answers = self.send(5)
        self.assertEqual([a[0] for a in answers], [202] * 5)
        self.assertEqual(self.pb.stop(), 0)
        self.r.start()
        pb2 = self.patchbay(redis_url=self.r.url)
        wait_for(lambda: len(self.jobs_by_delivery()) == 5, 15, what="spooled jobs after restart")
        self.assertEqual(sorted(self.jobs_by_delivery()), sorted(a[2] for a in answers))
        self.assertIsNotNone(pb2.find_log("spool holds 5 deliveries"))

    def test_full_disk_answers_503_and_keeps_running(self):
        self.start()
        self.r.kill()
        spool = os.path.join(self.pb.data_dir, "spool", "spool.log")
        os.remove(spool)
        os.symlink("/dev/full", spool)
        answers = self.send(2)
        self.assertEqual([a[0] for a in answers], [503, 503])
        self.assertIn("neither Redis nor its spool", answers[0][1]["error"])
        self.assertIsNotNone(self.pb.find_log("spool write failed"))
        # the disk comes back: the next delivery is accepted again
        os.remove(spool)
        self.r.start()
        wait_for(lambda: self.send(1)[0][0] == 202, 10, what="acceptance after the disk is back")
        self.assertIsNone(self.pb.proc.poll())

    def test_unwritable_data_dir_is_a_clear_start_error(self):
        self.r = self.redis()
        pb = self.patchbay(redis_url=self.r.url, data_dir="/proc/patchbay-test/data", start=False)
        pb.start(wait_ready=False)
        code = pb.proc.wait(timeout=20)
        self.assertEqual(code, 1)
        self.assertIn("cannot create", pb.log_text())


if __name__ == "__main__":
    harness.main()
