"""`corrvos import-weights`: a published STCN / XMem / VOS_Correspondence checkpoint -> a corrvos inference checkpoint."""

from __future__ import annotations

import argparse
import hashlib

from pipelines.cli import local_path_or_uri

NAME = "import-weights"
HELP = "convert an official checkpoint (STCN, XMem, VOS_Correspondence) into a corrvos model file"
FORMAT_TAG = "corrvos.import.format"
SHA256_TAG = "corrvos.import.sha256"
SOURCE_TAG = "corrvos.import.source"
EXPERIMENT = "corrvos-imports"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from components.model.imports import FORMATS

    parser.add_argument("source", type=local_path_or_uri, metavar="SOURCE",
                        help="the official checkpoint: a path or fsspec URI (s3://, https://, ...)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="which official code wrote it")
    parser.add_argument("--out", required=True, type=local_path_or_uri, metavar="MODEL.pt",
                        help="where to write the corrvos inference checkpoint (path or fsspec URI)")
    parser.add_argument("--register", metavar="NAME", help="also register it as a new version of model NAME in MLflow")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI for --register (default: $MLFLOW_TRACKING_URI, else sqlite:///runs/mlflow.db)")


def run(args: argparse.Namespace) -> int:
    from components.config import config_from_dict
    from components.config.schema import ModelConfig
    from components.errors import CorrvosError
    from components.model.checkpoint import save_inference_checkpoint
    from components.model.imports import import_checkpoint
    from components.storage import load_torch

    digest = source_sha256(args.source)
    payload = load_torch(args.source, "checkpoint", CorrvosError)
    imported = import_checkpoint(payload, args.format)
    config = config_from_dict(ModelConfig, imported.model_config)
    metadata = {"imported_from": {"format": args.format, "sha256": digest, "source": _redacted(args.source),
                                  "notes": list(imported.notes)}}
    save_inference_checkpoint(args.out, imported.state_dict, config, metadata)
    for note in imported.notes:
        print(f"  {note}")
    print(f"{args.format} checkpoint {_redacted(args.source)} (sha256 {digest[:12]}) -> {args.out}")
    if args.register:
        uri = register_import(args.tracking_uri, args.register, args.out,
                              {FORMAT_TAG: args.format, SHA256_TAG: digest, SOURCE_TAG: _redacted(args.source)})
        print(uri)
    return 0


def source_sha256(uri: str) -> str:
    """SHA-256 of the file at `uri`, read in 1 MiB blocks; a missing file is one line naming it."""
    from components.errors import CorrvosError
    from components.storage import open_fs, storage_errors

    digest = hashlib.sha256()
    try:
        with storage_errors(uri):
            fs, path = open_fs(uri)
            with fs.open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    except FileNotFoundError:
        raise CorrvosError(f"checkpoint {uri!r}: file not found") from None
    return digest.hexdigest()


def register_import(tracking_uri: str | None, name: str, weights_uri: str, tags: dict[str, str]) -> str:
    """A new version of `name` for an imported checkpoint (no J&F: nothing scored it), logged into a run of
    experiment `corrvos-imports` tagged like the version; returns `models:/NAME/VERSION`."""
    from pipelines.registry import register_unscored

    return register_unscored(tracking_uri, name, weights_uri, tags, experiment=EXPERIMENT,
                             run_name=f"import-{tags[FORMAT_TAG]}",
                             description=f"imported {tags[FORMAT_TAG]} checkpoint, sha256 {tags[SHA256_TAG][:12]}")


def _redacted(uri: str) -> str:
    from components.secrets import redact_uri

    return redact_uri(uri)


