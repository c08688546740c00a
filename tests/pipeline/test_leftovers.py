"""What a kill -9 leaves behind is cleaned up or told apart: stale MLflow runs, dead stages, orphan shards,
metric steps logged again."""

import datetime
import json
import os
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.shards import WRITER_RECORD, new_prefix_name
from components.liveness import process_gone, this_host
from pipelines.dag.engine import KILLED_TAG, end_stale_runs
from pipelines.dag.records import RUNNING, StageRecord, StageStore, running_state
from pipelines.dag.state import PipelineState

SYNTHETIC = "videos=2,frames=3,size=32,seed=0"


def _dead_pid() -> int:
    """The pid of a process that ran here and is gone (reaped)."""
    process = subprocess.Popen(["sleep", "30"])
    process.kill()
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite MLflow store for the module (creating its schema takes a second or two)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


def test_process_gone_only_when_this_host_can_tell():
    dead = _dead_pid()
    assert process_gone(this_host(), dead)
    assert not process_gone(this_host(), os.getpid())
    assert not process_gone("another-host", dead)  # another machine: unknown, never taken for dead
    assert not process_gone("", 0)  # a record from before pids were recorded


def test_status_checks_the_pid_of_a_running_stage():
    dead, here = _dead_pid(), this_host()
    record = StageRecord("train", "fp", "running", host=here, pid=dead)
    assert running_state(record) == f"interrupted (pid {dead} gone)"
    assert running_state(StageRecord("train", "fp", "running", host=here, pid=os.getpid())) == "running"
    elsewhere = StageRecord("train", "fp", "running", host="node-7", pid=42, driver_host="node-7", driver_pid=41)
    assert running_state(elsewhere) == "running on node-7 (pid 42)"
    # the stage ran on a cluster node, but its driver was here and is gone
    orphaned = StageRecord("train", "fp", "running", host="node-7", pid=42, driver_host=here, driver_pid=dead)
    assert running_state(orphaned) == f"interrupted (driver pid {dead} gone)"


def test_running_record_keeps_driver_and_stage_processes(tmp_path):
    store = StageStore(str(tmp_path / "stage"))
    store.write(RUNNING, StageRecord("train", "fp", "running", driver_host="head", driver_pid=7, parent_run_id="p",
                                     attempt=2))
    record = store.read(RUNNING)
    assert (record.host, record.pid) == (this_host(), os.getpid())  # the process that runs the stage
    assert (record.driver_host, record.driver_pid, record.parent_run_id, record.attempt) == ("head", 7, "p", 2)
    data = json.loads((tmp_path / "stage" / RUNNING).read_text())
    (tmp_path / "stage" / RUNNING).write_text(json.dumps({**data, "added_later": 1}))
    assert store.read(RUNNING).attempt == 2  # a field a newer version wrote does not make the record unreadable


def _config(tmp_path) -> CorrvosConfig:
    return config_from_dict(CorrvosConfig, {"storage": {"root": str(tmp_path / "runs")}, "pipeline": {"name": "left"}})


def _driver_record(state: PipelineState, parent: str, host: str, pid: int) -> None:
    folder = os.path.join(state.folder, "drivers")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{parent}.json"), "w") as handle:
        json.dump({"parent_run_id": parent, "host": host, "pid": pid, "started": "2026-01-01T00:00:00+00:00"}, handle)


