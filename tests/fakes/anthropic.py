#!/usr/bin/python3
"""A fake Anthropic Messages API for Claude Code, driven by the fix plan (fixplan.py).

POST /v1/messages (`?beta=true` as Claude Code sends it), streaming (SSE) or not, with tool_use
content blocks; the key is checked from `x-api-key` (ANTHROPIC_API_KEY) or `Authorization: Bearer`
(ANTHROPIC_AUTH_TOKEN). Each request is checked as the real API does (a model, max_tokens, user/
assistant roles (and the beta's "system" turns), every tool_result answering a tool_use of the
assistant turn before it, tools with a name and an input_schema of type object); a bad one is a 400
with Anthropic's error shape and is recorded in `.errors`.

Also answered, because Claude Code calls them: `HEAD /` and `HEAD /api/hello` (its reachability
check: 200), `POST /v1/messages/count_tokens` ({"input_tokens": n}), `GET /v1/models` (a list with
the model it asked for). Anything else: 404, recorded.

    fake = FakeAnthropic(api_key="sk-ant-test")
    port = fake.start(); fake.url     # "http://127.0.0.1:PORT": ANTHROPIC_BASE_URL
    fake.requests, fake.model_requests(), fake.errors, fake.steps
    fake.tool_names()                 # the tool names offered in each model request
    fake.stop()

Command line: anthropic.py --port 0 --ready-file F [--api-key K] [--log FILE].
"""

import json
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixplan  # noqa: E402
from modelfake_http import Answer, FakeModelService, main  # noqa: E402

MODEL_DEFAULT = "claude-sonnet-4-5"


class BadRequest(Exception):
    pass


def block_text(content):
    """The text of a content field: a string or a list of blocks."""
    if isinstance(content, str):
        return content
    out = []
    for b in content or []:
        if isinstance(b, dict):
            if b.get("type") == "text":
                out.append(b.get("text", ""))
            elif b.get("type") == "tool_result":
                out.append(block_text(b.get("content")))
    return "\n".join(out)


def conversation(body):
    """fixplan.Conversation out of a Messages request; BadRequest for what the API refuses."""
    if not isinstance(body, dict):
        raise BadRequest("The request body is not valid JSON.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required")
    if not isinstance(body.get("max_tokens"), int):
        raise BadRequest("max_tokens: Field required")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages: at least one message is required")
    texts = [block_text(body.get("system"))] if body.get("system") else []
    tools = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise BadRequest("tools: each tool needs a name")
        if "input_schema" in t:
            if (t["input_schema"] or {}).get("type") != "object":
                raise BadRequest("tools.%s.input_schema.type: Input should be 'object'" % t["name"])
            tools.append(fixplan.Tool(t["name"], t["input_schema"], t.get("description", "")))
        # server tools ({"type": "web_search_..."}) have no schema: not ours to call
    calls = {}
    order = []
    pending = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant", "system"):
            raise BadRequest("messages.%d.role: Input should be 'user' or 'assistant'" % i)
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise BadRequest("messages.%d.content: Input should be a valid list" % i)
        if role == "assistant":
            if pending:
                raise BadRequest("messages.%d: tool_use ids were found without tool_result blocks immediately "
                                 "after: %s" % (i, ", ".join(sorted(pending))))
            for b in blocks:
                if isinstance(b, dict) and b.get("type") == "tool_use":
                    calls[b.get("id")] = fixplan.Exchange(b.get("name"), b.get("input"), None)
                    order.append(b.get("id"))
                    pending.add(b.get("id"))
            continue
        for b in blocks:
            if not isinstance(b, dict):
                raise BadRequest("messages.%d.content: each block must be an object" % i)
            if b.get("type") == "tool_result":
                if b.get("tool_use_id") not in pending:
                    raise BadRequest("messages.%d.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                                     "%s. Each `tool_result` block must have a corresponding `tool_use` block in "
                                     "the previous message." % (i, b.get("tool_use_id")))
                pending.discard(b["tool_use_id"])
                calls[b["tool_use_id"]].result = block_text(b.get("content"))
            elif b.get("type") == "text":
                texts.append(b.get("text", ""))
        if pending and role == "user":
            raise BadRequest("messages.%d: tool_use ids were found without tool_result blocks immediately after: %s"
                             % (i, ", ".join(sorted(pending))))
    return fixplan.Conversation(texts, tools, [calls[c] for c in order])


