"""The log check of tests/servers.py: a client's mistake passes, a server's failure does not."""

from __future__ import annotations

from tests.servers import log_problems

# Lines a real `authgraph serve` logs while it refuses bad requests, as it should.
CLIENT_MISTAKES = """\
2026-12-02 13:10:01,532 WARNING authgraph: JWT_SECRET is not set; generated one
INFO:     Started server process [4242]
INFO:     Application startup complete.
INFO:     127.0.0.1:51096 - "POST /graphql HTTP/1.1" 400 Bad Request
INFO:     127.0.0.1:51096 - "POST /graphql HTTP/1.1" 413 Request Entity Too Large
INFO:     127.0.0.1:51096 - "POST /graphql HTTP/1.1" 415 Unsupported Media Type
INFO:     127.0.0.1:51096 - "GET /graphql?query=%7B+a+%7D&x=500 HTTP/1.1" 405 Method Not Allowed
WARNING:  Invalid HTTP request received.
INFO:     127.0.0.1:51096 - "GET /healthz HTTP/1.1" 200 OK
"""


def test_log_check_passes_refused_client_mistakes() -> None:
    assert log_problems(CLIENT_MISTAKES) == []


def test_log_check_flags_each_kind_of_server_failure() -> None:
    failures = [
        'INFO:     127.0.0.1:1 - "POST /graphql HTTP/1.1" 500 Internal Server Error',
        'INFO:     127.0.0.1:1 - "GET /readyz HTTP/1.1" 503 Service Unavailable',
        "ERROR:    Exception in ASGI application",
        "Traceback (most recent call last):",
        "2026-12-02 13:10:01,532 ERROR authgraph.graph: unexpected error in login",
        "2026-12-02 13:10:01,532 CRITICAL authgraph: out of file descriptors",
    ]
    assert log_problems(CLIENT_MISTAKES + "\n".join(failures)) == failures
