"""Real git behind the fake GitHub: bare repositories, commits made with git
plumbing, pull-request diffs, and git smart HTTP through `git http-backend`.

Repositories live under <root>/<owner>/<repo>.git (GIT_PROJECT_ROOT layout).
Every git command runs with an isolated configuration (no ~/.gitconfig, no
system config, safe.directory=*) so the fake behaves the same on any machine
and as any user.
"""

import os
import re
import shutil
import subprocess
import tempfile
import threading

GIT = shutil.which("git", path="/usr/bin:/bin:/usr/local/bin") or "git"

# Initial commits are reproducible: same files -> same SHA on every run.
FIXED_DATE = "2024-01-01T00:00:00+00:00"
DEFAULT_AUTHOR = ("Fake GitHub", "noreply@github.com")

REFUSE_FILE = "fake-refuse-push"

# pre-receive hook: refuses the push while the flag file exists.  First line
# of the file is the number of pushes still to refuse (-1 = until cleared),
# the rest is the message shown to the pusher ("remote: ..." lines).
# A file RACE_FILE ("<ref> <oid>") makes the next push race another: its
# hook moves <ref> to <oid> first, as a push that was still landing would,
# so the update the pusher asked for (from the tip it was shown) is stale.
RACE_FILE = "fake-race-push"

PRE_RECEIVE = """#!/bin/sh
f="${GIT_DIR:-.}/%s"
cat >/dev/null
r="${GIT_DIR:-.}/%s"
if [ -f "$r" ]; then
  read -r ref oid < "$r"
  rm -f "$r"
  env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git update-ref "$ref" "$oid"
fi
[ -f "$f" ] || exit 0
n=$(head -n 1 "$f")
tail -n +2 "$f" >&2
if [ "$n" = "-1" ]; then
  :
elif [ "$n" -le 1 ] 2>/dev/null; then
  rm -f "$f"
else
  { echo $((n - 1)); tail -n +2 "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
fi
exit 1
""" % (REFUSE_FILE, RACE_FILE)


class GitError(Exception):
    pass


def git_env(extra=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        "GIT_TERMINAL_PROMPT": "0",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    if extra:
        env.update(extra)
    return env


def run_git(args, git_dir=None, input=None, env=None, check=True):
    cmd = [GIT]
    if git_dir:
        cmd += ["--git-dir", git_dir]
    cmd += list(args)
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=git_env(env))
    if check and p.returncode != 0:
        raise GitError("git %s: %s" % (" ".join(args[:3]),
                                       p.stderr.decode(errors="replace").strip()))
    return p.stdout if check else (p.returncode, p.stdout, p.stderr)


# --------------------------------------------------------------------------
# Diffs, parsed the way GitHub presents them
# --------------------------------------------------------------------------
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

# git's one-letter statuses -> GitHub's "status" of a PR file
STATUS_NAMES = {"A": "added", "D": "removed", "M": "modified", "R": "renamed",
                "C": "copied", "T": "changed", "U": "changed"}


class FileDiff:
    """One file of a PR diff.  `rows` is the file's patch as GitHub numbers
    it for the deprecated `position`: row 1 is the line after the first @@
    header; later @@ headers count as rows too."""

    def __init__(self, filename, status, previous_filename=None):
        self.filename = filename
        self.status = status
        self.previous_filename = previous_filename
        self.additions = 0
        self.deletions = 0
        self.binary = False
        self.patch = None          # text from the first @@, or None
        self.rows = []             # (kind, old_no, new_no, hunk_index, text)
        self.hunk_headers = []     # row index (0-based) of each hunk header
        self.old_sha = None
        self.new_sha = None

    def parse_patch(self, patch):
        self.patch = patch
        old = new = 0
        hunk = -1
        for text in patch.split("\n"):
            m = HUNK_RE.match(text)
            if m:
                hunk += 1
                old, new = int(m.group(1)), int(m.group(3))
                self.hunk_headers.append(len(self.rows))
                self.rows.append(("@", None, None, hunk, text))
            elif text.startswith("+"):
                self.rows.append(("+", None, new, hunk, text))
                new += 1
            elif text.startswith("-"):
                self.rows.append(("-", old, None, hunk, text))
                old += 1
            elif text.startswith("\\"):
                self.rows.append(("\\", None, None, hunk, text))
            else:
                self.rows.append((" ", old, new, hunk, text))
                old += 1
                new += 1

    def find(self, side, line):
        """Index into rows of the diff line `line` on `side` (LEFT = the
        base file's numbering, RIGHT = the head file's), or None when the
        line is not inside any hunk.  Context lines exist on both sides."""
        for i, (kind, o, n, _h, _t) in enumerate(self.rows):
            if side == "RIGHT" and kind in (" ", "+") and n == line:
                return i
            if side == "LEFT" and kind in (" ", "-") and o == line:
                return i
        return None

    def row_for_position(self, position):
        # position counts from 1 at the line below the first @@ header
        idx = position
        if 1 <= idx < len(self.rows) and self.rows[idx][0] not in ("@", "\\"):
            return idx
        return None

    def diff_hunk(self, idx):
        """GitHub's `diff_hunk` of a review comment: the enclosing hunk's
        header through the commented line."""
        hunk = self.rows[idx][3]
        start = self.hunk_headers[hunk]
        return "\n".join(r[4] for r in self.rows[start:idx + 1])

    def summary(self):
        return {"filename": self.filename, "status": self.status,
                "additions": self.additions, "deletions": self.deletions,
                "changes": self.additions + self.deletions,
                "previous_filename": self.previous_filename,
                "binary": self.binary, "patch": self.patch}


