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
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.config import InferenceConfig, ProbeConfig, config_to_dict
from components.errors import CorrvosError
from components.model.checkpoint import ScoredSettings, read_checkpoint_metadata
from components.storage import open_fs, storage_errors
from pipelines.tracking import check_tracking_reachable

CHAMPION, CHALLENGER = "champion", "challenger"
JF_TAG = "corrvos.jf"
EVAL_SET_TAG = "corrvos.eval_dataset_version"  # content hash of the held-out set the J&F was measured on
PROMOTION_TAG = "corrvos.promotion"
INFERENCE_TAG = "corrvos.inference_config"  # JSON of the inference settings J&F was measured with (display only:
PROBE_TAG = "corrvos.probe_config"  # serving reads them from the checkpoint, whose metadata holds the same values)
SERVED_PARAMS = ("memory_every", "top_k")  # the inference settings a pyfunc caller may override per request
MODEL_DIR = "registered_model"  # run artifact folder; one sub-folder per checkpoint content hash
CHECKPOINT_KEY = "checkpoint"  # the pyfunc artifact that holds the corrvos checkpoint
CACHE_ENV = "CORRVOS_MODEL_CACHE"
MODEL_CODE = """from mlflow.models import set_model

from pipelines.registry import CorrvosSegmenter

set_model(CorrvosSegmenter())
"""
_REF = re.compile(r"^models:/(?P<name>[^@/]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class RegisteredVersion:
    """A version of a registered model; `uri` is `models:/NAME/VERSION`."""

    name: str
    version: int
    uri: str


@dataclass(frozen=True)
class ResolvedModel:
    """A model ref made local: the checkpoint to load and the settings it was scored with (from the file itself).

    `version_uri` is `models:/NAME/VERSION` for a registered model (an alias resolved), None for a path or URI.
    """

    ref: str
    checkpoint: str
    version_uri: str | None
    settings: ScoredSettings

    @property
    def source(self) -> str:
        """Where stored settings come from, in words: "registered with models:/NAME/3" or "stored in PATH"."""
        return f"registered with {self.version_uri}" if self.version_uri else f"stored in {self.ref}"


@dataclass(frozen=True)
class PromotionDecision:
    """What `promote` did: which alias the version now carries, and why."""

    promoted: bool
    alias: str  # "champion" or "challenger"
    version: int
    jf: float | None
    champion_version: int | None  # the champion before the decision
    champion_jf: float | None
    reason: str


class CorrvosSegmenter(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: frames (T,H,W,3 uint8) and the first frame's id mask (H,W uint8) -> id masks (T,H,W uint8)."""

    def load_context(self, context: Any) -> None:
        import torch

        from components.model.checkpoint import load_inference_checkpoint

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model, metadata = load_inference_checkpoint(context.artifacts[CHECKPOINT_KEY], self.device)
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


def settings_tags(settings: ScoredSettings) -> dict[str, str]:
    """The version tags that show stored settings in the MLflow UI (JSON, sorted keys)."""
    tags = {}
    if settings.inference is not None:
        tags[INFERENCE_TAG] = json.dumps(config_to_dict(settings.inference), sort_keys=True)
    if settings.probe is not None:
        tags[PROBE_TAG] = json.dumps(config_to_dict(settings.probe), sort_keys=True)
    return tags


def register_model(tracking_uri: str, name: str, weights_uri: str, run_id: str, jf: float,
                   tags: dict[str, str], storage_options: dict[str, Any] | None = None, *,
                   inference: InferenceConfig | None = None, probe: ProbeConfig | None = None) -> RegisteredVersion:
    """Log `weights_uri` as a pyfunc model into run `run_id` and make it a new version of `name`, tagged.

    `inference` / `probe` are the settings `jf` was measured with. They, the held-out set's version
    (tag `corrvos.eval_dataset_version` in `tags`) and `jf` are written into the registered
    checkpoint's metadata, which is what serving reads, and the settings also become version tags.
    """
    if not isinstance(jf, numbers.Real) or not math.isfinite(jf) or not 0.0 <= jf <= 1.0:
        raise CorrvosError(f"J&F {jf!r} for {name!r}: expected a number in [0, 1]")
    if not name or any(c in name for c in "/@:"):
        raise CorrvosError(f"registered model name {name!r}: must be non-empty, without '/', '@' or ':'")
    if not isinstance(inference, (InferenceConfig, type(None))) or not isinstance(probe, (ProbeConfig, type(None))):
        raise CorrvosError("register_model: inference and probe must be an InferenceConfig and a ProbeConfig")
    checked = _checked_tags(tags)
    settings = ScoredSettings(inference, probe, checked.get(EVAL_SET_TAG), float(jf))
    version_tags = {**checked, **settings_tags(settings), JF_TAG: repr(float(jf))}
    client = _client(tracking_uri)
    run = _call(lambda: client.get_run(run_id), f"run {run_id!r}")
    with tempfile.TemporaryDirectory(prefix="corrvos-register-") as folder:
        checkpoint = _fetch_checkpoint(weights_uri, Path(folder), storage_options)
        _stamp(checkpoint, settings, weights_uri)
        # the folder is named by the stamped file: the same weights scored with other settings never overwrite
        artifact_path = f"{MODEL_DIR}/{_file_digest(checkpoint)}"
        _save_pyfunc(checkpoint, Path(folder, "model"), inference)
        created = _ensure_registered_model(client, name)
        try:
            _call(lambda: client.log_artifacts(run_id, str(Path(folder, "model")), artifact_path), f"run {run_id!r}")
            source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
            version = _call(lambda: client.create_model_version(
                name, source, run_id=run_id, tags=version_tags, description=f"corrvos inference model, J&F {jf:.4f}"),
                f"registered model {name!r}")
        except BaseException:
            if created:
                client.delete_registered_model(name)  # leave no empty registered model behind
            raise
    return RegisteredVersion(name, int(version.version), f"models:/{name}/{version.version}")


def promote(tracking_uri: str, name: str, version: int, margin: float) -> PromotionDecision:
    """Alias `champion` -> `version` when its J&F beats the champion's by more than `margin`, else `challenger`."""
    if not math.isfinite(margin) or margin < 0:
        raise CorrvosError(f"promote margin {margin!r}: expected a number >= 0")
    client = _client(tracking_uri)
    candidate = _get_version(client, name, version)
    jf = _version_jf(candidate, name, required=True)
    champion = _champion(client, name)
    if champion is None:
        return _decide(client, name, version, jf, None, None, True, "no champion yet")
    champion_version, champion_jf = int(champion.version), _version_jf(champion, name, required=True)
    if champion_version == int(version):
        return _decide(client, name, version, jf, champion_version, champion_jf, True, "already the champion")
    mismatch = _eval_set_mismatch(candidate, champion)
    if mismatch:
        reason = (f"J&F {jf:.4f} is not comparable with champion v{champion_version} ({champion_jf:.4f}): {mismatch}; "
                  f"`corrvos promote --version {int(version)}` promotes it by hand")
        return _decide(client, name, version, jf, champion_version, champion_jf, False, reason)
    gain = jf - champion_jf
    if gain > margin:
        reason = (f"J&F {jf:.4f} beats champion v{champion_version} ({champion_jf:.4f}) "
                  f"by {gain:.4f} > margin {margin:g}")
        return _decide(client, name, version, jf, champion_version, champion_jf, True, reason)
    reason = f"J&F {jf:.4f} does not beat champion v{champion_version} ({champion_jf:.4f}) by more than {margin:g}"
    return _decide(client, name, version, jf, champion_version, champion_jf, False, reason)


def promote_by_hand(tracking_uri: str, name: str, version: int) -> PromotionDecision:
    """Alias `champion` -> `version` whatever its J&F (a person decided)."""
    client = _client(tracking_uri)
    jf = _version_jf(_get_version(client, name, version), name, required=False)
    champion = _champion(client, name)
    champion_version = int(champion.version) if champion is not None else None
    champion_jf = _version_jf(champion, name, required=False) if champion is not None else None
    return _decide(client, name, version, jf, champion_version, champion_jf, True, "by hand")


def resolve_model_ref(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> str:
    """The local corrvos checkpoint behind `models:/NAME/VERSION` or `models:/NAME@ALIAS`; other refs unchanged."""
    if not ref.startswith("models:/"):
        return ref
    return _registered_checkpoint(ref, tracking_uri, cache_dir)[0]


def resolve_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> ResolvedModel:
    """`ref` (a `models:/` ref, a path or an fsspec URI) as a local checkpoint plus the settings stored in it.

    The settings come from the checkpoint file, not from version tags; a plain checkpoint that was
    never registered has none (`ScoredSettings()`), and its users fall back to the defaults.
    """
    checkpoint, version_uri = locate_model(ref, tracking_uri, cache_dir)
    metadata = read_checkpoint_metadata(checkpoint)
    return ResolvedModel(ref, checkpoint, version_uri, ScoredSettings.from_metadata(metadata, f"model {ref!r}"))


def locate_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> tuple[str, str | None]:
    """(checkpoint to load, `models:/NAME/VERSION`) for a registered ref (downloaded once); (ref, None) otherwise."""
    if ref.startswith("models:/"):
        return _registered_checkpoint(ref, tracking_uri, cache_dir)
    return ref, None


def _registered_checkpoint(ref: str, tracking_uri: str | None, cache_dir: str | Path | None) -> tuple[str, str]:
    """(local checkpoint path, `models:/NAME/VERSION`) of a registered ref."""
    model_dir, name, version = _download(ref, tracking_uri, cache_dir)
    try:
        from mlflow.models import Model

        artifacts = Model.load(str(model_dir)).flavors["python_function"]["artifacts"]
        checkpoint = model_dir / artifacts[CHECKPOINT_KEY]["path"]
    except (OSError, KeyError, TypeError, MlflowException):
        raise CorrvosError(f"model {ref!r}: not a corrvos registered model (no {CHECKPOINT_KEY} artifact)") from None
    if not checkpoint.is_file():
        raise CorrvosError(f"model {ref!r}: checkpoint {checkpoint} missing from the download")
    return str(checkpoint), f"models:/{name}/{version}"


def download_model(ref: str, tracking_uri: str | None, cache_dir: str | Path | None = None) -> Path:
    """The pyfunc model folder of `models:/NAME/VERSION` or `models:/NAME@ALIAS`, downloaded once into a cache."""
    return _download(ref, tracking_uri, cache_dir)[0]


def register_unscored(tracking_uri: str | None, name: str, weights_uri: str, tags: dict[str, str], *,
                      experiment: str, run_name: str, description: str) -> str:
    """A new version of `name` for a checkpoint nothing scored (an import): logged into a run of `experiment`
    tagged like the version, no J&F tags, no alias moved; returns `models:/NAME/VERSION`."""
    from pipelines.tracking import default_artifact_root, ensure_experiment, resolve_tracking_uri

    uri = _default_tracking_uri(resolve_tracking_uri(tracking_uri) if tracking_uri else None)
    client = _client(uri)
    # a SQLite store keeps the artifacts beside its database, as the pipeline's runs do
    root = default_artifact_root(uri, str(Path(uri[len("sqlite:///"):]).parent)) if uri.startswith("sqlite:") else None
    experiment_id = _call(lambda: ensure_experiment(client, experiment, root), f"experiment {experiment!r}")
    run = _call(lambda: client.create_run(experiment_id, tags=tags, run_name=run_name), f"experiment {experiment!r}")
    with tempfile.TemporaryDirectory(prefix="corrvos-register-") as folder:
        checkpoint = _fetch_checkpoint(weights_uri, Path(folder), None)
        artifact_path = f"{MODEL_DIR}/{_file_digest(checkpoint)}"
        _save_pyfunc(checkpoint, Path(folder, "model"))
        created = _ensure_registered_model(client, name)
        try:
            _call(lambda: client.log_artifacts(run.info.run_id, str(Path(folder, "model")), artifact_path),
                  f"run {run.info.run_id!r}")
            source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
            version = _call(lambda: client.create_model_version(name, source, run_id=run.info.run_id, tags=tags,
                                                                description=description),
                            f"registered model {name!r}")
        except BaseException:
            if created:
                client.delete_registered_model(name)
            raise
        finally:
            client.set_terminated(run.info.run_id)
    return f"models:/{name}/{version.version}"


def registered_version(ref: str, tracking_uri: str | None) -> str:
    """`models:/NAME/VERSION` that `ref` names now (an alias resolved), without downloading anything."""
    match = _REF.match(ref)
    if match is None:
        raise CorrvosError(f"model {ref!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    client = _client(_default_tracking_uri(tracking_uri))
    name = match["name"]
    found = _get_alias(client, name, match["alias"]) if match["alias"] else _get_version(client, name, int(match["version"]))
    return f"models:/{name}/{found.version}"


def _download(ref: str, tracking_uri: str | None, cache_dir: str | Path | None) -> tuple[Path, str, int]:
    """(model folder, name, version number) of a registered ref, downloaded once into a cache."""
    match = _REF.match(ref)
    if match is None:
        raise CorrvosError(f"model {ref!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    tracking_uri = _default_tracking_uri(tracking_uri)
    client = _client(tracking_uri)
    name = match["name"]
    if match["alias"]:
        found = _get_alias(client, name, match["alias"])
    else:
        found = _get_version(client, name, int(match["version"]))
    source = _call(lambda: client.get_model_version_download_uri(name, found.version), f"model {ref!r}")
    root = Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "corrvos" / "models")
    target = root / hashlib.sha256(f"{tracking_uri}\n{source}".encode()).hexdigest()[:16] / f"{name}-v{found.version}"
    if (target / "MLmodel").is_file():
        return target, name, int(found.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        downloaded = Path(_call(lambda: mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(staging), tracking_uri=tracking_uri), f"model {ref!r}"))
        if not (downloaded / "MLmodel").is_file():
            raise CorrvosError(f"model {ref!r}: no MLmodel file at {source}")
        try:
            os.replace(downloaded, target)
        except OSError:  # another process finished the same download first
            if not (target / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, name, int(found.version)


# ---- helpers -------------------------------------------------------------------------------------------


def _default_tracking_uri(tracking_uri: str | None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else the config default; a relative SQLite path made absolute."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///runs/mlflow.db"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def _client(tracking_uri: str) -> MlflowClient:
    """A client whose registry is the tracking store; a missing store or unreachable server fails fast, in one line."""
    check_tracking_reachable(tracking_uri)
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).is_file():
        raise CorrvosError(f"tracking store {tracking_uri}: no such MLflow database")  # never create an empty one
    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def _call(action: Any, what: str) -> Any:
    """Run one MLflow call; its failure becomes a one-line CorrvosError naming `what`."""
    try:
        return action()
    except (MlflowException, OSError) as exc:  # OSError: requests' connection errors, artifact stores
        raise CorrvosError(f"{what}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0]


def _checked_tags(tags: dict[str, str]) -> dict[str, str]:
    """String keys and values within MLflow's limits, checked before anything is written."""
    checked = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250 or not isinstance(value, str) or len(value) > 100_000:
            raise CorrvosError(f"version tag {str(key)[:60]!r}: keys and values must be strings "
                               "(key up to 250, value up to 100000 characters)")
        checked[key] = value
    return checked


def _fetch_checkpoint(weights_uri: str, folder: Path, storage_options: dict[str, Any] | None) -> Path:
    """Copy the checkpoint to `folder/model.pt` and check that it builds a corrvos model."""
    from components.model.checkpoint import load_inference_checkpoint

    local = folder / "model.pt"
    try:
        fs, path = open_fs(weights_uri, storage_options)
        with storage_errors(weights_uri, storage_options), fs.open(path, "rb") as handle:
            local.write_bytes(handle.read())
    except FileNotFoundError:
        raise CorrvosError(f"model {weights_uri!r}: file not found") from None
    except OSError as exc:
        raise CorrvosError(f"model {weights_uri!r}: cannot read ({_first_line(exc)})") from None
    try:
        load_inference_checkpoint(str(local))
    except CorrvosError as exc:
        raise CorrvosError(str(exc).replace(str(local), weights_uri)) from None
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CorrvosError(f"model {weights_uri!r}: cannot load ({_first_line(exc)})") from None
    return local


def _stamp(checkpoint: Path, settings: ScoredSettings, weights_uri: str) -> None:
    """Write `settings` into the local copy's metadata: the registered file describes how it was scored."""
    from components.model.checkpoint import stamp_checkpoint

    try:
        stamp_checkpoint(str(checkpoint), settings)
    except CorrvosError as exc:
        raise CorrvosError(str(exc).replace(str(checkpoint), weights_uri)) from None


def _file_digest(path: Path) -> str:
    """First 12 hex digits of the file's SHA-256: the same weights always land in the same run folder."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _save_pyfunc(checkpoint: Path, folder: Path, inference: InferenceConfig | None = None) -> None:
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


def _ensure_registered_model(client: MlflowClient, name: str) -> bool:
    """Create registered model `name` when missing; True when this call created it."""
    try:
        client.get_registered_model(name)
        return False
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise CorrvosError(f"registered model {name!r}: {_first_line(exc)}") from None
    _call(lambda: client.create_registered_model(name, description="corrvos video object segmentation models"),
          f"registered model {name!r}")
    return True


def _get_version(client: MlflowClient, name: str, version: int) -> Any:
    try:
        return client.get_model_version(name, str(int(version)))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise CorrvosError(f"registered model {name!r} has no version {version}") from None
        raise CorrvosError(f"registered model {name!r} version {version}: {_first_line(exc)}") from None


def _get_alias(client: MlflowClient, name: str, alias: str) -> Any:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise CorrvosError(f"registered model {name!r} has no alias {alias!r}") from None
        raise CorrvosError(f"registered model {name!r} alias {alias!r}: {_first_line(exc)}") from None


def _champion(client: MlflowClient, name: str) -> Any | None:
    """The version that carries `champion`, or None."""
    model = _call(lambda: client.get_registered_model(name), f"registered model {name!r}")
    if CHAMPION not in (model.aliases or {}):
        return None
    return _get_version(client, name, int(model.aliases[CHAMPION]))


def _eval_set_mismatch(version: Any, champion: Any) -> str:
    """Why the two J&F tags were measured on different held-out sets ("" when comparable).

    Versions registered without the tag (before it existed, or by hand) compare with each other as before.
    """
    ours, theirs = (version.tags or {}).get(EVAL_SET_TAG), (champion.tags or {}).get(EVAL_SET_TAG)
    if ours == theirs:
        return ""
    return f"it was scored on {_held_out_name(ours)}, the champion on {_held_out_name(theirs)}"


def _held_out_name(tag: str | None) -> str:
    """A held-out set as a reason names it: the start of its version, or that none was recorded."""
    return "an unrecorded held-out set" if tag is None else f"held-out set {tag[:12]}"


def _version_jf(version: Any, name: str, required: bool) -> float | None:
    """The J&F tag of a model version (None when absent and not `required`)."""
    value = (version.tags or {}).get(JF_TAG)
    try:
        jf = float(value) if value is not None else None
    except ValueError:
        jf = None
    if jf is None and required:
        raise CorrvosError(f"registered model {name!r} version {version.version} has no numeric {JF_TAG} tag")
    return jf


def _decide(client: MlflowClient, name: str, version: int, jf: float | None, champion_version: int | None,
            champion_jf: float | None, promoted: bool, reason: str) -> PromotionDecision:
    """Set the alias the decision gives `version` (and drop its `challenger` when it becomes champion)."""
    alias, where = (CHAMPION if promoted else CHALLENGER), f"registered model {name!r}"
    if promoted:
        model = _call(lambda: client.get_registered_model(name), where)
        if str((model.aliases or {}).get(CHALLENGER)) == str(version):
            _call(lambda: client.delete_registered_model_alias(name, CHALLENGER), where)
    _call(lambda: client.set_registered_model_alias(name, alias, str(version)), where)
    _call(lambda: client.set_model_version_tag(name, str(version), PROMOTION_TAG, f"{alias}: {reason}"), where)
    return PromotionDecision(promoted, alias, int(version), jf, champion_version, champion_jf, reason)
