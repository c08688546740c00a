"""A loopback TCP server that accepts connections and never sends a byte: what a hung service looks like."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def silent_port() -> Iterator[int]:
    """The port of a server on 127.0.0.1 that accepts every connection and never answers; closed on exit."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for connection in accepted:
            connection.close()
