"""The life cycle both fakes share: a threaded HTTP server on 127.0.0.1, a free port, a daemon thread."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, kills) are expected; anything else is still reported."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Base of the fakes: subclasses name their handler class and may wrap the socket in TLS."""

    handler: type[BaseHTTPRequestHandler]
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tls_context(self) -> ssl.SSLContext | None:
        """A server TLS context, or None for plain HTTP."""
        return None

    def start(self) -> Self:
        """Listen on a free loopback port in a daemon thread; the handler sees this object as ``fake``."""
        handler: Any = type("BoundHandler", (self.handler,), {"fake": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        ctx = self.tls_context()
        if ctx is not None:
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._server is not None
        return int(self._server.server_address[1])
