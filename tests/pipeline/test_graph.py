"""Fingerprints: what must change them (config section, workers, precision, upstream, code, rerun) and what must not."""

import pytest
import ray

import components.precision as precision
import pipelines.dag.graph as graph
from components.config import CorrvosConfig, config_from_dict
from components.precision import resolved_precision
from pipelines.dag.graph import active_stages, plan, with_resolved_precision

SIGNATURES = {"synthetic-train": "synthetic:a", "synthetic-val": "synthetic:b"}
RECORDED_INGEST = "be7da5bd15a2dd62"


def fingerprints(overrides=None, code="v1", generations=None, signatures=SIGNATURES):
    config = config_from_dict(CorrvosConfig, overrides or {})
    return {n.name: n.fingerprint for n in plan(config, code, generations or {}, signatures)}


def test_stages_in_order_and_tune_only_when_asked():
    assert active_stages(CorrvosConfig()) == ("ingest", "pretrain", "train", "evaluate", "register", "promote")
    tuned = config_from_dict(CorrvosConfig, {"pipeline": {"tune": True}})
    assert active_stages(tuned)[2] == "tune"
    assert fingerprints({"pipeline": {"tune": True}})["train"] != fingerprints()["train"]


def test_equal_configs_written_differently_give_equal_fingerprints():
    ordered = {"train": {"batch_size": 4, "learning_rate": 1e-4}, "model": {"preset": "small", "value_dim": 96}}
    reordered = {"model": {"value_dim": 96, "preset": "small"}, "train": {"learning_rate": 1e-4, "batch_size": 4}}
    assert fingerprints(ordered) == fingerprints(reordered)
    # a preset and the same preset with its values written out
    from components.config.schema import LOSS_PRESETS, MODEL_PRESETS, STAGE_PRESETS
    expanded = {"model": {"preset": "small", **MODEL_PRESETS["small"]}, "loss": {"preset": "poster", **LOSS_PRESETS["poster"]},
                "train": {"preset": "stcn-s3", **STAGE_PRESETS["stcn-s3"]}}
    assert fingerprints(expanded) == fingerprints({"model": {"preset": "small"}, "loss": {"preset": "poster"},
                                                   "train": {"preset": "stcn-s3"}})


