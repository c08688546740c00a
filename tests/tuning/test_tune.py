"""A tiny real search: 4 trials, 2 at a time on a 2-CPU local Ray, ASHA on val_jf, MLflow child runs, resume."""

import dataclasses
import json
import time
from pathlib import Path

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from components.config import config_from_dict, config_to_dict, CorrvosConfig
from pipelines.cli import main
from pipelines.tracking import ensure_experiment
from pipelines.tuning import apply_best, read_trials, run_tune
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.slow

# the learning rate makes trials differ from the first report on, so ASHA has something to stop
SPACE = {"loss.pcl_weight": {"loguniform": [0.05, 0.8]}, "loss.ocl_weight": {"uniform": [0.0, 0.3]},
         "train.learning_rate": {"loguniform": [1.0e-4, 3.0e-3]}}


def search_config(tmp_path: Path) -> CorrvosConfig:
    config = tiny_config(tmp_path, iterations=100, batch_size=2, log_every=1, image_every=100)
    tune = {"space": SPACE, "num_samples": 4, "max_concurrent": 2, "iterations": 6, "eval_every": 2, "val_videos": 2,
            "grace_period": 1, "reduction_factor": 2, "seed": 0, "cpus_per_trial": 1}
    return dataclasses.replace(config, tune=config_from_dict(type(config.tune), tune))


@pytest.fixture(scope="module")
def search(tmp_path_factory, tiny_dataset, tiny_val_dataset, local_ray):
    tmp_path = tmp_path_factory.mktemp("tune")
    config = search_config(tmp_path)
    client = MlflowClient(config.tracking.mlflow_uri)
    experiment = ensure_experiment(client, config.tracking.experiment, None)
    parent = client.create_run(experiment, run_name="pipeline").info.run_id
    out = tmp_path / "tune-out"
    outputs = run_tune(config, [tiny_dataset], [tiny_val_dataset], str(out), None, config.tracking.mlflow_uri, parent)
    # what the search left reserved, seen at once (later tests may run on a restarted Ray)
    left = [g for g in ray.util.placement_group_table().values() if g["state"] != "REMOVED"]
    deadline = time.monotonic() + 5  # actors Tune killed hand back their (zero-CPU) slots asynchronously
    while ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"config": config, "out": out, "outputs": outputs, "parent": parent, "client": client, "tmp_path": tmp_path,
            "data": (tiny_dataset, tiny_val_dataset), "groups_left": left, "cpus_after": ray.available_resources().get("CPU")}


def test_search_finishes_and_best_json_names_the_highest_val_jf(search):
    best = json.loads(Path(search["outputs"]["best"]).read_text())
    rows = read_trials(search["outputs"]["trials"])
    assert len(rows) == 4 and all(row["status"] in ("completed", "stopped") for row in rows), rows
    assert all(row["val_jf"] is not None and row["step"] in (2, 4, 6) for row in rows)
    assert any(row["status"] == "completed" for row in rows)
    top = max(rows, key=lambda row: row["val_jf"])
    assert best["trial"] == top["trial"] and best["val_jf"] == top["val_jf"]
    assert set(best["overrides"]) == set(SPACE) and best["mlflow_run_id"] == top["mlflow_run_id"]
    assert len({json.dumps(row["overrides"], sort_keys=True) for row in rows}) == 4  # four different samples
    assert Path(search["outputs"]["experiment"]).is_dir()
    parent = search["client"].get_run(search["parent"])  # the run holding the trials shows the data they read
    assert {i.dataset.name: i.tags[0].value for i in parent.inputs.dataset_inputs} == {"synthetic": "train",
                                                                                      "synthetic-val": "val"}
    if top["status"] == "completed":
        assert best["model"] and Path(best["model"]).exists()


