"""Session-wide test plumbing: one local Ray shared by the tests that need one, the `ray` / `server`
markers, and the guard that keeps `make test-fast` free of both.

- `local_ray` (session): a local Ray (2 CPUs, no dashboard) started on first use and shut down when
  the session ends. The modules with a test that asks for it run together near the end (after them
  only the modules using a session-scoped server, `SESSION_SERVERS`, which idle until the session
  ends), so the instance starts once. A test outside those modules finds no Ray in this process: the
  shared one is shut down before it (a test that starts its own cluster has the machine to itself)
  and started again, lazily, before the next test that asks for it.
- Markers: `ray` (starts or joins Ray, in this process or a child), `server` (starts a server: `ray
  start --head`, `mlflow server`, `moto_server`). Tests are marked here by the fixtures they use
  (`FIXTURE_MARKS`); a module that starts them itself says so with `pytestmark`.
- `make test-fast` runs `-m "not ray and not server and not slow"` with CORRVOS_TEST_FAST=1: then
  starting a Ray process or a server (here or in any child Python process) raises, and fails the test
  that did it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

SHARED_RAY_CPUS = 2
FIXTURE_MARKS = {
    "local_ray": ("ray",),
    "ray_head": ("ray", "server"),  # tests/cluster: `ray start --head`
    "moto_s3": ("server",),  # tests/data: moto_server
}
SESSION_SERVERS = {"ray_head", "moto_s3"}  # session-scoped: up from first use to the end of the session
FAST_ENV = "CORRVOS_TEST_FAST"
FAST_LOG_ENV = "CORRVOS_TEST_FAST_LOG"

# Installed in this process and, as sitecustomize, in every child Python process under test-fast.
# Every subprocess start goes through Popen._execute_child (Ray's own gcs_server/raylet included).
GUARD = r'''
import os
import subprocess

_SERVERS = {"gcs_server": "Ray (gcs_server)", "raylet": "Ray (raylet)", "moto_server": "moto_server",
            "moto.server": "moto_server"}


def _corrvos_forbidden(args):
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    argv = [os.fsdecode(a) for a in argv]
    if len(argv) == 1:
        argv = argv[0].split()  # a shell command line
    names = [os.path.basename(a) for a in argv]
    for name, after in zip(names, names[1:] + [""]):
        if name in _SERVERS:
            return _SERVERS[name]
        if name == "ray" and after == "start":
            return "Ray (ray start)"
        if name == "mlflow" and after in ("server", "ui"):
            return "an MLflow server"
    return None


def _corrvos_install_guard():
    real = subprocess.Popen._execute_child
    if getattr(real, "corrvos_guard", False):
        return

    def guarded(self, args, *rest, **kwargs):
        what = _corrvos_forbidden(args)
        if what is not None:
            log = os.environ.get("CORRVOS_TEST_FAST_LOG")
            if log:
                with open(log, "a") as f:
                    f.write(f"{what}: {args!r}\n")
            raise RuntimeError(f"make test-fast: this test started {what}; mark it `ray` or `server` ({args!r})")
        return real(self, args, *rest, **kwargs)

    guarded.corrvos_guard = True
    subprocess.Popen._execute_child = guarded


if os.environ.get("CORRVOS_TEST_FAST") == "1":
    _corrvos_install_guard()
'''


def _fast() -> bool:
    return os.environ.get(FAST_ENV) == "1"


# Ray Train's controller polls its workers every 2 s (Ray's default, sized for long multi-node runs); each
# stage then waits up to that long to see its workers finish. Tests run dozens of seconds-long stages.
RAY_TRAIN_POLL_S = "0.25"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", RAY_TRAIN_POLL_S)  # inherited by Ray and every child
    if not _fast():
        return
    folder = Path(tempfile.mkdtemp(prefix="corrvos-test-fast-"))
    (folder / "sitecustomize.py").write_text(GUARD)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    os.environ[FAST_LOG_ENV] = str(folder / "started.log")
    exec(compile(GUARD, str(folder / "sitecustomize.py"), "exec"), {"__name__": "corrvos_test_fast_guard"})


@pytest.fixture(autouse=True)
def _test_fast_guard():
    """Under test-fast, fail the test that started Ray or a server, even where the error was swallowed."""
    log = Path(os.environ.get(FAST_LOG_ENV, "")) if _fast() else None
    seen = log.stat().st_size if log and log.exists() else 0
    yield
    if log and log.exists() and log.stat().st_size > seen:
        started = log.read_text()[seen:].strip()
        pytest.fail(f"make test-fast: this test started Ray or a server; mark it `ray` or `server`:\n{started}",
                    pytrace=False)


def _uses_shared_ray(item: pytest.Item) -> bool:
    return "local_ray" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by fixture; then order by module (stable within each group): the rest, the modules that share
    the local Ray, and last the modules using a session-scoped server, which idles until the session ends."""
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for name in FIXTURE_MARKS.get(fixture, ()):
                item.add_marker(name)
    _SHARED_MODULES.clear()
    _SHARED_MODULES.update(_module(item) for item in items if _uses_shared_ray(item))
    serving = {_module(item) for item in items if SESSION_SERVERS & set(getattr(item, "fixturenames", ()))}
    items.sort(key=lambda item: 2 if _module(item) in serving else 1 if _module(item) in _SHARED_MODULES else 0)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


_SHARED_MODULES: set[str] = set()  # test files with a test that uses `local_ray`


class _SharedRay:
    """The session's local Ray: started when a test asks for it, shut down before a test that must not see it."""

    started = False

    def ensure(self) -> None:
        import ray

        if ray.is_initialized():
            if self.started:
                self._wait_for_idle(ray)
            return
        ray.init(num_cpus=SHARED_RAY_CPUS, include_dashboard=False)
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self.started = False

    def _wait_for_idle(self, ray) -> None:
        """Each test gets every CPU: a test that left actors or placement groups behind gets a fresh Ray."""
        deadline = time.monotonic() + 20
        while ray.available_resources().get("CPU", 0) < SHARED_RAY_CPUS:
            if time.monotonic() > deadline:
                warnings.warn(f"the shared Ray still held {ray.available_resources()} after the last test: restarted")
                ray.shutdown()
                ray.init(num_cpus=SHARED_RAY_CPUS, include_dashboard=False)
                return
            time.sleep(0.2)


_SHARED_RAY = _SharedRay()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the test's fixtures: Ray up for a module that shares it, down (if ours) for any other."""
    if _module(item) in _SHARED_MODULES:
        if _uses_shared_ray(item):
            _SHARED_RAY.ensure()
    else:
        _SHARED_RAY.stop()


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray (2 CPUs, no dashboard) shared by every test that asks for it; see the module docstring."""
    _SHARED_RAY.ensure()
    yield
    _SHARED_RAY.stop()


def pytest_unconfigure(config: pytest.Config) -> None:
    if "ray" in sys.modules:
        _SHARED_RAY.stop()
    if _fast() and os.environ.get(FAST_LOG_ENV):
        shutil.rmtree(Path(os.environ[FAST_LOG_ENV]).parent, ignore_errors=True)