def test_a_fingerprint_matches_its_recorded_value():
    """No dependence on the process (hash seed, dict order, object ids): the same value on every machine.

    `ingest` is recorded because it reads only `pipeline.sources`. If a deliberate change to the hashing
    or to the `DatasetSource` schema moves it, every stage's cache is invalidated: record the new value.
    """
    sources = {"pipeline": {"sources": [
        {"name": "synthetic-train", "kind": "synthetic", "source": "videos=4,frames=8,size=64,seed=0", "roles": ["train"]},
        {"name": "synthetic-test", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=1", "roles": ["test"]},
    ]}}
    assert fingerprints(sources)["ingest"] == RECORDED_INGEST


def test_the_worker_count_changes_what_training_computes():
    """Each worker steps on batch_size // num_workers clips: its own negatives and BatchNorm statistics."""
    one = fingerprints({"train": {"batch_size": 4, "num_workers": 1}})
    two = fingerprints({"train": {"batch_size": 4, "num_workers": 2}})
    assert [s for s in one if one[s] != two[s]] == ["train", "evaluate", "register", "promote"]
    two = fingerprints({"pretrain": {"batch_size": 4, "num_workers": 2}})
    assert [s for s in one if one[s] != two[s]] == ["pretrain", "train", "evaluate", "register", "promote"]
    tuned = {"pipeline": {"tune": True}}
    assert fingerprints({**tuned, "pretrain": {"num_workers": 2}})["tune"] != fingerprints(tuned)["tune"]


@pytest.mark.parametrize(("section", "changed"), [("pretrain", "pretrain"), ("train", "train"), ("inference", "evaluate")])
def test_precision_changes_that_stage_and_downstream(section, changed):
    fp32, bf16 = fingerprints({section: {"precision": "fp32"}}), fingerprints({section: {"precision": "bf16"}})
    differ = [s for s in fp32 if fp32[s] != bf16[s]]
    assert differ[0] == changed and differ[-1] == "promote" and "ingest" not in differ


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_the_precision_it_resolves_to(monkeypatch, native):
    """`auto` fingerprints as bf16 where this machine's CPU has native bf16, as fp32 where it has not."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(graph, "evaluate_device_type", lambda: "cpu")
    name, other = ("bf16", "fp32") if native else ("fp32", "bf16")
    for section in ("pretrain", "train", "inference"):
        auto = fingerprints({section: {"precision": "auto"}})
        assert auto == fingerprints({section: {"precision": name}})
        assert auto != fingerprints({section: {"precision": other}})
    # a GPU stage's `auto` is bf16 whatever this machine's CPU (or lack of GPU)
    gpu = {"use_gpu": True, "precision": "auto"}
    assert fingerprints({"train": gpu}) == fingerprints({"train": {**gpu, "precision": "bf16"}})
    monkeypatch.setattr(graph, "evaluate_device_type", lambda: "cuda")
    assert fingerprints({"inference": {"precision": "auto"}}) == fingerprints({"inference": {"precision": "bf16"}})


def test_auto_on_this_machine_and_what_the_stages_are_handed():
    config = config_from_dict(CorrvosConfig, {"train": {"use_gpu": True}})
    resolved = with_resolved_precision(config)
    assert resolved.pretrain.precision == resolved_precision("auto", "cpu")
    assert resolved.train.precision == "bf16"
    assert resolved.inference.precision == resolved_precision("auto", graph.evaluate_device_type())
    # what the engine hands the stages (training precision named) plans to the fingerprints of the config written
    handed = with_resolved_precision(config, ("pretrain", "train"))
    assert handed.train.precision == "bf16" and handed.inference.precision == "auto"
    assert plan(handed, "v1", {}, SIGNATURES) == plan(resolved, "v1", {}, SIGNATURES) == plan(config, "v1", {}, SIGNATURES)


def test_a_section_change_reaches_that_stage_and_downstream_only():
    base = fingerprints()
    changed = fingerprints({"train": {"learning_rate": 1e-4}})
    assert [s for s in base if base[s] != changed[s]] == ["train", "evaluate", "register", "promote"]
    changed = fingerprints({"inference": {"top_k": 10}})
    assert [s for s in base if base[s] != changed[s]] == ["evaluate", "register", "promote"]


def test_execution_only_keys_leave_fingerprints_unchanged():
    cadence = {"cpus_per_worker": 3, "max_failures": 5, "checkpoint_every": 7, "keep_checkpoints": 4, "log_every": 3,
               "image_every": 9, "fail_at_step": 2}
    assert fingerprints({"pretrain": cadence, "train": cadence}) == fingerprints()
    assert fingerprints({"data": {"loader": {"num_workers": 4, "prefetch_batches": 3}}}) == fingerprints()
    assert fingerprints({"evaluate": {"validate_every": 50, "validate_videos": 2}}) == fingerprints()
    tuned = {"pipeline": {"tune": True}}
    assert fingerprints({**tuned, "tune": {"max_concurrent": 1, "cpus_per_trial": 2}}) == fingerprints(tuned)
    # once the precision is named, where the workers run is not part of what they compute
    assert fingerprints({"train": {"use_gpu": True, "precision": "fp32"}}) == fingerprints({"train": {"precision": "fp32"}})


def test_status_plans_from_the_config_alone_without_ray(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main
    from tests.pipeline.conftest import tiny_pipeline_yaml

    def no_ray(*args, **kwargs):
        raise AssertionError("corrvos status started Ray")

    monkeypatch.setattr(ray, "init", no_ray)
    assert main(["status", str(tiny_pipeline_yaml(tmp_path))]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[0] for row in rows] == list(active_stages(CorrvosConfig()))
    assert all("not started" in row for row in rows)


def test_code_source_and_rerun_generation_change_fingerprints():
    base = fingerprints()
    assert all(base[s] != v for s, v in fingerprints(code="v2").items())
    moved = fingerprints(signatures={**SIGNATURES, "synthetic-train": "synthetic:c"})
    assert all(base[s] != v for s, v in moved.items())
    rerun = fingerprints(generations={"evaluate": 1})
    assert [s for s in base if base[s] != rerun[s]] == ["evaluate", "register", "promote"]


def test_check_inputs_walks_each_source_once_and_hands_its_signature_on(tmp_path, monkeypatch):
    """The command checks, then plans with the same signatures: a large local folder is walked once."""
    import pipelines.dag.engine as engine
    from components.config import CorrvosConfig, load_yaml_config
    from pipelines.dag.sources import MISSING
    from tests.pipeline.conftest import tiny_pipeline_yaml

    folder = tmp_path / "davis"
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "JPEGImages" / "a.jpg").write_bytes(b"x")
    config = engine.resolve_locations(load_yaml_config(CorrvosConfig, tiny_pipeline_yaml(tmp_path, pipeline={"sources": [
        {"name": "davis", "kind": "davis", "source": str(folder), "roles": ["train"]},
        {"name": "gone", "kind": "davis", "source": str(tmp_path / "gone"), "roles": ["train"], "optional": True},
        {"name": "test", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=1", "roles": ["test"]},
    ]})))
    calls = []
    real = engine.source_signature
    monkeypatch.setattr(engine, "source_signature", lambda s, o=None: calls.append(s.name) or real(s, o))
    signatures = engine.check_inputs(config)
    assert signatures["gone"] == MISSING and signatures["test"].startswith("synthetic:")
    assert engine.planned_nodes(config, signatures) == engine.planned_nodes(config)
    assert calls == ["davis", "gone", "test"] * 2  # once by the check, once by the un-primed plan only


def test_init_from_replaces_pretrain_and_its_checkpoint_is_in_train_fingerprint():
    imported = {"pipeline": {"init_from": "/models/stcn-imported.pt"}}
    config = config_from_dict(CorrvosConfig, imported)
    assert active_stages(config) == ("ingest", "train", "evaluate", "register", "promote")
    tuned = config_from_dict(CorrvosConfig, {"pipeline": {"init_from": "/m.pt", "tune": True}})
    assert active_stages(tuned) == ("ingest", "tune", "train", "evaluate", "register", "promote")
    nodes = {n.name: n for n in plan(config, "v1", {}, SIGNATURES, "sha256:aaa")}
    assert nodes["train"].inputs == ("ingest",)
    other = {n.name: n.fingerprint for n in plan(config, "v1", {}, SIGNATURES, "sha256:bbb")}
    assert other["train"] != nodes["train"].fingerprint  # another checkpoint's bytes: train runs anew
    assert other["ingest"] == nodes["ingest"].fingerprint == fingerprints()["ingest"]  # the data is not touched


def test_init_signature_pins_file_content_and_registered_version(tmp_path):
    from mlflow.tracking import MlflowClient

    from components.errors import CorrvosError
    from pipelines.dag.sources import init_signature

    weights = tmp_path / "init.pt"
    weights.write_bytes(b"one")
    first = init_signature(str(weights), None, "unused")
    weights.write_bytes(b"two")
    assert init_signature(str(weights), None, "unused") != first
    with pytest.raises(CorrvosError, match="pipeline.init_from .*missing.pt.*file not found"):
        init_signature(str(tmp_path / "missing.pt"), None, "unused")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_registered_model("imported")
    for _ in range(2):
        client.create_model_version("imported", str(tmp_path), run_id=None)
    client.set_registered_model_alias("imported", "start", "1")
    assert init_signature("models:/imported@start", None, uri).endswith("models:/imported/1")
    client.set_registered_model_alias("imported", "start", "2")  # a moved alias is another starting point
    assert init_signature("models:/imported@start", None, uri).endswith("models:/imported/2")


def test_init_from_must_be_the_configured_network(tmp_path):
    import torch

    from components.config import ModelConfig, config_to_dict
    from components.errors import ConfigError
    from pipelines.stages.init_weights import check_same_network

    small = config_from_dict(ModelConfig, {"preset": "small"})
    payload = {"model_config": config_to_dict(small), "state_dict": {"x": torch.zeros(1)}}
    check_same_network(small, payload, "ok.pt")
    with pytest.raises(ConfigError, match=r"model\.key_backbone='resnet\w+', the config's model\.key_backbone="):
        check_same_network(config_from_dict(ModelConfig, {"preset": "stcn"}), payload, "small.pt")
