"""Network-runnable sizes: refuse / resize / pad, and images and masks treated alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import check_network_size, load_dataset


@pytest.mark.parametrize("size", [(32, 32), (96, 160), (480, 640)])
def test_valid_sizes_pass_under_every_fit(size: tuple[int, int]) -> None:
    for fit in ("refuse", "resize", "pad"):
        assert check_network_size(size, fit) == size


def test_refuse_names_size_nearest_valid_and_fix() -> None:
    expected = (
        "data.size [100, 150]: H and W must be multiples of 32 (the encoder downsamples 32x); "
        "nearest valid: [96, 160]; set data.size to it or data.fit: resize / pad"
    )
    with pytest.raises(ConfigError) as err:
        check_network_size([100, 150])
    assert str(err.value) == expected


@pytest.mark.parametrize(
    "size, resized, padded",
    [
        ((100, 150), (96, 160), (128, 160)),
        ((48, 20), (64, 32), (64, 32)),  # halves round up; never below 32
        ((1, 33), (32, 32), (32, 64)),
        ((64, 96), (64, 96), (64, 96)),
    ],
)
def test_resize_rounds_pad_rounds_up(
    size: tuple[int, int], resized: tuple[int, int], padded: tuple[int, int]
) -> None:
    assert check_network_size(size, "resize") == resized
    assert check_network_size(size, "pad") == padded


@pytest.mark.parametrize("size", [(0, 32), (32,), (32, 32, 3), (32.0, 64), (True, 32), "64x64"])
def test_malformed_sizes(size: object) -> None:
    with pytest.raises(ConfigError, match="data.size .*two positive ints"):
        check_network_size(size)  # type: ignore[arg-type]


def test_unknown_fit_lists_menu() -> None:
    with pytest.raises(ConfigError, match="data.fit value 'pd'.*did you mean 'pad'.*valid: pad"):
        check_network_size((64, 64), "pd")


# --- on a dataset -----------------------------------------------------------------------

H, W = 40, 60  # not a network size: resize -> (32, 64), pad -> (64, 64)


def _blocks(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """A folder dataset whose image colour encodes the class: three vertical bands."""
    colours = np.array([[20, 20, 20], [200, 200, 200], [200, 40, 40]], dtype=np.uint8)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (h, w) in enumerate(sizes):
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[:, w // 3 : 2 * w // 3] = 1
        mask[h // 2 :, 2 * w // 3 :] = 2
        Image.fromarray(colours[mask]).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i:02d}.png")
    meta = {"classes": ["bg", "band", "corner"], "ignore_index": 255}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _agreement(image: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of labelled pixels whose (normalised) image colour matches their label's colour."""
    red, grey = image[0], image[1]  # (H, W) each
    guess = torch.where(red < 0, 0, torch.where(grey > 0.5, 1, 2))
    keep = mask != 255
    return float((guess[keep] == mask[keep]).float().mean())


def test_refuse_fails_before_reading_any_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.size \[40, 60\].*nearest valid: \[32, 64\]"):
        load_dataset("folder", tmp_path / "absent", size=(H, W), fit="refuse")


def test_resize_fits_images_and_masks_alike(tmp_path: Path) -> None:
    dataset = load_dataset("folder", _blocks(tmp_path, [(H, W)] * 3), size=(H, W), fit="resize")
    assert dataset.input_size == (32, 64) and dataset.pad_to is None
    image, mask = dataset[0]
    assert image.shape == (3, 32, 64) and mask.shape == (32, 64)
    assert set(mask.unique().tolist()) == {0, 1, 2}
    assert _agreement(image, mask) > 0.95


def test_pad_fills_image_zeros_and_mask_ignore(tmp_path: Path) -> None:
    root = _blocks(tmp_path, [(H, W)] * 3)
    plain = load_dataset("folder", root, size=(H, W))
    padded = load_dataset("folder", root, size=(H, W), fit="pad")
    assert padded.input_size == (64, 64) and padded.size == (H, W)
    image, mask = padded[1]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64)
    ref_image, ref_mask = plain[1]
    assert torch.equal(image[:, :H, :W], ref_image) and torch.equal(mask[:H, :W], ref_mask)
    assert torch.all(image[:, H:] == 0) and torch.all(image[:, :, W:] == 0)
    assert torch.all(mask[H:] == 255) and torch.all(mask[:, W:] == 255)
    assert int((mask == 255).sum()) == 64 * 64 - H * W


def test_pad_uses_the_datasets_ignore_index(tmp_path: Path) -> None:
    root = _blocks(tmp_path, [(H, W)] * 3)
    _, mask = load_dataset("folder", root, size=(H, W), fit="pad", ignore_index=9)[0]
    assert torch.all(mask[H:] == 9)


def test_mixed_sizes_are_resized_alike(tmp_path: Path) -> None:
    sizes = [(H, W), (90, 120), (30, 50), (64, 96)]
    dataset = load_dataset("folder", _blocks(tmp_path, sizes), size=(64, 96), fit="refuse")
    for index in range(len(sizes)):
        image, mask = dataset[index]
        assert image.shape == (3, 64, 96) and mask.shape == (64, 96)
        assert set(mask.unique().tolist()) == {0, 1, 2}
        assert _agreement(image, mask) > 0.95, sizes[index]


def test_native_size_is_used_when_size_is_none(tmp_path: Path) -> None:
    dataset = load_dataset("folder", _blocks(tmp_path, [(64, 96)] * 3), fit="refuse")
    assert dataset.input_size == (64, 96) and dataset[0][0].shape == (3, 64, 96)


def test_native_size_not_a_multiple_of_32(tmp_path: Path) -> None:
    root = _blocks(tmp_path, [(H, W)] * 3)
    with pytest.raises(ConfigError, match=r"data.size \(native, folder dataset .*\[40, 60\]"):
        load_dataset("folder", root, fit="refuse")
    assert load_dataset("folder", root, fit="pad").input_size == (64, 64)


def test_mixed_native_sizes_need_a_size(tmp_path: Path) -> None:
    root = _blocks(tmp_path, [(64, 96), (64, 96), (32, 32)])
    with pytest.raises(DataError, match=r"2 sizes \(00\.png 64x96, 02\.png 32x32.*set data.size"):
        load_dataset("folder", root, fit="resize")


def test_mvtec_pad_keeps_good_masks_zero_inside(tmp_path: Path) -> None:
    cat = tmp_path / "toy"
    for i in range(2):
        (cat / "train" / "good").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H), (90, 90, 90)).save(cat / "train" / "good" / f"{i:03d}.png")
    dataset = load_dataset("mvtec", tmp_path, size=(H, W), fit="pad")
    _, mask = dataset[0]
    assert mask.shape == (64, 64) and int(mask[:H, :W].sum()) == 0
    assert torch.all(mask[H:] == 255)
