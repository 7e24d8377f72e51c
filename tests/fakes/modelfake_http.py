"""The HTTP part shared by the fake model services (anthropic.py, responses.py, chat.py, gemini.py).

A `FakeModelService` listens on 127.0.0.1 only, records every request it gets (known or not) in
`.requests`, and hands each one to the subclass's `route(req)`, which answers with one of the
`Answer` helpers below. Standard library only.

    fake = SomeFake(api_key="sk-test")
    port = fake.start(); fake.url       # "http://127.0.0.1:PORT" (+ the subclass's prefix)
    fake.requests                       # [Request, ...] in arrival order
    fake.errors                         # what the fake refused or could not follow (a test wants it empty)
    fake.stop()

`main(cls)` is the command line of every fake: `--port 0 --ready-file F --api-key K --log FILE`.
"""

import argparse
import gzip
import json
import os
import signal
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import fixplan


class Request:
    """One recorded request. `body` is the parsed JSON (None when there was none or it was not JSON)."""

    def __init__(self, method, path, query, headers, raw):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers          # lower-case name -> value
        self.raw = raw
        self.body = None
        if raw:
            try:
                self.body = json.loads(raw)
            except ValueError:
                pass
        self.status = None
        self.time = time.time()

    def header(self, name):
        return self.headers.get(name.lower())

    def to_json(self):
        return {"method": self.method, "path": self.path, "query": self.query, "headers": self.headers,
                "body": self.body if self.body is not None else (self.raw[:4000].decode("utf-8", "replace")
                                                                 if self.raw else None),
                "status": self.status}

    def __repr__(self):
        return "<%s %s -> %s>" % (self.method, self.path, self.status)


class Answer:
    def __init__(self, status, data=b"", content_type="application/json", headers=None):
        self.status = status
        self.data = data
        self.content_type = content_type
        self.headers = headers or {}

    @classmethod
    def json(cls, status, obj, headers=None):
        return cls(status, json.dumps(obj).encode(), "application/json", headers)

    @classmethod
    def sse(cls, events, headers=None):
        """events: [(event_name or None, data)], data a dict (JSON) or a str sent as is."""
        out = []
        for name, data in events:
            if name:
                out.append("event: %s\n" % name)
            out.append("data: %s\n\n" % (data if isinstance(data, str) else json.dumps(data)))
        return cls(200, "".join(out).encode(), "text/event-stream", dict({"Cache-Control": "no-cache"},
                                                                           **(headers or {})))

    @classmethod
    def text(cls, status, text, content_type="text/plain"):
        return cls(status, text.encode(), content_type)


class FakeModelService:
    prefix = ""          # appended to http://127.0.0.1:PORT in .url
    name = "fake"

    def __init__(self, api_key="sk-test", log_file=None):
        self.api_key = api_key
        self.requests = []
        self.errors = []
        self.steps = []         # (request, fixplan.Step) for every model request, in order
        self.log_file = log_file
        self.server = None
        self.port = None
        self.url = None
        self._lock = threading.Lock()
        self._ids = 0           # answers given: each names its message or response by it

    # -- for subclasses -------------------------------------------------------------------------
    def route(self, req):
        return Answer.json(404, {"error": {"message": "not found: %s %s" % (req.method, req.path)}})

    def error(self, message):
        """Something the CLI sent that the fake could not follow: recorded for the test."""
        with self._lock:
            self.errors.append(message)

    def plan(self, req, conv):
        """The fix plan's next step for this conversation, recorded with its request."""
        step = fixplan.next_step(conv)
        with self._lock:
            self.steps.append((req, step))
        if step.problem:
            self.error("plan: " + step.problem)
        return step

    def turn(self, req, conv):
        """The plan's next step for this conversation, and the number of the answer that carries it."""
        step = self.plan(req, conv)
        with self._lock:
            self._ids += 1
            return step, self._ids

    def model_requests(self):
        """The requests that asked the model for an answer (subclasses say which)."""
        return [r for r in self.requests if self.is_model_request(r)]

    def is_model_request(self, req):
        return False

    # -- server ---------------------------------------------------------------------------------
    def start(self, port=0):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    raw = b"".join(parts)
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                enc = (self.headers.get("Content-Encoding") or "").lower()
                if enc == "gzip":
                    raw = gzip.decompress(raw)
                elif enc == "deflate":
                    raw = zlib.decompress(raw)
                return raw

            def _handle(self):
                raw = self._read_body()
                u = urlsplit(self.path)
                req = Request(self.command, u.path, {k: v[-1] for k, v in parse_qs(u.query).items()},
                              {k.lower(): v for k, v in self.headers.items()}, raw)
                with fake._lock:
                    fake.requests.append(req)
                try:
                    ans = fake.route(req)
                except Exception as e:  # a bug in the fake: say so to the CLI and the test
                    import traceback
                    fake.error("fake crashed on %s %s: %s" % (req.method, req.path, traceback.format_exc()))
                    ans = Answer.json(500, {"error": {"message": "fake crashed: %s" % e}})
                req.status = ans.status
                if fake.log_file:
                    with fake._lock, open(fake.log_file, "a") as f:
                        f.write(json.dumps(dict(req.to_json(), answer=ans.data[:3000].decode("utf-8", "replace")))
                                + "\n")
                self.send_response(ans.status)
                self.send_header("Content-Type", ans.content_type)
                self.send_header("Content-Length", str(len(ans.data)))
                for k, v in ans.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(ans.data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d%s" % (self.port, self.prefix)
        return self.port

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def check_key(self, req, value):
        """The key check: None when fine, else the refusal."""
        if self.api_key is not None and value != self.api_key:
            self.error("bad key on %s %s: %r" % (req.method, req.path, value))
            return False
        return True


def main(cls, argv=None):
    p = argparse.ArgumentParser(description=cls.__doc__.splitlines()[0] if cls.__doc__ else None)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file")
    p.add_argument("--api-key", help="the key the CLI must send (default: the class's own)")
    p.add_argument("--log", help="append every request and answer to this file, one JSON a line")
    a = p.parse_args(argv)
    fake = cls(log_file=a.log) if a.api_key is None else cls(api_key=a.api_key, log_file=a.log)
    port = fake.start(a.port)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.rename(tmp, a.ready_file)
    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    while not done.wait(1):
        pass
    fake.stop()
    for e in fake.errors:
        print("fake error: %s" % e, file=sys.stderr)
    return 0
