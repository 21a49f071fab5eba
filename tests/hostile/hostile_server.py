#!/usr/bin/env python3
"""A feed server that misbehaves on purpose, for tests/hostile. It answers every GET the same
way, whatever the path or the query, according to the mode read from MODE_FILE at each request
(so a test switches behaviour without a restart):

  list FILE        200 text/plain, the file as one page, Cursor header absent (a good list)
  lines N          200 text/plain, N generated addresses in ONE page (ignores limit/paging)
  paged N          200 text/plain, N generated addresses served 10,000 a page with a Cursor
  bigline BYTES    200 text/plain, one line of BYTES digits, no newline
  garbage BYTES    200 application/octet-stream, random bytes (NULs included)
  never            200 text/plain, chunked, one address every 0.2 s, forever
  html             200 text/html, a proxy's login page
  html_as_text     200 text/plain holding an HTML page
  echo STATUS      STATUS with a body that echoes the request's Authorization header, the
                   decoded Basic credentials and the query: a server that leaks what it got
  redirect STATUS  STATUS (a 3xx) whose Location echoes the credentials: as userinfo, as the
                   Basic header's base64 in the path, and the key in the query

Usage: hostile_server.py --port-file F --mode-file M [--host H] [--log L]
"""
import argparse
import base64
import http.server
import json
import os
import socketserver
import sys
import time

ARGS = None


def address(i):
    # Public unicast, never a protected range: 23.0.0.0 - 212.x, spread over many /8s.
    firsts = (23, 31, 45, 62, 77, 91, 103, 141, 176, 185, 194, 212)
    return "%d.%d.%d.%d" % (firsts[i % 12], (i >> 16) & 255, (i >> 8) & 255, (i & 255) | 1)


def lines_chunks(start, count, chunk=50000):
    i = start
    end = start + count
    while i < end:
        n = min(chunk, end - i)
        yield ("\n".join(address(j) for j in range(i, i + n)) + "\n").encode()
        i += n


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.log:
            with open(ARGS.log, "a") as f:
                f.write("%s %s\n" % (self.command, fmt % args))

    def send_body(self, status, ctype, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def stream(self, ctype, chunks, length=None, headers=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            for c in chunks:
                if length is None:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                else:
                    self.wfile.write(c)
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        with open(ARGS.mode_file) as f:
            mode = f.read().split()
        kind = mode[0]
        arg = mode[1] if len(mode) > 1 else ""
        if kind == "list":
            with open(arg, "rb") as f:
                self.send_body(200, "text/plain", f.read())
        elif kind == "lines":
            n = int(arg)
            total = sum(len(c) for c in lines_chunks(0, n)) if n <= 200000 else None
            self.stream("text/plain", lines_chunks(0, n), total)
        elif kind == "paged":
            n = int(arg)
            q = self.path.partition("?")[2]
            params = dict(p.partition("=")[::2] for p in q.split("&") if p)
            start = int(params.get("cursor", "0"))
            count = max(0, min(10000, n - start))
            body = b"".join(lines_chunks(start, count))
            headers = [("Cursor", str(start + count))] if count else []
            self.send_body(200, "text/plain", body, headers)
        elif kind == "bigline":
            size = int(arg)
            block = b"1" * (1 << 20)
            chunks = (block[:min(len(block), size - o)] for o in range(0, size, len(block)))
            self.stream("text/plain", chunks, size)
        elif kind == "garbage":
            size = int(arg)
            data = os.urandom(size)
            self.send_body(200, "application/octet-stream", data)
        elif kind == "never":
            def forever():
                i = 0
                while True:
                    yield (address(i) + "\n").encode()
                    i += 1
                    time.sleep(0.2)
            self.stream("text/plain", forever())
        elif kind in ("html", "html_as_text"):
            body = (b"<!DOCTYPE html>\n<html><head><title>Proxy login</title></head><body>"
                    b"<form>Please sign in to continue</form></body></html>\n")
            self.send_body(200, "text/html; charset=utf-8" if kind == "html" else "text/plain",
                           body)
        elif kind == "echo":
            auth = self.headers.get("Authorization", "")
            decoded = ""
            if auth.startswith("Basic "):
                try:
                    decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
                except Exception:
                    decoded = "?"
            body = ("error: you sent Authorization: %s (credentials %s) for %s\n" %
                    (auth, decoded, self.path)).encode()
            self.send_body(int(arg), "text/plain", body)
        elif kind == "redirect":
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                b64 = auth[6:]
                try:
                    user, _, key = base64.b64decode(b64).decode("utf-8", "replace").partition(":")
                except Exception:
                    user, key = "?", "?"
            else:  # Bearer: the token is the key; echo its Basic form as well
                user, key = "iocwall", auth.partition(" ")[2]
                b64 = base64.b64encode(("%s:%s" % (user, key)).encode()).decode()
            loc = "https://%s:%s@login.example/sso/%s/%s/%s?key=%s" % (user, key, b64, b64.rstrip("="), key, key)
            # Header values are latin-1 on the wire: anything else is escaped, not a crash.
            loc = loc.encode("latin-1", "backslashreplace").decode("latin-1")
            self.send_body(int(arg), "text/plain", b"", headers=(("Location", loc),))
        else:
            self.send_body(500, "text/plain", b"unknown mode\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port-file", required=True)
    p.add_argument("--mode-file", required=True)
    p.add_argument("--log")
    ARGS = p.parse_args()
    srv = Server((ARGS.host, 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"http": srv.server_address[1], "pid": os.getpid()}, f)
    os.rename(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
