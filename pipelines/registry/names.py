"""The registry's vocabulary: aliases, version tags and artifact names that register, promote and serving share.

One place, so a tag written by `register_model` is the tag `promote` and the MLflow UI read.
"""

from __future__ import annotations

CHAMPION, CHALLENGER = "champion", "challenger"
JF_TAG = "corrvos.jf"
EVAL_SET_TAG = "corrvos.eval_dataset_version"  # content hash of the held-out set the J&F was measured on
PROMOTION_TAG = "corrvos.promotion"
INFERENCE_TAG = "corrvos.inference_config"  # JSON of the inference settings J&F was measured with (display only:
PROBE_TAG = "corrvos.probe_config"  # serving reads them from the checkpoint, whose metadata holds the same values)
SERVED_PARAMS = ("memory_every", "top_k")  # the inference settings a pyfunc caller may override per request
MODEL_DIR = "registered_model"  # run artifact folder; one sub-folder per checkpoint content hash
CHECKPOINT_KEY = "checkpoint"  # the pyfunc artifact that holds the corrvos checkpoint
CACHE_ENV = "CORRVOS_MODEL_CACHE"  # where downloaded registered models are kept (default ~/.cache/corrvos/models)