class FakeAnthropic(FakeModelService):
    """A fake Anthropic Messages API (Claude Code's endpoint) that carries out one real fix."""

    name = "anthropic"

    def __init__(self, api_key="sk-ant-test", log_file=None):
        super().__init__(api_key, log_file)

    def is_model_request(self, req):
        return req.method == "POST" and req.path == "/v1/messages"

    def tool_names(self):
        return [sorted(t.get("name") for t in (r.body or {}).get("tools") or [] if isinstance(t, dict))
                for r in self.model_requests()]

    def _err(self, status, typ, message):
        return Answer.json(status, {"type": "error", "error": {"type": typ, "message": message}})

    def _authorised(self, req):
        key = req.header("x-api-key")
        if key is None and (req.header("authorization") or "").startswith("Bearer "):
            key = req.header("authorization")[7:]
        return self.check_key(req, key)

    def route(self, req):
        if req.method in ("HEAD", "GET") and req.path in ("/", "/api/hello"):
            return Answer(200, b"", "text/plain")
        if req.path.startswith("/v1/") and not self._authorised(req):
            return self._err(401, "authentication_error", "invalid x-api-key")
        if req.method == "GET" and req.path == "/v1/models":
            return Answer.json(200, {"data": [{"type": "model", "id": MODEL_DEFAULT, "display_name": "Fake",
                                               "created_at": "2025-01-01T00:00:00Z"}],
                                     "has_more": False, "first_id": MODEL_DEFAULT, "last_id": MODEL_DEFAULT})
        if req.method == "POST" and req.path == "/v1/messages/count_tokens":
            return Answer.json(200, {"input_tokens": max(1, len(req.raw) // 4)})
        if req.method == "POST" and req.path == "/v1/messages":
            return self._messages(req)
        self.error("unexpected request %s %s" % (req.method, req.path))
        return self._err(404, "not_found_error", "Not found: %s %s" % (req.method, req.path))

    def _messages(self, req):
        try:
            conv = conversation(req.body)
        except BadRequest as e:
            self.error("400 %s" % e)
            return self._err(400, "invalid_request_error", str(e))
        step, n = self.turn(req, conv)
        content = []
        if step.tool is not None:
            name, _, args = step.wire()
            content.append({"type": "tool_use", "id": "toolu_fake%04d" % n, "name": name, "input": args})
        else:
            content.append({"type": "text", "text": step.text})
        stop = "tool_use" if step.tool is not None else "end_turn"
        usage = {"input_tokens": max(1, len(req.raw) // 4), "output_tokens": 20,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        msg = {"id": "msg_fake%04d" % n, "type": "message", "role": "assistant", "model": req.body["model"],
               "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not req.body.get("stream"):
            return Answer.json(200, msg)
        events = [("message_start", {"type": "message_start", "message": dict(msg, content=[], stop_reason=None,
                                                                             usage=dict(usage, output_tokens=1))}),
                  ("ping", {"type": "ping"})]
        for i, block in enumerate(content):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                text = block["text"]
                for j in range(0, len(text), 40):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "text_delta", "text": text[j:j + 40]}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": dict(block, input={})}))
                args = json.dumps(block["input"])
                for j in range(0, len(args), 40):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": args[j:j + 40]}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return Answer.sse(events, {"request-id": "req_fake%04d" % n})


if __name__ == "__main__":
    sys.exit(main(FakeAnthropic))