def test_every_trial_is_an_mlflow_child_run_with_its_overrides_and_curves(search):
    client, rows = search["client"], read_trials(search["outputs"]["trials"])
    for row in rows:
        run = client.get_run(row["mlflow_run_id"])
        assert run.data.tags["mlflow.parentRunId"] == search["parent"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["corrvos.tune.status"] == row["status"]  # completed, or stopped by ASHA
        assert {k: float(v) for k, v in run.data.params.items()} == row["overrides"]
        history = sorted(client.get_metric_history(run.info.run_id, "val_jf"), key=lambda m: m.step)
        steps = [m.step for m in history]
        # a stopped trial's worker may log one more validation while Tune decides to stop it
        assert steps == list(range(2, max(steps) + 1, 2)) and max(steps) - row["step"] in (0, 2), (steps, row)
        assert history[steps.index(row["step"])].value == pytest.approx(row["val_jf"])
        assert client.get_metric_history(run.info.run_id, "total")  # the training curves are there too
        number = row["trial"].rsplit("_", 1)[-1].lstrip("0") or "0"  # named by the values it tried
        pcl, ocl, lr = (row["overrides"][k] for k in ("loss.pcl_weight", "loss.ocl_weight", "train.learning_rate"))
        assert run.info.run_name == f"trial {number}: pcl={pcl:.3g} ocl={ocl:.3g} lr={lr:.3g}"
        inputs = {i.dataset.name: i.tags[0].value for i in run.inputs.dataset_inputs}
        assert inputs == {"synthetic": "train", "synthetic-val": "val"}


def test_stopped_trials_leave_no_cpu_reserved(search):
    """ASHA kills a stopped trial's Train controller; its workers' placement group must not outlive it."""
    assert not search["groups_left"], search["groups_left"]
    assert search["cpus_after"] == 2


def test_apply_best_gives_the_best_loss_weights(search):
    best = json.loads(Path(search["outputs"]["best"]).read_text())
    config = apply_best(search["config"], search["outputs"]["best"])
    assert config.loss.pcl_weight == best["overrides"]["loss.pcl_weight"]
    assert config.loss.ocl_weight == best["overrides"]["loss.ocl_weight"]
    assert config.train.iterations == search["config"].train.iterations  # the search's trial length stays out


def test_cli_on_a_finished_search_restores_instead_of_retraining(search, capsys):
    """Without best.json (as after a crash at the very end) the experiment is restored, not run again."""
    out, client = search["out"], search["client"]
    before = json.loads(Path(search["outputs"]["best"]).read_text())
    Path(search["outputs"]["best"]).unlink()
    children = client.search_runs([client.get_run(search["parent"]).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{search['parent']}'")
    config_file = search["tmp_path"] / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(search["config"])))
    # the CLI makes its own parent run: the restored trials keep theirs
    code = main(["tune", str(config_file), "--data", search["data"][0], "--val", search["data"][1], "--out", str(out)])
    assert code == 0
    after = json.loads(Path(search["outputs"]["best"]).read_text())
    assert {k: after[k] for k in ("trial", "val_jf", "overrides")} == {k: before[k] for k in ("trial", "val_jf", "overrides")}
    again = client.search_runs([client.get_run(search["parent"]).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{search['parent']}'")
    assert len(again) == len(children) == 4  # no trial ran again
    printed = capsys.readouterr().out
    assert f"best: trial {before['trial']}" in printed and "loss.pcl_weight=" in printed
    assert printed.count("completed") + printed.count("stopped") == 4


def test_the_end_of_search_sweep_removes_only_groups_made_since(local_ray):
    """A group the ledger never heard of (its controller killed first) is removed; earlier ones are kept."""
    from ray.util.placement_group import placement_group, remove_placement_group

    from pipelines.tuning.trial import job_placement_groups, remove_placement_groups_since

    kept = placement_group([{"CPU": 1}])
    assert kept.wait(30)
    before = job_placement_groups()
    assert kept.id.hex() in before
    orphan = placement_group([{"CPU": 1}])  # made "during the search", recorded nowhere
    assert orphan.wait(30)
    try:
        assert remove_placement_groups_since(before) == 1
        states = {gid: row["state"] for gid, row in ray.util.placement_group_table().items()}
        assert states[orphan.id.hex()] == "REMOVED" and states[kept.id.hex()] != "REMOVED"
    finally:
        remove_placement_group(kept)
        if ray.util.placement_group_table(orphan)["state"] != "REMOVED":
            remove_placement_group(orphan)


def test_the_end_of_search_kills_and_waits_out_every_recorded_actor(local_ray):
    """A trial or controller still winding down when `fit` returns is ended before groups are swept."""
    from pipelines.tuning.trial import end_trial_actors, ledger

    @ray.remote(num_cpus=0)
    class Lingering:
        def ping(self) -> str:
            return "alive"

    book = ledger("corrvos-tune-ledger-test-end")
    actors = [Lingering.remote() for _ in range(2)]
    assert ray.get([a.ping.remote() for a in actors]) == ["alive", "alive"]
    try:
        ray.get([book.record_actor.remote(a) for a in actors + actors[:1]])  # one records itself twice
        assert end_trial_actors(book, timeout_s=30) == 2
        for actor in actors:
            with pytest.raises(ray.exceptions.RayActorError):
                ray.get(actor.ping.remote(), timeout=10)
    finally:
        ray.kill(book)
