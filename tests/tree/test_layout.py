#!/usr/bin/python3
"""The architecture, checked from the #include lines of app/ and jobs/.

Every module lives in one subfolder (a layer or a subsystem), and a
subfolder includes only the subfolders below it in LAYERS: the webhook path
never reaches git or agents, the job side reaches the App side only for its
common utilities and the GitHub client, and nothing climbs back up. A new
include that breaks this, a cycle between subfolders, a module left loose in
app/ or jobs/, an include that does not name its folder, or a subfolder
without its README fails here, with the file and line.

Run it alone: /usr/bin/python3 tests/tree/test_layout.py
"""
import os
import re
import sys
import unittest

ROOT = os.environ.get("PATCHBAY_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Each subfolder and what it may include besides itself. Keep in step with
# README.md's "Layout" section.
LAYERS = {
    "app/common": [],
    "app/github": ["app/common"],
    "jobs/queue": ["app/common"],
    "app/webhook": ["app/common", "jobs/queue"],
    "app/server": ["app/common", "app/github", "app/webhook", "jobs/queue"],
    "jobs/workspace": ["app/common"],
    "jobs/review": ["app/common", "app/github"],
    "jobs/agent": ["app/common", "jobs/review", "jobs/workspace"],
    "jobs/image": ["app/common", "jobs/agent"],
    "jobs/kinds": ["app/common", "app/github", "jobs/queue", "jobs/workspace", "jobs/review", "jobs/agent",
                   "jobs/image"],
    "jobs/worker": ["app/common", "jobs/queue", "jobs/kinds", "jobs/agent"],
    "app/cli": ["app/common", "app/github", "app/webhook", "app/server", "jobs/queue", "jobs/agent", "jobs/image",
                "jobs/worker"],
    # the programs' main() functions (patchbay-enter includes nothing of ours)
    "app": ["app/cli", "app/common", "jobs/worker"],
}
# The only files allowed directly in app/ (the programs) and nothing directly in jobs/.
TOP_FILES = {"app/main.c", "app/supervisor_main.c", "app/enter_main.c"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources(root):
    for side in ("app", "jobs"):
        for dirpath, _dirs, files in os.walk(os.path.join(root, side)):
            for name in files:
                if name.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, name), root)


def folder_of(path):
    return os.path.dirname(path)


def includes(root, path):
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1)


def check(root, files, layers, top_files):
    """Every problem, as "file:line: what" strings, and the folder graph."""
    problems, graph = [], {}
    for path in sorted(files):
        folder = folder_of(path)
        if folder in ("app", "jobs") and path not in top_files:
            problems.append("%s: a module outside the subfolders (put it in one of %s)" % (path, ", ".join(sorted(layers))))
            continue
        if folder not in layers:
            problems.append("%s: folder %s is not in the layer table" % (path, folder))
            continue
        for n, inc in includes(root, path):
            if "/" not in inc:
                if not os.path.exists(os.path.join(root, folder, inc)):
                    problems.append("%s:%d: \"%s\" is not in %s/ (name another folder's header by its path)" % (path, n, inc, folder))
                continue
            target = os.path.dirname(inc)
            if not os.path.exists(os.path.join(root, inc)):
                problems.append("%s:%d: \"%s\" does not exist" % (path, n, inc))
                continue
            if target == folder:
                problems.append("%s:%d: \"%s\" is in the same folder: include it by its name" % (path, n, inc))
                continue
            graph.setdefault(folder, set()).add(target)
            if target not in layers.get(folder, []):
                problems.append("%s:%d: %s may not include %s (\"%s\"); it may include %s" % (
                    path, n, folder, target, inc, ", ".join(layers.get(folder, [])) or "nothing outside itself"))
    return problems, graph


def find_cycle(graph):
    """One cycle of the graph as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


class LayoutTest(unittest.TestCase):
    def test_includes_follow_the_layers(self):
        problems, _graph = check(ROOT, list(sources(ROOT)), LAYERS, TOP_FILES)
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_no_cycle_between_folders(self):
        _problems, graph = check(ROOT, list(sources(ROOT)), LAYERS, TOP_FILES)
        self.assertIsNone(find_cycle(graph))
        self.assertIsNone(find_cycle({k: set(v) for k, v in LAYERS.items()}), "the layer table itself has a cycle")

    def test_every_folder_says_what_it_is_for(self):
        for folder in LAYERS:
            if folder == "app":
                continue
            readme = os.path.join(ROOT, folder, "README.md")
            self.assertTrue(os.path.exists(readme), "%s has no README.md" % folder)
            with open(readme, encoding="utf-8") as f:
                text = f.read()
            self.assertGreater(len(text.split()), 20, "%s/README.md says too little" % folder)

    def test_the_readme_shows_the_same_layers(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        for folder in LAYERS:
            if folder != "app":
                self.assertTrue("`%s/`" % folder in readme, "README.md's Layout does not mention %s/" % folder)

    # The checker itself must be able to fail.
    def test_checker_finds_what_it_should(self):
        import tempfile
        with tempfile.TemporaryDirectory() as root:
            def put(path, text):
                os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(root, path), "w") as f:
                    f.write(text)
            put("app/common/a.h", "")
            put("app/common/a.c", '#include "a.h"\n#include "jobs/queue/q.h"\n')
            put("jobs/queue/q.h", '#include "app/common/a.h"\n')
            put("jobs/queue/q.c", '#include "q.h"\n#include "a.h"\n')
            put("jobs/loose.c", "")
            files = list(sources(root))
            layers = {"app/common": [], "jobs/queue": ["app/common"]}
            problems, graph = check(root, files, layers, set())
            text = "\n".join(problems)
            self.assertIn("app/common/a.c:2: app/common may not include jobs/queue", text)
            self.assertIn("jobs/queue/q.c:2: \"a.h\" is not in jobs/queue/", text)
            self.assertIn("jobs/loose.c: a module outside the subfolders", text)
            self.assertEqual(find_cycle(graph), ["app/common", "jobs/queue", "app/common"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
