"""The FastAPI application factory. Nothing is connected until the app starts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from auth.errors import ServiceUnavailable
from graph import rest, wellknown
from graph.context import get_context
from graph.cookies import CSRF_HEADER
from graph.documents import Documents
from graph.graphiql import render_local_graphiql_html
from graph.lean import LeanCounts, LeanGraphQL, Plans
from graph.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from graph.paths import GRAPHQL_PATH, STATIC_PREFIX
from graph.root import AppState, build_state, load_keys, prune
from graph.router import AuthgraphRouter
from graph.schema import build_schema
from graph.settings import Settings, load_settings

log = logging.getLogger("authgraph")
STATIC_DIR = Path(__file__).resolve().parent / "static"
SENDER_STOP_SECONDS = 5
# How often keys are retried while the database that holds them did not answer at start-up.
KEY_RETRY_SECONDS = 1.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Settings default to the environment and ``.env``."""
    settings = settings or load_settings()
    # Fail at start-up, not on the first GraphiQL visit, if the vendored assets are off.
    render_local_graphiql_html(f"{STATIC_PREFIX}/graphiql")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        app.state.authgraph = state
        # No current signing key in production: refuse to start (never made by a request).
        # A database that does not answer yet is an outage, not a reason to stay down: the
        # refresher loads the keys as soon as it answers, and requests say SERVICE_UNAVAILABLE.
        keys_loaded = True
        try:
            await run_in_threadpool(load_keys, state, create=not settings.is_production)
        except ServiceUnavailable as exc:
            state.outages.noticed(exc.dependency, exc.reason)
            keys_loaded = False
        # The first dummy verification builds its hash; do it now, not in a login's timing.
        await run_in_threadpool(state.toolkit.hasher.warm)
        # The providers' discovery, in the background: one that fails is logged and tried
        # again on its next use, never a reason not to start.
        discovery = asyncio.create_task(run_in_threadpool(state.toolkit.oauth.discover_all))
        key_refresher = asyncio.create_task(_refresh_keys_forever(state, loaded=keys_loaded))
        pruner = (
            asyncio.create_task(_prune_forever(state))
            if settings.http.session_prune_interval_seconds > 0
            else None
        )
        assert state.mail_sender is not None
        sender = asyncio.create_task(state.mail_sender.run_forever())
        state.start_live(asyncio.get_running_loop())
        hooks = state.webhook_sender
        hook_sender = asyncio.create_task(hooks.run_forever()) if hooks is not None else None
        # What start-up built (the schema, the engines, the settings: some 200,000 objects)
        # lives as long as the process. Frozen, the collector no longer walks it: under
        # concurrent load a full collection went from about 120 ms of the loop's time (a
        # stall of every request in flight, every half second) to 5 to 10 ms
        # (bench/RESULTS.md). No collection first: in a process that starts many apps (the
        # tests) each would walk the whole heap; start-up's own garbage is small. Unfrozen
        # when the app stops, so that such a process can still collect the old apps.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            # Let a delivery in progress finish (its outcome is recorded), but not for long:
            # anything unfinished is retried by the next process when its lease ends.
            state.mail_sender.stop()
            state.stop_live()
            if hooks is not None:
                hooks.stop()
            senders = {t for t in (sender, hook_sender) if t is not None}
            await asyncio.wait(senders, timeout=SENDER_STOP_SECONDS)
            for task in (pruner, sender, hook_sender, key_refresher, discovery):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if state.live_reads is not None:
                await state.live_reads.aclose()
            state.close()

    app = AuthgraphApp(
        title="authgraph",
        summary="A GraphQL authentication API.",
        lifespan=lifespan,
        # Swagger UI loads unpinned scripts from a CDN: never on a production origin by default.
        docs_url="/docs" if settings.api_docs_enabled else None,
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
        redoc_url=None,
    )
    schema = build_schema(settings=settings)
    # Read now: a bad manifest stops the start, naming TRUSTED_DOCUMENTS.
    documents = Documents.from_settings(settings)
    graphql = AuthgraphRouter(
        schema,
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=settings.http.subscriptions_per_connection,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
    )
    app.include_router(graphql, prefix=GRAPHQL_PATH)
    app.include_router(rest.router)
    app.include_router(wellknown.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.state.documents = documents
    app.state.lean_counts = LeanCounts()
    app.state.plans = Plans(schema, settings.http.document_cache_size)
    # Innermost of authgraph's layers: the body limit, security headers and CORS apply to it.
    front: ASGIApp = LeanGraphQL(
        app.fastapi,
        schema=schema,
        router=graphql,
        documents=documents,
        plans=app.state.plans,
        settings=settings,
        counts=app.state.lean_counts,
    )
    if settings.http.cors_origins:
        front = CORSMiddleware(
            front,
            allow_origins=list(settings.http.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", CSRF_HEADER],
            expose_headers=[CSRF_HEADER],
            max_age=600,
        )
    # Outermost: even a 413 or a CORS preflight answer gets the headers.
    app.front = SecurityHeadersMiddleware(
        BodyLimitMiddleware(front, max_bytes=settings.http.max_body_bytes)
    )
    return app


class AuthgraphApp(FastAPI):
    """FastAPI behind authgraph's own ASGI layers: security headers, the body limit, CORS
    and the lean path (:class:`graph.lean.LeanGraphQL`) run first, and FastAPI's stack
    (its error and body-size layers, routing) only for what the lean path hands on. As
    ``add_middleware`` layers they ran inside FastAPI's: a fifth of a lean request's CPU.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None or scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # what Starlette sets: request.app for the lean path
        await self.front(scope, receive, send)

    async def fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling of a request (its middleware stack, then routing)."""
        await super().__call__(scope, receive, send)


async def _refresh_keys_forever(state: AppState, *, loaded: bool = True) -> None:
    """Pick up keys generated, activated or retired elsewhere within KEY_REFRESH_SECONDS.

    Not ``loaded`` (the database was down at start-up): retry every second until it answers.
    """
    keys = state.toolkit.keys
    while True:
        await asyncio.sleep(keys.config.refresh_seconds if loaded else KEY_RETRY_SECONDS)
        try:
            if loaded:
                await run_in_threadpool(keys.refresh)
            else:
                await run_in_threadpool(load_keys, state, create=not state.settings.is_production)
                loaded = True
        except ServiceUnavailable as exc:
            state.outages.noticed(exc.dependency, exc.reason)
        except Exception:
            # The cached set stays in use; the next round tries again.
            log.exception("refreshing the signing keys failed; keeping the cached ones")


async def _prune_forever(state: AppState) -> None:
    while True:
        await asyncio.sleep(state.settings.http.session_prune_interval_seconds)
        try:
            pruned = await run_in_threadpool(prune, state)
            log.info(
                "pruned %d sessions, %d email tokens, %d delivered messages",
                pruned.sessions,
                pruned.email_tokens,
                pruned.mail,
            )
        except Exception:
            log.exception("session pruning failed; will retry")
