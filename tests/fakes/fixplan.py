"""The one "model" behind every fake agent endpoint: a real fix, driven through the CLI's own tools.

Protocol-independent. Each fake (anthropic.py, responses.py, chat.py, gemini.py) turns a request
into a `Conversation` (the texts it was given, the tools the CLI offered with their JSON schemas,
and the tool calls so far with their results), asks `next_step(conv)` what to do, and writes the
answer in its own wire format.

The task it can do is the one the proofs give: "make add() in calc.py return a+b" (any function,
file and expression of that shape), with the test command in backquotes when there is one. Nothing
here knows a CLI by name: the tools are recognised by their schemas, so the same plan runs through
Claude Code's Read/Edit/Bash, Codex's exec_command (or apply_patch), qwen-code's read_file/edit/
run_shell_command, opencode's read/edit/bash and gemini-cli's tools:

  0. `pwd` with the shell, only when the prompt does not say the working directory and a file tool
     wants an absolute path;
  1. read the file (the read tool, else `cat` with the shell) and check the answer shows the function;
  2. change the return expression (the edit tool; else apply_patch; else `sed -i` with the shell) and
     check the answer is not an error;
  3. run the tests with the shell and check they pass;
  4. answer: a first line that is a short title ("Make add() return a + b"), a blank line, a body.

Every check that fails ends the run with a final answer saying what went wrong (never a loop), and
the reason is returned in `Step.problem` for the fake to record.
"""

import json
import re
import shlex

TASK_RE = re.compile(r"\b(?:make|have|let)\s+`?(?P<func>[A-Za-z_]\w*)\(\)`?\s+(?:in|of)\s+`?(?P<file>[\w./-]+\.\w+)`?"
                     r"\s+return\s+`?(?P<expr>[^`\n]+?)`?\s*(?:[.;,](?:\s|$)|$|\n)", re.I)
TEST_CMD_RE = re.compile(r"`([^`\n]*\b(?:unittest|pytest|test|tests|make check|ctest)\b[^`\n]*)`")
CWD_RES = [re.compile(p, re.I) for p in (
    r"<cwd>\s*(/[^<\s]+)\s*</cwd>",
    r"(?:primary )?working directory(?: is)?\s*[:=]?\s*`?(/[^\s`'\"<>]+)",
    r"currently working in the directory:?\s*`?(/[^\s`'\"<>]+)",
    r"current (?:working )?directory(?: is)?\s*[:=]?\s*`?(/[^\s`'\"<>]+)",
    r"\bcwd\s*[:=]\s*`?(/[^\s`'\"<>,]+)",
    r"workspace directories:?\**\s*-\s*(/[^\s`'\"<>]+)",
)]
DEFAULT_TEST = "python3 -m unittest"
MAX_EXCHANGES = 10

PATH_KEYS = ("file_path", "filePath", "absolute_path", "path", "filename", "file")
OLD_KEYS = ("old_string", "oldString", "old_str", "old_text", "oldText", "search")
NEW_KEYS = ("new_string", "newString", "new_str", "new_text", "newText", "replace")
CONTENT_KEYS = ("content", "contents", "text", "file_text")
CMD_KEYS = ("command", "cmd")


class Tool:
    """One offered tool. kind: "function" (JSON arguments), "custom" (free text input, e.g. apply_patch)
    or "nested": a tool reachable only from JavaScript run by a "code mode" tool (`parent`), as Codex
    offers its tools to its newest models (`await tools.exec_command({...})` inside a custom `exec`)."""

    def __init__(self, name, schema=None, description="", kind="function", parent=None):
        self.name = name
        self.schema = schema if isinstance(schema, dict) else {}
        self.description = description or ""
        self.kind = kind
        self.parent = parent

    @property
    def props(self):
        p = self.schema.get("properties")
        return p if isinstance(p, dict) else {}

    def key(self, candidates):
        for c in candidates:
            if c in self.props:
                return c
        return None

    def __repr__(self):
        return "Tool(%s)" % self.name


