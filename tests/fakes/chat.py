#!/usr/bin/python3
"""A fake OpenAI chat-completions endpoint for agent CLIs (qwen-code, opencode), driven by the fix plan.

Unlike openai.py (a scripted endpoint for patchbay's own agent), this one decides its answers from
the conversation (fixplan.py): it reads the tools the CLI offered and carries out one real fix
through them. POST /v1/chat/completions with `Authorization: Bearer KEY`, streaming
(`data: {chat.completion.chunk}` lines, tool calls as `delta.tool_calls` fragments, a usage chunk
when `stream_options.include_usage`, then `data: [DONE]`) or not. Checked as the real endpoint
does: a model, messages with roles system/developer/user/assistant/tool, every tool message
answering a tool_call id of the assistant message before it, content as a string or a list of
parts; a bad one is a 400, recorded in `.errors`. Tool definitions are only recorded (the CLIs send
some without `parameters`, which OpenAI accepts). A request for JSON (`response_format`, or a prompt
asking for `next_speaker`) gets the JSON verdict the CLIs' side checks expect.

`GET /v1/models` lists the models. Anything else: 404, recorded.

    fake = FakeChat(api_key="sk-test")
    port = fake.start(); fake.url     # "http://127.0.0.1:PORT/v1": OPENAI_BASE_URL / baseURL
    fake.requests, fake.model_requests(), fake.errors, fake.steps, fake.tool_names()
    fake.stop()

Command line: chat.py --port 0 --ready-file F [--api-key K] [--log FILE].
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixplan  # noqa: E402
from modelfake_http import Answer, FakeModelService, main  # noqa: E402

ROLES = ("system", "developer", "user", "assistant", "tool")


class BadRequest(Exception):
    pass


def content_text(content):
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise BadRequest("content must be a string or an array of content parts")
    out = []
    for p in content:
        if not isinstance(p, dict) or "type" not in p:
            raise BadRequest("each content part needs a type")
        if p["type"] == "text":
            out.append(p.get("text", ""))
    return "\n".join(out)


def conversation(body):
    if not isinstance(body, dict):
        raise BadRequest("We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("you must provide a model parameter")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' must be a non-empty array")
    tools = []
    for t in body.get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance((fn or {}).get("name"), str):
            raise BadRequest("Invalid tool: each needs type function and a function name")
        tools.append(fixplan.Tool(fn["name"], fn.get("parameters") or {"type": "object", "properties": {}},
                                  fn.get("description", "")))
    texts, calls, order, pending = [], {}, [], set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise BadRequest("messages[%d].role must be one of %s" % (i, ", ".join(ROLES)))
        if role == "tool":
            cid = m.get("tool_call_id")
            if cid not in pending:
                raise BadRequest("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                 "message with 'tool_calls'.")
            pending.discard(cid)
            calls[cid].result = content_text(m.get("content"))
            continue
        if pending:
            raise BadRequest("An assistant message with 'tool_calls' must be followed by tool messages responding "
                             "to each 'tool_call_id'. Missing: %s" % ", ".join(sorted(pending)))
        if role == "assistant":
            for c in m.get("tool_calls") or []:
                fn = c.get("function") or {}
                if c.get("type", "function") != "function" or not isinstance(fn.get("arguments"), str):
                    raise BadRequest("messages[%d].tool_calls: each needs type function and string arguments" % i)
                try:
                    args = json.loads(fn["arguments"] or "{}")
                except ValueError:
                    args = fn["arguments"]
                calls[c.get("id")] = fixplan.Exchange(fn.get("name"), args, None)
                order.append(c.get("id"))
                pending.add(c.get("id"))
            continue
        texts.append(content_text(m.get("content")))
    rf = (body.get("response_format") or {}).get("type")
    wants_json = rf in ("json_object", "json_schema") or (not tools and any("next_speaker" in t for t in texts[-2:]))
    return fixplan.Conversation(texts, tools, [calls[c] for c in order], wants_json=wants_json)


class FakeChat(FakeModelService):
    """A fake OpenAI chat-completions endpoint (qwen-code's, opencode's) that carries out one real fix."""

    name = "chat"
    prefix = "/v1"

    def __init__(self, api_key="sk-test", log_file=None):
        super().__init__(api_key, log_file)

    def is_model_request(self, req):
        return req.method == "POST" and req.path == "/v1/chat/completions"

    def tool_names(self):
        return [sorted((t.get("function") or {}).get("name") for t in (r.body or {}).get("tools") or []
                       if isinstance(t, dict)) for r in self.model_requests()]

    def _err(self, status, message, typ="invalid_request_error"):
        return Answer.json(status, {"error": {"message": message, "type": typ, "param": None, "code": None}})

    def route(self, req):
        if req.path.startswith("/v1/"):
            auth = req.header("authorization") or ""
            if not self.check_key(req, auth[7:] if auth.startswith("Bearer ") else None):
                return self._err(401, "Incorrect API key provided.")
        if req.method == "GET" and req.path == "/v1/models":
            return Answer.json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model",
                                                                 "created": 1735689600, "owned_by": "fake"}]})
        if req.method == "POST" and req.path == "/v1/chat/completions":
            return self._chat(req)
        self.error("unexpected request %s %s" % (req.method, req.path))
        return self._err(404, "Unknown request URL: %s %s" % (req.method, req.path))

    def _chat(self, req):
        try:
            conv = conversation(req.body)
        except BadRequest as e:
            self.error("400 %s" % e)
            return self._err(400, str(e))
        step, n = self.turn(req, conv)
        msg = {"role": "assistant", "content": None}
        if step.tool is not None:
            name, _, args = step.wire()
            msg["tool_calls"] = [{"id": "call_fake%04d" % n, "type": "function",
                                  "function": {"name": name,
                                               "arguments": args if isinstance(args, str) else json.dumps(args)}}]
            finish = "tool_calls"
        else:
            msg["content"] = step.text
            finish = "stop"
        usage = {"prompt_tokens": max(1, len(req.raw) // 4), "completion_tokens": 20}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-fake%04d" % n, "created": int(time.time()), "model": req.body["model"],
                "system_fingerprint": "fp_fake"}
        if not req.body.get("stream"):
            return Answer.json(200, dict(base, object="chat.completion", usage=usage,
                                         choices=[{"index": 0, "message": msg, "finish_reason": finish,
                                                   "logprobs": None}]))

        def chunk(delta, finish_reason=None):
            return (None, dict(base, object="chat.completion.chunk",
                               choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                         "logprobs": None}]))

        events = [chunk({"role": "assistant", "content": ""})]
        if step.tool is not None:
            call = msg["tool_calls"][0]
            events.append(chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"], "arguments": ""}}]}))
            a = call["function"]["arguments"]
            for j in range(0, len(a), 40):
                events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": a[j:j + 40]}}]}))
        else:
            for j in range(0, len(step.text), 40):
                events.append(chunk({"content": step.text[j:j + 40]}))
        events.append(chunk({}, finish))
        if (req.body.get("stream_options") or {}).get("include_usage"):
            events.append((None, dict(base, object="chat.completion.chunk", choices=[], usage=usage)))
        events.append((None, "[DONE]"))
        return Answer.sse(events)


if __name__ == "__main__":
    sys.exit(main(FakeChat))
