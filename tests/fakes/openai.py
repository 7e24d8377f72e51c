#!/usr/bin/python3
"""A scripted OpenAI-compatible chat-completions server for tests.

POST /v1/chat/completions answers from a script, one entry per call, after
checking the request the way the real endpoints do: the bearer key, a model,
a messages array whose roles are system/user/assistant/tool, tool schemas of
type "function" with a name and an object of parameters, and every tool
message answering a tool_call id of the assistant message before it (OpenAI
answers 400 otherwise). Standard library only; 127.0.0.1 only.

    fake = FakeOpenAI(api_key="sk-test")
    fake.script([...])        # entries, used in order
    fake.start(); fake.url    # "http://127.0.0.1:PORT/v1"
    fake.requests             # every request body, as JSON
    fake.stop()

A script entry is one of:
    {"tool_calls": [{"name": "read_file", "arguments": {...}}, ...], "content": None}
    {"content": "text"}                      an answer without tool calls
    {"status": 429, "retry_after": 1}        an error answer (any status; JSON error body)
    {"garbage": "not json"}                  a 200 whose body is not a chat completion
    {"truncated": True}                      a 200 whose JSON is cut in the middle
    a callable(request_body) -> entry        to answer from what the agent sent (tool results)
Each answer carries usage {"prompt_tokens", "completion_tokens", "total_tokens"}:
by default 100 + 10 per message and 20, or the entry's "usage". When the
script is used up, the answer is a plain text "(script ended)".
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLES = ("system", "user", "assistant", "tool")


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def check_request(body, api_key, auth):
    """The checks a real endpoint makes, as (status, message) errors."""
    if api_key is not None and auth != "Bearer " + api_key:
        raise RequestError(401, "Incorrect API key provided.")
    if not isinstance(body, dict):
        raise RequestError(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestError(400, "you must provide a model parameter")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError(400, "'messages' must be a non-empty array")
    pending = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise RequestError(400, "messages[%d].role must be one of %s" % (i, ", ".join(ROLES)))
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                raise RequestError(400, "Invalid parameter: messages with role 'tool' must be a response to a "
                                        "preceeding message with 'tool_calls'.")
            pending.discard(m["tool_call_id"])
            if not isinstance(m.get("content"), str):
                raise RequestError(400, "messages[%d].content must be a string" % i)
            continue
        if pending:
            raise RequestError(400, "An assistant message with 'tool_calls' must be followed by tool messages "
                                    "responding to each 'tool_call_id'. Missing: %s" % ", ".join(sorted(pending)))
        if role == "assistant":
            for c in m.get("tool_calls") or []:
                if c.get("type") != "function" or not isinstance(c.get("function", {}).get("arguments"), str):
                    raise RequestError(400, "messages[%d].tool_calls: each needs type function and string "
                                            "arguments" % i)
                pending.add(c.get("id"))
        elif not isinstance(m.get("content"), str):
            raise RequestError(400, "messages[%d].content must be a string" % i)
    tools = body.get("tools", [])
    names = set()
    for t in tools:
        fn = t.get("function", {}) if isinstance(t, dict) else {}
        if t.get("type") != "function" or not isinstance(fn.get("name"), str) or \
                fn.get("parameters", {}).get("type") != "object":
            raise RequestError(400, "Invalid schema for tool: %s" % json.dumps(t)[:200])
        names.add(fn["name"])
    return names


class FakeOpenAI:
    def __init__(self, api_key="sk-test"):
        self.api_key = api_key
        self.requests = []
        self.errors = []   # 4xx the fake gave for a bad request: a test asserts it stays empty
        self.auth = []     # the Authorization header of every call (None when absent)
        self.tool_names = []
        self._script = []
        self._lock = threading.Lock()
        self._calls = 0
        self.server = None
        self.url = None

    def script(self, entries):
        with self._lock:
            self._script = list(entries)

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                fake.auth.append(self.headers.get("Authorization"))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "Unknown request URL: POST %s" % self.path}})
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                try:
                    names = check_request(body, fake.api_key, self.headers.get("Authorization"))
                except RequestError as e:
                    fake.errors.append(str(e))
                    return self._send(e.status, {"error": {"message": str(e), "type": "invalid_request_error"}})
                with fake._lock:
                    fake.requests.append(body)
                    fake.tool_names.append(sorted(names))
                    entry = fake._script.pop(0) if fake._script else {"content": "(script ended)"}
                    fake._calls += 1
                    call_no = fake._calls
                if callable(entry):
                    entry = entry(body)
                if "status" in entry:
                    h = {"Retry-After": str(entry["retry_after"])} if "retry_after" in entry else {}
                    return self._send(entry["status"], {"error": {"message": entry.get("message", "Rate limit "
                                                                                        "reached"),
                                                                  "type": "requests"}}, h)
                if "garbage" in entry:
                    return self._send_raw(200, entry["garbage"].encode())
                msg = {"role": "assistant", "content": entry.get("content")}
                if entry.get("tool_calls"):
                    msg["tool_calls"] = [{"id": "call_%d_%d" % (call_no, i), "type": "function",
                                          "function": {"name": c["name"],
                                                       "arguments": c["arguments"] if isinstance(c["arguments"], str)
                                                       else json.dumps(c["arguments"])}}
                                         for i, c in enumerate(entry["tool_calls"])]
                usage = entry.get("usage") or {"prompt_tokens": 100 + 10 * len(body["messages"]),
                                               "completion_tokens": 20}
                usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
                answer = {"id": "chatcmpl-%d" % call_no, "object": "chat.completion", "created": 1764806400,
                          "model": body["model"],
                          "choices": [{"index": 0, "message": msg,
                                       "finish_reason": "tool_calls" if entry.get("tool_calls") else "stop"}],
                          "usage": usage}
                data = json.dumps(answer).encode()
                if entry.get("truncated"):
                    data = data[:len(data) // 2]
                self._send_raw(200, data)

            def _send(self, status, obj, headers=None):
                self._send_raw(status, json.dumps(obj).encode(), headers)

            def _send_raw(self, status, data, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/v1" % self.server.server_address[1]
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
