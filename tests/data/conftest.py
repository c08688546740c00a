"""Tiny datasets written in the real on-disk layouts of DAVIS, YouTube-VOS and static sets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DAVIS_SAMPLE = SHARED_DATA / "davis2016-sample-480p"


def write_jpeg(path: Path, rgb: np.ndarray) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())
    return buf.tobytes()


def write_mask(path: Path, ids: np.ndarray, mode: str) -> None:
    """`L`: DAVIS 2016 (object -> 255); `P`: indexed with a DAVIS-like palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        Image.fromarray(np.where(ids > 0, 255, 0).astype(np.uint8), mode="L").save(path)
    else:
        image = Image.fromarray(ids.astype(np.uint8), mode="P")
        palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [200] * (3 * 251)
        image.putpalette(palette[: 3 * 256])
        image.save(path)


def moving_boxes(frames: int, height: int, width: int, objects: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames with textured noise and `objects` boxes drifting right; id masks to match."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for t in range(frames):
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        ids = np.zeros((height, width), np.uint8)
        for o in range(objects):
            y, x = 4 + 10 * o, 2 + t + 6 * o
            ids[y : y + 8, x : x + 10] = o + 1
            image[y : y + 8, x : x + 10] = (60 * (o + 1), 255 - 50 * o, 90)
        images.append(image)
        masks.append(ids)
    return images, masks


def make_davis(root: Path, sequences: dict[str, int], mode: str = "L", objects: int = 1, resolution: str | None = None,
               size: tuple[int, int] = (32, 48)) -> Path:
    """A DAVIS folder; `sequences` maps name -> number of frames, every frame annotated."""
    level = [resolution] if resolution else []
    for s, (name, count) in enumerate(sorted(sequences.items())):
        images, masks = moving_boxes(count, *size, objects, seed=s)
        for t, (image, ids) in enumerate(zip(images, masks)):
            write_jpeg(root.joinpath("JPEGImages", *level, name, f"{t:05d}.jpg"), image)
            write_mask(root.joinpath("Annotations", *level, name, f"{t:05d}.png"), ids, mode)
    return root


def make_youtube_vos(root: Path, split: str = "train") -> Path:
    """Two videos stored every 5th frame; in `late`, object 2 appears only from the third stored frame."""
    base = root / split
    meta = {"videos": {}}
    for v, name in enumerate(["early", "late"]):
        images, masks = moving_boxes(6, 32, 48, 2, seed=10 + v)
        if name == "late":
            masks = [np.where(m == 2, 0, m) if t < 2 else m for t, m in enumerate(masks)]
        for t, (image, ids) in enumerate(zip(images, masks)):
            stem = f"{5 * t:05d}"
            write_jpeg(base / "JPEGImages" / name / f"{stem}.jpg", image)
            write_mask(base / "Annotations" / name / f"{stem}.png", ids, "P")
        meta["videos"][name] = {"objects": {"1": {"category": "box", "frames": []}, "2": {"category": "box", "frames": []}}}
    (base / "meta.json").write_text(json.dumps(meta))
    return root


def make_static_two_folders(root: Path, count: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
        soft = np.zeros((40, 30), np.uint8)
        soft[10:30, 5:20] = 255
        soft[9, 5:20] = 100  # a soft edge, as salient-object masks have
        write_jpeg(root / "DUTS-TR-Image" / f"img_{i}.jpg", image)
        (root / "DUTS-TR-Mask").mkdir(parents=True, exist_ok=True)
        Image.fromarray(soft, mode="L").save(root / "DUTS-TR-Mask" / f"img_{i}.png")
    return root


def make_static_per_class(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for cls in ("apple", "boat"):
        for i in (1, 2):
            write_jpeg(root / cls / f"{i}.jpg", rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8))
            mask = np.zeros((24, 24), np.uint8)
            mask[4:12, 4:16] = 255
            Image.fromarray(mask, mode="L").save(root / cls / f"{i}.png")
    return root


def break_video(kind: str, root: Path) -> str:
    """Damage video `beta` of a DAVIS 2016 fixture; returns the file the error must name."""
    seq_images, seq_masks = root / "JPEGImages/beta", root / "Annotations/beta"
    if kind == "unreadable":
        (seq_images / "00001.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not image data \xff\xd9")
        return "beta/00001.jpg"
    if kind == "truncated":
        data = (seq_images / "00002.jpg").read_bytes()
        (seq_images / "00002.jpg").write_bytes(data[: len(data) * 2 // 3])
        return "beta/00002.jpg"
    if kind == "mask size":
        Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(seq_masks / "00003.png")
        return "beta/00003.png"
    if kind == "mask without image":
        Image.fromarray(np.zeros((32, 48), np.uint8), mode="L").save(seq_masks / "00009.png")
        return "beta/00009.png"
    if kind == "antialiasing":
        values = np.asarray(Image.open(seq_masks / "00004.png")).copy()
        values[5, 5:9] = 127
        Image.fromarray(values, mode="L").save(seq_masks / "00004.png")
        return "beta/00004.png"
    if kind == "empty sequence":
        for path in [*seq_images.iterdir(), *seq_masks.iterdir()]:
            path.unlink()
        return "JPEGImages/beta"
    raise AssertionError(kind)


def leftovers(out: Path) -> list[str]:
    """What an output folder holds (nothing at all after a failed ingestion)."""
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture
def davis16(tmp_path: Path) -> Path:
    return make_davis(tmp_path / "davis16", {"alpha": 6, "beta": 5, "gamma": 7})


@pytest.fixture
def davis17(tmp_path: Path) -> Path:
    return make_davis(tmp_path / "davis17", {"duo": 6, "trio": 5}, mode="P", objects=2, resolution="480p")


@pytest.fixture
def ytvos(tmp_path: Path) -> Path:
    return make_youtube_vos(tmp_path / "ytvos")


@pytest.fixture
def davis_sample() -> Path:
    if not DAVIS_SAMPLE.is_dir():
        pytest.skip(f"real DAVIS sample absent ({DAVIS_SAMPLE} not found)")
    return DAVIS_SAMPLE


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3-compatible server (moto_server) on a free 127.0.0.1 port; yields its endpoint URL."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if exe is None:
        pytest.fail("moto_server is not installed: `pip install -e '.[dev]'` brings moto[server]")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_env(moto_s3: str, monkeypatch):
    """Credentials and endpoint for s3fs/botocore pointing at the moto server, and a fresh bucket."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": moto_s3, "region_name": "us-east-1"}}
    bucket = f"corrvos-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return bucket, options
