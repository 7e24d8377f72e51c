"""A hostile agent: it tries every way out of patchbay's sandbox it knows and
writes what it saw to PROBE-REPORT.json in the work tree, which the job then
commits and pushes, so a test reads the outcome from the pushed branch.

It is committed into a test repository as .patchbay-agent.py and run the way a
team's own agent script is run ([python3, .patchbay-agent.py]). .probe.json,
next to it, says what to try:

    {"mode": "probe" | "fifo" | "fill" | "tiocsti",
     "loopback": PORT,            a canary listening on the host's 127.0.0.1
     "host": "IP:PORT",           a canary on the host's own non-loopback address
     "allowed": PORT,             a listener on the host's 127.0.0.1 the operator allowed
     "secrets": [PATH, ...],      files of patchbay's it must not read
     "limits": {"memory_bytes": N, "processes": N, "file_size_bytes": N, "open_files": N, "cpu_seconds": N},
     "marker": "TEXT"}            put in the command line of what it leaves running

Standard library only. Every attempt is bounded in time.
"""

import errno
import fcntl
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import termios
import time

cfg = json.load(open(".probe.json"))
report = {"mode": cfg["mode"]}


def summary(text):
    open(os.environ["PATCHBAY_SUMMARY_FILE"], "w").write(text)


def connect(host, port, timeout=3.0):
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        try:
            s.settimeout(2)
            data = s.recv(64).decode(errors="replace")
        except OSError:
            data = ""
        s.close()
        return {"connected": True, "said": data, "ms": int((time.monotonic() - t0) * 1000)}
    except OSError as e:
        return {"connected": False, "error": errno.errorcode.get(e.errno, str(e)),
                "ms": int((time.monotonic() - t0) * 1000)}


def network():
    out = {"loopback": connect("127.0.0.1", cfg["loopback"]),
           "gateway": connect("10.0.2.2", cfg["loopback"]),
           "metadata": connect("169.254.169.254", 80)}
    if cfg.get("host"):
        ip, port = cfg["host"].rsplit(":", 1)
        out["host"] = connect(ip, int(port))
    if cfg.get("allowed"):
        out["allowed"] = connect("127.0.0.1", cfg["allowed"])
    return out


def secrets():
    out = {"environ": sorted(os.environ), "read": {}}
    for path in cfg.get("secrets", []):
        try:
            open(path, "rb").read(16)
            out["read"][path] = "READ"
        except OSError as e:
            out["read"][path] = errno.errorcode.get(e.errno, str(e))
    # other processes' environments (the worker's would hold WEBHOOK_SECRET)
    seen = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                env = open("/proc/%s/environ" % pid, "rb").read()
                if b"WEBHOOK_SECRET" in env or b"PRIVATE_KEY" in env:
                    seen.append(pid)
            except OSError:
                pass
    out["environ_of_others"] = seen
    out["pids_visible"] = len([p for p in os.listdir("/proc") if p.isdigit()])
    return out


def terminal():
    out = {}
    for fd in (0, 1, 2):
        try:
            fcntl.ioctl(fd, termios.TIOCSTI, b"X")
            out["fd%d" % fd] = "INJECTED"
        except OSError as e:
            out["fd%d" % fd] = errno.errorcode.get(e.errno, str(e))
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
        try:
            for ch in "echo INJECTED-BY-SANDBOX\n":
                fcntl.ioctl(fd, termios.TIOCSTI, ch.encode())
            out["dev_tty"] = "INJECTED"
        except OSError as e:
            out["dev_tty"] = "opened, " + errno.errorcode.get(e.errno, str(e))
        os.close(fd)
    except OSError as e:
        out["dev_tty"] = errno.errorcode.get(e.errno, str(e))
    out["sid_is_pid"] = os.getsid(0) == os.getpid()
    return out


