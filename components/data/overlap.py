"""Ingested test sets share no video with steering sets: checked on the manifests, after ingest.

Two videos are the same when their content digests match (any source), or when two real datasets
name a video alike: DAVIS names a sequence the same in 2016 and 2017 and at every resolution, so
`bear` at 480p and at 240p is one video. Synthetic names are generator indices and say nothing of
content, so only digests compare there.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.data.manifest import Manifest
from components.errors import DataError


@dataclass(frozen=True)
class RoleDataset:
    """An ingested dataset, the config name it came from, and the role it plays."""

    name: str
    role: str
    manifest: Manifest


def check_test_apart(test: list[RoleDataset], steering: list[RoleDataset]) -> None:
    """Raise `DataError` naming the first video a test dataset shares with a steering dataset."""
    for held in test:
        digests = {v.digest: v.name for v in held.manifest.videos}
        names = {v.name for v in held.manifest.videos}
        for other in steering:
            for video in other.manifest.videos:
                same_content = video.digest in digests
                same_name = video.name in names and held.manifest.kind != "synthetic" and other.manifest.kind != "synthetic"
                if same_content or same_name:
                    shown = digests.get(video.digest, video.name)
                    raise DataError(f"video {shown!r} of test dataset {held.name!r} is also in {other.role} dataset "
                                    f"{other.name!r} ({'same content' if same_content else 'same name'}): "
                                    "a test video must never steer or train")
