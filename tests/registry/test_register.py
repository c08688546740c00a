"""`register_model`: a pyfunc version in the run's artifacts with J&F and provenance tags; bad input
registers nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.errors import CorrvosError
from pipelines.registry import JF_TAG, register_model
from tests.registry.conftest import PROVENANCE


def test_register_creates_versions_with_tags_and_a_pyfunc_model(store, checkpoints, new_run, model_name) -> None:
    uri, _ = store
    run_id = new_run()
    first = register_model(uri, model_name, str(checkpoints[0]), run_id, np.float32(0.625), PROVENANCE)
    second = register_model(uri, model_name, str(checkpoints[1]), run_id, 0.5, {})
    assert (first.version, first.uri) == (1, f"models:/{model_name}/1")
    assert (second.version, second.uri) == (2, f"models:/{model_name}/2")
    client = MlflowClient(uri, registry_uri=uri)
    version = client.get_model_version(model_name, "1")
    assert version.tags == {**PROVENANCE, JF_TAG: "0.625"}
    assert version.run_id == run_id
    assert client.get_model_version(model_name, "2").tags == {JF_TAG: "0.5"}
    # both models sit in the run's artifacts, each in its own folder (different weights never overwrite)
    sources = {client.get_model_version(model_name, v).source for v in ("1", "2")}
    assert len(sources) == 2
    for source in sources:
        folder = Path(source.removeprefix("file://"))
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
        assert mlmodel["flavors"]["python_function"]["artifacts"]["checkpoint"]["path"] == "artifacts/model.pt"
        assert mlmodel["signature"]["inputs"].count('"tensor"') == 2 and "params" in mlmodel["signature"]
        assert (folder / "artifacts" / "model.pt").is_file()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing weights", "nowhere.pt"),
        ("garbage weights", "garbage.pt"),
        ("unknown run", "run 'f00'"),
        ("J&F out of range", "J&F 1.5"),
        ("J&F nan", "J&F nan"),
        ("tag not a string", "version tag 'epochs'"),
        ("name with a slash", "registered model name 'team/"),
    ],
)
def test_bad_input_is_one_line_and_registers_nothing(store, checkpoints, new_run, model_name, tmp_path, case, expected):
    uri, _ = store
    weights, run_id, jf, tags = str(checkpoints[0]), new_run(), 0.5, {}
    if case == "missing weights":
        weights = str(tmp_path / "nowhere.pt")
    elif case == "garbage weights":
        (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint" * 8)
        weights = str(tmp_path / "garbage.pt")
    elif case == "unknown run":
        run_id = "f00"
    elif case == "J&F out of range":
        jf = 1.5
    elif case == "J&F nan":
        jf = float("nan")
    elif case == "tag not a string":
        tags = {"epochs": 3}
    elif case == "name with a slash":
        model_name = f"team/{model_name}"
    with pytest.raises(CorrvosError) as info:
        register_model(uri, model_name, weights, run_id, jf, tags)
    assert expected in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MlflowException):
        MlflowClient(uri, registry_uri=uri).get_registered_model(model_name)