def child(code, timeout=60):
    """Runs python code in a child; its fate (exit code or signal) and output."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
        fate = r.returncode
        out = (r.stdout + r.stderr).strip().splitlines()[-1:] if (r.stdout + r.stderr).strip() else []
    except subprocess.TimeoutExpired:
        fate, out = "timeout", []
    return {"fate": fate, "said": out[0][:200] if out else "", "ms": int((time.monotonic() - t0) * 1000)}


def limits():
    lim = cfg["limits"]
    out = {"rlimits": {name: resource.getrlimit(getattr(resource, name))[0] for name in
                       ("RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CPU")}}
    out["memory"] = child("x = bytearray(%d); print('ALLOCATED')" % (lim["memory_bytes"] * 2))
    out["file_size"] = child(
        "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "f = open('big.bin', 'wb')\nn = 0\n"
        "try:\n    for i in range(%d):\n        f.write(b'0' * 1048576); n += 1\n    print('WROTE', n)\n"
        "except OSError as e:\n    print('STOPPED', n, e.errno)\n" % (lim["file_size_bytes"] // 1048576 * 2 + 2))
    out["open_files"] = child(
        "fs = []\ntry:\n    for i in range(%d):\n        fs.append(open('/dev/null'))\n    print('OPENED', len(fs))\n"
        "except OSError as e:\n    print('STOPPED', len(fs))\n" % (lim["open_files"] * 2))
    out["processes"] = child(
        "import os, time\nn = 0\npids = []\ntry:\n    for i in range(%d):\n        pid = os.fork()\n"
        "        if pid == 0:\n            time.sleep(5); os._exit(0)\n        pids.append(pid); n += 1\n"
        "    print('FORKED', n)\nexcept OSError as e:\n    print('STOPPED', n)\n" % (lim["processes"] * 2))
    out["cpu"] = child("while True: pass", timeout=lim["cpu_seconds"] + 30)
    try:
        os.remove("big.bin")
    except OSError:
        pass
    return out


def mirror():
    out = {}
    pack_dir = ".git/objects/pack"
    packs = [p for p in os.listdir(pack_dir) if p.endswith(".pack")] if os.path.isdir(pack_dir) else []
    out["packs"] = len(packs)
    for name in packs:
        path = os.path.join(pack_dir, name)
        for what, act in (("chmod", lambda: os.chmod(path, 0o644)),
                          ("write", lambda: open(path, "r+b").write(b"\0" * 64)),
                          ("append", lambda: open(path, "ab").write(b"\0" * 64)),
                          ("rename", lambda: os.rename(path, path + ".moved")),
                          ("unlink", lambda: os.unlink(path))):
            try:
                act()
                out[what] = "DONE"
            except OSError as e:
                out[what] = errno.errorcode.get(e.errno, str(e))
    return out


def leave_behind():
    # a daemon that escapes the process group; it must not survive the run
    subprocess.Popen(["setsid", "sh", "-c", "exec sleep 1000 # %s" % cfg["marker"]], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return "started"


mode = cfg["mode"]
if mode == "fifo":
    os.unlink(os.environ["PATCHBAY_SUMMARY_FILE"]) if os.path.exists(os.environ["PATCHBAY_SUMMARY_FILE"]) else None
    os.mkfifo(os.environ["PATCHBAY_SUMMARY_FILE"])
    open("calc.py", "w").write("def add(a, b):\n    return a + b\n")
    sys.exit(0)
if mode == "fill":
    # files under the per-file limit, many of them: only the tree's cap stops this
    for i in range(10000):
        with open("fill-%d.bin" % i, "wb") as f:
            for _ in range(8):
                f.write(b"0" * 1048576)
        time.sleep(0.01)
    sys.exit(0)
if mode == "tiocsti":
    report["terminal"] = terminal()
else:
    report["uid"] = os.getuid()
    report["network"] = network()
    report["secrets"] = secrets()
    report["terminal"] = terminal()
    report["mirror"] = mirror()
    report["leftover"] = leave_behind()
    report["limits"] = limits()
json.dump(report, open("PROBE-REPORT.json", "w"), indent=1, sort_keys=True)
open("calc.py", "w").write("def add(a, b):\n    return a + b\n")
summary("Probe report\n\nWhat the probe saw is in PROBE-REPORT.json.")
