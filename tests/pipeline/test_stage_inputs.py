"""Datasets reach stages by role; `repeat` lists a training source n times and the worker folds it back."""

import pytest

from components.config import CorrvosConfig, config_from_dict
from components.errors import CorrvosError
from pipelines.stages.context import datasets_with_role
from pipelines.training.worker import dataset_refs

SOURCES = [
    {"name": "static", "kind": "static", "source": "/s", "roles": ["pretrain"]},
    {"name": "davis", "kind": "davis", "source": "/d", "roles": ["train", "val"], "repeat": 3},
    {"name": "yt", "kind": "youtube-vos", "source": "/y", "roles": ["train"], "optional": True},
    {"name": "davis-val", "kind": "davis", "source": "/d", "split": "val", "roles": ["test"], "repeat": 2},
]


def config(sources=SOURCES) -> CorrvosConfig:
    return config_from_dict(CorrvosConfig, {"pipeline": {"sources": sources}})


def test_roles_repeat_and_skipped_optional_sources():
    ingested = {"static": "s3://b/static", "davis": "s3://b/davis"}  # "yt" was optional and missing
    assert datasets_with_role(config(), ingested, "pretrain") == ["s3://b/static"]
    assert datasets_with_role(config(), ingested, "train") == ["s3://b/davis"] * 3
    assert datasets_with_role(config(), ingested, "val") == ["s3://b/davis"]  # validation never repeats
    ingested["davis-val"] = "s3://b/davis-val"
    assert datasets_with_role(config(), ingested, "test") == ["s3://b/davis-val"]  # nor does testing


def test_pretrain_falls_back_to_the_training_videos():
    sources = SOURCES[1:]
    assert datasets_with_role(config(sources), {"davis": "d"}, "pretrain") == ["d"] * 3


def test_a_role_nobody_serves_is_a_one_line_error():
    with pytest.raises(CorrvosError, match="role 'train'"):
        datasets_with_role(config(), {"static": "s"}, "train")


def test_worker_folds_repeats_into_one_dataset_each():
    refs = dataset_refs(["a", "b", "a", "a"])
    assert [(r.uri, r.repeat) for r in refs] == [("a", 3), ("b", 1)]
