"""`corrvos run` on bad input: one line, exit 1, nothing written."""

import pytest

from pipelines.cli import main
from tests.pipeline.conftest import tiny_pipeline_yaml


def _fails(capsys, argv, *needles):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"corrvos {argv[0]}: error:"), err
    for needle in needles:
        assert needle in err[0]


def test_unknown_config_key(tmp_path, capsys):
    config = str(tiny_pipeline_yaml(tmp_path))
    _fails(capsys, ["run", config, "--set", "train.learning_rat=0.1"], "train.learning_rat")
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_path(tmp_path, capsys):
    config = tiny_pipeline_yaml(tmp_path, pipeline={"sources": [
        {"name": "davis", "kind": "davis", "source": str(tmp_path / "nowhere"), "roles": ["train"]},
        {"name": "test", "kind": "synthetic", "source": "videos=2,frames=6,size=64,seed=1", "roles": ["test"]},
    ]})
    _fails(capsys, ["run", str(config)], "nowhere", "davis")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_unreachable_tracking_server(tmp_path, capsys):
    config = tiny_pipeline_yaml(tmp_path, tracking={"mlflow_uri": "http://127.0.0.1:9"})
    _fails(capsys, ["run", str(config)], "http://127.0.0.1:9")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_unreachable_cluster(tmp_path, capsys, address):
    _fails(capsys, ["run", str(tiny_pipeline_yaml(tmp_path)), "--address", address], address)
    assert not (tmp_path / "runs").exists()


def test_rerun_of_a_stage_not_in_the_pipeline(tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: invalid choice
        main(["rerun", "bogus", str(tiny_pipeline_yaml(tmp_path))])
