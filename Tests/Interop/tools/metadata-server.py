#!/usr/bin/env python3
"""A loopback metadata service for the cloudinit tests: serves the files under ROOT by
path; a path ending in '/' serves ROOT/path/index. Prints its port, then serves until
killed. Missing files are 404, as EC2's service answers."""
import http.server, os, sys

root = sys.argv[1]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        local = os.path.join(root, path.lstrip("/"))
        if path.endswith("/"):
            local = os.path.join(local, "index")
        if ".." in path or not os.path.isfile(local):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(local, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
