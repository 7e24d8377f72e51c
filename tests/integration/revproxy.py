"""A small reverse proxy for tests, doing what the documented nginx set-up does
(docs/operations.md): it listens on 127.0.0.1, passes each request on to one
upstream over HTTP/1.1 keep-alive, sets Host to the name the client asked for
without its port (nginx's `proxy_set_header Host $host`), and appends the
client's address to X-Forwarded-For (`$proxy_add_x_forwarded_for`). So the
upstream sees every visitor arrive from 127.0.0.1, as it would behind a real
proxy on the same machine. Answers, redirects included, go back unchanged.

    proxy = ReverseProxy(upstream_port).start()   # proxy.port
    ...
    proxy.stop()

Standard library only; one thread per client connection; bounded timeouts.
"""

import http.client
import http.server
import socket
import threading

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class ReverseProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1", timeout=30):
        self.upstream = (upstream_host, upstream_port)
        self.timeout = timeout
        self.requests = []  # (method, path, headers as the upstream got them), for assertions
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {}
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "x-forwarded-for"):
                        headers[name] = value
                host = self.headers.get("Host", "")
                if host.startswith("["):
                    name = host.split("]")[0] + "]"
                else:
                    name = host.split(":")[0]
                headers["Host"] = name.lower()
                prior = self.headers.get("X-Forwarded-For")
                client = self.client_address[0]
                headers["X-Forwarded-For"] = "%s, %s" % (prior, client) if prior else client
                headers["X-Real-IP"] = client
                proxy.requests.append((self.command, self.path, dict(headers)))
                up = http.client.HTTPConnection(*proxy.upstream, timeout=proxy.timeout)
                try:
                    up.request(self.command, self.path, body=body, headers=headers)
                    resp = up.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    self.send_error(502, "upstream: %s" % e)
                    return
                finally:
                    up.close()
                self.send_response_only(resp.status, resp.reason)
                for name, value in resp.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = self.server.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(10)
            self.thread = None
        self.server.server_close()
        return 0
