"""Faults the job queue must survive, each as the issue states it: a worker
killed with SIGKILL mid-job, workers killed at random under 1,000 jobs, Redis
killed and restarted while jobs run, a handler that hangs, a worker frozen
past its lease, SIGTERM with jobs running, and garbage written by hand into
the stream and the records.

"Exactly once" is checked from what a user can see: the job's log stream has
one and only one move into a final state, and the outcome counters add up to
the number of jobs."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402
from test_queue import FINAL, QueueCase  # noqa: E402


def final_moves(db, job_id):
    return [line for line in db.job_log(job_id) if any("-> " + s in line for s in FINAL)]


class Faults(QueueCase):
    def assert_finished_once(self, ids, status="succeeded"):
        for i in ids:
            rec = self.job(i)
            self.assertEqual(rec.get("status"), status, "job %s: %r" % (i, rec))
            moves = final_moves(self.db, i)
            self.assertEqual(len(moves), 1, "job %s reached a final state %d times: %r" % (i, len(moves), moves))

    def test_kill9_worker_mid_job(self):
        pb = self.work(2)
        [job] = self.enqueue({"kind": "noop", "noop_sleep_ms": "3000", "noop_trace": "1"})
        rec = self.wait_status(job, "running")
        consumer = rec["worker"]
        pid = int(consumer.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        rec = self.wait_status(job, FINAL, timeout=20)
        self.assertEqual((rec["status"], rec["attempts"], rec["noop_done"]), ("succeeded", "2", "1"))
        self.assertNotEqual(rec["worker"], consumer)  # another worker finished it
        self.assertEqual(rec["reclaims"], "1")
        self.assert_finished_once([job])
        log = self.db.job_log(job)
        self.assertTrue(any("its worker %s was killed by signal 9" % consumer in line for line in log), log)
        # the supervisor replaced the dead worker, and the group has no trace of it
        wait_for(lambda: len(pb.workers()) == 2 and pid not in [p for p, _ in pb.workers().values()], 10,
                 what="the dead worker to be replaced")
        consumers = self.db.call("XINFO", "CONSUMERS", "patchbay:queue", "workers")
        self.assertNotIn(consumer.encode(), [c[1] for c in consumers])
        self.assertEqual(self.db.call("XLEN", "patchbay:queue"), 0)

    def test_1000_jobs_while_workers_are_killed_at_random(self):
        pb = self.work(4, max_attempts=20)
        rnd = random.Random(4)
        ids = self.enqueue(*[{"kind": "noop", "noop_sleep_ms": str(rnd.randint(0, 20))} for _ in range(1000)])
        kills = 0
        deadline = time.monotonic() + 60 * harness.SLOW
        done = 0
        while time.monotonic() < deadline:
            done = int(self.db.call("HGET", "patchbay:metrics", "jobs:noop:succeeded") or 0)
            if done >= 1000:
                break
            live = [p for p, _ in pb.workers().values()]
            if live and kills < 30:
                try:
                    os.kill(rnd.choice(live), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.15 * harness.SLOW)
        self.assertEqual(done, 1000, "only %d of 1000 jobs finished within the time bound" % done)
        self.assertGreaterEqual(kills, 5)
        self.assert_finished_once(ids)
        self.assertEqual(int(self.db.call("HGET", "patchbay:metrics", "jobs:noop:succeeded")), 1000)
        self.assertEqual(self.db.call("XLEN", "patchbay:queue"), 0)
        self.assertEqual(self.db.call("ZCARD", "patchbay:queued:noop"), 0)
        self.assertGreater(len(pb.find_logs("was killed by signal 9")), 0)

    def test_redis_restarted_while_jobs_run(self):
        # fsync always: a write Redis acknowledged survives its SIGKILL
        r = self.use_redis(appendfsync="always")
        pb = self.work(3)
        # two long jobs that run right across the outage, short ones around them,
        # and a worker left idle: the one that would reap too eagerly
        long_ids = self.enqueue(*[{"kind": "noop", "noop_sleep_ms": "5000", "noop_trace": "1"}] * 2)
        for i in long_ids:
            self.wait_status(i, "running")
        short_ids = self.enqueue(*[{"kind": "noop", "noop_sleep_ms": "50", "noop_trace": "1"}] * 10)
        ids = long_ids + short_ids
        wait_for(lambda: int(self.db.call("HGET", "patchbay:metrics", "jobs:noop:succeeded") or 0) >= 3, 20,
                 what="some jobs to finish")
        self.db.close()
        r.kill(signal.SIGKILL)
        # longer than the lease: when Redis is back, the long jobs' entries look
        # idle past it, and only the reaper's patience keeps them with their workers
        time.sleep(2.5)
        r.start()
        self.db = r.client()
        wait_for(lambda: all(self.job(i).get("status") in FINAL for i in ids), 40, interval=0.2,
                 what="every job to finish after the restart")
        self.assert_finished_once(ids)
        self.assertTrue(all(int(self.job(i).get("noop_done", 0)) >= 1 for i in ids))
        self.assertEqual(int(self.db.call("HGET", "patchbay:metrics", "jobs:noop:succeeded")), len(ids))
        # nothing live was mistaken for dead
        self.assertIsNone(self.db.call("HGET", "patchbay:metrics", "requeued:reclaim"))
        self.assertEqual([self.job(i)["runs"] for i in long_ids], ["1", "1"])
        self.assertGreater(len(pb.find_logs("connected to Redis again")), 0)
        self.assertEqual(len(pb.workers()), 3)  # reconnected, not crashed

    def test_hanging_handler_is_ended_retried_then_dead(self):
        pb = self.work(1, max_attempts=2)
        [job] = self.enqueue({"kind": "noop", "noop_hang": "1", "timeout_ms": "600"})
        rec = self.wait_status(job, FINAL, timeout=30)
        self.assertEqual((rec["status"], rec["attempts"]), ("dead", "2"))
        self.assertIn("gave up after 2 attempts", rec["error"])
        self.assertIn("wall-clock limit of 0.6 s", rec["error"])
        log = self.db.job_log(job)
        self.assertEqual(sum("running -> " in line and "the wall-clock limit of 0.6 s was reached" in line
                             for line in log), 2, log)
        # the on_dead hook runs after the job is marked dead: wait for its line
        wait_for(lambda: any("on_dead hook" in line for line in self.db.job_log(job)), 10, interval=0.1,
                 what="the on_dead hook's log line")
        self.assertIn(job.encode(), [e[1][1] for e in self.db.call("XRANGE", "patchbay:dead", "-", "+")])
        # each hang cost its worker process, and the supervisor started a new one each time
        wait_for(lambda: len(pb.find_logs(" started (pid ")) == 3 and len(pb.workers()) == 1, 10,
                 what="the worker to be restarted twice")
        self.assertEqual(len(pb.find_logs("did not stop within 800 ms of being told to")), 2)
        self.assert_finished_once([job], status="dead")

    def test_frozen_worker_loses_its_job_to_the_reaper(self):
        pb = self.work(2)
        [job] = self.enqueue({"kind": "noop", "noop_sleep_ms": "1500", "noop_trace": "1"})
        rec = self.wait_status(job, "running")
        frozen = int(rec["worker"].rsplit(":", 1)[1])
        os.kill(frozen, signal.SIGSTOP)  # alive to the supervisor, silent to Redis
        try:
            rec = self.wait_status(job, FINAL, timeout=20)
        finally:
            os.kill(frozen, signal.SIGCONT)
        self.assertEqual((rec["status"], rec["attempts"]), ("succeeded", "2"))
        self.assertNotEqual(int(rec["worker"].rsplit(":", 1)[1]), frozen)
        self.assertTrue(any("went silent for more than 2000 ms" in line for line in self.db.job_log(job)))
        self.assertGreater(len(pb.find_logs("reaper: 1 jobs of silent workers queued again")), 0)
        # thawed, the old run learns it lost the job and drops its result
        wait_for(lambda: pb.find_logs("this run's result is dropped") or pb.find_logs("its result is dropped"), 10,
                 what="the thawed worker to drop its result")
        self.assert_finished_once([job])

    def test_sigterm_lets_running_jobs_finish(self):
        pb = self.work(2)
        a, b = self.enqueue({"kind": "noop", "noop_sleep_ms": "1500"}, {"kind": "noop", "noop_sleep_ms": "1500"})
        self.wait_status(a, "running")
        self.wait_status(b, "running")
        [c] = self.enqueue({"kind": "noop"})
        pb.proc.send_signal(signal.SIGTERM)
        self.assertEqual(pb.proc.wait(timeout=20 * harness.SLOW), 0)
        self.assert_finished_once([a, b])
        # no new job was taken once stopping
        self.assertEqual((self.job(c)["status"], self.job(c)["attempts"]), ("queued", "0"))
        self.assertEqual(self.db.call("HLEN", "patchbay:workers"), 0)

    def test_sigterm_grace_over_or_twice_hands_jobs_back(self):
        for second_signal in (False, True):
            pb = self.work(2, grace_seconds=1 if not second_signal else 60)
            a, b = self.enqueue({"kind": "noop", "noop_sleep_ms": "20000"}, {"kind": "noop", "noop_child": "1"})
            self.wait_status(a, "running")
            self.wait_status(b, "running")
            began = time.monotonic()
            pb.proc.send_signal(signal.SIGTERM)
            if second_signal:
                time.sleep(0.3)
                pb.proc.send_signal(signal.SIGTERM)
            self.assertEqual(pb.proc.wait(timeout=20 * harness.SLOW), 0)
            self.assertLess(time.monotonic() - began, 15 * harness.SLOW)
            for j in (a, b):
                rec = self.job(j)
                # back in the queue, and the interrupted attempt does not count
                self.assertEqual((rec["status"], rec["attempts"]), ("queued", "0"), rec)
                self.assertTrue(any("handed back by" in line for line in self.db.job_log(j)))
            self.assertGreater(len(pb.find_logs("handed 1 jobs back to the queue")), 0)
            # they are in the stream again: another pool takes them at once
            self.db.call("HSET", "patchbay:job:" + a, "noop_sleep_ms", "0")
            self.db.call("HSET", "patchbay:job:" + b, "noop_child", "0")
            self.work(1)
            for j in (a, b):
                self.assertEqual(self.wait_status(j, FINAL)["status"], "succeeded")
                self.assertEqual(self.job(j)["attempts"], "1")
            self._procs[-1].stop()

    def test_malformed_entries_and_records(self):
        pb = self.work(2)
        before = sorted(p for p, _ in pb.workers().values())
        db = self.db
        db.call("XADD", "patchbay:queue", "*", "foo", "bar")                # no job field
        db.call("XADD", "patchbay:queue", "*", "job", "999999")             # no record
        db.call("XADD", "patchbay:queue", "*", "job", "a b\x01c")           # not an id
        db.call("XADD", "patchbay:queue", "*", "job", "9" * 5000)           # absurdly long
        db.call("SET", "patchbay:job:900", "not a hash")
        db.call("XADD", "patchbay:queue", "*", "job", "900")                # wrong type
        bad = {"901": ["status", "queued", "kind", "bogus", "attempts", "0"],
               "902": ["status", "queued", "kind", "noop", "attempts", "abc"],
               "903": ["status", "weird", "kind", "noop"],
               "904": ["kind", "noop"],
               "905": ["status", "queued", "kind", "noop", "attempts", "0", "runs", "1.5"],
               "906": ["status", "queued", "attempts", "0"]}
        for i, fields in bad.items():
            db.call("HSET", "patchbay:job:" + i, "id", i, *fields)
            db.call("XADD", "patchbay:queue", "*", "job", i)
        [good] = self.enqueue({"kind": "noop"})
        self.assertEqual(self.wait_status(good, FINAL)["status"], "succeeded")
        wait_for(lambda: db.call("XLEN", "patchbay:dead") == 11, 10, what="11 dead-lettered entries")
        for i in bad:
            rec = self.job(i)
            self.assertEqual(rec["status"], "dead", rec)
            self.assertTrue(rec["error"].startswith("malformed record: "), rec)
            self.assertGreater(db.call("TTL", "patchbay:job:" + i), 0)
        errors = [dict(zip(e[1][::2], e[1][1::2]))[b"error"].decode() for e in db.call("XRANGE", "patchbay:dead", "-", "+")]
        self.assertTrue(any("has no usable job field (foo=bar)" in e for e in errors), errors)
        self.assertTrue(any("no record patchbay:job:999999" in e for e in errors), errors)
        self.assertTrue(any("patchbay:job:900 is a string, not a hash" in e for e in errors), errors)
        self.assertTrue(any("unknown kind bogus" in e for e in errors), errors)
        self.assertEqual(int(db.call("HGET", "patchbay:metrics", "malformed")), 11)
        self.assertEqual(db.call("XLEN", "patchbay:queue"), 0)
        self.assertEqual(db.call("XPENDING", "patchbay:queue", "workers")[0], 0)
        # logged, and no worker crashed over it
        self.assertEqual(len(pb.find_logs("dead-lettered")), 11)
        self.assertEqual(sorted(p for p, _ in pb.workers().values()), before)
        self.assertEqual(pb.find_logs("was killed by signal"), [])


if __name__ == "__main__":
    harness.main()
