"""Stage records: written atomically, read back, and a success trusted only while its outputs exist."""

from pipelines.dag.records import FAILED, RUNNING, SUCCESS, StageRecord, StageStore, outputs_exist


def test_records_round_trip_and_the_most_telling_one_wins(tmp_path):
    store = StageStore(str(tmp_path / "stage"))
    assert store.current() is None
    store.write(FAILED, StageRecord("train", "fp", "failed", error="boom"))
    assert store.current().state == "failed"
    store.write(RUNNING, StageRecord("train", "fp", "running", mlflow_run_id="r1"))
    assert store.current().state == "running"  # a re-run after a failure is running now
    written = store.write(SUCCESS, StageRecord("train", "fp", "done", {"model": "m"}, "r1"))
    assert store.current() == written and written.at and written.pid > 0
    store.remove(RUNNING)
    store.remove(RUNNING)  # removing twice is fine
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == [FAILED, SUCCESS]  # no temporary files left


def test_a_torn_record_counts_as_absent(tmp_path):
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / SUCCESS).write_text('{"stage": "tr')
    assert StageStore(str(tmp_path / "stage")).success() is None


def test_outputs_under_the_storage_root_must_exist(tmp_path):
    root = str(tmp_path / "runs")
    (tmp_path / "runs" / "stages").mkdir(parents=True)
    model = tmp_path / "runs" / "stages" / "model.pt"
    model.write_bytes(b"x")
    outputs = {"model": str(model), "jf": "0.5", "elsewhere": "/not/under/the/root"}
    assert outputs_exist(outputs, root, None, None)
    model.unlink()
    assert not outputs_exist(outputs, root, None, None)