class Exchange:
    """A tool call made earlier in the conversation and what the CLI answered (None: no answer yet)."""

    def __init__(self, name, args, result):
        self.name = name
        self.args = args            # dict for function tools, str for custom tools
        self.result = result if isinstance(result, str) or result is None else json.dumps(result)


class Conversation:
    def __init__(self, texts, tools, exchanges, wants_json=False, json_schema=None):
        self.texts = texts          # system + user texts, in order (tool results excluded)
        self.tools = tools
        self.exchanges = exchanges
        self.wants_json = wants_json    # a side request that must be answered with JSON
        self.json_schema = json_schema  # the schema it gave, when it gave one


class Step:
    def __init__(self, tool=None, args=None, text=None, problem=None, role=None):
        self.tool = tool            # Tool to call, or None for a final answer
        self.args = args            # dict (function) or str (custom)
        self.text = text            # the final answer
        self.problem = problem      # why the plan gave up, for the fake's .errors
        self.role = role            # pwd / read / edit / test

    def wire(self):
        """(name, kind, arguments) as the protocol sends the call: a nested tool's call becomes
        JavaScript for its code-mode parent."""
        if self.tool.kind != "nested":
            return self.tool.name, self.tool.kind, self.args
        return self.tool.parent.name, self.tool.parent.kind, nested_js(self.tool.name, self.args)

    def __repr__(self):
        return "Step(%s %r)" % (self.tool.name, self.args) if self.tool else "Step(final %r)" % (self.text or "")[:60]


# -- recognising tools ------------------------------------------------------------------------------

NESTED_DECL = re.compile(r"declare const tools: \{ (\w+)\((\w+): (string|\{.*?\n?\s*\})\)", re.S)
NESTED_FIELD = re.compile(r"^\s*(\w+)(\??): ([^;]+);", re.M)
TS_TYPES = {"string": "string", "number": "number", "boolean": "boolean"}
JS_CALL = re.compile(r"^const r = await tools\.(\w+)\((.*)\);$", re.M)


def nested_tools(tool):
    """The tools a code-mode tool declares in its description (`declare const tools: { name(args: {...}) }`)."""
    out = []
    if tool.kind == "nested" or "declare const tools:" not in tool.description:
        return out
    for m in NESTED_DECL.finditer(tool.description):
        name, arg, decl = m.groups()
        if decl == "string":
            schema = {"type": "object", "properties": {arg: {"type": "string"}}, "required": [arg],
                      "x-string-argument": arg}
        else:
            props, req = {}, []
            for f in NESTED_FIELD.finditer(decl):
                fname, optional, ftype = f.groups()
                props[fname] = {"type": TS_TYPES.get(ftype.strip(), "array" if "Array" in ftype else "string")}
                if not optional:
                    req.append(fname)
            schema = {"type": "object", "properties": props, "required": req}
        out.append(Tool(name, schema, "", kind="nested", parent=tool))
    return out


def nested_js(name, args):
    """JavaScript for a code-mode tool: call the nested tool, show its answer as text."""
    if isinstance(args, dict) and list(args) == ["__string__"]:
        arg = json.dumps(args["__string__"])
    else:
        arg = json.dumps(args)
    return ("const r = await tools.%s(%s);\n"
            "text(typeof r === \"string\" ? r : (r && typeof r === \"object\") ? Object.entries(r).map(([k, v]) =>"
            " k + \":\\n\" + (typeof v === \"string\" ? v : JSON.stringify(v))).join(\"\\n\") : String(r));\n"
            % (name, arg))


def unwrap_nested(ex):
    """An earlier code-mode call as the nested call it made, else ex itself."""
    if isinstance(ex.args, str):
        m = JS_CALL.search(ex.args)
        if m:
            try:
                args = json.loads(m.group(2))
            except ValueError:
                return ex
            unwrapped = Exchange(m.group(1), args if isinstance(args, dict) else {"__string__": args}, ex.result)
            return unwrapped
    return ex


