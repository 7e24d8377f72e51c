#!/usr/bin/python3
"""A fake Gemini API (generativelanguage v1beta) for gemini-cli, driven by the fix plan (fixplan.py).

POST /v1beta/models/MODEL:generateContent and :streamGenerateContent?alt=sse (each SSE event is
`data: <GenerateContentResponse>`; there is no end marker), the key in `x-goog-api-key` (or
`?key=`). Checked as the API does: contents with roles user/model, parts of text / functionCall /
functionResponse (thought parts are skipped), every functionResponse answering a functionCall of
the model turn before it; functionDeclarations with a name and `parameters` or
`parametersJsonSchema`. A bad request is a 400 in Google's error shape, recorded in `.errors`.
A request with `generationConfig.responseMimeType: application/json` (gemini-cli's model router,
its next-speaker and loop checks) gets a JSON object that fits `responseJsonSchema`/`responseSchema`.
`POST .../MODEL:countTokens` answers a count, `GET /v1beta/models` a list. Anything else: 404.

    fake = FakeGemini(api_key="test-key")
    port = fake.start(); fake.url     # "http://127.0.0.1:PORT": GOOGLE_GEMINI_BASE_URL
    fake.requests, fake.model_requests(), fake.errors, fake.steps, fake.tool_names()
    fake.stop()

Command line: gemini.py --port 0 --ready-file F [--api-key K] [--log FILE].
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixplan  # noqa: E402
from modelfake_http import Answer, FakeModelService, main  # noqa: E402

MODEL_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")


class BadRequest(Exception):
    pass


def response_text(resp):
    """A functionResponse's response as the text the model reads."""
    if isinstance(resp, dict):
        for k in ("output", "llmContent", "content", "result"):
            if isinstance(resp.get(k), str):
                return resp[k]
        if isinstance(resp.get("error"), str):
            return "error: " + resp["error"]
    return json.dumps(resp)


def conversation(body):
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    texts = []
    si = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(si, dict):
        texts.append("\n".join(p.get("text", "") for p in si.get("parts") or [] if isinstance(p, dict)))
    elif isinstance(si, str):
        texts.append(si)
    tools = []
    for t in body.get("tools") or []:
        for f in (t or {}).get("functionDeclarations") or []:
            if not isinstance(f.get("name"), str):
                raise BadRequest("* GenerateContentRequest.tools.function_declarations.name: name is required")
            schema = f.get("parametersJsonSchema") or f.get("parameters") or {"type": "object", "properties": {}}
            tools.append(fixplan.Tool(f["name"], schema, f.get("description", "")))
    exchanges, pending = [], []
    for i, c in enumerate(contents):
        role = (c or {}).get("role", "user")
        if role not in ("user", "model", "function"):
            raise BadRequest("* GenerateContentRequest.contents[%d].role: Please use a valid role: user, model." % i)
        parts = (c or {}).get("parts")
        if not isinstance(parts, list) or not parts:
            raise BadRequest("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty." % i)
        for p in parts:
            if not isinstance(p, dict) or p.get("thought"):
                continue
            if "functionCall" in p:
                if role != "model":
                    raise BadRequest("contents[%d]: a functionCall must come from the model" % i)
                fc = p["functionCall"]
                ex = fixplan.Exchange(fc.get("name"), fc.get("args") or {}, None)
                ex.call_id = fc.get("id")
                exchanges.append(ex)
                pending.append(ex)
            elif "functionResponse" in p:
                fr = p["functionResponse"]
                match = next((e for e in pending if fr.get("id") and e.call_id == fr.get("id")), None) or \
                    next((e for e in pending if e.name == fr.get("name")), None)
                if match is None:
                    raise BadRequest("Please ensure that the number of function response parts is equal to the "
                                     "number of function call parts of the function call turn.")
                pending.remove(match)
                match.result = response_text(fr.get("response"))
            elif "text" in p and role != "model":
                texts.append(p["text"])
    gc = body.get("generationConfig") or {}
    wants_json = gc.get("responseMimeType") == "application/json"
    return fixplan.Conversation(texts, tools, exchanges, wants_json=wants_json,
                                json_schema=gc.get("responseJsonSchema") or gc.get("responseSchema"))


class FakeGemini(FakeModelService):
    """A fake Gemini API (gemini-cli's endpoint) that carries out one real fix."""

    name = "gemini"

    def __init__(self, api_key="test-gemini-key", log_file=None):
        super().__init__(api_key, log_file)

    def is_model_request(self, req):
        m = MODEL_PATH.match(req.path)
        return req.method == "POST" and m is not None and m.group(2) != "countTokens"

    def tool_names(self):
        return [sorted(f.get("name") for t in (r.body or {}).get("tools") or []
                       for f in (t or {}).get("functionDeclarations") or [])
                for r in self.model_requests()]

    def _err(self, status, message, st="INVALID_ARGUMENT"):
        return Answer.json(status, {"error": {"code": status, "message": message, "status": st}})

    def route(self, req):
        if req.path.startswith("/v1"):
            if not self.check_key(req, req.header("x-goog-api-key") or req.query.get("key")):
                return self._err(400, "API key not valid. Please pass a valid API key.")
        if req.method == "GET" and re.match(r"^/v1(beta)?/models$", req.path):
            return Answer.json(200, {"models": [{"name": "models/gemini-fake", "supportedGenerationMethods":
                                                 ["generateContent", "countTokens"]}]})
        m = MODEL_PATH.match(req.path)
        if req.method == "POST" and m:
            if m.group(2) == "countTokens":
                return Answer.json(200, {"totalTokens": max(1, len(req.raw) // 4)})
            return self._generate(req, m.group(1), m.group(2) == "streamGenerateContent")
        self.error("unexpected request %s %s" % (req.method, req.path))
        return self._err(404, "Not found: %s %s" % (req.method, req.path), "NOT_FOUND")

    def _generate(self, req, model, stream):
        try:
            conv = conversation(req.body)
        except BadRequest as e:
            self.error("400 %s" % e)
            return self._err(400, str(e))
        step, n = self.turn(req, conv)
        if step.tool is not None:
            name, _, args = step.wire()
            parts = [{"functionCall": {"name": name, "args": args}}]
        else:
            parts = [{"text": step.text}]
        usage = {"promptTokenCount": max(1, len(req.raw) // 4), "candidatesTokenCount": 20}
        usage["totalTokenCount"] = usage["promptTokenCount"] + 20

        def resp(ps, finish):
            c = {"content": {"role": "model", "parts": ps}, "index": 0}
            if finish:
                c["finishReason"] = finish
            return {"candidates": [c], "usageMetadata": usage, "modelVersion": model,
                    "responseId": "fake%04d" % n}

        if not stream:
            return Answer.json(200, resp(parts, "STOP"))
        if step.tool is None and len(step.text) > 40:
            text = step.text
            chunks = [resp([{"text": text[j:j + 40]}], None) for j in range(0, len(text) - 40, 40)]
            chunks.append(resp([{"text": text[(len(chunks)) * 40:]}], "STOP"))
        else:
            chunks = [resp(parts, "STOP")]
        return Answer.sse([(None, c) for c in chunks])


if __name__ == "__main__":
    sys.exit(main(FakeGemini))
