"""The DAG end to end on a local Ray: every stage tracked, reuse, rerun, registry aliases, status."""

import json
import os
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from components.data.dataset import VideoDataset
from components.evaluation.submission import file_sha256
from pipelines.cli import main
from tests.benchmark_layouts import OWN_PALETTE, make_youtube_vos_valid
from tests.evaluation.test_submission import assert_layout
from tests.pipeline.conftest import tiny_pipeline_yaml
from tests.pipeline.test_served_equals_scored import SCORED_WITH, assert_champion_served_reproduces_logged_jf

pytestmark = pytest.mark.slow

STAGES = ["ingest", "pretrain", "train", "evaluate", "register", "promote"]


def _run(*argv) -> dict:
    summary = argv[-1]
    assert main([*argv[:-1], "--summary-json", summary, "--no-progress"]) == 0
    with open(summary) as handle:
        return json.load(handle)


def test_run_reuse_rerun_and_champion(tmp_path, local_ray, capsys, monkeypatch):
    monkeypatch.setenv("CORRVOS_MODEL_CACHE", str(tmp_path / "model-cache"))  # downloads stay out of ~/.cache
    config = str(tiny_pipeline_yaml(tmp_path, evaluate={"validate_every": 3, "validate_videos": 1},
                                    inference=SCORED_WITH))
    # a YouTube-VOS-layout predict-only set (a late object) and DAVIS-style attributes for the test set
    plans = make_youtube_vos_valid(tmp_path / "ytvos")
    (tmp_path / "db_info.yml").write_text(yaml.safe_dump({"attributes": ["OCC", "FM"], "sequences": [
        {"name": "synthetic-00000", "attributes": ["OCC", "FM"]}, {"name": "synthetic-00001", "attributes": ["OCC"]}]}))
    document = yaml.safe_load(Path(config).read_text())
    document["pipeline"]["sources"][2]["attributes"] = str(tmp_path / "db_info.yml")
    document["pipeline"]["sources"].append({"name": "ytvos", "kind": "youtube-vos", "source": str(tmp_path / "ytvos"),
                                            "split": "valid", "roles": ["predict-only"]})
    Path(config).write_text(yaml.safe_dump(document))
    first = _run("run", config, str(tmp_path / "first.json"))
    assert list(first["stages"]) == STAGES
    assert all(s["state"] == "done" for s in first["stages"].values())
    assert first["model_uri"] == "models:/corrvos-tiny/1"
    assert first["champion_uri"] == "models:/corrvos-tiny@champion"
    printed = capsys.readouterr().out
    assert "copy-first-mask floor" in printed and "test (registered)" in printed
    assert "predict-only set" in printed and "youtube-vos.zip" in printed
    assert "models:/corrvos-tiny@champion" in printed
    assert list(first["test_sets"]) == ["test"] and first["test_sets"]["test"]["jf"] == first["jf"]

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(first["parent_run_id"])
    assert parent.info.run_name == "tiny stcn-small released seed 14159265"  # pipeline, model, loss preset, seed
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs table
    for name, stage in first["stages"].items():  # every stage ran in a child run of the pipeline's run
        run = client.get_run(stage["mlflow_run_id"])
        assert run.data.tags["corrvos.stage"] == name and run.info.run_name == name
        assert run.data.tags["mlflow.parentRunId"] == first["parent_run_id"]
        assert run.info.status == "FINISHED"
    # every stage that reads a dataset shows it as an MLflow input: name, content hash, role
    ingested = first["stages"]["ingest"]["outputs"]
    digests = {name: VideoDataset(uri).version[:36] for name, uri in ingested.items()}
    expected = {"ingest": {"train": "pretrain,train", "val": "val", "test": "test", "ytvos": "predict-only"},
                "pretrain": {"train": "pretrain"}, "train": {"train": "train", "val": "val"},
                "evaluate": {"test": "test", "ytvos": "predict-only"},
                "register": {"train": "train", "test": "test"}, "promote": {}}
    for name, roles in expected.items():
        inputs = client.get_run(first["stages"][name]["mlflow_run_id"]).inputs.dataset_inputs
        assert {i.dataset.name: i.tags[0].value for i in inputs} == roles, name
        assert all(i.dataset.digest == digests[i.dataset.name] for i in inputs)
        assert all(json.loads(i.dataset.source)["uri"] == ingested[i.dataset.name] for i in inputs)
    version = client.get_model_version("corrvos-tiny", "1")  # the version links to the run that shows its data
    assert version.run_id == first["stages"]["register"]["mlflow_run_id"]
    evaluate = client.get_run(first["stages"]["evaluate"]["mlflow_run_id"])
    assert evaluate.data.metrics["jf"] == pytest.approx(first["jf"])
    assert any(k.startswith("sequence.") for k in evaluate.data.metrics)
    assert evaluate.data.metrics["test.test.jf"] == evaluate.data.metrics["jf"]
    assert evaluate.data.metrics["test.test.floor_jf"] == evaluate.data.metrics["floor_jf"] == \
        first["test_sets"]["test"]["floor_jf"]
    sequences = {k.split(".")[1] for k in evaluate.data.metrics if k.startswith("sequence.")}
    assert sequences == {"synthetic-00000", "synthetic-00001"}  # the 2 test videos, not the val ones
    assert "corr_acc_at_8" in evaluate.data.metrics and "test.test.probe_jf" in evaluate.data.metrics
    artifacts = [a.path for a in client.list_artifacts(evaluate.info.run_id, "evaluation/test/report")]
    assert "evaluation/test/report/jf_vs_probe.png" in artifacts
    assert "evaluation/test/report/jf_per_sequence.png" in artifacts
    assert str(client.get_model_version_by_alias("corrvos-tiny", "champion").version) == "1"
    version_tags = client.get_model_version("corrvos-tiny", "1").tags
    assert version_tags["corrvos.primary_test_set"] == "test"
    assert float(version_tags["corrvos.test.test.jf"]) == first["jf"] == float(version_tags["corrvos.jf"])
    assert float(version_tags["corrvos.test.test.floor_jf"]) == first["test_sets"]["test"]["floor_jf"]
    eval_set = version_tags["corrvos.eval_dataset_version"]
    assert len(eval_set) >= 16  # the held-out set's content hash, so J&F is compared only on the same set
    val_jf = client.get_metric_history(first["stages"]["train"]["mlflow_run_id"], "val_jf")
    assert sorted(m.step for m in val_jf) == [3, 6]  # train's held-out J&F curve
    # per-attribute J&F: OCC covers both test videos, so it is the set's J&F; FM is the first video's
    assert evaluate.data.metrics["attribute.OCC.jf"] == pytest.approx(first["jf"])
    assert evaluate.data.metrics["test.test.attribute.FM.jf"] == pytest.approx(evaluate.data.metrics["sequence.synthetic-00000.jf"])
    # the predict-only set's archive is in MLflow with its sha256, and the version says it exists
    archive = Path(client.download_artifacts(evaluate.info.run_id, "submission/ytvos/youtube-vos.zip", str(tmp_path / "dl")))
    assert_layout(archive, "Annotations/", plans, OWN_PALETTE)
    assert evaluate.data.tags["corrvos.submission.ytvos.sha256"] == file_sha256(archive)
    assert version_tags["corrvos.archives"] == "ytvos:youtube-vos"
    assert version_tags["corrvos.archive.ytvos.sha256"] == file_sha256(archive)

    # the champion, served by `corrvos predict`, scores exactly the J&F it was registered with
    assert_champion_served_reproduces_logged_jf(Path(config), first, tmp_path, capsys)

    second = _run("run", config, str(tmp_path / "second.json"))
    assert all(s["state"] == "reused" for s in second["stages"].values())
    assert {k: s["outputs"] for k, s in second["stages"].items()} == {k: s["outputs"] for k, s in first["stages"].items()}
    assert len(client.search_model_versions("name='corrvos-tiny'")) == 1

    capsys.readouterr()
    assert main(["status", config]) == 0
    table = capsys.readouterr().out
    assert all(f"{name} " in table for name in STAGES) and table.count("reused") == len(STAGES)

    # a success record whose output is gone is not trusted: that stage runs again, upstream is reused
    os.remove(first["stages"]["evaluate"]["outputs"]["scores"])
    healed = _run("run", config, str(tmp_path / "healed.json"))
    assert healed["stages"]["train"]["state"] == "reused" and healed["stages"]["evaluate"]["state"] == "done"
    assert os.path.exists(healed["stages"]["evaluate"]["outputs"]["scores"])

    third = _run("rerun", "evaluate", config, str(tmp_path / "third.json"))
    states = {k: s["state"] for k, s in third["stages"].items()}
    assert states == {"ingest": "reused", "pretrain": "reused", "train": "reused",
                      "evaluate": "done", "register": "done", "promote": "done"}
    assert third["stages"]["evaluate"]["uri"] != first["stages"]["evaluate"]["uri"]
    assert third["model_uri"] == "models:/corrvos-tiny/2"
    # the same weights score the same J&F on the same held-out set: not better, so only a challenger
    assert third["stages"]["promote"]["outputs"]["alias"] == "challenger"
    assert "does not beat champion v1" in third["stages"]["promote"]["outputs"]["reason"]
    assert str(client.get_model_version_by_alias("corrvos-tiny", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("corrvos-tiny", "challenger").version) == "2"


def test_xmem_runs_every_stage_and_the_tuner_under_its_own_registered_name(tmp_path, local_ray):
    """`--set model.name=xmem` swaps the base in pretrain, tune, train, evaluate and the registry."""
    from components.model import XMem
    from components.model.checkpoint import load_inference_checkpoint

    space = {"loss.pcl_weight": {"loguniform": [0.05, 0.8]}, "loss.ocl_weight": {"uniform": [0.0, 0.3]}}
    config = str(tiny_pipeline_yaml(
        tmp_path, name="tuned", pipeline={"tune": True}, evaluate={"probe": False},
        tracking={"registered_model": None},
        tune={"space": space, "num_samples": 2, "max_concurrent": 2, "iterations": 4, "eval_every": 2,
              "val_videos": 1, "grace_period": 1, "cpus_per_trial": 1}))
    summary = _run("run", config, "--set", "model.name=xmem", "--set", "data.sampler.num_frames=4",
                   str(tmp_path / "tuned.json"))
    assert list(summary["stages"]) == ["ingest", "pretrain", "tune", "train", "evaluate", "register", "promote"]
    with open(summary["stages"]["tune"]["outputs"]["best"]) as handle:
        best = json.load(handle)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    train = client.get_run(summary["stages"]["train"]["mlflow_run_id"])
    for key, value in best["overrides"].items():  # the train stage ran with the best trial's weights
        assert float(train.data.params[key]) == pytest.approx(value)
    assert train.data.params["model.name"] == "xmem"
    model, _ = load_inference_checkpoint(summary["stages"]["train"]["outputs"]["model"])
    assert isinstance(model, XMem)
    assert summary["model_uri"] == "models:/corrvos-xmem/1"
    assert str(client.get_model_version_by_alias("corrvos-xmem", "champion").version) == "1"


def test_a_pipeline_starts_from_a_given_checkpoint_instead_of_pretraining(tmp_path, local_ray):
    """`pipeline.init_from`: no pretrain stage; train starts from a copy of that checkpoint in its folder."""
    import torch

    from components.model.checkpoint import load_inference_checkpoint, save_inference_checkpoint
    from components.config import ModelConfig, config_from_dict
    from components.model import build_network

    torch.manual_seed(7)
    model_config = config_from_dict(ModelConfig, {"preset": "small"})
    start = tmp_path / "imported.pt"  # stands in for what `corrvos import-weights` writes
    save_inference_checkpoint(str(start), build_network(model_config).state_dict(), model_config, metadata={"step": 0})
    config = str(tiny_pipeline_yaml(tmp_path, name="imported", pipeline={"init_from": str(start)},
                                    train={"iterations": 2}, evaluate={"probe": False, "overlays": 0}))
    summary = _run("run", config, str(tmp_path / "imported.json"))
    assert list(summary["stages"]) == ["ingest", "train", "evaluate", "register", "promote"]
    train_folder = Path(summary["stages"]["train"]["uri"])
    copied, _ = load_inference_checkpoint(str(train_folder / "init.pt"))
    original, _ = load_inference_checkpoint(str(start))
    assert all(torch.equal(a, b) for a, b in zip(copied.state_dict().values(), original.state_dict().values()))
    trained, metadata = load_inference_checkpoint(summary["stages"]["train"]["outputs"]["model"])
    assert metadata["step"] == 2
    assert not torch.equal(trained.key_encoder.conv1.weight, original.key_encoder.conv1.weight)  # it trained on
