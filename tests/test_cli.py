"""The installed `corrvos` console command."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _corrvos() -> list[str]:
    found = shutil.which("corrvos", path=str(Path(sys.executable).parent))
    assert found, "the corrvos console script is not installed in this environment"
    return [found]


def test_help_lists_commands():
    result = subprocess.run(_corrvos() + ["--help"], capture_output=True, text=True, check=True)
    assert "version" in result.stdout


def test_version_prints_the_package_version():
    from importlib import metadata

    result = subprocess.run(_corrvos() + ["version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"corrvos {metadata.version('corrvos')}"


def test_unknown_command_exits_non_zero():
    result = subprocess.run(_corrvos() + ["frobnicate"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "invalid choice" in result.stderr


README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands(name: str) -> list[list[str]]:
    """The README's `corrvos NAME ...` examples as argument lists (continuation lines joined, comments dropped)."""
    import shlex

    text = README.read_text().replace("\\\n", " ")
    return [shlex.split(line, comments=True)[1:] for line in text.splitlines() if line.startswith(f"corrvos {name} ")]


def test_local_path_or_uri_makes_only_local_paths_absolute(tmp_path, monkeypatch):
    from pipelines.cli import local_path_or_uri

    monkeypatch.chdir(tmp_path)
    assert local_path_or_uri("runs/data/x") == str(tmp_path / "runs" / "data" / "x")
    assert local_path_or_uri("./a/../b") == str(tmp_path / "b")
    assert local_path_or_uri("~/w.pt") == str(Path.home() / "w.pt")
    for uri in ("s3://bucket/davis", "file:///data/x", "memory://x", "models:/corrvos-stcn@champion", "/abs/path", ""):
        assert local_path_or_uri(uri) == uri


def test_the_readme_train_examples_parse_to_absolute_paths_under_the_project_root(monkeypatch):
    from pipelines.cli import build_parser

    root = README.parent
    monkeypatch.chdir(root)
    examples = _readme_commands("train")
    assert len(examples) == 2 and all("--data" in e for e in examples)
    for argv in examples:
        args = build_parser().parse_args(argv)
        paths = [*args.data, args.out, *([args.init] if args.init else [])]
        assert all(p.startswith(f"{root}{os.sep}") for p in paths), paths
    assert args.init == str(root / "runs" / "pretrain" / "model.pt") and args.data == [str(root / "runs" / "data" / "synthetic")]


def test_tune_and_ingest_paths_are_made_absolute_and_uris_kept(tmp_path, monkeypatch):
    from pipelines.cli import build_parser
    from pipelines.commands.ingest import source_arguments

    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["tune", "c.yaml", "--data", "d", "--val", "s3://b/v", "--out", "o", "--init", "m.pt"])
    assert (args.data, args.val, args.out, args.init) == ([str(tmp_path / "d")], ["s3://b/v"], str(tmp_path / "o"),
                                                         str(tmp_path / "m.pt"))
    args = build_parser().parse_args(["ingest", "--kind", "davis", "--source", "DAVIS", "--out", "runs/davis"])
    source_arguments(args)
    assert (args.source, args.out) == (str(tmp_path / "DAVIS"), str(tmp_path / "runs" / "davis"))
    args = build_parser().parse_args(["ingest", "--kind", "synthetic", "--source", "videos=2,seed=0", "--out", "s3://b/s"])
    source_arguments(args)
    assert (args.source, args.out) == ("videos=2,seed=0", "s3://b/s")  # a synthetic spec is not a path


def test_train_with_a_missing_manifest_fails_in_one_line_before_ray_starts(tmp_path, monkeypatch, capsys):
    import ray

    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(f"tracking: {{mlflow_uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n")
    (tmp_path / "runs" / "data" / "synthetic").mkdir(parents=True)  # a folder, but never ingested
    code = main(["train", "c.yaml", "--stage", "pretrain", "--data", "runs/data/synthetic", "--out", "runs/pretrain"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and not ray.is_initialized()
    assert err[-1].startswith(f"corrvos train: error: {tmp_path}/runs/data/synthetic: no manifest.json"), err
    assert not (tmp_path / "mlflow.db").exists()  # nothing started, nothing half-written
