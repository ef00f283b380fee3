"""Synthetic sealer generator: determinism, file format and class statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import generate_sealer_dataset, render_sample
from linas.data.synth import BACKGROUND, DEFECT, SEALER


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_render_sample_shapes_and_values() -> None:
    image, mask = render_sample(np.random.default_rng(3), (40, 56))
    assert image.shape == (40, 56, 3) and image.dtype == np.uint8
    assert mask.shape == (40, 56) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {BACKGROUND, SEALER, DEFECT}


def test_render_sample_is_a_pure_function_of_the_generator() -> None:
    a = render_sample(np.random.default_rng([5, 1]), (64, 64))
    b = render_sample(np.random.default_rng([5, 1]), (64, 64))
    c = render_sample(np.random.default_rng([6, 1]), (64, 64))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    first = generate_sealer_dataset(tmp_path / "a", 4, (48, 64), seed=7)
    second = generate_sealer_dataset(tmp_path / "b", 4, (48, 64), seed=7)
    other = generate_sealer_dataset(tmp_path / "c", 4, (48, 64), seed=8)
    assert _files(first) == _files(second)
    assert _files(first).keys() == _files(other).keys()
    assert all(_files(first)[k] != _files(other)[k] for k in _files(first) if "images" in k)


def test_image_depends_only_on_seed_and_index(tmp_path: Path) -> None:
    small = generate_sealer_dataset(tmp_path / "small", 2, (32, 32), seed=1)
    large = generate_sealer_dataset(tmp_path / "large", 5, (32, 32), seed=1)
    assert _files(small).items() <= _files(large).items()


def test_written_layout_and_metadata(tmp_path: Path) -> None:
    root = generate_sealer_dataset(tmp_path, 3, (32, 48), seed=2)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta == {
        "name": "synthetic-sealer",
        "classes": ["background", "sealer", "defect"],
        "ignore_index": 255,
        "seed": 2,
        "size": [32, 48],
        "n_images": 3,
    }
    with Image.open(root / "images" / "00002.png") as image:
        assert image.mode == "RGB" and image.size == (48, 32)
    with Image.open(root / "masks" / "00002.png") as mask:
        assert mask.mode == "L" and mask.size == (48, 32)


def test_refuses_to_mix_with_an_earlier_run_unless_asked(tmp_path: Path) -> None:
    generate_sealer_dataset(tmp_path, 5, (32, 32), seed=0)
    with pytest.raises(DataError, match="overwrite"):
        generate_sealer_dataset(tmp_path, 2, (32, 32), seed=0)
    generate_sealer_dataset(tmp_path, 2, (32, 32), seed=0, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["00000.png", "00001.png"]


@pytest.mark.parametrize("n_images, size", [(0, (32, 32)), (2, (8, 32)), (2, (32,))])
def test_bad_arguments(tmp_path: Path, n_images: int, size: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError):
        generate_sealer_dataset(tmp_path, n_images, size)  # type: ignore[arg-type]


def test_class_statistics_over_50_images() -> None:
    masks = [render_sample(np.random.default_rng([0, i]), (128, 128))[1] for i in range(50)]
    stack = np.stack(masks)  # (50, H, W)
    shares = np.bincount(stack.ravel(), minlength=3) / stack.size
    defective = np.mean([(m == DEFECT).any() for m in masks])
    assert 0.08 <= shares[SEALER] <= 0.30, shares
    assert 0.015 <= shares[DEFECT] <= 0.08, shares
    assert 0.6 <= defective <= 0.97, defective
    assert all((m == SEALER).any() for m in masks)


def test_defects_differ_in_colour_from_sealer() -> None:
    # A local appearance cue: defect pixels are not just relabelled sealer pixels.
    gaps = 0.0
    for i in range(20):
        image, mask = render_sample(np.random.default_rng([0, i]), (128, 128))
        if (mask == DEFECT).sum() < 20:
            continue
        sealer = image[mask == SEALER].astype(float).mean(0)
        defect = image[mask == DEFECT].astype(float).mean(0)
        gaps = max(gaps, float(np.abs(sealer - defect).max()))
    assert gaps > 40
