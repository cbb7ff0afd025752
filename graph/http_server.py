"""uvicorn's httptools protocol with bounds on a request's head and on slow clients.

httptools hands a header to Python only once it is complete, and keeps growing it in memory
until then: on its own it accepts a header of any size, any number of headers, and a
client that sends one byte a second forever. :class:`BoundedHttpToolsProtocol` adds what
nginx and h11 have (see ``MAX_HEADER_BYTES`` and its neighbours in ``.env.example``):

- the request line and headers together are at most ``max_header_bytes``, counted as they
  arrive, before httptools buffers them; past that the answer is 431 and the connection
  closes;
- at most ``max_header_count`` headers, else 431;
- the whole head must arrive within ``header_read_timeout`` of its first byte (for a new
  connection: of the connection's opening, so a silent one is closed too), else 408 and
  close (a plain close when nothing at all came);
- while a body is being read, ``body_read_timeout`` at most between two reads, else the
  connection closes (the app sees a disconnect).

Between requests uvicorn's own keep-alive timeout applies. Everything else is uvicorn's,
and so is the speed of the common path: besides the one timer each new connection gets, a
request whose head arrives in one read arms none.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import TimerHandle
from dataclasses import dataclass
from functools import partial
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from graph.errors import error_body

# After a refusal the rest of what the client sends is read and dropped for a moment, so
# that it reads the answer instead of a reset (closing with unread input sends an RST).
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HttpBounds:
    """The limits one server applies to every connection (picklable: workers get a copy)."""

    max_header_bytes: int
    max_header_count: int
    header_read_timeout: float
    body_read_timeout: float


class HeaderLimitExceeded(Exception):
    """Raised from a parser callback to stop parsing a head over a bound."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` plus :class:`HttpBounds` (see the module docstring)."""

    def __init__(self, *args: Any, bounds: HttpBounds, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bounds = bounds
        # Copied out of ``bounds``: read on every request, one attribute lookup each.
        self._max_header_bytes = bounds.max_header_bytes
        self._max_header_count = bounds.max_header_count
        # The head being read: true from the connection's opening, and again from the end
        # of each request's body, until the next request's headers are complete.
        self._in_head = True
        self._in_body = False
        self._head_bytes = 0
        self._heads_completed = 0
        self._head_started: float | None = None
        self._header_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._refused = False
        self._lingering = 0

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self.loop.time()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._linger(len(data))
            return
        if self._in_head:
            room = self._max_header_bytes - self._head_bytes
            if len(data) > room:
                # Only ``room`` more bytes may belong to this head: feed those, and the rest
                # only if the parser found the end of the headers within them.
                heads = self._heads_completed
                self._head_bytes += room
                self._feed(data[:room])
                if self._refused or self.transport.is_closing():
                    return
                if self._heads_completed == heads:
                    limit = self._max_header_bytes
                    self._refuse(431, f"Request headers exceed {limit} bytes.")
                    return
                # A pipelined request that starts within those bytes is counted from the next
                # read on: at most ``room`` bytes of its head go uncounted.
                self.data_received(data[room:])
                return
            self._head_bytes += len(data)
            if self._head_started is None:
                # The first byte of the next request (stray CRLFs included).
                self._head_started = self.loop.time()
        self._feed(data)
        if self._refused or self.transport.is_closing():
            return
        if self._in_head:
            # Only a head that spans reads needs the timer (after a whole request, no head
            # has started yet): the common path arms nothing.
            if self._head_started is not None and self._header_timer is None:
                self._arm_header_timer()
        elif self._in_body:
            self._arm_body_timer()

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received``, with a refusal of a head over a bound."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                # uvicorn answers it as a plain request; its body, if any, is not parsed.
                self._in_body = False
                self._unsupported_upgrade_warning()

    def handle_websocket_upgrade(self) -> None:
        # The connection is another protocol's from now on: no timer of ours may close it.
        self._cancel_timers()
        self._in_head = self._in_body = False
        super().handle_websocket_upgrade()

    # -- parser callbacks ----------------------------------------------------------------------
    # They run for every request: the base class is called by name (cheaper than super()).

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self._head_started is None:
            # A pipelined request that began in the middle of a read.
            self._head_started = self.loop.time()

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if len(headers) >= self._max_header_count:
            self._refuse(431, f"More than {self._max_header_count} request headers.")
            raise HeaderLimitExceeded
        # uvicorn's on_header, inlined (it runs once per header).
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._head_bytes = 0
        self._head_started = None
        self._heads_completed += 1
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._in_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        HttpToolsProtocol.on_message_complete(self)

    # -- timers --------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self._head_started is not None:
            deadline = self._head_started + self.bounds.header_read_timeout
            self._header_timer = self.loop.call_at(deadline, self._header_timed_out)

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.bounds.body_read_timeout, self._body_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.flow.read_paused:
            # uvicorn stopped reading (a pipelined request waits): not the client's delay.
            self._head_started = self.loop.time()
            self._arm_header_timer()
            return
        if self._head_bytes == 0:
            # Nothing of a request came (a browser's idle pre-connection, say): close without
            # an answer, as uvicorn closes an idle kept-alive connection.
            self.transport.close()
            return
        self._refuse(408, "Request headers were not received in time.")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        if self.flow.read_paused:
            self._arm_body_timer()
            return
        self.logger.warning("Request body not received in time: connection closed.")
        self.transport.close()

    # -- refusals ------------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error, read no further, and close."""
        if self._refused:
            return
        self._refused = True
        self._cancel_timers()
        self.logger.warning("%s Answered %d and closed the connection.", message, status)
        if self.cycle is not None and not self.cycle.response_complete:
            # A response to an earlier (pipelined) request is under way: no answer fits in.
            self.transport.close()
            return
        code = "REQUEST_TIMEOUT" if status == 408 else "REQUEST_HEADER_FIELDS_TOO_LARGE"
        body = json.dumps(error_body(message, code)).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(
            b"content-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"cache-control: no-store\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _linger(self, size: int) -> None:
        self._lingering += size
        if self._lingering > LINGER_BYTES:
            self.transport.close()


def protocol_factory(bounds: HttpBounds) -> Any:
    """What uvicorn's ``http=`` takes: builds a :class:`BoundedHttpToolsProtocol` per connection.

    A ``partial`` of a module-level class, so that it pickles into ``--workers`` processes.
    """
    return partial(BoundedHttpToolsProtocol, bounds=bounds)
