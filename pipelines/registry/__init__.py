"""The MLflow model registry for corrvos inference checkpoints: register, promote, resolve `models:/` refs.

A version is a pyfunc model (the checkpoint plus a `PythonModel` that segments a video) logged into
the run that produced it, tagged with its J&F and provenance. Alias `champion` marks the model to
serve; `promote` moves it only to a version that beats the champion's J&F by more than a margin, and
only compares J&F measured on the same held-out set (tag `corrvos.eval_dataset_version`).
Every call names its tracking URI (no global MLflow state), and every failure is one `CorrvosError`.

A version serves exactly what it was scored with: `register_model` writes the inference and probe
settings of the evaluation (and the held-out set's version and J&F) into the registered checkpoint's
metadata, and the same values as version tags for the MLflow UI. Serving reads the file, never the
tags: the pyfunc, `corrvos predict` and `corrvos probe` (`resolve_model`) use the stored settings
unless a caller overrides a key.

Modules: `names` (aliases, tags, artifact names), `client` (the MLflow client and its errors),
`pyfunc` (the model wrapper), `register`, `promotion`, `resolve` (refs -> cached local checkpoints).
"""

from __future__ import annotations

from pipelines.registry.names import (
    CACHE_ENV,
    CHALLENGER,
    CHAMPION,
    CHECKPOINT_KEY,
    EVAL_SET_TAG,
    INFERENCE_TAG,
    JF_TAG,
    MODEL_DIR,
    PROBE_TAG,
    PROMOTION_TAG,
    SERVED_PARAMS,
)
from pipelines.registry.promotion import PromotionDecision, promote, promote_by_hand

# Must stay importable from here: every registered model's `corrvos_model.py` (pyfunc.MODEL_CODE, written
# into the model when it is registered, including versions registered before this package existed) runs
# `from pipelines.registry import CorrvosSegmenter`. Moving it breaks loading those versions.
from pipelines.registry.pyfunc import MODEL_CODE, CorrvosSegmenter, model_signature
from pipelines.registry.register import (
    RegisteredVersion,
    register_model,
    register_unscored,
    settings_tags,
)
from pipelines.registry.resolve import (
    ResolvedModel,
    download_model,
    locate_model,
    registered_version,
    resolve_model,
    resolve_model_ref,
)

__all__ = [
    "CACHE_ENV", "CHALLENGER", "CHAMPION", "CHECKPOINT_KEY", "EVAL_SET_TAG", "INFERENCE_TAG", "JF_TAG", "MODEL_CODE",
    "MODEL_DIR", "PROBE_TAG", "PROMOTION_TAG", "SERVED_PARAMS", "CorrvosSegmenter", "PromotionDecision",
    "RegisteredVersion", "ResolvedModel", "download_model", "locate_model", "model_signature", "promote",
    "promote_by_hand", "register_model", "register_unscored", "registered_version", "resolve_model",
    "resolve_model_ref", "settings_tags",
]
