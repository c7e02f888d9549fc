"""How ``posedistill serve`` runs the app on uvicorn: a connection limit and deadlines for slow clients.

uvicorn's own settings give the connection limit (``limit_concurrency``: more connections or requests at once are
answered 503), the idle keep-alive timeout (``timeout_keep_alive``) and the largest request head
(``h11_max_incomplete_event_size``). uvicorn has no deadline for the request line and headers: its keep-alive
timer runs only after a response, and every byte received stops it, so a client that connects and sends nothing,
or sends its headers a byte at a time, held its socket for ever. :class:`HeaderTimeoutProtocol` (uvicorn's h11
protocol with a timer that only a complete request head stops) closes such connections after
``ServeConfig.header_timeout_s``. The body has its own deadline in the app (``upload_timeout_s``, 408).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import ServeConfig

__all__ = ["HeaderTimeoutProtocol", "server_config", "run_server", "MAX_HEAD_BYTES"]

#: Largest request line + headers accepted (h11's own default, set explicitly).
MAX_HEAD_BYTES = 16 * 1024

_log = logging.getLogger("posedistill.serve")


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol; a connection whose request head is not complete ``header_timeout`` seconds after it
    opened (or after its previous response) is closed, with one log line."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        self._arm_head_timer()  # before: a pipelined request handled inside stops it again
        super().on_response_complete()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:  # a request head arrived
            self._stop_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "?"
            _log.warning("%s: no complete request head within %g s; connection closed", client, self.header_timeout)
            self.transport.close()


def server_config(app: Any, *, host: str, port: int, config: ServeConfig, log_level: str = "warning",
                  **uvicorn_options: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``posedistill serve``: ``config``'s connection limit and timeouts."""
    protocol = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": config.header_timeout_s})
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol,
                          timeout_keep_alive=config.keep_alive_s, limit_concurrency=config.max_connections,
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_graceful_shutdown=5,
                          **uvicorn_options)


def run_server(app: Any, *, host: str, port: int, config: ServeConfig) -> None:
    """Serve ``app`` until interrupted; refusals and dropped clients log one line each on stderr."""
    if not _log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s posedistill serve: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)
        _log.propagate = False
    uvicorn.Server(server_config(app, host=host, port=port, config=config)).run()
