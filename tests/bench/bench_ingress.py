#!/usr/bin/env python3
"""Webhook ingress benchmark: patchbay against @octokit/webhooks' Node middleware.

Same machine, same run, same payload (a real issue_comment.created from
@octokit/webhooks-examples with a 1 KB issue body, some 15.5 KB in all),
same load (wrk -t1 -c64). Prints requests/s, p99 latency, server CPU per
delivery and RSS, and the ratios. Figures, not pass/fail: machines are noisy,
ratios within one run are what to compare.

  /usr/bin/python3 tests/bench/bench_ingress.py [--seconds 10] [--bin build/patchbay]
      [--compare-bin OLD/patchbay]   # an older build, side by side in the same rounds

Only loopback; every process started here is stopped by PID; each load run is
bounded by --seconds.
"""

import argparse
import json
import os
import re
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

SECRET = harness.SECRET
ISSUE_BODY_BYTES = 1000
EXAMPLES = os.path.join(ROOT, "tests", "node_modules", "@octokit", "webhooks-examples", "api.github.com", "index.json")


def npm_install():
    if os.path.exists(os.path.join(ROOT, "tests", "node_modules", "@octokit", "webhooks")):
        return True
    try:
        return subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", os.path.join(ROOT, "tests")],
                              capture_output=True, timeout=180).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def payload(actionable):
    with open(EXAMPLES) as f:
        groups = json.load(f)
    example = next(e for g in groups if g["name"] == "issue_comment" for e in g["examples"]
                   if e["action"] == "created" and "installation" in e)
    p = json.loads(json.dumps(example))
    # an issue as a person writes one: a kilobyte of text (the record keeps it, so it costs Redis);
    # with the example's links and objects the payload is some 15.5 KB, like those in TOOLCHAIN.md
    p["issue"]["body"] = ("Steps to reproduce: run the suite twice; the second run fails in "
                          "test_parser with a timeout.\n\n" * 12)[:ISSUE_BODY_BYTES]
    p["comment"]["author_association"] = "OWNER"
    p["sender"]["type"] = "User"
    p["comment"]["body"] = "@patchbay fix the flaky test" if actionable else "Thanks, looks good to me."
    return json.dumps(p).encode()


# Not actionable: one fixed request, which wrk formats once and sends again
# and again. Neither server remembers the delivery ids of what it ignores,
# so a fresh id per request (a Lua string of 15 KB built per request) would
# only take wrk's share of the two cores from the servers, patchbay most: at
# 26 us of patchbay's CPU a request, wrk's own work per request was most of
# what bounded it.
WRK_SCRIPT = """
local f = io.open("%(body)s", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Host"] = "127.0.0.1"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-GitHub-Event"] = "issue_comment"
wrk.headers["X-Hub-Signature-256"] = "%(sig)s"
wrk.headers["X-GitHub-Delivery"] = "%(prefix)s"
"""


def payload_varying(each_issue):
    """The actionable payload with a fresh comment id per request (GitHub never sends one comment
    twice, and patchbay makes one job of one comment), and with each_issue a fresh issue number
    too: (prefix, mid, suffix), the body being prefix + N + mid + N + suffix, or prefix + N +
    suffix when mid is None."""
    p = json.loads(payload(True))
    issue, comment = p.pop("issue"), p.pop("comment")
    del comment["id"]
    if each_issue:
        del issue["number"]
        issue["number"] = 424242
    p["issue"] = issue
    p["comment"] = dict([("id", 737373)] + list(comment.items()))
    body = json.dumps(p)
    c_at = body.rfind("737373")
    if not each_issue:
        return body[:c_at].encode(), None, body[c_at + 6:].encode()
    i_at = body.rfind("424242", 0, c_at)
    return body[:i_at].encode(), body[i_at + 6:c_at].encode(), body[c_at + 6:].encode()