def classify(tools):
    """{"shell", "read", "edit", "write", "patch"} -> Tool, from names and schemas (tools offered
    directly first, then those nested in a code-mode tool)."""
    roles = {}
    for t in list(tools) + [n for t in tools for n in nested_tools(t)]:
        n = t.name.lower()
        if n == "apply_patch" or (t.kind == "custom" and "patch" in n):
            roles.setdefault("patch", t)
            continue
        if t.kind not in ("function", "nested"):
            continue
        if t.key(CMD_KEYS) and re.search(r"shell|bash|exec|command|run|terminal", n) and "stdin" not in n:
            roles.setdefault("shell", t)
        elif t.key(OLD_KEYS) and t.key(NEW_KEYS) and t.key(PATH_KEYS):
            roles.setdefault("edit", t)
        elif re.search(r"read", n) and not re.search(r"many|notebook|image|media|url|web|mcp|resource", n) \
                and t.key(PATH_KEYS):
            roles.setdefault("read", t)
        elif re.search(r"write|create", n) and t.key(PATH_KEYS) and t.key(CONTENT_KEYS):
            roles.setdefault("write", t)
    return roles


def fill(tool, args):
    """args plus a plain value for every other required parameter (e.g. a shell tool's description)."""
    out = dict(args)
    for name in tool.schema.get("required") or []:
        if name in out:
            continue
        spec = tool.props.get(name) or {}
        typ = spec.get("type")
        if isinstance(typ, list):
            typ = typ[0]
        if "enum" in spec and spec["enum"]:
            out[name] = spec["enum"][0]
        elif typ == "boolean":
            out[name] = False
        elif typ in ("integer", "number"):
            out[name] = 120000 if "timeout" in name.lower() else 1
        elif typ == "array":
            out[name] = []
        elif typ == "object":
            out[name] = {}
        else:
            out[name] = "Step of the fix"
    return out


def wants_absolute(tool, key):
    spec = tool.props.get(key) or {}
    return "absolute" in (spec.get("description", "") + tool.description).lower()


# -- reading the task and the answers ---------------------------------------------------------------

def find_task(texts):
    for t in texts:
        m = TASK_RE.search(t)
        if m:
            cmd = TEST_CMD_RE.search(t)
            return {"func": m.group("func"), "file": m.group("file").lstrip("./") if m.group("file").startswith("./")
                    else m.group("file"), "expr": tidy_expr(m.group("expr")),
                    "test": cmd.group(1).strip() if cmd else DEFAULT_TEST}
    return None


def tidy_expr(expr):
    expr = expr.strip().rstrip(".")
    return re.sub(r"\s*([-+*/%]|==|!=|<=|>=)\s*", r" \1 ", expr).strip()


def find_cwd(texts):
    for rx in CWD_RES:
        for t in texts:
            m = rx.search(t)
            if m:
                return m.group(1).rstrip(".,;:)")
    return None


LINE_NO = re.compile(r"^\s*\d+(?:\t|\u2192|\s*\|\s?|:\s?|\s{1,2}(?=\S))")


def source_lines(text):
    """The file's lines out of a read tool's answer, without the line numbers tools put in front."""
    out = []
    for line in (text or "").splitlines():
        out.append(LINE_NO.sub("", line, count=1) if LINE_NO.match(line) else line)
    return out


def find_return_line(text, func):
    """(def line, return line) of func in a read answer, or None."""
    lines = source_lines(text)
    for i, line in enumerate(lines):
        if re.search(r"\bdef\s+%s\s*\(" % re.escape(func), line):
            if re.search(r"\breturn\b", line):
                return line, line
            for later in lines[i + 1:i + 40]:
                if re.search(r"\breturn\b", later):
                    return line, later
            return None
    return None


def result_failed(text):
    t = (text or "").lower()
    return bool(re.search(r"\berror\b|not found|failed|no such file|could not|cannot|exit code: [1-9]|"
                          r"exit_code\"?: ?[1-9]|invalid", t))


def tests_passed(text):
    t = text or ""
    if re.search(r"FAILED|Traceback|[1-9]\d* failed|ERROR:|No module named", t):
        return False
    return bool(re.search(r"^OK\b|\bOK$|\bOK \(|\b\d+ passed\b", t, re.M))


def sed_pattern(s):
    return re.sub(r"([\\/.*\[\]^$])", r"\\\1", s)


