"""Start server processes in their own process group, wait until they answer, stop only what we started.

Several people's clusters share one machine, so nothing here stops a process by name: a service is
stopped through the process group it was started in, plus (for Ray) the processes whose command
line names its private temporary directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Sequence

from components.errors import CorrvosError

PROC = Path("/proc")


class ServiceError(CorrvosError):
    """A local service did not start, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens at right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(name: str, command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start `command` in a new session (its own process group), output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=full_env, cwd=cwd, start_new_session=True)
        except OSError as exc:
            raise ServiceError(f"cannot start {name} ({command[0]}): {exc.strerror or exc}") from None


def http_answers(url: str, timeout_s: float = 2.0, max_status: int = 499) -> bool:
    """True once `url` answers HTTP with a status of at most `max_status` (by default: anything but a server error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status <= max_status
    except urllib.error.HTTPError as exc:
        return exc.code <= max_status
    except (OSError, ValueError):
        return False


def wait_until(name: str, ready: Callable[[], bool], process: subprocess.Popen, log_path: Path,
               timeout_s: float) -> None:
    """Poll `ready` until it holds; fail in one line if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            raise ServiceError(f"{name} exited with status {process.returncode}: {last_line(log_path)} (log: {log_path})")
        time.sleep(0.5)
    raise ServiceError(f"{name} did not answer within {timeout_s:.0f} s (log: {log_path})")


def last_line(path: Path) -> str:
    """The last non-empty line of a log file, for one-line errors."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def alive(pid: int | None, marker: str | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when `marker` is given, its command line contains it."""
    if pid is None:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if _state(pid) in ("Z", "X"):
        return False
    return marker is None or not PROC.exists() or marker in _cmdline(pid)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (Linux /proc; elsewhere only the leader)."""
    if not PROC.exists():
        return [pgid] if alive(pgid) else []
    members = []
    for pid in _pids():
        try:
            if os.getpgid(pid) == pgid and alive(pid):
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def processes_naming(path: str) -> list[int]:
    """Live processes with an argument that is `path` or lies under it (not a sibling such as PATH-2); Linux only."""
    path = path.rstrip("/")

    def names(arg: str) -> bool:
        value = arg.split("=", 1)[-1]
        return value == path or value.startswith(path + "/")

    return [pid for pid in _pids() if pid != os.getpid() and any(names(a) for a in _args(pid)) and alive(pid)]


def terminate(pids: list[int], grace_s: float) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL whatever is left (reaping our own children)."""
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    left = [pid for pid in pids if alive(pid)]
    _signal_all(left, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in left):
        time.sleep(0.1)


def stop_group(pid: int | None, marker: str | None = None, grace_s: float = 10.0) -> None:
    """Stop the process group led by `pid` (skipped when `pid` is gone or no longer runs `marker`)."""
    if not alive(pid, marker):
        return
    assert pid is not None
    terminate([pid], grace_s)  # the leader first: `ray start --block` shuts its children down itself
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    terminate(group_members(pid), grace_s)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()] if PROC.exists() else []


def _args(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    return " ".join(_args(pid))


def _state(pid: int) -> str:
    """The one-letter state from /proc/PID/stat ("" when unknown)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""


def _reap(pid: int | None) -> None:
    """Collect an exited child of this process so it does not linger as a zombie."""
    if pid is None:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
