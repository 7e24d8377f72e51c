#!/usr/bin/python3
"""The fake model endpoints (tests/fakes/anthropic.py, responses.py, chat.py, gemini.py) driven by
small clients that behave like the agent CLIs: offer tools in the CLI's shapes, carry out the calls
the fake makes on a real calc.py, send the results back, until the final answer. No patchbay
binary and no CLI needed; the real CLIs are run by tests/tools/try_agent_cli.py.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

import anthropic  # noqa: E402
import chat  # noqa: E402
import fixplan  # noqa: E402
import gemini  # noqa: E402
import responses  # noqa: E402

KEY = "sk-fake-test"
TASK = "make add() in calc.py return a+b. Run the tests with `python3 -m unittest`."
TITLE = "Make add() return a + b"


def post(url, body, headers):
    req = urllib.request.Request(url, json.dumps(body).encode(), dict({"Content-Type": "application/json"},
                                                                      **headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sse_data(text):
    """[(event, data)] of an SSE body."""
    out, event = [], None
    for line in text.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            d = line[6:]
            out.append((event, d if d == "[DONE]" else json.loads(d)))
            event = None
    return out


class Workspace:
    """calc.py and test_calc.py in a temp dir, and the three tools a CLI would run on them."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fake-model-")
        with open(os.path.join(self.dir, "calc.py"), "w") as f:
            f.write("def add(a, b):\n    return a - b\n")
        with open(os.path.join(self.dir, "test_calc.py"), "w") as f:
            f.write("import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n"
                    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n")

    def path(self, p):
        return p if os.path.isabs(p) else os.path.join(self.dir, p)

    def read(self, p, numbered=True):
        with open(self.path(p)) as f:
            lines = f.read().splitlines()
        return "\n".join("%d\t%s" % (i + 1, l) if numbered else l for i, l in enumerate(lines))

    def edit(self, p, old, new):
        src = text_of(self.path(p))
        if src.count(old) != 1:
            return "Error: old_string not found"
        with open(self.path(p), "w") as f:
            f.write(src.replace(old, new))
        return "The file %s has been updated successfully." % p

    def shell(self, cmd):
        r = subprocess.run(cmd, shell=True, cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        return r.stdout + ("" if r.returncode == 0 else "\nexit code: %d" % r.returncode)

    def run_tool(self, name, args):
        if name in ("Read", "read_file"):
            return self.read(args.get("file_path"))
        if name in ("Edit", "edit", "replace"):
            return self.edit(args["file_path"], args["old_string"], args["new_string"])
        if name in ("Bash", "run_shell_command"):
            return self.shell(args["command"])
        if name == "exec_command":
            return self.shell(args["cmd"])
        raise AssertionError("unexpected tool %s %r" % (name, args))

    def fixed(self):
        return "return a + b" in text_of(self.path("calc.py"))


def text_of(path):
    with open(path) as f:
        return f.read()


def schema(**props):
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


class FakeCase(unittest.TestCase):
    def setUp(self):
        self.ws = Workspace()
        self.addCleanup(shutil.rmtree, self.ws.dir, True)

    def start(self, cls):
        fake = cls(api_key=KEY)
        fake.start()
        self.addCleanup(fake.stop)
        return fake

    def assertFixed(self, fake, final):
        self.assertEqual(final.splitlines()[0], TITLE)
        self.assertTrue(self.ws.fixed())
        self.assertEqual(fake.errors, [])
        self.assertEqual([s.role for _, s in fake.steps], ["read", "edit", "test", None])


class AnthropicTest(FakeCase):
    TOOLS = [{"name": "Read", "description": "Reads a file. file_path must be an absolute path.",
              "input_schema": schema(file_path="string")},
             {"name": "Edit", "description": "Exact string replacement.",
              "input_schema": schema(file_path="string", old_string="string", new_string="string")},
             {"name": "Bash", "description": "Runs a command.", "input_schema": schema(command="string")},
             {"type": "web_search_20250305", "name": "web_search"}]

    def converse(self, fake, stream=True):
        msgs = [{"role": "user", "content": [{"type": "text", "text": TASK}]},
                {"role": "system", "content": "Primary working directory: %s" % self.ws.dir}]
        for _ in range(8):
            status, text = post(fake.url + "/v1/messages?beta=true",
                                {"model": "claude-test", "max_tokens": 1000, "messages": msgs,
                                 "tools": self.TOOLS, "stream": stream},
                                {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
            self.assertEqual(status, 200, text)
            if stream:
                blocks = {}
                for ev, d in sse_data(text):
                    self.assertEqual(ev, d["type"])
                    if ev == "content_block_start":
                        blocks[d["index"]] = dict(d["content_block"], partial="")
                    elif ev == "content_block_delta" and d["delta"]["type"] == "input_json_delta":
                        blocks[d["index"]]["partial"] += d["delta"]["partial_json"]
                    elif ev == "content_block_delta":
                        blocks[d["index"]]["text"] += d["delta"]["text"]
                self.assertEqual(sse_data(text)[-1][0], "message_stop")
                content = [dict({k: v for k, v in b.items() if k != "partial"},
                                **({"input": json.loads(b["partial"])} if b["type"] == "tool_use" else {}))
                           for _, b in sorted(blocks.items())]
            else:
                content = json.loads(text)["content"]
            msgs.append({"role": "assistant", "content": content})
            calls = [b for b in content if b["type"] == "tool_use"]
            if not calls:
                return content[0]["text"]
            msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": c["id"],
                                                      "content": self.ws.run_tool(c["name"], c["input"])}
                                                     for c in calls]})
        self.fail("no final answer")

    def test_a_fix_through_read_edit_bash(self):
        fake = self.start(anthropic.FakeAnthropic)
        self.assertFixed(fake, self.converse(fake))
        first = fake.model_requests()[0]
        self.assertEqual(first.header("x-api-key"), KEY)
        self.assertEqual(fake.tool_names()[0], ["Bash", "Edit", "Read", "web_search"])
        read = fake.model_requests()[1].body["messages"][2]["content"][0]
        self.assertEqual(read["name"], "Read")
        self.assertEqual(read["input"], {"file_path": os.path.join(self.ws.dir, "calc.py")})

    def test_not_streaming(self):
        fake = self.start(anthropic.FakeAnthropic)
        self.assertFixed(fake, self.converse(fake, stream=False))

    def test_side_endpoints_and_refusals(self):
        fake = self.start(anthropic.FakeAnthropic)
        self.assertEqual(post(fake.url + "/v1/messages/count_tokens", {"model": "m", "messages": []},
                              {"x-api-key": KEY})[0], 200)
        status, text = post(fake.url + "/v1/messages", {"model": "m", "max_tokens": 1,
                                                        "messages": [{"role": "user", "content": "hi"}]},
                            {"x-api-key": "wrong"})
        self.assertEqual((status, json.loads(text)["error"]["type"]), (401, "authentication_error"))
        status, text = post(fake.url + "/v1/messages", {
            "model": "m", "max_tokens": 1, "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}]}]},
            {"x-api-key": KEY})
        self.assertEqual(status, 400)
        self.assertIn("tool_use_id", json.loads(text)["error"]["message"])
        self.assertEqual(len(fake.errors), 2)

    def test_a_read_that_does_not_show_the_function_ends_the_run(self):
        fake = self.start(anthropic.FakeAnthropic)
        self.ws.read = lambda p, numbered=True: "1\t# nothing here"
        final = self.converse(fake)
        self.assertIn("did not show add()", final)
        self.assertFalse(self.ws.fixed())
        self.assertTrue(any("read answer lacks def add" in e for e in fake.errors))


class ResponsesTest(FakeCase):
    TOOLS = [{"type": "function", "name": "exec_command", "description": "Runs a command.",
              "parameters": schema(cmd="string")},
             {"type": "namespace", "name": "multi_agent", "tools": [
                 {"type": "function", "name": "spawn_agent", "parameters": schema(task="string")}]},
             {"type": "web_search"}]

    def converse(self, fake):
        items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be exact."}]},
                 {"type": "message", "role": "user", "content": [
                     {"type": "input_text", "text": "<environment_context><cwd>%s</cwd></environment_context>"
                      % self.ws.dir}]},
                 {"type": "message", "role": "user", "content": [{"type": "input_text", "text": TASK}]}]
        for _ in range(8):
            status, text = post(fake.url + "/responses", {"model": "gpt-test", "input": items, "tools": self.TOOLS,
                                                          "stream": True, "store": False},
                                {"Authorization": "Bearer " + KEY})
            self.assertEqual(status, 200, text)
            events = sse_data(text)
            self.assertEqual([e for e, _ in events][:2], ["response.created", "response.in_progress"])
            self.assertEqual(events[-1][0], "response.completed")
            self.assertEqual([d["sequence_number"] for _, d in events], list(range(len(events))))
            done = [d["item"] for e, d in events if e == "response.output_item.done"]
            items += done
            calls = [i for i in done if i["type"] == "function_call"]
            if not calls:
                return done[0]["content"][0]["text"]
            for c in calls:
                items.append({"type": "function_call_output", "call_id": c["call_id"],
                              "output": self.ws.run_tool(c["name"], json.loads(c["arguments"]))})
        self.fail("no final answer")

    def test_a_fix_through_the_shell(self):
        fake = self.start(responses.FakeResponses)
        self.assertFixed(fake, self.converse(fake))
        self.assertEqual(fake.model_requests()[0].header("authorization"), "Bearer " + KEY)
        self.assertEqual(fake.tool_names()[0], ["exec_command", "spawn_agent", "web_search"])
        cmds = [s.args["cmd"] for _, s in fake.steps if s.tool]
        self.assertEqual(cmds[0], "cat calc.py")
        self.assertTrue(cmds[1].startswith("sed -i 's/return a - b/return a + b/' calc.py"), cmds[1])
        self.assertEqual(cmds[2], "python3 -m unittest")

    def test_websocket_refused_and_unknown_output_refused(self):
        fake = self.start(responses.FakeResponses)
        req = urllib.request.Request(fake.url + "/responses", headers={"Upgrade": "websocket",
                                                                        "Connection": "Upgrade"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(e.exception.code, 426)
        status, _ = post(fake.url + "/responses", {"model": "m", "input": [
            {"type": "function_call_output", "call_id": "nope", "output": "x"}]}, {"Authorization": "Bearer " + KEY})
        self.assertEqual(status, 400)

    def test_code_mode_wraps_the_calls_in_javascript(self):
        desc = ("Run JavaScript.\n### `exec_command`\n```ts\ndeclare const tools: { exec_command(args: {\n"
                "  // Shell command.\n  cmd: string;\n  workdir?: string;\n}): Promise<unknown>; };\n```\n"
                "### `apply_patch`\n```ts\ndeclare const tools: { apply_patch(input: string): Promise<unknown>; };\n```\n")
        tools = [fixplan.Tool("exec", None, desc, kind="custom")]
        conv = fixplan.Conversation([TASK, "<cwd>/w</cwd>"], tools, [])
        step = fixplan.next_step(conv)
        name, kind, js = step.wire()
        self.assertEqual((name, kind, step.role), ("exec", "custom", "read"))
        self.assertTrue(js.startswith('const r = await tools.exec_command({"cmd": "cat calc.py"});\n'), js)
        ex = fixplan.Exchange("exec", js, "output:\ndef add(a, b):\n    return a - b\n")
        step = fixplan.next_step(fixplan.Conversation(conv.texts, tools, [ex]))
        name, kind, js = step.wire()
        self.assertEqual(step.role, "edit")
        self.assertIn("await tools.apply_patch(\"*** Begin Patch\\n*** Update File: calc.py\\n@@ def add(a, b):\\n"
                      "-    return a - b\\n+    return a + b\\n*** End Patch\\n\")", js)


class ChatTest(FakeCase):
    TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Reads a file (absolute path).",
                                               "parameters": schema(file_path="string")}},
             {"type": "function", "function": {"name": "edit", "parameters": schema(
                 file_path="string", old_string="string", new_string="string")}},
             {"type": "function", "function": {"name": "run_shell_command",
                                               "parameters": schema(command="string", description="string")}},
             {"type": "function", "function": {"name": "get_goal", "description": "no parameters"}}]

    def converse(self, fake, stream=True):
        msgs = [{"role": "system", "content": "I'm currently working in the directory: %s" % self.ws.dir},
                {"role": "user", "content": [{"type": "text", "text": TASK}]}]
        for _ in range(8):
            body = {"model": "fake-model", "messages": msgs, "tools": self.TOOLS, "stream": stream}
            if stream:
                body["stream_options"] = {"include_usage": True}
            status, text = post(fake.url + "/chat/completions", body, {"Authorization": "Bearer " + KEY})
            self.assertEqual(status, 200, text)
            if stream:
                chunks = sse_data(text)
                self.assertEqual(chunks[-1][1], "[DONE]")
                self.assertIn("usage", chunks[-2][1])
                msg, calls = {"role": "assistant", "content": ""}, {}
                for _, c in chunks[:-1]:
                    for ch in c["choices"]:
                        d = ch["delta"]
                        msg["content"] += d.get("content") or ""
                        for tc in d.get("tool_calls") or []:
                            cur = calls.setdefault(tc["index"], {"id": None, "type": "function",
                                                                 "function": {"name": "", "arguments": ""}})
                            cur["id"] = tc.get("id") or cur["id"]
                            cur["function"]["name"] += tc.get("function", {}).get("name", "")
                            cur["function"]["arguments"] += tc.get("function", {}).get("arguments", "")
                if calls:
                    msg["tool_calls"] = [calls[i] for i in sorted(calls)]
            else:
                msg = json.loads(text)["choices"][0]["message"]
            msgs.append(msg)
            if not msg.get("tool_calls"):
                return msg["content"]
            for c in msg["tool_calls"]:
                msgs.append({"role": "tool", "tool_call_id": c["id"],
                             "content": self.ws.run_tool(c["function"]["name"], json.loads(c["function"]["arguments"]))})
        self.fail("no final answer")

    def test_a_fix_streaming_and_not(self):
        for stream in (True, False):
            with self.subTest(stream=stream):
                self.ws = Workspace()
                self.addCleanup(shutil.rmtree, self.ws.dir, True)
                fake = self.start(chat.FakeChat)
                self.assertFixed(fake, self.converse(fake, stream))
                self.assertEqual(fake.tool_names()[0], ["edit", "get_goal", "read_file", "run_shell_command"])
                test = [s for _, s in fake.steps if s.role == "test"][0]
                self.assertEqual(test.args, {"command": "python3 -m unittest", "description": "Run the tests"})

    def test_side_requests_get_plain_answers(self):
        fake = self.start(chat.FakeChat)
        status, text = post(fake.url + "/chat/completions", {"model": "m", "messages": [
            {"role": "system", "content": "Generate a title for this conversation."},
            {"role": "user", "content": TASK}]}, {"Authorization": "Bearer " + KEY})
        self.assertEqual(json.loads(text)["choices"][0]["message"]["content"], TITLE)
        status, text = post(fake.url + "/chat/completions", {"model": "m", "response_format": {"type": "json_object"},
                                                             "messages": [{"role": "user", "content": "next_speaker?"}]},
                            {"Authorization": "Bearer " + KEY})
        self.assertEqual(json.loads(json.loads(text)["choices"][0]["message"]["content"])["next_speaker"], "user")
        self.assertEqual(post(fake.url + "/chat/completions", {"model": "m", "messages": [
            {"role": "tool", "tool_call_id": "x", "content": "?"}]}, {"Authorization": "Bearer " + KEY})[0], 400)


