"""The `synthetic` source: videos from `components.data.synthetic`, encoded like any other source.

Its location is a spec such as `videos=32,frames=24,size=96,seed=0` (empty = defaults). Each row's
`extras` keeps the generator's motion, so `track_points` works on the ingested dataset too.
"""

from __future__ import annotations

from dataclasses import asdict

from components.data.codec import encode_jpeg, encode_mask
from components.data.records import VideoRecord, object_ids_in
from components.data.sources.base import ReadOptions
from components.data.synthetic import generate_video, parse_spec
from components.errors import DataError


class SyntheticSource:
    """Generates video i on demand; names are `synthetic-00000` ..."""

    kind = "synthetic"

    def __init__(self, location: str = "") -> None:
        self.location = location
        try:
            self.spec = parse_spec(location)
        except ValueError as exc:
            raise DataError(str(exc)) from None

    def list_videos(self) -> list[str]:
        return [f"synthetic-{i:05d}" for i in range(self.spec.videos)]

    def read(self, name: str, options: ReadOptions) -> VideoRecord:
        if options.short_side:
            raise DataError("synthetic: --short-side does not apply; set the size in the spec (size=N)")
        index = int(name.rsplit("-", 1)[1])
        video = generate_video(self.spec, index)
        count = len(video.frames)
        return VideoRecord(
            name=name,
            height=self.spec.height,
            width=self.spec.width,
            frame_names=[f"{i:05d}" for i in range(count)],
            frames=[encode_jpeg(f, options.jpeg_quality) for f in video.frames],
            annotated=list(range(count)),
            masks=[encode_mask(m) for m in video.masks],
            frame_objects=[object_ids_in(m) for m in video.masks],
            extras={"motion": video.motion.to_json(), "spec": asdict(self.spec), "index": index},
        )
