"""After ingest, a test set that shares a video with a steering set is refused, naming the video."""

import pytest
from mlflow.tracking import MlflowClient

from components.config import CorrvosConfig, config_from_dict
from components.data.config import IngestConfig
from components.data.ingest import ingest
from components.data.overlap import RoleDataset, check_test_apart
from components.data.selection import VideoSelection
from components.errors import DataError
from pipelines.stages.context import StageContext
from pipelines.stages.ingest import run_ingest
from pipelines.tracking import ensure_experiment
from tests.data.conftest import make_davis

SETTINGS = IngestConfig(engine="threads")


def test_selected_videos_are_the_only_ones_ingested_and_recorded(tmp_path, davis16):
    manifest = ingest("davis", str(davis16), str(tmp_path / "out"), SETTINGS, progress=False,
                      select=VideoSelection(exclude=("beta",)))
    assert [v.name for v in manifest.videos] == ["alpha", "gamma"]
    assert manifest.source["select"]["exclude"] == ["beta"]


def test_same_name_in_two_real_datasets_is_one_video(tmp_path):
    """DAVIS names a sequence alike at every resolution: `alpha` at two sizes is the same video."""
    big = make_davis(tmp_path / "big", {"alpha": 4, "beta": 4}, size=(48, 64))
    small = make_davis(tmp_path / "small", {"alpha": 4}, size=(24, 32))
    train = ingest("davis", str(big), str(tmp_path / "train"), SETTINGS, progress=False)
    test = ingest("davis", str(small), str(tmp_path / "test"), SETTINGS, progress=False)
    with pytest.raises(DataError, match="video 'alpha' of test dataset 'real-test' is also in train dataset "
                                        "'real-train' \\(same name\\)"):
        check_test_apart([RoleDataset("real-test", "test", test)], [RoleDataset("real-train", "train", train)])
    apart = ingest("davis", str(big), str(tmp_path / "apart"), SETTINGS, progress=False,
                   select=VideoSelection(videos=("beta",)))
    check_test_apart([RoleDataset("real-test", "test", test)], [RoleDataset("real-train", "train", apart)])


def test_synthetic_videos_compare_by_content_not_name(tmp_path):
    one = ingest("synthetic", "videos=2,frames=4,size=32,seed=0", str(tmp_path / "a"), SETTINGS, progress=False)
    other = ingest("synthetic", "videos=2,frames=4,size=32,seed=9", str(tmp_path / "b"), SETTINGS, progress=False)
    check_test_apart([RoleDataset("b", "test", other)], [RoleDataset("a", "val", one)])  # same names, other videos
    again = ingest("synthetic", "videos=2,frames=4,size=32,seed=0", str(tmp_path / "c"), SETTINGS, progress=False)
    with pytest.raises(DataError, match="'synthetic-00000' of test dataset 'c' is also in val dataset 'a' "
                                        "\\(same content\\)"):
        check_test_apart([RoleDataset("c", "test", again)], [RoleDataset("a", "val", one)])


def test_the_ingest_stage_refuses_a_test_video_that_trains(tmp_path):
    """Two folders the config cannot tell apart (a copy of the training data) are caught on the manifests."""
    real = make_davis(tmp_path / "real", {"alpha": 4, "beta": 4})
    copy = make_davis(tmp_path / "copy", {"beta": 4})
    config = config_from_dict(CorrvosConfig, {"pipeline": {"sources": [
        {"name": "real", "kind": "davis", "source": str(real), "roles": ["train"]},
        {"name": "copy", "kind": "davis", "source": str(copy), "roles": ["test"]},
    ]}})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run = client.create_run(ensure_experiment(client, "overlap", None))
    context = StageContext(out=str(tmp_path / "stage"), inputs={}, tracking_uri=uri, run_id=run.info.run_id,
                           progress=False)
    with pytest.raises(DataError, match="video 'beta' of test dataset 'copy' is also in train dataset 'real'"):
        run_ingest(config, context)
