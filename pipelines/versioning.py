"""The code version: the package version plus a hash of every source file that computes results.

Hashing the source (not a git commit) means an uncommitted edit to any helper changes the version,
so a stage cache keyed on it can never reuse outputs of different code.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import components
import pipelines

_PACKAGES = (components, pipelines)


@lru_cache(maxsize=1)
def code_version() -> str:
    digest = hashlib.sha256()
    for package in _PACKAGES:
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root.parent)).encode())
            digest.update(path.read_bytes())
    try:
        version = metadata.version("corrvos")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{version}+{digest.hexdigest()[:12]}"