# Every request a new comment (its own id), on one issue or on a different
# issue each: real traffic, where a new command rarely meets a queued one on
# the same issue (which it would supersede). Each body needs its own
# signature, so the script computes HMAC-SHA256 itself, from the inner hash's
# state after the constant prefix: a few SHA-256 blocks per request.
WRK_SCRIPT_DISTINCT = """
local bit = require("bit")
local band, bor, bxor, bnot, rshift, lshift, ror, tobit, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local K = {
  0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
  0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
  0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
  0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
  0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
  0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
  0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
  0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2}
for i = 1, 64 do K[i] = tobit(K[i]) end
local W = {}
local function compress(H, s, off)
  for i = 0, 15 do
    local a, b, c, d = s:byte(off + i * 4, off + i * 4 + 3)
    W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for i = 16, 63 do
    local w15, w2 = W[i - 15], W[i - 2]
    local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
    local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
    W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for i = 0, 63 do
    local t1 = tobit(h + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + bxor(band(e, f), band(bnot(e), g)) + K[i + 1] + W[i])
    local t2 = tobit(bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + bxor(band(a, b), band(a, c), band(b, c)))
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
  H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
end
local IV = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19}
for i = 1, 8 do IV[i] = tobit(IV[i]) end
local function copy(H) return {H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]} end
-- the rest of a message of `total` bytes, from a state that has consumed total - #tail
local function finish(H, tail, total)
  local bits = total * 8
  local pad = tail .. "\\128" .. string.rep("\\0", (55 - #tail) %% 64)
  pad = pad .. string.char(0, 0, 0, 0, band(rshift(bits, 24), 255), band(rshift(bits, 16), 255),
                           band(rshift(bits, 8), 255), band(bits, 255))
  for off = 1, #pad, 64 do compress(H, pad, off) end
  local out = {}
  for i = 1, 8 do out[i] = string.char(band(rshift(H[i], 24), 255), band(rshift(H[i], 16), 255),
                                       band(rshift(H[i], 8), 255), band(H[i], 255)) end
  return table.concat(out)
end
local function hex(H)
  local out = {}
  for i = 1, 8 do out[i] = tohex(H[i], 8) end
  return table.concat(out)
end
local function slurp(path)
  local f = io.open(path, "rb")
  local text = f:read("*a")
  f:close()
  return text
end
local prefix, suffix = slurp("%(prefix)s"), slurp("%(suffix)s")
local mid = %(mid)s
local key = "%(secret)s"
key = key .. string.rep("\\0", 64 - #key)
local ipad, opad = {}, {}
for i = 1, 64 do
  ipad[i] = string.char(bxor(key:byte(i), 0x36))
  opad[i] = string.char(bxor(key:byte(i), 0x5c))
end
local inner = copy(IV)
compress(inner, table.concat(ipad), 1)
local full = #prefix - #prefix %% 64
for off = 1, full, 64 do compress(inner, prefix, off) end
local rest = prefix:sub(full + 1)
local outer = copy(IV)
compress(outer, table.concat(opad), 1)
local head = "POST /api/github/webhooks HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n" ..
  "Content-Type: application/json\\r\\nUser-Agent: GitHub-Hookshot/bench\\r\\nX-GitHub-Event: issue_comment\\r\\n"
local counter = 0
-- a new range of issue numbers each second, so the warm-up's never recur
local base = (os.time() %% 100000) * 1000000
request = function()
  counter = counter + 1
  local n = tostring(base + counter)
  local tail = mid and (n .. mid .. n .. suffix) or (n .. suffix)
  local body_len = #prefix + #tail
  local ih = copy(inner)
  local digest = finish(ih, rest .. tail, 64 + body_len)
  local oh = copy(outer)
  finish(oh, digest, 96)
  return head .. "X-Hub-Signature-256: sha256=" .. hex(oh) .. "\\r\\nContent-Length: " .. body_len ..
    "\\r\\nX-GitHub-Delivery: %(prefix_id)s-" .. counter .. "\\r\\n\\r\\n" .. prefix .. tail
end
"""


