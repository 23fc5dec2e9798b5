#!/usr/bin/env python3
"""A static HTTPS file server for TLS tests.

Usage: tls_server.py ROOT CERT KEY [CLIENT_CA]

Serves ROOT on 127.0.0.1 (a free port) with CERT/KEY. With CLIENT_CA, a client certificate
issued by it is required (mTLS). Prints `listening on https://127.0.0.1:PORT` once ready,
then one line per request served: `GET PATH CLIENT-CN` (`-` without a client certificate).
"""

import functools
import ssl
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        cert = self.connection.getpeercert()
        cn = "-"
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
        print(f"GET {self.path} {cn}", flush=True)
        super().do_GET()


def main():
    root, cert, key = sys.argv[1:4]
    client_ca = sys.argv[4] if len(sys.argv) > 4 else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Handler, directory=root))
    httpd.daemon_threads = True
    # A failed handshake raises in accept(), which the server ignores (SSLError is an OSError).
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(f"listening on https://127.0.0.1:{httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
