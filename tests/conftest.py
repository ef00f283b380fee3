"""Shared fixtures: the reference LUT folder beside the repo, small deterministic tensors,
and small on-disk datasets (a folder dataset and an MVTec-AD tree) for end-to-end runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

from linas.data.synth import render_sample
from linas.pareto import non_dominated_mask
from linas.space import Arch

REFERENCE_LUTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts"


@pytest.fixture(scope="session")
def reference_luts() -> Path:
    if not REFERENCE_LUTS.is_dir():
        pytest.skip(f"reference LUTs not found at {REFERENCE_LUTS} (../shared beside the repo)")
    return REFERENCE_LUTS


# pytest-xdist runs the suite in one worker process per core (``-n auto`` in pyproject.toml):
# each worker, and each `linas` process a test starts (through OMP_NUM_THREADS), gets its share
# of the cores, so the workers do not oversubscribe the machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, (os.cpu_count() or 1) // _WORKERS))
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(THREADS)


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(THREADS)


def _check_device_result(out: Path, name: str, dev: dict[str, Any]) -> None:
    """One device of a run's results.json: a non-empty non-dominated front of valid
    architectures, a hypervolume, a selection with its budget verdict, and its plot."""
    assert dev["front"], name
    lat = [p["latency_ms"] for p in dev["front"]]
    acc = [p["miou"] for p in dev["front"]]
    assert non_dominated_mask(lat, acc).all(), name
    for p in dev["front"]:
        Arch.parse(p["arch"])
    assert dev["hypervolume"] >= 0 and len(dev["hv_reference"]) == 2
    sel = dev["selected"]
    assert set(sel) >= {"arch", "latency_ms", "miou", "meets_budget"}
    assert sel["meets_budget"] == (sel["latency_ms"] <= dev["budget_ms"])
    assert (out / "plots" / f"pareto_{name}.png").is_file()


@pytest.fixture
def check_device_result():
    """The results.json per-device contract check, shared by the demo tests."""
    return _check_device_result


# --- small on-disk datasets -------------------------------------------------------------

FOLDER_CLASSES = ("background", "sealer", "defect")
FOLDER_SIZE = (96, 160)  # (H, W): multiples of 32, non-square
FOLDER_OTHER_SIZE = (120, 200)  # a few images of another size, same aspect


class MVTecTree(NamedTuple):
    """An MVTec-AD tree: ``load_dataset("mvtec", root, category=category)`` reads it."""

    root: Path
    category: str


MVTEC_SIZE = (64, 96)  # (H, W): multiples of 32, non-square
MVTEC_DEFECTS = ("gap", "spill")


@pytest.fixture(scope="session")
def folder_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder dataset of 30 synthetic sealer images; returns its root.

    ``root/images/img_NNN.jpg`` (JPEG, quality 95), ``root/masks/img_NNN.png`` (mode L class
    indices 0 background, 1 sealer, 2 defect) and ``root/dataset.json`` naming the three
    classes (ignore index 255). 26 images are 96 x 160 (HxW) and 4 (img_026..img_029) are
    120 x 200, so load it with ``size=(96, 160)``. Rendered by
    :func:`linas.data.synth.render_sample`: sealer and defects have colour and shape cues a
    small decoder learns. Session-scoped: do not modify it.
    """
    root = tmp_path_factory.mktemp("folder_dataset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(30):
        size = FOLDER_SIZE if i < 26 else FOLDER_OTHER_SIZE
        image, mask = render_sample(np.random.default_rng([11, i]), size)
        Image.fromarray(image).save(root / "images" / f"img_{i:03d}.jpg", quality=95)
        Image.fromarray(mask).save(root / "masks" / f"img_{i:03d}.png")
    meta = {"classes": list(FOLDER_CLASSES), "ignore_index": 255}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root


@pytest.fixture(scope="session")
def mvtec_dataset(tmp_path_factory: pytest.TempPathFactory) -> MVTecTree:
    """An MVTec-AD category tree of 30 PNG images, 64 x 96 (HxW); returns ``(root, category)``.

    ``root/bead/train/good/000..011.png``, ``test/good/000..005.png``, and for each defect
    type ``gap`` (dark reddish blobs) and ``spill`` (bright amber blobs):
    ``test/<defect>/000..005.png`` with ``ground_truth/<defect>/<stem>_mask.png`` (mode L,
    0 / 255). Images show a grey bead on brushed metal; every defect image has one or two
    visible blobs. Session-scoped: do not modify it.
    """
    root = tmp_path_factory.mktemp("mvtec_dataset")
    cat = root / "bead"
    rng = np.random.default_rng(23)
    for folder, count in [("train/good", 12), ("test/good", 6)]:
        for i in range(count):
            _save_png(cat / folder / f"{i:03d}.png", _mvtec_good(rng))
    for kind in MVTEC_DEFECTS:
        for i in range(6):
            image, mask = _mvtec_defect(rng, kind)
            _save_png(cat / "test" / kind / f"{i:03d}.png", image)
            _save_png(cat / "ground_truth" / kind / f"{i:03d}_mask.png", mask)
    return MVTecTree(root, "bead")


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _mvtec_good(rng: np.random.Generator) -> np.ndarray:
    """Brushed grey metal with a horizontal grey bead: uint8 (H, W, 3)."""
    h, w = MVTEC_SIZE
    yy = np.arange(h, dtype=np.float64)[:, None]  # (H, 1)
    streaks = rng.normal(0.0, 0.03, (h, 1)) + rng.normal(0.0, 0.01, (h, w))  # (H, W)
    lum = rng.uniform(0.45, 0.6) + streaks
    centre, half = rng.uniform(0.4, 0.6) * h, rng.uniform(6.0, 10.0)
    t = np.clip((yy - centre) / half, -1.0, 1.0)
    bead = np.abs(yy - centre) < half  # (H, 1)
    lum = np.where(bead, 0.55 + 0.3 * np.sqrt(1.0 - t**2), lum)
    rgb = np.repeat(lum[..., None], 3, axis=2)  # (H, W, 3)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def _mvtec_defect(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A good image with one or two elliptic blobs; returns (image, mask 0/255)."""
    image = _mvtec_good(rng).astype(np.float64) / 255.0
    h, w = MVTEC_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)  # (H, W) each
    blob = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        cy, cx = rng.uniform(0.25 * h, 0.75 * h), rng.uniform(0.15 * w, 0.85 * w)
        ry, rx = rng.uniform(4.0, 8.0), rng.uniform(5.0, 11.0)
        blob |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0
    colour = np.array([0.42, 0.22, 0.16]) if kind == "gap" else np.array([0.95, 0.72, 0.3])
    image[blob] = colour * rng.uniform(0.9, 1.1) + rng.normal(0.0, 0.03, (int(blob.sum()), 3))
    rgb = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return rgb, (blob * 255).astype(np.uint8)
