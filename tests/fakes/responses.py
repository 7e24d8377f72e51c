#!/usr/bin/python3
"""A fake OpenAI Responses API for the Codex CLI, driven by the fix plan (fixplan.py).

POST /v1/responses with `Authorization: Bearer KEY`, streaming (SSE, the events the real API sends:
response.created, response.in_progress, response.output_item.added, response.content_part.added,
response.output_text.delta/.done, response.function_call_arguments.delta/.done,
response.custom_tool_call_input.delta/.done, response.content_part.done, response.output_item.done,
response.completed with usage) or not (a response object). The request is checked as the API does:
a model, an input list whose items are messages (roles system/developer/user/assistant),
function_call/custom_tool_call items and their *_output items answering an earlier call_id, tools
of type function (a name and an object schema), custom, namespace (Codex's groups of functions) or
a hosted type. A bad one is a 400 with OpenAI's error shape, recorded in `.errors`.

Codex with the built-in provider first tries a WebSocket on the same URL (GET with
`Upgrade: websocket`); this fake refuses it with 426 and Codex falls back to HTTPS (after its
retries). A custom `model_providers.<id>` entry never tries the WebSocket. `GET /v1/models` answers
a model list (Codex's built-in provider asks for it at start).

    fake = FakeResponses(api_key="sk-test")
    port = fake.start(); fake.url     # "http://127.0.0.1:PORT/v1"
    fake.requests, fake.model_requests(), fake.errors, fake.steps, fake.tool_names()
    fake.stop()

Command line: responses.py --port 0 --ready-file F [--api-key K] [--log FILE].
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixplan  # noqa: E402
from modelfake_http import Answer, FakeModelService, main  # noqa: E402

ROLES = ("system", "developer", "user", "assistant")
CALLS = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output",
         "local_shell_call": "local_shell_call_output"}


class BadRequest(Exception):
    pass


def content_text(content):
    if isinstance(content, str):
        return content
    out = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
            out.append(part.get("text", ""))
    return "\n".join(out)


def flat_tools(tools):
    """Tools, with Codex's namespaces opened up: (tool dict, name to call it by)."""
    for t in tools or []:
        if not isinstance(t, dict):
            raise BadRequest("tools: each tool must be an object")
        if t.get("type") == "namespace":
            for inner in t.get("tools") or []:
                yield from flat_tools([inner])
        else:
            yield t


def conversation(body):
    if not isinstance(body, dict):
        raise BadRequest("We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("Missing required parameter: 'model'.")
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list):
        raise BadRequest("Invalid type for 'input': expected a string or an array.")
    texts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    tools = []
    offered = list(body.get("tools") or [])
    for it in items:
        if isinstance(it, dict) and it.get("type") == "additional_tools":
            offered += it.get("tools") or []   # Codex's newest models get their tools as an input item
    for t in flat_tools(offered):
        typ = t.get("type")
        if typ == "function":
            if not isinstance(t.get("name"), str) or (t.get("parameters") or {}).get("type") != "object":
                raise BadRequest("Invalid schema for function '%s'." % t.get("name"))
            tools.append(fixplan.Tool(t["name"], t["parameters"], t.get("description", "")))
        elif typ == "custom":
            if not isinstance(t.get("name"), str):
                raise BadRequest("Missing required parameter: 'tools[].name'.")
            tools.append(fixplan.Tool(t["name"], None, t.get("description", ""), kind="custom"))
        # hosted tools (web_search, local_shell, image_generation, ...): not called by this fake
    calls = {}
    order = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise BadRequest("Invalid type for 'input[%d]': expected an object." % i)
        typ = it.get("type", "message")
        if typ == "message":
            if it.get("role") not in ROLES:
                raise BadRequest("Invalid value: '%s'. Supported values are: %s." % (it.get("role"), ", ".join(ROLES)))
            if it["role"] != "assistant":
                texts.append(content_text(it.get("content")))
        elif typ in CALLS:
            cid = it.get("call_id")
            if not cid:
                raise BadRequest("Missing required parameter: 'input[%d].call_id'." % i)
            if typ == "function_call":
                try:
                    args = json.loads(it.get("arguments") or "{}")
                except ValueError:
                    raise BadRequest("input[%d].arguments is not valid JSON." % i)
            else:
                args = it.get("input") if typ == "custom_tool_call" else it.get("action")
            calls[cid] = fixplan.Exchange(it.get("name") or typ, args, None)
            order.append(cid)
        elif typ in CALLS.values():
            cid = it.get("call_id")
            if cid not in calls:
                raise BadRequest("No tool call found for %s with call_id %s." % (typ.replace("_", " "), cid))
            out = it.get("output")
            calls[cid].result = out if isinstance(out, str) else content_text(out) if isinstance(out, list) \
                else json.dumps(out)
        elif typ in ("reasoning", "item_reference", "compaction", "web_search_call", "additional_tools"):
            pass
        else:
            raise BadRequest("Invalid value: '%s' for input[%d].type." % (typ, i))
    fmt = ((body.get("text") or {}).get("format") or {}).get("type")
    return fixplan.Conversation(texts, tools, [calls[c] for c in order], wants_json=fmt in ("json_schema",
                                                                                              "json_object"))