def sed_replacement(s):
    return re.sub(r"([\\/&])", r"\\\1", s)


# -- the plan ---------------------------------------------------------------------------------------

def exchange_role(ex, roles, task):
    """What an earlier call was, in the plan's terms."""
    if ex.name == getattr(roles.get("read"), "name", None):
        return "read"
    if ex.name in (getattr(roles.get("edit"), "name", None), getattr(roles.get("patch"), "name", None),
                   getattr(roles.get("write"), "name", None)):
        return "edit"
    if ex.name == getattr(roles.get("shell"), "name", None) and isinstance(ex.args, dict):
        cmd = ex.args.get(roles["shell"].key(CMD_KEYS))
        if isinstance(cmd, list):
            cmd = cmd[-1] if cmd else ""
        cmd = cmd or ""
        if cmd.strip() == "pwd":
            return "pwd"
        if cmd.startswith("cat "):
            return "read"
        if cmd.startswith("sed -i"):
            return "edit"
        if task and cmd.strip() == task["test"]:
            return "test"
    return "other"


def shell_call(shell, command, what):
    key = shell.key(CMD_KEYS)
    spec = shell.props.get(key) or {}
    value = ["bash", "-lc", command] if spec.get("type") == "array" else command
    args = {key: value}
    for k in ("description", "justification"):
        if k in shell.props and k in (shell.schema.get("required") or []):
            args[k] = what
    if "description" in shell.props and "description" not in args:
        args["description"] = what
    return fill(shell, args)


def json_value(schema):
    """A plain value that fits a JSON schema (OpenAPI's upper-case type names too)."""
    typ = schema.get("type")
    typ = (typ[0] if isinstance(typ, list) else typ or "object").lower()
    if schema.get("enum"):
        return "user" if "user" in schema["enum"] else schema["enum"][0]
    if typ == "object":
        return {k: json_value(v) for k, v in (schema.get("properties") or {}).items()
                if isinstance(v, dict)}
    if typ == "array":
        return []
    if typ == "boolean":
        return False
    if typ in ("integer", "number"):
        return 10
    return "The task is a small, direct change."


def final(text, problem=None):
    return Step(text=text, problem=problem)


def title_and_body(task):
    title = "Make %s() return %s" % (task["func"], task["expr"])
    body = ("%s() in %s returned the wrong value; it now returns %s.\n\nTests: `%s` passes."
            % (task["func"], task["file"], task["expr"], task["test"]))
    return title + "\n\n" + body