def _split_z(data):
    parts = data.decode("utf-8", "surrogateescape").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


class Diff:
    def __init__(self, text, files):
        self.text = text
        self.files = files
        self.by_path = {f.filename: f for f in files}


# --------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------
class GitStore:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._lock = threading.RLock()
        self._diff_cache = {}

    def path(self, full_name):
        owner, name = full_name.split("/", 1)
        return os.path.join(self.root, owner, name + ".git")

    def git(self, full_name, args, **kw):
        return run_git(args, git_dir=self.path(full_name), **kw)

    # -- creation ----------------------------------------------------------
    def create(self, full_name, default_branch="main", files=None,
               message="Initial commit", author=None, date=FIXED_DATE):
        gd = self.path(full_name)
        if os.path.exists(gd):
            shutil.rmtree(gd)
        os.makedirs(os.path.dirname(gd), exist_ok=True)
        run_git(["init", "--bare", "--quiet", "-b", default_branch, gd])
        for k, v in (("http.receivepack", "true"), ("http.uploadpack", "true"),
                     ("uploadpack.allowReachableSHA1InWant", "true"),
                     ("uploadpack.allowFilter", "true"),
                     ("receive.denyNonFastForwards", "false")):
            run_git(["config", k, v], git_dir=gd)
        hook = os.path.join(gd, "hooks", "pre-receive")
        with open(hook, "w") as f:
            f.write(PRE_RECEIVE)
        os.chmod(hook, 0o755)
        if files:
            self.commit(full_name, default_branch, files, message=message,
                        author=author, date=date)
        return gd

    def _index_lines(self, gd, files):
        lines = []
        for path, content in files.items():
            if content is None:             # delete
                lines.append("0 %s\t%s" % ("0" * 40, path))
                continue
            mode = "100644"
            if isinstance(content, dict):
                mode = content.get("mode", mode)
                if "base64" in content:
                    import base64
                    data = base64.b64decode(content["base64"])
                else:
                    data = content.get("content", "").encode()
            elif isinstance(content, bytes):
                data = content
            else:
                data = content.encode()
            sha = run_git(["hash-object", "-w", "--stdin"], git_dir=gd,
                          input=data).decode().strip()
            lines.append("%s %s\t%s" % (mode, sha, path))
        return "\n".join(lines) + "\n"

    def commit(self, full_name, branch, files, base=None, message="Update",
               author=None, date=None, committer=None):
        """Commit `files` ({path: text | bytes | {"base64":..} | None to
        delete}) on top of `branch` (or of `base` when the branch does not
        exist yet) and move the branch.  Returns the new commit SHA."""
        gd = self.path(full_name)
        with self._lock:
            parent = old = self.ref(full_name, "refs/heads/" + branch)
            if parent is None and base:
                parent = self.rev_parse(full_name, base)
                if parent is None:
                    raise GitError("base %r not found" % base)
            fd, index = tempfile.mkstemp(prefix="fakegh-index-")
            os.close(fd)
            os.unlink(index)
            try:
                env = {"GIT_INDEX_FILE": index}
                if parent:
                    run_git(["read-tree", parent], git_dir=gd, env=env)
                run_git(["update-index", "--index-info"], git_dir=gd, env=env,
                        input=self._index_lines(gd, files).encode())
                tree = run_git(["write-tree"], git_dir=gd,
                               env=env).decode().strip()
            finally:
                if os.path.exists(index):
                    os.unlink(index)
            name, email = author or DEFAULT_AUTHOR
            cname, cemail = committer or (name, email)
            env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                   "GIT_COMMITTER_NAME": cname, "GIT_COMMITTER_EMAIL": cemail}
            if date:
                env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
            args = ["commit-tree", tree, "-m", message]
            if parent:
                args[2:2] = ["-p", parent]
            sha = run_git(args, git_dir=gd, env=env).decode().strip()
            run_git(["update-ref", "refs/heads/" + branch, sha, old or "0" * 40],
                    git_dir=gd)
            return sha

    # -- refs ----------------------------------------------------------------
    def ref(self, full_name, refname):
        rc, out, _ = self.git(full_name, ["rev-parse", "--verify", "--quiet",
                                          refname + "^{commit}"], check=False)
        return out.decode().strip() if rc == 0 and out.strip() else None

    def rev_parse(self, full_name, ref):
        """A branch, tag or commit SHA -> commit SHA, or None."""
        if not ref or ref.startswith("-"):
            return None
        for cand in ("refs/heads/" + ref, "refs/tags/" + ref, ref):
            sha = self.ref(full_name, cand)
            if sha:
                return sha
        return None

    def update_ref(self, full_name, refname, sha):
        self.git(full_name, ["update-ref", refname, sha])

    def delete_ref(self, full_name, refname):
        self.git(full_name, ["update-ref", "-d", refname], check=False)

    def branches(self, full_name):
        out = self.git(full_name, ["for-each-ref", "--format=%(refname:short) %(objectname)",
                                   "refs/heads"]).decode()
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def merge_base(self, full_name, a, b):
        rc, out, _ = self.git(full_name, ["merge-base", a, b], check=False)
        return out.decode().strip() if rc == 0 else None

    def count_commits(self, full_name, base, head):
        return int(self.git(full_name, ["rev-list", "--count",
                                        "%s..%s" % (base, head)]).decode())

    def commit_exists(self, full_name, sha):
        if not re.fullmatch(r"[0-9a-fA-F]{4,40}", sha or ""):
            return None
        return self.ref(full_name, sha)

    def fetch_between(self, src_full, dst_full, src_ref, dst_ref):
        """Copy a ref from one bare repo to another (forks -> refs/pull/N/head)."""
        self.git(dst_full, ["fetch", "--quiet", "--no-tags", self.path(src_full),
                            "+%s:%s" % (src_ref, dst_ref)])

    # -- contents ------------------------------------------------------------
    def read_path(self, full_name, commit, path):
        """("file", blob_sha, bytes) | ("dir", [(type, sha, size, name)]) |
        ("submodule"/"symlink", ...) | None."""
        path = path.strip("/")
        if path == "":
            spec = commit + "^{tree}"
            kind = "tree"
        else:
            rc, out, _ = self.git(full_name, ["ls-tree", "-z", "--full-tree",
                                              commit, "--", path], check=False)
            ents = _split_z(out) if rc == 0 else []
            if not ents:
                return None
            meta, name = ents[0].split("\t", 1)
            mode, kind, sha = meta.split()
            if name != path:
                return None
            if kind == "blob":
                data = self.git(full_name, ["cat-file", "blob", sha])
                if mode == "120000":
                    return ("symlink", sha, data)
                return ("file", sha, data)
            if kind == "commit":
                return ("submodule", sha, b"")
            spec = sha
        out = self.git(full_name, ["ls-tree", "-z", "-l", spec])
        entries = []
        for ent in _split_z(out):
            meta, name = ent.split("\t", 1)
            mode, kind, sha, size = meta.split()
            typ = {"blob": "file", "tree": "dir", "commit": "submodule"}[kind]
            if mode == "120000":
                typ = "symlink"
            entries.append((typ, sha, 0 if size == "-" else int(size), name))
        return ("dir", entries)

    # -- diffs ---------------------------------------------------------------
    def diff(self, full_name, base_sha, head_sha):
        """The PR diff GitHub shows: merge-base(base, head)..head, renames
        detected.  Returns a Diff (cached per SHA pair)."""
        key = (full_name, base_sha, head_sha)
        with self._lock:
            if key in self._diff_cache:
                return self._diff_cache[key]
        mb = self.merge_base(full_name, base_sha, head_sha) or base_sha
        text = self.git(full_name, ["-c", "core.quotepath=false", "diff", "--no-color",
                                    "--no-ext-diff", "-M", mb, head_sha])
        names = _split_z(self.git(full_name, ["diff", "-z", "--name-status",
                                              "--no-ext-diff", "-M", mb, head_sha]))
        nums = _split_z(self.git(full_name, ["diff", "-z", "--numstat",
                                             "--no-ext-diff", "-M", mb, head_sha]))
        raw = _split_z(self.git(full_name, ["diff", "-z", "--raw", "--abbrev=40",
                                            "--no-ext-diff", "-M", mb, head_sha]))
        files = []
        i = 0
        while i < len(names):
            st = names[i]
            letter = st[0]
            if letter in "RC":
                f = FileDiff(names[i + 2], STATUS_NAMES[letter], names[i + 1])
                i += 3
            else:
                f = FileDiff(names[i + 1], STATUS_NAMES.get(letter, "modified"))
                i += 2
            files.append(f)
        # numstat -z: "a\td\tpath\0" or, for renames, "a\td\t\0old\0new\0"
        j = k = 0
        while j < len(nums) and k < len(files):
            a, d, rest = nums[j].split("\t", 2)
            j += 1 if rest else 3
            f = files[k]
            k += 1
            if a == "-":
                f.binary = True
            else:
                f.additions, f.deletions = int(a), int(d)
        # raw -z: ":old_mode new_mode old_sha new_sha status\0path(s)\0"
        k = 0
        j = 0
        while j < len(raw) and k < len(files):
            meta = raw[j].lstrip(":").split()
            files[k].old_sha, files[k].new_sha = meta[2], meta[3]
            j += 3 if meta[4][0] in "RC" else 2
            k += 1
        # full text: one "diff --git" section per file, in the same order
        sections = re.split(rb"^(?=diff --git )", text, flags=re.M)
        sections = [s for s in sections if s.startswith(b"diff --git ")]
        for f, sec in zip(files, sections):
            s = sec.decode("utf-8", "replace")
            if "\nBinary files " in s or "\nGIT binary patch" in s:
                f.binary = True
                continue
            at = s.find("\n@@ ")
            if at >= 0:
                f.parse_patch(s[at + 1:].rstrip("\n"))
        d = Diff(text.decode("utf-8", "replace"), files)
        with self._lock:
            self._diff_cache[key] = d
        return d

    def format_patch(self, full_name, base_sha, head_sha):
        mb = self.merge_base(full_name, base_sha, head_sha) or base_sha
        return self.git(full_name, ["format-patch", "--stdout", "%s..%s" % (mb, head_sha)])

    def commits_between(self, full_name, base_sha, head_sha):
        out = self.git(full_name, ["rev-list", "--reverse",
                                   "%s..%s" % (base_sha, head_sha)]).decode()
        return out.split()

    # -- push refusal --------------------------------------------------------
    def set_refuse(self, full_name, message, count=1):
        with open(os.path.join(self.path(full_name), REFUSE_FILE), "w") as f:
            f.write("%d\n%s\n" % (count, message.rstrip("\n")))

    def clear_refuse(self, full_name):
        try:
            os.unlink(os.path.join(self.path(full_name), REFUSE_FILE))
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------
# git smart HTTP: `git http-backend` as a CGI
# --------------------------------------------------------------------------
def http_backend(root, path_info, method, query, body, content_type,
                 remote_user=None, git_protocol=None):
    """Run one request through git http-backend.  `body` must already be
    de-chunked and decompressed.  Returns (status, [(name, value)], body)."""
    env = git_env({
        "GIT_PROJECT_ROOT": root,
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_HTTP_MAX_REQUEST_BUFFER": str(1 << 30),
        "PATH_INFO": path_info,
        "REQUEST_METHOD": method,
        "QUERY_STRING": query or "",
        "CONTENT_TYPE": content_type or "",
        "CONTENT_LENGTH": str(len(body or b"")),
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
    })
    if remote_user:
        env["REMOTE_USER"] = remote_user
    if git_protocol:
        env["HTTP_GIT_PROTOCOL"] = git_protocol
    p = subprocess.run([GIT, "http-backend"], input=body or b"", env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout
    cut, sep = len(out), 0
    for s in (b"\r\n\r\n", b"\n\n"):
        at = out.find(s)
        if 0 <= at < cut:
            cut, sep = at, len(s)
    head, payload = out[:cut], out[cut + sep:]
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k, v = k.strip(), v.strip()
        if k.lower() == "status":
            status = int(v.split()[0])
        else:
            headers.append((k, v))
    if not out:
        status = 500
        payload = p.stderr
    return status, headers, payload
