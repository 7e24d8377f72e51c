"""HTTP plumbing of the fake GitHub: the threaded HTTP/1.1 server, request
parsing (chunked and gzip bodies), responses with exact Content-Length (so
keep-alive always holds), GitHub's error bodies and Link pagination."""

import gzip
import http.server
import json
import math
import socket
import threading
import urllib.parse
import zlib

DOC_ROOT = "https://docs.github.com/rest"


class ApiError(Exception):
    """An answer in GitHub's error shape:
    {"message": ..., ["errors": [...],] "documentation_url": ..., "status": "NNN"}
    (GitHub added the string "status" member to error bodies in 2024)."""

    def __init__(self, status, message, errors=None, doc=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.doc = doc or DOC_ROOT
        self.headers = headers or {}

    def body(self):
        b = {"message": self.message}
        if self.errors is not None:
            b["errors"] = self.errors
        b["documentation_url"] = self.doc
        b["status"] = str(self.status)
        return b


def not_found(doc=None):
    return ApiError(404, "Not Found", doc=doc)


def validation_failed(errors, doc=None):
    """422 as GitHub's model validations report it."""
    return ApiError(422, "Validation Failed", errors=errors, doc=doc)


def invalid_request(detail, doc=None):
    """422 as GitHub's JSON-schema input validation reports it."""
    return ApiError(422, "Invalid request.\n\n" + detail, doc=doc)


def missing_field(name, doc=None):
    return invalid_request('"%s" wasn\'t supplied.' % name, doc)


def to_sentence(items):
    """Rails' Array#to_sentence, which GitHub uses to join error messages:
    "a", "a and b", "a, b, and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return "%s and %s" % tuple(items)
    return "%s, and %s" % (", ".join(items[:-1]), items[-1])


class Response:
    def __init__(self, status=200, body=None, headers=None,
                 content_type="application/json; charset=utf-8"):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    def payload(self):
        if self.body is None:
            return b""
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False,
                          separators=(",", ":")).encode()


class Request:
    """One parsed request.  `path` is the raw (still %-encoded) path; route
    groups are unquoted by the router.  `query` maps names to lists."""

    def __init__(self, handler, body):
        self.handler = handler
        self.method = handler.command
        raw = handler.path
        if raw.startswith("http://") or raw.startswith("https://"):
            raw = "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"
        self.path, _, self.query_string = raw.partition("?")
        self.query = urllib.parse.parse_qs(self.query_string, keep_blank_values=True)
        self.headers = handler.headers
        self.body = body
        self.auth = None
        self._json = None
        self._json_parsed = False

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        """The request body as JSON (None when empty).  GitHub answers
        400 "Problems parsing JSON" to a body that does not parse."""
        if not self._json_parsed:
            self._json_parsed = True
            if self.body and self.body.strip():
                try:
                    self._json = json.loads(self.body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    raise ApiError(400, "Problems parsing JSON")
        return self._json

    def json_object(self, required=False):
        b = self.json()
        if b is None:
            if required:
                raise ApiError(400, "Problems parsing JSON")
            return {}
        if not isinstance(b, dict):
            raise invalid_request("For 'links/0/schema', %s is not an object."
                                  % json.dumps(b))
        return b

    def json_or_none(self):
        try:
            return self.json()
        except ApiError:
            return None


def read_body(handler):
    """The request body, de-chunked (libgit2 and curl send
    Transfer-Encoding: chunked) and decompressed (git may gzip)."""
    te = (handler.headers.get("Transfer-Encoding") or "").lower()
    rfile = handler.rfile
    if "chunked" in te:
        parts = []
        while True:
            line = rfile.readline(65537)
            if not line:
                break
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:           # trailers up to the blank line
                    t = rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                break
            parts.append(rfile.read(size))
            rfile.readline(3)        # CRLF after the chunk
        body = b"".join(parts)
    else:
        n = int(handler.headers.get("Content-Length") or 0)
        body = rfile.read(n) if n > 0 else b""
    ce = (handler.headers.get("Content-Encoding") or "").lower().strip()
    if ce in ("gzip", "x-gzip") and body:
        body = gzip.decompress(body)
    elif ce == "deflate" and body:
        body = zlib.decompress(body)
    return body


def paginate(items, req, base_url, default=30, maximum=100):
    """Page-number pagination exactly as GitHub does it: per_page (default
    30, max 100) and page (from 1); a Link header with rel="prev", "next",
    "last", "first" in that order, each present only when meaningful, URLs
    keeping the caller's other query parameters.  Returns (slice, link)."""
    try:
        per = int(req.q("per_page", default))
    except ValueError:
        per = default
    if per <= 0:
        per = default
    per = min(per, maximum)
    try:
        page = int(req.q("page", 1))
    except ValueError:
        page = 1
    page = max(page, 1)
    last = max(1, math.ceil(len(items) / per))
    chunk = items[(page - 1) * per: page * per]

    def url(p):
        pairs = [(k, v) for k, v in urllib.parse.parse_qsl(
            req.query_string, keep_blank_values=True) if k != "page"]
        pairs.append(("page", str(p)))
        return "<%s%s?%s>" % (base_url, req.path, urllib.parse.urlencode(pairs))

    links = []
    if page > 1:
        links.append('%s; rel="prev"' % url(min(page - 1, last)))
    if page < last:
        links.append('%s; rel="next"' % url(page + 1))
        links.append('%s; rel="last"' % url(last))
    if page > 1:
        links.append('%s; rel="first"' % url(1))
    return chunk, (", ".join(links) or None)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 120          # idle keep-alive connections are closed after this

    def setup(self):
        super().setup()
        # One write per answer plus TCP_NODELAY: no Nagle/delayed-ACK stalls
        # (40 ms per call) on keep-alive connections.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):   # quiet; the fake records calls itself
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)

    def _dispatch(self):
        try:
            body = read_body(self)
        except (ValueError, OSError, EOFError, zlib.error):
            self.send_plain(400, b"bad request body\n")
            return
        req = Request(self, body)
        try:
            resp = self.server.fake.handle(req)
        except Exception as e:  # a bug in the fake: say so loudly, keep serving
            import traceback
            traceback.print_exc()
            resp = Response(500, {"message": "fake github internal error: %r" % e})
        self.send(resp)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _dispatch

    def send(self, resp):
        data = resp.payload()
        try:
            self.send_response(resp.status)
            has_ct = any(k.lower() == "content-type" for k in resp.headers)
            if resp.status not in (204, 304) and resp.content_type and not has_ct:
                self.send_header("Content-Type", resp.content_type)
            for k, v in resp.headers.items():
                if isinstance(v, (list, tuple)):
                    for one in v:
                        self.send_header(k, one)
                else:
                    self.send_header(k, str(v))
            if resp.status in (204, 304):
                data = b""
            self.send_header("Content-Length", str(len(data)))
            # end_headers() without its flush, so head and body leave together
            self._headers_buffer.append(b"\r\n")
            if data and self.command != "HEAD":
                self._headers_buffer.append(data)
            self.flush_headers()
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_plain(self, status, data):
        self.send(Response(status, data, content_type="text/plain"))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, fake, verbose=False):
        self.fake = fake
        self.verbose = verbose
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, Handler)

    # Track connections so stop() can close idle keep-alive ones at once
    # (clients then see the server go away, as with a real restart).
    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
