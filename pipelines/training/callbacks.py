"""Ray Train controller callbacks, in a module of their own: the controller imports what it unpickles,
and this imports neither torch models nor MLflow, so each stage's controller starts sooner."""

from __future__ import annotations

from typing import Any

from ray.train import UserCallback

from components.errors import CorrvosError


def cannot_succeed_on_retry(error: BaseException) -> bool:
    """A CorrvosError (bad data, config, weights) fails alike on every restart; a class opts out with `retryable = True`."""
    return isinstance(error, CorrvosError) and not getattr(error, "retryable", False)


class StopOnCorrvosError(UserCallback):
    """Ends the run at the first worker error that cannot succeed on retry, instead of restarting `max_failures` times."""

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        """Runs on the Ray Train controller; raising here fails the run without consulting `max_failures`."""
        for rank in sorted(worker_exceptions):
            if cannot_succeed_on_retry(worker_exceptions[rank]):
                raise worker_exceptions[rank]
