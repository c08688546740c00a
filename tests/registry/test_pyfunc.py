"""The registered pyfunc model: `mlflow.pyfunc.load_model` gives a segmenter whose tensor signature takes
frames and the first mask and returns one id mask per frame, the same as the corrvos propagator."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from components.config import InferenceConfig
from components.inference import VideoPropagator
from components.model.checkpoint import load_inference_checkpoint
from pipelines.registry import download_model, register_model
from tests.evaluation.videos_util import HEIGHT, WIDTH, moving_squares

FRAMES = 6


@pytest.fixture
def pyfunc_model(store, checkpoints, new_run, model_name):
    uri, _ = store
    version = register_model(uri, model_name, str(checkpoints[0]), new_run(), 0.5, {})
    return mlflow.pyfunc.load_model(str(download_model(version.uri, uri)))


def test_pyfunc_predicts_one_id_mask_per_frame_like_the_propagator(pyfunc_model, checkpoints) -> None:
    images, masks = moving_squares(FRAMES, objects=2)
    frames = np.stack(images)  # T, H, W, 3
    out = pyfunc_model.predict({"frames": frames, "first_mask": masks[0]}, params={"memory_every": 2, "top_k": 4})
    assert out.shape == (FRAMES, HEIGHT, WIDTH) and out.dtype == np.uint8
    assert np.array_equal(out[0], masks[0]) and set(np.unique(out)) <= {0, 1, 2}
    model, _ = load_inference_checkpoint(str(checkpoints[0]))
    expected = VideoPropagator(model, InferenceConfig(memory_every=2, top_k=4), "cpu").propagate(images, {0: masks[0]})
    assert np.array_equal(out, np.stack(expected.labels))


def test_the_signature_is_tensor_based_and_enforced(pyfunc_model) -> None:
    signature = pyfunc_model.metadata.get_input_schema()
    assert signature.is_tensor_spec() and signature.input_names() == ["frames", "first_mask"]
    assert [spec.shape for spec in signature.inputs] == [(-1, -1, -1, 3), (-1, -1)]
    assert pyfunc_model.metadata.get_params_schema().to_dict()[0]["name"] == "memory_every"
    images, masks = moving_squares(2)
    with pytest.raises(MlflowException):  # float frames are not uint8 video
        pyfunc_model.predict({"frames": np.stack(images).astype(np.float32), "first_mask": masks[0]})
    with pytest.raises(MlflowException):  # grey frames have no channel axis
        pyfunc_model.predict({"frames": np.stack(images)[..., 0], "first_mask": masks[0]})


def test_registered_models_load_the_segmenter_from_the_path_every_version_names(
        store, checkpoints, new_run, model_name) -> None:
    # Each registered model carries a code file that imports `pipelines.registry.CorrvosSegmenter`; versions
    # registered before the registry became a package carry the same line, so that path must keep working.
    import pipelines.registry
    from pipelines.registry.pyfunc import CorrvosSegmenter

    uri, _ = store
    folder = download_model(register_model(uri, model_name, str(checkpoints[0]), new_run(), 0.5, {}).uri, uri)
    codes = [path.read_text() for path in folder.rglob("*.py")]
    assert len(codes) == 1 and "from pipelines.registry import CorrvosSegmenter" in codes[0]
    assert pipelines.registry.CorrvosSegmenter is CorrvosSegmenter
    assert isinstance(mlflow.pyfunc.load_model(str(folder)).unwrap_python_model(), CorrvosSegmenter)