def cpu_seconds(pid, children=False):
    """utime + stime; with children, also what finished children used (Redis's AOF rewrites)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / tick


def rss_mb(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0


def run_wrk(port, script, seconds):
    out = subprocess.run(["wrk", "-t1", "-c64", "-d%ds" % seconds, "--latency", "-s", script,
                          "http://127.0.0.1:%d/api/github/webhooks" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "total": total, "p99_ms": p99, "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


def measure(name, pid, port, body, seconds, workdir):
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    path = os.path.join(workdir, "%s.json" % slug)
    script = os.path.join(workdir, "%s.lua" % slug)
    if isinstance(body, tuple):  # (prefix, mid, suffix): a new comment each request
        parts = {}
        for key, part in zip(("prefix", "mid", "suffix"), body):
            parts[key] = "nil"
            if part is not None:
                parts[key] = os.path.join(workdir, "%s.%s" % (slug, key))
                with open(parts[key], "wb") as f:
                    f.write(part)
        if parts["mid"] != "nil":
            parts["mid"] = 'slurp("%s")' % parts["mid"]
        with open(script, "w") as f:
            f.write(WRK_SCRIPT_DISTINCT % dict(parts, secret=SECRET, prefix_id="%s-%d" % (slug, time.time_ns())))
    else:
        with open(path, "wb") as f:
            f.write(body)
        with open(script, "w") as f:
            f.write(WRK_SCRIPT % {"body": path, "sig": harness.sign(body), "prefix": "%s-%d" % (slug, time.time_ns())})
    run_wrk(port, script, 1)  # warm up
    cpu0 = cpu_seconds(pid)
    r = run_wrk(port, script, seconds)
    r["cpu_us"] = (cpu_seconds(pid) - cpu0) / max(r["total"], 1) * 1e6
    r["rss_mb"] = rss_mb(pid)
    r["peak_mb"] = rss_mb(pid, "VmHWM")
    r["name"] = name
    return r


def start_patchbay(binary, work, threads):
    """`patchbay serve` with no REDIS_URL: the private Redis and its settings, as a user runs it."""
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "bench.yml")
    with open(cfg, "w") as f:
        f.write("server:\n  threads: %d\nlog:\n  level: warn\n" % threads)
    harness.BIN = binary
    pb = harness.Patchbay(work, env={"PATCHBAY_CONFIG": cfg, "LOG_LEVEL": "warn"})
    # LOG_LEVEL=warn hides the "listening" line the harness waits for: wait on the port instead
    pb.env["PORT"] = str(harness.free_port())
    pb.start(wait_ready=False)
    pb.port = int(pb.env["PORT"])
    harness.wait_for(lambda: _answers(pb.port), 20, what="patchbay to listen")
    sock = os.path.join(pb.data_dir, "redis", "redis.sock")
    with open(os.path.join(pb.data_dir, "redis", "redis.pid")) as f:
        redis_pid = int(f.read())
    return pb, redis_pid, harness.RedisClient(sock)


def measure_jobs(name, pb, redis_pid, db, body, seconds, work):
    # each run starts from an empty queue, with no AOF rewrite under way:
    # otherwise later runs measure a Redis holding earlier runs' gigabytes
    db.call("FLUSHALL", "SYNC")
    harness.wait_for(lambda: b"aof_rewrite_in_progress:0" in db.call("INFO", "persistence"), 120,
                     interval=0.2, what="Redis's AOF rewrite to finish")
    before = db.stream_len()
    redis_cpu0 = cpu_seconds(redis_pid, children=True)
    r = measure(name, pb.proc.pid, pb.port, body, seconds, work)
    r["jobs"] = db.stream_len() - before
    # the count includes the 1 s warm-up's jobs: divide CPU by all of them
    r["redis_cpu_us"] = (cpu_seconds(redis_pid, children=True) - redis_cpu0) / max(r["jobs"], 1) * 1e6
    r["jobs_per_s"] = r["rps"]  # every answer was a 202 with a job, checked below
    return r


def spread(xs, fmt="%.0f"):
    return "median " + fmt % statistics.median(xs) + ", rounds " + ", ".join(fmt % x for x in xs) + \
        " (spread " + fmt % min(xs) + "-" + fmt % max(xs) + ")"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "patchbay"))
    ap.add_argument("--compare-bin", help="another patchbay binary (an older build) measured in the same rounds")
    ap.add_argument("--threads", type=int, default=0, help="patchbay event loops (0: one per core)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    if not npm_install() or not os.path.exists(EXAMPLES):
        sys.exit("needs the npm registry once, for tests/node_modules (payloads and the Node comparison)")
    work = tempfile.mkdtemp(prefix="pbbench-")
    bins = [("patchbay", os.path.abspath(args.bin))]
    if args.compare_bin:
        bins.append(("baseline", os.path.abspath(args.compare_bin)))
    servers, rounds, node = [], [], None
    try:
        for label, binary in bins:
            servers.append((label,) + start_patchbay(binary, os.path.join(work, label), args.threads))
        port = harness.free_port()
        node = subprocess.Popen(["node", os.path.join(HERE, "node_webhooks_server.mjs"), str(port), SECRET],
                                cwd=os.path.join(ROOT, "tests"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        harness.wait_for(lambda: _answers(port), 20, what="the Node server to listen")
        # rounds interleave every run, so a noisy moment of this shared machine
        # hits all of them rather than one; medians and each round are reported
        for _ in range(args.rounds):
            rnd = {}
            for label, pb, redis_pid, db in servers:
                rnd[label, "not actionable"] = measure("%s, not actionable" % label, pb.proc.pid, pb.port,
                                                       payload(False), args.seconds, work)
                for what, body in (("one issue", payload_varying(False)), ("an issue each", payload_varying(True))):
                    rnd[label, what] = measure_jobs("%s, actionable, %s" % (label, what), pb, redis_pid, db, body,
                                                    args.seconds, work)
            rnd["node", "not actionable"] = measure("@octokit/webhooks (Node), not actionable", node.pid, port,
                                                    payload(False), args.seconds, work)
            rounds.append(rnd)
        for s in servers:
            s[3].close()
    finally:
        if node is not None:
            node.terminate()
            node.wait(10)
        for s in servers:
            s[1].stop()
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print("\npayload: %d bytes; load: wrk -t1 -c64, %d rounds of %ds; cores: %d (wrk shares them)" % (
        len(payload(False)), args.rounds, args.seconds, os.cpu_count()))
    print("%-48s %10s %9s %10s %8s %8s %8s" % ("server (median of rounds)", "req/s", "p99 ms", "CPU us/req",
                                              "RSS MB", "peak MB", "non-2xx"))
    keys = [k for k in rounds[0]]
    for key in keys:
        rs = [rnd[key] for rnd in rounds]
        print("%-48s %10.0f %9.2f %10.1f %8.1f %8.1f %8d" % (
            rs[0]["name"], med([r["rps"] for r in rs]), med([r["p99_ms"] for r in rs]),
            med([r["cpu_us"] for r in rs]), max(r["rss_mb"] for r in rs), max(r["peak_mb"] for r in rs),
            sum(r["non2xx"] for r in rs)))
    for label, *_ in servers:
        for what, words in (("an issue each", "a different issue each (real traffic)"),
                            ("one issue", "all on one issue (each supersedes the last: the worst case)")):
            act = [rnd[label, what] for rnd in rounds]
            print("\n%s, jobs durably queued, %s:" % (label, words))
            print("  jobs/s: %s; every 202 is one job: %s" % (
                spread([r["jobs_per_s"] for r in act]),
                "yes" if all(r["jobs"] >= r["total"] and r["non2xx"] == 0 for r in act) else "NO"))
            print("  redis-server CPU per durable job (AOF everysec, its rewrites included): %s us" %
                  spread([r["redis_cpu_us"] for r in act], "%.1f"))
    ratios = [rnd["patchbay", "not actionable"]["rps"] / rnd["node", "not actionable"]["rps"] for rnd in rounds]
    print("\nnot-actionable throughput, patchbay / Node: %.1fx (rounds: %s)" % (
        med(ratios), ", ".join("%.1f" % x for x in ratios)))
    if len(servers) > 1:
        for what in ("an issue each", "one issue"):
            cpu = [rnd["patchbay", what]["redis_cpu_us"] / rnd["baseline", what]["redis_cpu_us"] for rnd in rounds]
            rate = [rnd["patchbay", what]["jobs_per_s"] / rnd["baseline", what]["jobs_per_s"] for rnd in rounds]
            print("patchbay / baseline, %s: redis CPU per job %.2fx (rounds: %s), jobs/s %.2fx (rounds: %s)" % (
                what, med(cpu), ", ".join("%.2f" % x for x in cpu), med(rate), ", ".join("%.2f" % x for x in rate)))


def _answers(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
