"""The installed `corrvos` console command."""

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