class FakeResponses(FakeModelService):
    """A fake OpenAI Responses API (the Codex CLI's endpoint) that carries out one real fix."""

    name = "responses"
    prefix = "/v1"

    def __init__(self, api_key="sk-test", log_file=None):
        super().__init__(api_key, log_file)

    def is_model_request(self, req):
        return req.method == "POST" and req.path == "/v1/responses"

    def tool_names(self):
        """The tools offered in each model request (with those of an additional_tools item)."""
        out = []
        for r in self.model_requests():
            b = r.body or {}
            offered = list(b.get("tools") or []) + [t for it in b.get("input") or [] if isinstance(it, dict)
                                                    and it.get("type") == "additional_tools"
                                                    for t in it.get("tools") or []]
            try:
                out.append(sorted(t.get("name") or t.get("type") for t in flat_tools(offered)))
            except BadRequest:
                out.append([])
        return out

    def _err(self, status, message, typ="invalid_request_error", code=None):
        return Answer.json(status, {"error": {"message": message, "type": typ, "param": None, "code": code}})

    def route(self, req):
        if (req.header("upgrade") or "").lower() == "websocket":
            # no WebSocket here: Codex falls back to a POST with SSE
            return Answer.text(426, "WebSocket is not supported by this server")
        if req.path.startswith("/v1/"):
            auth = req.header("authorization") or ""
            if not self.check_key(req, auth[7:] if auth.startswith("Bearer ") else None):
                return self._err(401, "Incorrect API key provided.", code="invalid_api_key")
        if req.method == "GET" and req.path == "/v1/models":
            return Answer.json(200, {"object": "list", "data": [{"id": "gpt-5", "object": "model",
                                                                 "created": 1735689600, "owned_by": "openai"}],
                                     "models": []})
        if req.method == "POST" and req.path == "/v1/responses":
            return self._responses(req)
        self.error("unexpected request %s %s" % (req.method, req.path))
        return self._err(404, "Invalid URL (%s %s)" % (req.method, req.path))

    def _responses(self, req):
        try:
            conv = conversation(req.body)
        except BadRequest as e:
            self.error("400 %s" % e)
            return self._err(400, str(e))
        step, n = self.turn(req, conv)
        name, kind, args = step.wire() if step.tool is not None else (None, None, None)
        if step.tool is None:
            item = {"id": "msg_fake%04d" % n, "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": step.text, "annotations": [], "logprobs": []}]}
        elif kind == "custom":
            item = {"id": "ctc_fake%04d" % n, "type": "custom_tool_call", "status": "completed",
                    "call_id": "call_fake%04d" % n, "name": name, "input": args}
        else:
            item = {"id": "fc_fake%04d" % n, "type": "function_call", "status": "completed",
                    "call_id": "call_fake%04d" % n, "name": name, "arguments": json.dumps(args)}
        usage = {"input_tokens": max(1, len(req.raw) // 4), "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0}}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        resp = {"id": "resp_fake%04d" % n, "object": "response", "created_at": int(time.time()),
                "status": "completed", "model": req.body["model"], "output": [item], "usage": usage,
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
                "incomplete_details": None}
        if not req.body.get("stream"):
            return Answer.json(200, resp)
        seq = [0]
        events = []

        def ev(typ, **fields):
            events.append((typ, dict({"type": typ, "sequence_number": seq[0]}, **fields)))
            seq[0] += 1

        running = dict(resp, status="in_progress", output=[], usage=None)
        ev("response.created", response=running)
        ev("response.in_progress", response=running)
        if item["type"] == "message":
            text = step.text
            ev("response.output_item.added", output_index=0, item=dict(item, status="in_progress", content=[]))
            ev("response.content_part.added", item_id=item["id"], output_index=0, content_index=0,
               part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            for j in range(0, len(text), 40):
                ev("response.output_text.delta", item_id=item["id"], output_index=0, content_index=0,
                   delta=text[j:j + 40], logprobs=[])
            ev("response.output_text.done", item_id=item["id"], output_index=0, content_index=0, text=text,
               logprobs=[])
            ev("response.content_part.done", item_id=item["id"], output_index=0, content_index=0,
               part=item["content"][0])
        elif item["type"] == "function_call":
            ev("response.output_item.added", output_index=0, item=dict(item, status="in_progress", arguments=""))
            args = item["arguments"]
            for j in range(0, len(args), 40):
                ev("response.function_call_arguments.delta", item_id=item["id"], output_index=0,
                   delta=args[j:j + 40])
            ev("response.function_call_arguments.done", item_id=item["id"], output_index=0, arguments=args)
        else:
            ev("response.output_item.added", output_index=0, item=dict(item, status="in_progress", input=""))
            text = item["input"]
            for j in range(0, len(text), 40):
                ev("response.custom_tool_call_input.delta", item_id=item["id"], output_index=0,
                   delta=text[j:j + 40])
            ev("response.custom_tool_call_input.done", item_id=item["id"], output_index=0, input=text)
        ev("response.output_item.done", output_index=0, item=item)
        ev("response.completed", response=resp)
        return Answer.sse(events, {"x-request-id": "req_fake%04d" % n})


if __name__ == "__main__":
    sys.exit(main(FakeResponses))
