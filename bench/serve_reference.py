"""``python -m bench.serve_reference raw|layer --port P``: a reference, served like authgraph."""

from __future__ import annotations

import argparse

import uvicorn

from graph.cli import uvicorn_options
from graph.settings import load_settings

APPS = {"raw": "bench.references:raw_floor", "layer": "bench.references:same_layer"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        APPS[args.name],
        factory=True,
        host=args.host,
        port=args.port,
        **uvicorn_options(load_settings()),
    )


if __name__ == "__main__":
    main()