def test_a_killed_drivers_runs_end_as_killed(tmp_path, tracking_uri):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("leftovers")

    def run(name: str, parent: str | None = None) -> str:
        tags = {"mlflow.parentRunId": parent} if parent else {}
        return client.create_run(experiment, run_name=name, tags=tags).info.run_id

    stale, live, remote = run("pipeline"), run("pipeline"), run("pipeline")
    train, finished = run("train", stale), run("ingest", stale)
    trial = run("trial", train)  # a grandchild (a tune trial under its stage)
    client.set_terminated(finished, status="FINISHED")
    state = PipelineState(_config(tmp_path))
    _driver_record(state, stale, this_host(), _dead_pid())
    _driver_record(state, live, this_host(), os.getpid())
    _driver_record(state, remote, "another-host", 1)

    assert end_stale_runs(state, client, current_parent="now") == [stale]
    statuses = {r: client.get_run(r).info.status for r in (stale, train, trial, finished, live, remote)}
    assert statuses == {stale: "KILLED", train: "KILLED", trial: "KILLED", finished: "FINISHED",
                        live: "RUNNING", remote: "RUNNING"}
    reason = client.get_run(stale).data.tags[KILLED_TAG]
    assert "was gone" in reason and "now" in reason
    assert KILLED_TAG in client.get_run(train).data.tags and KILLED_TAG not in client.get_run(finished).data.tags
    assert sorted(d.parent_run_id for d in state.drivers()) == sorted([live, remote])
    assert end_stale_runs(state, client, current_parent="again") == []  # done once


def test_next_ingest_sweeps_the_shards_of_killed_ingests(tmp_path):
    out = tmp_path / "data"
    now = datetime.datetime.now(datetime.timezone.utc)

    def planted(when: datetime.datetime, token: str, writer: dict | None) -> str:
        folder = out / new_prefix_name(when, token)
        folder.mkdir(parents=True)
        (folder / "shard-00000.parquet").write_bytes(b"half a shard")
        if writer is not None:
            (folder / WRITER_RECORD).write_text(json.dumps(writer))
        return folder.name

    killed_first = planted(now, "0dead000", {"host": this_host(), "pid": _dead_pid()})
    ingest("synthetic", SYNTHETIC, str(out), IngestConfig(engine="threads"), progress=False)
    assert not (out / killed_first).exists()  # the first finished ingest sweeps it, with no manifest before it

    old = planted(now - datetime.timedelta(days=2), "01d00000", None)  # no writer record, two days old
    dead = planted(now, "0dead001", {"host": this_host(), "pid": _dead_pid()})
    live = planted(now, "0a11ve00", {"host": this_host(), "pid": os.getpid()})  # a concurrent ingest still writing
    remote = planted(now, "0e15e000", {"host": "another-host", "pid": 1})  # cannot be checked, and recent
    manifest = ingest("synthetic", SYNTHETIC, str(out), IngestConfig(engine="threads"), overwrite=True, progress=False)
    current = {s.path.split("/")[0] for s in manifest.shards}
    left = {p.name for p in out.iterdir() if p.name.startswith("parts-")}
    assert left == current | {live, remote}, f"{old} and {dead} should be gone"
    assert not any((out / name / WRITER_RECORD).exists() for name in current)  # a committed prefix carries no claim


def test_a_resumed_worker_logs_no_step_twice(tracking_uri):
    from pipelines.tracking import RunLogger
    from pipelines.training.worker import RESUMES_TAG, _NewStepsLogger

    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("steps")).info.run_id
    first = RunLogger(tracking_uri, run_id)
    for step in range(1, 7):  # the killed attempt logged up to step 6, its last checkpoint was step 4
        first.log_metrics({"total": float(step), "lr": 0.1}, step=step)
    resumed = _NewStepsLogger(tracking_uri, run_id)
    resumed.log_metrics({"resumed_from_step": 4}, step=4)
    resumed.note_resume(4)
    resumed.note_resume(4)  # a second restart from the same checkpoint: no new metric point, but on record
    assert client.get_run(run_id).data.tags[RESUMES_TAG] == "4,4"
    for step in range(5, 9):
        resumed.log_metrics({"total": 100.0 + step, "lr": 0.1, "val_jf": 0.5}, step=step)
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "total"))
    assert [s for s, _ in history] == list(range(1, 9))  # each step once
    assert dict(history)[6] == 6.0 and dict(history)[7] == 107.0  # the first attempt's points stay
    assert [m.step for m in client.get_metric_history(run_id, "val_jf")] == [5, 6, 7, 8]  # a new key from where it starts