class GeminiTest(FakeCase):
    TOOLS = [{"functionDeclarations": [
        {"name": "read_file", "parametersJsonSchema": schema(file_path="string")},
        {"name": "replace", "parametersJsonSchema": dict(schema(file_path="string", old_string="string",
                                                                new_string="string", instruction="string"))},
        {"name": "run_shell_command", "parametersJsonSchema": schema(command="string")}]}]

    def converse(self, fake):
        contents = [{"role": "user", "parts": [{"text": "- **Workspace Directories:**\n  - %s\n" % self.ws.dir},
                                               {"text": TASK}]}]
        for _ in range(8):
            status, text = post(fake.url + "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
                                {"contents": contents, "tools": self.TOOLS}, {"x-goog-api-key": KEY})
            self.assertEqual(status, 200, text)
            parts = [p for _, c in sse_data(text) for p in c["candidates"][0]["content"]["parts"]]
            contents.append({"role": "model", "parts": parts})
            calls = [p["functionCall"] for p in parts if "functionCall" in p]
            if not calls:
                return "".join(p["text"] for p in parts)
            contents.append({"role": "user", "parts": [
                {"functionResponse": {"name": c["name"], "response": {"output": self.ws.run_tool(c["name"], c["args"])}}}
                for c in calls]})
        self.fail("no final answer")

    def test_a_fix_through_read_replace_shell(self):
        fake = self.start(gemini.FakeGemini)
        self.assertFixed(fake, self.converse(fake))
        edit = [s for _, s in fake.steps if s.role == "edit"][0]
        self.assertEqual(edit.args["instruction"], "Step of the fix")   # a required field it knows nothing of

    def test_json_answers_fit_the_schema(self):
        fake = self.start(gemini.FakeGemini)
        status, text = post(fake.url + "/v1beta/models/flash:generateContent", {
            "contents": [{"role": "user", "parts": [{"text": "score this"}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                "type": "OBJECT", "properties": {"complexity_reasoning": {"type": "STRING"},
                                                 "complexity_score": {"type": "INTEGER"}}}}},
            {"x-goog-api-key": KEY})
        answer = json.loads(json.loads(text)["candidates"][0]["content"]["parts"][0]["text"])
        self.assertEqual(sorted(answer), ["complexity_reasoning", "complexity_score"])
        self.assertIsInstance(answer["complexity_score"], int)


class PlanTest(unittest.TestCase):
    def test_the_task_and_the_working_directory(self):
        t = fixplan.find_task(["Please make `mul()` in src/ops.py return a*b; run `pytest -q tests`."])
        self.assertEqual(t, {"func": "mul", "file": "src/ops.py", "expr": "a * b", "test": "pytest -q tests"})
        self.assertEqual(fixplan.find_cwd(["<cwd>/srv/x</cwd>"]), "/srv/x")
        self.assertEqual(fixplan.find_cwd(["Working directory: /w/r\n"]), "/w/r")

    def test_line_numbers_are_taken_off_read_answers(self):
        for text in ("1\tdef add(a, b):\n2\t    return a - b", "00001| def add(a, b):\n00002|     return a - b",
                     "1: def add(a, b):\n2:     return a - b", "     1\u2192def add(a, b):\n     2\u2192    return a - b"):
            self.assertEqual(fixplan.find_return_line(text, "add"), ("def add(a, b):", "    return a - b"), text)

    def test_without_a_working_directory_it_asks_the_shell(self):
        tools = [fixplan.Tool("read", schema(filePath="string"), "Reads a file. Use an absolute path."),
                 fixplan.Tool("bash", schema(command="string"))]
        step = fixplan.next_step(fixplan.Conversation([TASK], tools, []))
        self.assertEqual((step.role, step.args), ("pwd", {"command": "pwd"}))
        step = fixplan.next_step(fixplan.Conversation([TASK], tools, [fixplan.Exchange("bash", step.args, "/r\n")]))
        self.assertEqual((step.role, step.args), ("read", {"filePath": "/r/calc.py"}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
