"""Is the process a record on storage names still there? Records carry (host, pid); only this host can tell.

Used to tell a stage or a pipeline run that is still going from one that a kill -9 left behind, and
an ingest still writing its shards from one that died mid-way.
"""

from __future__ import annotations

import os
import socket


def this_host() -> str:
    """The name records store for this machine."""
    return socket.gethostname()


def process_gone(host: str, pid: int) -> bool:
    """True only when `host` is this machine and process `pid` no longer runs here (a zombie counts as gone).

    Another host, or a record without a pid, is unknown: False, so nothing live is ever taken for dead.
    """
    if not host or pid <= 0 or host != this_host():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another user
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers signal 0; /proc says it is dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X")
