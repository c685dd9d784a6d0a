#!/usr/bin/python3
"""Test-only HTTPS JWKS provider for tests/auth/test_auth_jwks.c.

Usage: jwks_server.py DIR
Serves DIR/jwks.json at any path over TLS (DIR/srv.pem, DIR/srv.key) on a random free loopback
port, writes the port to DIR/port once listening and the number of requests served so far to
DIR/count after every request (so the test can bound refetch storms). The test swaps jwks.json
to rotate keys and kills this process to simulate a provider outage.
"""
import http.server
import os
import ssl
import sys
import threading

DIR = sys.argv[1]
lock = threading.Lock()
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        with lock:
            count += 1
            tmp = os.path.join(DIR, "count.tmp")
            with open(tmp, "w") as f:
                f.write(str(count))
            os.replace(tmp, os.path.join(DIR, "count"))
        try:
            with open(os.path.join(DIR, "jwks.json"), "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(DIR, "srv.pem"), os.path.join(DIR, "srv.key"))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
tmp = os.path.join(DIR, "port.tmp")
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.replace(tmp, os.path.join(DIR, "port"))
srv.serve_forever()