def next_step(conv):
    """What the model does next."""
    roles = classify(conv.tools)
    task = find_task(conv.texts)
    if conv.wants_json:
        # a side request for a JSON verdict (who speaks next, a loop check, a routing score)
        if isinstance(conv.json_schema, dict) and conv.json_schema.get("properties"):
            return final(json.dumps(json_value(conv.json_schema)))
        return final(json.dumps({"reasoning": "The task is done; the user speaks next.", "next_speaker": "user"}))
    if task is None:
        if not conv.exchanges and not roles:
            # a side request (a title, a summary, a topic check): answer plainly
            return final("Fix the function's return value")
        return final("I could not find a task of the form \"make f() in file return expr\".",
                     problem="no task found in the prompt")
    if not roles:
        return final(title_and_body(task).split("\n")[0])
    if len(conv.exchanges) >= MAX_EXCHANGES:
        return final("Stopped after %d tool calls." % len(conv.exchanges), problem="too many tool calls")
    done = {}
    for ex in conv.exchanges:
        ex = unwrap_nested(ex)
        done[exchange_role(ex, roles, task)] = ex
    if any(ex.result is None for ex in conv.exchanges):
        return final("A tool call got no answer.", problem="a tool call has no result: %s" %
                     [ex.name for ex in conv.exchanges if ex.result is None])
    shell = roles.get("shell")
    cwd = find_cwd(conv.texts)
    if cwd is None and "pwd" in done:
        out = (done["pwd"].result or "").strip().splitlines()
        cwd = next((line.strip() for line in out if line.strip().startswith("/")), None)

    def path_for(tool, key):
        return cwd.rstrip("/") + "/" + task["file"] if cwd else task["file"]

    # 0. where am I (only when a file tool needs it)
    file_tool = roles.get("read") or roles.get("edit")
    if cwd is None and file_tool is not None and wants_absolute(file_tool, file_tool.key(PATH_KEYS)):
        if shell is None:
            return final("No working directory in the prompt and no shell to ask.", problem="cwd unknown")
        if "pwd" not in done:
            return Step(shell, shell_call(shell, "pwd", "Print the working directory"), role="pwd")
        return final("Could not tell the working directory.", problem="pwd answered %r" % done["pwd"].result)

    # 1. read
    if "read" not in done:
        if "read" in roles:
            t = roles["read"]
            key = t.key(PATH_KEYS)
            return Step(t, fill(t, {key: path_for(t, key)}), role="read")
        if shell is not None:
            return Step(shell, shell_call(shell, "cat " + shlex.quote(task["file"]), "Show " + task["file"]),
                        role="read")
        return final("No tool to read files with.", problem="no read tool and no shell: %s" %
                     [t.name for t in conv.tools])
    found = find_return_line(done["read"].result, task["func"])
    if found is None:
        return final("Reading %s did not show %s()." % (task["file"], task["func"]),
                     problem="read answer lacks def %s: %r" % (task["func"], (done["read"].result or "")[:500]))
    def_line, ret_line = found
    m = re.search(r"\breturn\b\s*(.*?)\s*$", ret_line)
    old_expr = m.group(1)
    old_text = "return " + old_expr
    new_text = "return " + task["expr"]

    # 2. edit
    if "edit" not in done:
        if old_expr.replace(" ", "") == task["expr"].replace(" ", ""):
            return final("%s() already returns %s." % (task["func"], task["expr"]),
                         problem="nothing to change: the file already returns the expression")
        if "edit" in roles:
            t = roles["edit"]
            key = t.key(PATH_KEYS)
            return Step(t, fill(t, {key: path_for(t, key), t.key(OLD_KEYS): old_text, t.key(NEW_KEYS): new_text}),
                        role="edit")
        if "patch" in roles:
            t = roles["patch"]
            new_line = ret_line.replace(old_text, new_text, 1)
            patch = ("*** Begin Patch\n*** Update File: %s\n@@ %s\n-%s\n+%s\n*** End Patch\n"
                     % (task["file"], def_line, ret_line, new_line)) if def_line != ret_line else \
                    ("*** Begin Patch\n*** Update File: %s\n@@\n-%s\n+%s\n*** End Patch\n"
                     % (task["file"], ret_line, new_line))
            if t.kind == "custom":
                return Step(t, patch, role="edit")
            if t.kind == "nested" and "x-string-argument" in t.schema:
                return Step(t, {"__string__": patch}, role="edit")
            key = next((k for k in ("input", "patch") if k in t.props), "input")
            return Step(t, fill(t, {key: patch}), role="edit")
        if shell is not None:
            cmd = "sed -i %s %s" % (shlex.quote("s/%s/%s/" % (sed_pattern(old_text), sed_replacement(new_text))),
                                    shlex.quote(task["file"]))
            return Step(shell, shell_call(shell, cmd, "Change the return value"), role="edit")
        return final("No tool to change files with.", problem="no edit/patch tool and no shell")
    if result_failed(done["edit"].result) and not re.search(r"success|updated|applied|edited|wrote", (
            done["edit"].result or "").lower()):
        return final("The edit failed: %s" % (done["edit"].result or "")[:300],
                     problem="edit answered %r" % (done["edit"].result or "")[:500])

    # 3. test
    if "test" not in done:
        if shell is None:
            return final(title_and_body(task).replace("passes.", "was not run (no shell tool)."))
        return Step(shell, shell_call(shell, task["test"], "Run the tests"), role="test")
    if not tests_passed(done["test"].result):
        return final("Tests fail after changing %s()\n\n%s" % (task["func"], (done["test"].result or "")[-800:]),
                     problem="tests did not pass: %r" % (done["test"].result or "")[-500:])

    # 4. answer
    return final(title_and_body(task))
