#!/usr/bin/env python3
"""Job queue benchmark: pickup latency, throughput, memory.

  pickup latency   enqueue -> noop handler start, one job at a time into idle
                   workers (the enqueue transaction's send time to the handler's
                   first instruction, both on this machine's clock)
  throughput       noop jobs through 4 workers, the queue filled beforehand so
                   the enqueuer does not share the CPU with them
  memory           RSS of an idle worker and of the supervisor, with PSS and
                   private (USS) beside it: most of an RSS here is shared pages
                   of the linked libraries (libcrypto, libgnutls via libcurl...)

Figures, not pass/fail: the machine is shared and noisy. Targets from the issue:
p99 pickup <= 10 ms, >= 5,000 jobs/s, worker <= 10 MB, supervisor <= 5 MB.

  /usr/bin/python3 tests/bench/bench_queue.py [--jobs 20000] [--bin build/patchbay]

Only loopback and unix sockets; every process started here is stopped by PID;
each phase is bounded in time.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402


def memory(pid):
    """(rss, pss, private) in kB."""
    rss = pss = private = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    return rss, pss, private


def start_pool(workdir, redis, n, log_level):
    cfg = os.path.join(workdir, "bench.yml")
    with open(cfg, "w") as f:
        f.write("workers:\n  lease_seconds: 30\n")
    pb = harness.Patchbay(workdir, command="work", redis_url=redis.url, args=["--concurrency", str(n)],
                          env={"PATCHBAY_CONFIG": cfg, "LOG_LEVEL": log_level})
    pb.start(wait_ready=False)
    # ready = every worker has reported itself idle (presence), whatever the log level
    db = redis.client()
    try:
        harness.wait_for(lambda: db.call("HLEN", "patchbay:workers") >= n, 20, what="workers to be ready")
    except BaseException:
        pb.stop()  # never leave a pool behind
        raise
    finally:
        db.close()
    return pb


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def pickup_latency(workdir, redis, samples):
    db = redis.client()
    pb = start_pool(workdir, redis, 4, "warn")
    try:
        time.sleep(0.5)
        sent = []
        ids = []
        for _ in range(samples):
            t0 = time.time()
            ids += harness.enqueue(db, [{"kind": "noop", "noop_trace": "1"}])
            sent.append(t0)
            time.sleep(0.02)  # idle workers between jobs
        deadline = time.monotonic() + 30
        lat = []
        for job_id, t0 in zip(ids, sent):
            while True:
                rec = db.job(job_id)
                if "noop_started_us" in rec or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if "noop_started_us" in rec:
                lat.append((int(rec["noop_started_us"]) / 1e6 - t0) * 1000)
        lat.sort()
        return lat
    finally:
        pb.stop()
        db.close()


def throughput(workdir, redis, jobs, log_level):
    db = redis.client()
    db.call("FLUSHALL")  # nothing of an earlier phase: no presence, no counters
    t = time.monotonic()
    harness.enqueue(db, [{"kind": "noop"} for _ in range(jobs)], batch=500)
    fill_s = time.monotonic() - t
    pb = start_pool(workdir, redis, 4, log_level)
    try:
        first = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = int(db.call("HGET", "patchbay:metrics", "jobs:noop:succeeded") or 0)
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if done >= jobs:
                break
            time.sleep(0.005)
        rate = (done - first[1]) / (now - first[0]) if first and now > first[0] else 0.0
        time.sleep(1.0)  # idle now: measure memory at rest
        mem = {"worker": [memory(p) for p in children(pb.proc.pid)], "supervisor": memory(pb.proc.pid)}
        return rate, done, fill_s, mem
    finally:
        pb.stop()
        db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--bin", default=None)
    args = ap.parse_args()
    if args.bin:
        harness.BIN = os.path.abspath(args.bin)
        harness.PRINT_SCRIPT = os.path.join(os.path.dirname(harness.BIN), "tests", "print_script")
    workdir = tempfile.mkdtemp(prefix="pbbench-")
    redis = harness.Redis(workdir, appendonly=False).start()
    try:
        print("machine: %d cores; redis-server without persistence, on a unix socket" % os.cpu_count())
        lat = pickup_latency(workdir, redis, args.samples)
        if lat:
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
            print("pickup latency (enqueue -> handler start, %d jobs into 4 idle workers): "
                  "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (target p99 <= 10 ms)"
                  % (len(lat), statistics.median(lat), p(0.9), p(0.99), lat[-1]))
        for level in ("warn", "info"):
            rate, done, fill_s, mem = throughput(workdir, redis, args.jobs, level)
            print("throughput, 4 workers, LOG_LEVEL=%s: %.0f jobs/s (%d noop jobs; queue filled in %.1f s "
                  "beforehand)  (target >= 5,000/s)" % (level, rate, done, fill_s))
        for name, (rss, pss, priv) in [("worker (idle)", max(mem["worker"])), ("supervisor", mem["supervisor"])]:
            print("memory, %-13s RSS %5.1f MB  PSS %5.1f MB  private %5.1f MB" % (name, rss / 1024, pss / 1024,
                                                                              priv / 1024))
        floor = subprocess.run(["/usr/bin/env", "time", "-f", "%M", harness.BIN, "--help"], capture_output=True,
                               text=True)
        if floor.returncode == 0 and floor.stderr.strip().isdigit():
            print("memory, the binary doing nothing (`patchbay --help`): max RSS %.1f MB; the floor every process "
                  "of it starts from" % (int(floor.stderr.strip()) / 1024))
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
