#!/usr/bin/env python3
"""A loopback front for Debian's docker-registry that behaves like a public registry with
token auth: /v2/ requests without `Authorization: Bearer test-token` get 401 and a Bearer
challenge naming /token on this server, which hands out the token for the right service
and scope. With --cut-first-blob, the first blob larger than 100 kB is sent half and the
connection dropped, so clients must resume. Requests are logged to LOG (method, path,
Range). Prints its port, then serves until killed.
Usage: registry-auth-proxy.py UPSTREAM_PORT LOG [--cut-first-blob]"""
import http.client, http.server, json, sys, threading

upstream = int(sys.argv[1])
log_path = sys.argv[2]
cut = "--cut-first-blob" in sys.argv
state = {"cut_done": False}
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with lock, open(log_path, "a") as log:
            log.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
            if query.get("service") != "test" or not query.get("scope", "").startswith("repository:"):
                return self.reply(400, b'{"error":"bad service or scope"}')
            return self.reply(200, json.dumps({"token": "test-token", "expires_in": 300}).encode())
        if self.headers.get("Authorization") != "Bearer test-token":
            name = self.path.split("/")[2:4]
            challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="test",scope="repository:%s:pull"' % (port, "/".join(name))
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                              {"WWW-Authenticate": challenge})
        connection = http.client.HTTPConnection("127.0.0.1", upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        connection.request("GET", self.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        extra = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "docker-content-digest", "content-range", "location")}
        if cut and "/blobs/" in self.path and response.status == 200 and len(body) > 100000:
            with lock:
                first = not state["cut_done"]
                state["cut_done"] = True
            if first:
                self.send_response(200)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.close()
                return
        self.reply(response.status, body, extra)

    def reply(self, status, body, headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
