"""A worker error that cannot succeed on retry (a CorrvosError) fails the training stage at once, saying why."""

import json
import os
from pathlib import Path

import pytest
from ray.train import UserCallback

from pipelines.training.stage import TrainingFailed, run_training_stage
from tests.training.conftest import tiny_config


class RecordFailures(UserCallback):
    """Appends one line per failed attempt (a worker group that raised), where the test can count them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_exception(self, run_context, worker_exceptions) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps({rank: type(error).__name__ for rank, error in worker_exceptions.items()}) + "\n")


@pytest.mark.ray
def test_a_dataset_the_workers_cannot_read_fails_once_with_the_workers_message(tmp_path, tiny_dataset, local_ray,
                                                                               monkeypatch):
    # The README's bug: a relative path the driver can read, but Ray Train's workers run in another folder.
    monkeypatch.chdir(Path(tiny_dataset).parent)
    relative = os.path.basename(tiny_dataset)
    failures = tmp_path / "failures.jsonl"
    config = tiny_config(tmp_path, max_failures=2)
    with pytest.raises(TrainingFailed) as error:
        run_training_stage(config, "train", [relative], str(tmp_path / "train"),
                           callbacks=[RecordFailures(str(failures))])
    attempts = failures.read_text().splitlines()
    assert len(attempts) == 1, attempts  # not restarted max_failures times
    assert json.loads(attempts[0]) == {"0": "DataError"}
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("stage train failed: ") and f"{relative}: no manifest.json" in message, message


def test_the_stage_error_names_the_worker_error_and_whether_a_rerun_may_help():
    import pickle

    from ray.train import ControllerError, WorkerGroupError

    from components.errors import DataError
    from pipelines.training.stage import stage_failure

    lost = stage_failure("train", WorkerGroupError("[Rank 0 Error Snippet]:\n...", {1: RuntimeError("CUDA error\nmore"),
                                                                                  0: MemoryError()}))
    assert str(lost) == "stage train failed: MemoryError" and lost.retryable
    bad = stage_failure("pretrain", ControllerError(DataError("runs/x: no manifest.json")))
    assert str(bad) == "stage pretrain failed: runs/x: no manifest.json" and not bad.retryable
    mixed = stage_failure("train", WorkerGroupError("", {0: RuntimeError("boom"), 1: DataError("bad shard")}))
    assert str(mixed) == "stage train failed: bad shard" and not mixed.retryable
    assert pickle.loads(pickle.dumps(lost)).retryable  # crosses Ray task boundaries intact


def test_init_weights_that_are_not_there_are_refused_on_the_driver(tmp_path):
    from components.errors import CorrvosError
    from pipelines.training.stage import check_inputs

    with pytest.raises(CorrvosError, match=r"init weights .*absent\.pt: not found"):
        check_inputs(str(tmp_path / "absent.pt"), None, {})
    with pytest.raises(CorrvosError, match=r"init weights nope://m\.pt: cannot open"):
        check_inputs("nope://m.pt", None, {})
    (tmp_path / "m.pt").write_bytes(b"")
    check_inputs(str(tmp_path / "m.pt"), None, {})
