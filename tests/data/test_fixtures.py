"""The shared on-disk datasets of tests/conftest.py load, size and split as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import load_dataset, load_tensors, make_splits


def test_folder_dataset(folder_dataset: Path) -> None:
    images = sorted((folder_dataset / "images").iterdir())
    assert len(images) == 30 and all(p.suffix == ".jpg" for p in images)
    sizes = {Image.open(p).size for p in images}
    assert sizes == {(160, 96), (200, 120)}  # (W, H): mixed sizes
    dataset = load_dataset("folder", folder_dataset, size=(96, 160), fit="refuse")
    assert dataset.class_names == ("background", "sealer", "defect")
    assert dataset.class_counts is not None and np.all(dataset.class_counts > 0)
    splits = make_splits(dataset, seed=0)
    images_t, masks_t = load_tensors(dataset, splits["test"])
    assert images_t.shape[1:] == (3, 96, 160) and masks_t.shape[1:] == (96, 160)


def test_folder_dataset_needs_a_size_for_its_mixed_images(folder_dataset: Path) -> None:
    with pytest.raises(DataError, match="2 sizes.*set data.size"):
        load_dataset("folder", folder_dataset, fit="refuse")


def test_mvtec_dataset(mvtec_dataset) -> None:
    root, category = mvtec_dataset
    dataset = load_dataset("mvtec", root, size=(64, 96), fit="refuse", category=category)
    assert len(dataset) == 30 and dataset.class_names == ("good", "defect")
    with Image.open(root / category / "ground_truth" / "gap" / "000_mask.png") as mask:
        assert mask.mode == "L" and set(np.unique(np.asarray(mask))) == {0, 255}
    assert dataset.strata is not None and set(dataset.strata) == {"good", "gap", "spill"}
    with Image.open(root / category / "test" / "spill" / "000.png") as image:
        pixels = np.asarray(image, dtype=np.float64)  # (H, W, 3)
    with Image.open(root / category / "ground_truth" / "spill" / "000_mask.png") as mask:
        blob = np.asarray(mask) == 255
    assert np.abs(pixels[blob].mean(0) - pixels[~blob].mean(0)).max() > 40  # visible blobs
    splits = make_splits(dataset, seed=0)
    for name, part in splits.items():
        _, masks = load_tensors(dataset, part)
        assert int((masks == 1).sum()) > 0, name  # defect pixels in every split
        assert {dataset.strata[i] for i in part} == {"good", "gap", "spill"}, name


def test_mvtec_dataset_is_network_sized(mvtec_dataset) -> None:
    with pytest.raises(ConfigError, match="nearest valid"):
        load_dataset("mvtec", mvtec_dataset.root, size=(60, 90), fit="refuse")
