"""The MLflow pyfunc model a registered version is: a corrvos checkpoint plus `CorrvosSegmenter`, saved from code.

Models from code: MLflow 3 loads `corrvos_model.py` (`MODEL_CODE`) without unpickling anything, and
the segmenter reads the inference settings the version was scored with from the checkpoint itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np

from components.config import InferenceConfig
from components.model.checkpoint import ScoredSettings
from pipelines.registry.names import CHECKPOINT_KEY, SERVED_PARAMS

# Written into every registered model. It names `pipelines.registry`, not this module, so that versions
# registered before the registry became a package and versions registered now load the same way.
MODEL_CODE = """from mlflow.models import set_model

from pipelines.registry import CorrvosSegmenter

set_model(CorrvosSegmenter())
"""


class CorrvosSegmenter(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: frames (T,H,W,3 uint8) and the first frame's id mask (H,W uint8) -> id masks (T,H,W uint8)."""

    def load_context(self, context: Any) -> None:
        """Load the checkpoint artifact and the inference settings stored in it (defaults when it has none)."""
        import torch

        from components.model.checkpoint import load_inference_checkpoint
        from components.model.inference_form import inference_form

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model, metadata = load_inference_checkpoint(context.artifacts[CHECKPOINT_KEY], self.device)
        self.model = inference_form(model)  # folded once here, not again on every predict call
        # the settings the version's J&F was measured with, from the checkpoint itself (defaults when it has none)
        self.inference = ScoredSettings.from_metadata(metadata).inference or InferenceConfig()

    _skip_type_hint_validation = True  # the explicit tensor signature validates the input instead

    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> np.ndarray:
        """Segment one video with the stored inference settings; `params` may override memory_every and top_k.

        A param that is absent or None means the stored value. (MLflow fills absent params with the
        signature's defaults, which `register_model` sets to the stored values, so both paths agree.)
        `model_input` is {"frames": T,H,W,3 uint8, "first_mask": H,W uint8}; it has no type hint because
        MLflow 3 reads a hint there as a schema and has none for a dict of arrays.
        """
        import dataclasses

        from components.errors import DataError
        from components.inference import propagator_for

        frames, first_mask = np.asarray(model_input["frames"]), np.asarray(model_input["first_mask"])
        if frames.ndim != 4 or frames.shape[-1] != 3 or first_mask.shape != frames.shape[1:3]:
            raise DataError(f"frames {frames.shape} and first_mask {first_mask.shape}: expected (T,H,W,3) and (H,W)")
        given = {k: int(v) for k, v in (params or {}).items() if k in SERVED_PARAMS and v is not None}
        try:
            config = dataclasses.replace(self.inference, **given)
        except ValueError as exc:
            raise DataError(f"params {given}: {exc}") from None
        result = propagator_for(self.model, config, self.device).propagate(list(frames), {0: first_mask})
        return np.stack(result.labels).astype(np.uint8)  # T, H, W


def model_signature(inference: InferenceConfig | None = None) -> Any:
    """Tensor schema: video inputs are n-d uint8 arrays, which column (ColSpec) schemas cannot describe.

    The params' defaults are the version's stored inference settings (`InferenceConfig()`'s when none),
    so the MLflow UI shows what a request without params runs with.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

    inference = inference or InferenceConfig()
    inputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3), "frames"),
                     TensorSpec(np.dtype(np.uint8), (-1, -1), "first_mask")])
    outputs = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1), "masks")])
    params = ParamSchema([ParamSpec(key, "long", getattr(inference, key)) for key in SERVED_PARAMS])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def save_pyfunc(checkpoint: Path, folder: Path, inference: InferenceConfig | None = None) -> None:
    """Write the pyfunc model (MLmodel, the model-from-code file, the checkpoint) to `folder`."""
    code = folder.parent / "corrvos_model.py"  # models from code: MLflow 3 loads it without unpickling anything
    code.write_text(MODEL_CODE)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_example.*")  # an example would run a video at save time
        mlflow.pyfunc.save_model(str(folder), python_model=str(code), artifacts={CHECKPOINT_KEY: str(checkpoint)},
                                 signature=model_signature(inference), pip_requirements=_requirements())


def _requirements() -> list[str]:
    """Pinned to what is running: corrvos (which brings its own dependencies), torch and mlflow."""
    from importlib import metadata

    import torch

    pins = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"]
    try:
        return [f"corrvos=={metadata.version('corrvos')}", *pins]
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return pins
