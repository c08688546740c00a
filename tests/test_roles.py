"""Roles keep steering and reporting apart: a config whose test videos could steer is refused up front."""

import pytest

from components.config import CorrvosConfig, config_from_dict
from components.data.selection import HoldOut, VideoSelection, provably_disjoint
from components.errors import ConfigError, DataError

TRAIN = {"name": "synthetic-train", "kind": "synthetic", "source": "videos=4,seed=0", "roles": ["train"]}
TEST = {"name": "synthetic-test", "kind": "synthetic", "source": "videos=2,seed=1000", "roles": ["test"]}


def config(*sources, **sections) -> CorrvosConfig:
    return config_from_dict(CorrvosConfig, {"pipeline": {"sources": list(sources)}, **sections})


def test_separate_sets_are_accepted_and_test_is_required():
    assert [s.roles for s in config(TRAIN, TEST).pipeline.sources] == [("train",), ("test",)]
    with pytest.raises(ConfigError, match="no dataset has role 'test'"):
        config(TRAIN)


def test_a_dataset_that_both_tests_and_steers_is_refused_by_name():
    for role in ("train", "val", "pretrain"):
        with pytest.raises(ConfigError, match=f"'synthetic-test' has roles 'test' and '{role}'"):
            config(TRAIN, {**TEST, "roles": ["test", role]})


def test_two_sources_reading_the_same_videos_are_refused_naming_both():
    same_seed = {**TEST, "source": "videos=2,size=64,seed=0"}  # another size of the training generator's videos
    with pytest.raises(ConfigError, match="test dataset 'synthetic-test' and train dataset 'synthetic-train'"):
        config(TRAIN, same_seed)
    davis_train = {"name": "davis", "kind": "davis", "source": "/data/DAVIS/", "roles": ["train"]}
    davis_test = {"name": "davis-test", "kind": "davis", "source": "/data/DAVIS", "roles": ["test"]}
    with pytest.raises(ConfigError, match="'davis-test' and train dataset 'davis'"):
        config(davis_train, davis_test)
    with pytest.raises(ConfigError, match="'davis-test' and val dataset 'davis-val'"):
        config(TRAIN, {**davis_test, "select": {"videos": ["bear"]}},
               {**davis_train, "name": "davis-val", "roles": ["val"], "select": {"videos": ["bear", "boat"]}})


def test_disjoint_selections_of_one_source_are_accepted():
    davis = {"kind": "davis", "source": "/data/DAVIS"}
    held = {"hold_out": {"fraction": 0.1, "part": "held"}}
    rest = {"hold_out": {"fraction": 0.1, "part": "rest"}}
    config({**davis, "name": "train", "roles": ["train"], "select": {"exclude": ["bear", "boat"]}},
           {**davis, "name": "test", "roles": ["test"], "select": {"videos": ["bear", "boat"]}})
    config({**davis, "name": "train", "roles": ["train"], "select": rest},
           {**davis, "name": "test", "roles": ["test"], "select": held})
    with pytest.raises(ConfigError, match="without disjoint selections"):  # another seed: halves may overlap
        config({**davis, "name": "train", "roles": ["train"], "select": rest},
               {**davis, "name": "test", "roles": ["test"], "select": {"hold_out": {**held["hold_out"], "seed": 1}}})
    config({**davis, "name": "train", "roles": ["train"]}, {**davis, "split": "val", "name": "test", "roles": ["test"]})


def test_steering_settings_need_a_val_set():
    with pytest.raises(ConfigError, match="pipeline.tune steers on validation videos"):
        config(TRAIN, TEST, pipeline={"tune": True, "sources": [TRAIN, TEST]})
    with pytest.raises(ConfigError, match="evaluate.validate_every"):
        config_from_dict(CorrvosConfig, {"pipeline": {"sources": [TRAIN, TEST]}, "evaluate": {"validate_every": 10}})
    val = {**TRAIN, "name": "synthetic-val", "source": "videos=2,seed=2000", "roles": ["val"]}
    assert config_from_dict(CorrvosConfig, {"pipeline": {"sources": [TRAIN, val, TEST], "tune": True}}).pipeline.tune


def test_hold_out_halves_are_stable_disjoint_and_cover_the_source():
    names = [f"video-{i:03d}" for i in range(400)]
    held = VideoSelection(hold_out=HoldOut(0.1, "held")).apply(names, "src")
    rest = VideoSelection(hold_out=HoldOut(0.1, "rest")).apply(names, "src")
    assert not set(held) & set(rest) and sorted(held + rest) == names
    assert 20 <= len(held) <= 60  # ~10% of 400
    assert VideoSelection(hold_out=HoldOut(0.1, "held")).apply(names[:50] + ["extra"], "src") == \
        [n for n in held if n in names[:50]] + (["extra"] if HoldOut(0.1, "held").is_held("extra") else [])
    assert provably_disjoint(VideoSelection(hold_out=HoldOut(0.1, "held")), VideoSelection(hold_out=HoldOut(0.1, "rest")))


def test_selection_names_a_missing_video_and_refuses_an_empty_result():
    with pytest.raises(DataError, match="src: no video named 'zebra'"):
        VideoSelection(videos=("bear", "zebra")).apply(["bear", "boat"], "src")
    with pytest.raises(DataError, match="keeps none of its 2 videos"):
        VideoSelection(exclude=("bear", "boat")).apply(["bear", "boat"], "src")
    with pytest.raises(ValueError, match="'bear' is both selected"):
        VideoSelection(videos=("bear",), exclude=("bear",))


def test_predict_only_sets_are_held_out_benchmark_sets_at_full_resolution():
    ytvos = {"name": "yt-valid", "kind": "youtube-vos", "source": "/data/yt", "split": "valid", "roles": ["predict-only"]}
    accepted = config(TRAIN, TEST, {**ytvos, "all_frames": True})
    assert accepted.pipeline.sources[2].roles == ("predict-only",) and accepted.pipeline.sources[2].all_frames
    with pytest.raises(ConfigError, match="'yt-valid' has roles 'predict-only' and 'train'"):
        config(TRAIN, TEST, {**ytvos, "roles": ["predict-only", "train"]})
    with pytest.raises(ConfigError, match="predict-only archives need the original resolution; remove short_side"):
        config(TRAIN, TEST, {**ytvos, "short_side": 240})
    with pytest.raises(ConfigError, match="predict-only needs a benchmark kind .* not 'synthetic'"):
        config(TRAIN, TEST, {**TEST, "name": "p", "source": "videos=2,seed=77", "roles": ["predict-only"]})
    with pytest.raises(ConfigError, match="all_frames applies to predict-only datasets only"):
        config(TRAIN, {**TEST, "all_frames": True})
    with pytest.raises(ConfigError, match="attributes applies to test datasets only"):
        config({**TRAIN, "attributes": "/x/db_info.yml"}, TEST)
    with pytest.raises(ConfigError, match="'yt-valid' and train dataset 'yt-train'"):  # same videos steer
        config(TRAIN, TEST, ytvos, {**ytvos, "name": "yt-train", "roles": ["train"]})
