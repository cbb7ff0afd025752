"""Serve the example SPA on its own origin, pointed at an authgraph API.

    python examples/spa/serve.py --port 5173 --api http://localhost:8000/graphql

Stdlib only. ``/config.js`` is generated from ``--api``; every other path is a file of
this folder. Each answer carries a Content-Security-Policy that lets the page talk to
its own origin and the API's, and nothing else.
"""

from __future__ import annotations

import argparse
import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


class SpaHandler(SimpleHTTPRequestHandler):
    """Static files from this folder, a generated config.js and security headers."""

    def __init__(
        self, *args: object, api_url: str, trusted_documents: bool = False, **kwargs: object
    ) -> None:
        self.api_url = api_url
        self.trusted_documents = trusted_documents
        super().__init__(*args, directory=str(HERE), **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/config.js":
            body = (
                f"export const API_URL = {json.dumps(self.api_url)};\n"
                f"export const TRUSTED_DOCUMENTS = {json.dumps(self.trusted_documents)};\n"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if urlsplit(self.path).path.endswith(".py"):
            self.send_error(404)
            return
        super().do_GET()

    def end_headers(self) -> None:
        api = urlsplit(self.api_url)
        csp = (
            "default-src 'self'; "
            # The API, and its WebSocket (subscriptions) at the same host.
            f"connect-src 'self' {api.scheme}://{api.netloc} "
            f"{'wss' if api.scheme == 'https' else 'ws'}://{api.netloc}; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        self.send_header("Content-Security-Policy", csp)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5173, help="port (default 5173)")
    parser.add_argument(
        "--api", default="http://localhost:8000/graphql", help="the API's GraphQL URL"
    )
    parser.add_argument(
        "--trusted-documents",
        action="store_true",
        help="send documentId instead of the text (the API loads trusted-documents.json)",
    )
    args = parser.parse_args()
    handler = functools.partial(
        SpaHandler, api_url=args.api, trusted_documents=args.trusted_documents
    )
    server = ThreadingHTTPServer((args.host, args.port), handler)
    print(f"SPA on http://localhost:{args.port} talking to {args.api}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
