"""Fingerprints: what must change them (config section, upstream, code, rerun) and what must not."""

from components.config import CorrvosConfig, config_from_dict
from pipelines.dag.graph import active_stages, plan

SIGNATURES = {"synthetic-train": "synthetic:a", "synthetic-val": "synthetic:b"}


def fingerprints(overrides=None, code="v1", generations=None, signatures=SIGNATURES):
    config = config_from_dict(CorrvosConfig, overrides or {})
    return {n.name: n.fingerprint for n in plan(config, code, generations or {}, signatures)}


def test_stages_in_order_and_tune_only_when_asked():
    assert active_stages(CorrvosConfig()) == ("ingest", "pretrain", "train", "evaluate", "register", "promote")
    tuned = config_from_dict(CorrvosConfig, {"pipeline": {"tune": True}})
    assert active_stages(tuned)[2] == "tune"
    assert fingerprints({"pipeline": {"tune": True}})["train"] != fingerprints()["train"]


def test_same_inputs_same_fingerprints():
    assert fingerprints() == fingerprints()


def test_a_section_change_reaches_that_stage_and_downstream_only():
    base = fingerprints()
    changed = fingerprints({"train": {"learning_rate": 1e-4}})
    assert [s for s in base if base[s] != changed[s]] == ["train", "evaluate", "register", "promote"]
    changed = fingerprints({"inference": {"top_k": 10}})
    assert [s for s in base if base[s] != changed[s]] == ["evaluate", "register", "promote"]


def test_execution_settings_do_not_change_results():
    assert fingerprints({"train": {"num_workers": 2, "batch_size": 4, "cpus_per_worker": 3}}) == \
        fingerprints({"train": {"batch_size": 4}})
    assert fingerprints({"data": {"loader": {"num_workers": 4}}}) == fingerprints()


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
        {"name": "val", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=1", "roles": ["val"]},
    ]})))
    calls = []
    real = engine.source_signature
    monkeypatch.setattr(engine, "source_signature", lambda s, o=None: calls.append(s.name) or real(s, o))
    signatures = engine.check_inputs(config)
    assert signatures["gone"] == MISSING and signatures["val"].startswith("synthetic:")
    assert engine.planned_nodes(config, signatures) == engine.planned_nodes(config)
    assert calls == ["davis", "gone", "val"] * 2  # once by the check, once by the un-primed plan only
