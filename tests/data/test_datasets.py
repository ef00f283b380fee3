"""Dataset loaders on tiny trees written in tmp_path: folder, MVTec-AD, Cityscapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    available_datasets,
    cityscapes_label_map,
    generate_sealer_dataset,
    load_dataset,
)

H, W = 8, 10


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _rgb(seed: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _folder(root: Path, masks: dict[str, np.ndarray], meta: dict | None = None) -> Path:
    """A folder dataset with one random RGB image per mask, matched by stem."""
    for i, (stem, mask) in enumerate(masks.items()):
        _png(root / "images" / f"{stem}.png", _rgb(i, mask.shape))
        _png(root / "masks" / f"{stem}.png", mask.astype(np.uint8), "L")
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def _labels(*values: int) -> np.ndarray:
    return np.resize(np.array(values, dtype=np.uint8), (H, W))


def test_registry_lists_the_three_kinds() -> None:
    assert {"folder", "mvtec", "cityscapes"} <= set(available_datasets())


def test_folder_reads_synthetic_dataset(tmp_path: Path) -> None:
    root = generate_sealer_dataset(tmp_path / "synth", 3, (24, 40), seed=0)
    dataset = load_dataset("folder", root)
    assert len(dataset) == 3 and dataset.num_classes == 3
    assert dataset.class_names == ("background", "sealer", "defect")
    assert dataset.class_counts is not None and dataset.class_counts.sum() == 3 * 24 * 40
    image, mask = dataset[1]
    assert image.shape == (3, 24, 40) and image.dtype == torch.float32
    assert mask.shape == (24, 40) and mask.dtype == torch.int64
    raw = np.asarray(Image.open(root / "images" / "00001.png"), dtype=np.float32) / 255
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    back = image * std.view(3, 1, 1) + mean.view(3, 1, 1)  # (3, H, W)
    assert torch.allclose(back.permute(1, 2, 0), torch.from_numpy(raw), atol=1e-5)
    assert np.array_equal(mask.numpy(), np.asarray(Image.open(root / "masks" / "00001.png")))


def test_folder_resize_keeps_label_values(tmp_path: Path) -> None:
    root = generate_sealer_dataset(tmp_path / "synth", 2, (24, 40), seed=0)
    image, mask = load_dataset("folder", root, size=(12, 16))[0]
    assert image.shape == (3, 12, 16) and mask.shape == (12, 16)
    assert set(mask.unique().tolist()) <= {0, 1, 2}


def test_folder_infers_classes_and_accepts_ignore(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0, 3), "b": _labels(1, 255)})
    dataset = load_dataset("folder", root)
    assert dataset.num_classes == 4 and dataset.ignore_index == 255
    assert dataset.class_counts is not None and dataset.class_counts[2] == 0


def test_folder_matches_jpg_images_to_png_masks(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "frame_1.jpg", _rgb(0))
    _png(tmp_path / "masks" / "frame_1.png", _labels(0, 1), "L")
    dataset = load_dataset("folder", tmp_path, num_classes=2)
    assert dataset.pairs[0][0].name == "frame_1.jpg"
    assert dataset.class_names == ("class_0", "class_1")


def test_folder_palette_masks_read_as_indices(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png", _rgb(0))
    (tmp_path / "masks").mkdir()
    palette = Image.new("P", (W, H))
    palette.putpalette([0, 0, 0, 200, 30, 30, 30, 200, 30])  # colours differ from indices
    palette.putdata(_labels(0, 1, 2).ravel().tolist())
    palette.save(tmp_path / "masks" / "a.png")
    _, mask = load_dataset("folder", tmp_path, num_classes=3)[0]
    assert np.array_equal(mask.numpy(), _labels(0, 1, 2))


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        load_dataset("folder", tmp_path / "nowhere")


def test_missing_masks_folder(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "a.png", _rgb(0))
    with pytest.raises(DataError, match="missing masks/"):
        load_dataset("folder", tmp_path)


def test_no_images(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="no images in .*images"):
        load_dataset("folder", tmp_path)


def test_images_without_masks_are_named(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)})
    _png(root / "images" / "lonely_1.png", _rgb(1))
    _png(root / "images" / "lonely_2.png", _rgb(2))
    with pytest.raises(DataError, match="2 image.*no mask.*lonely_1, lonely_2"):
        load_dataset("folder", root)


def test_masks_without_images_are_named(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)})
    _png(root / "masks" / "stray.png", _labels(0), "L")
    with pytest.raises(DataError, match="1 mask.*no image.*stray"):
        load_dataset("folder", root)


def test_duplicate_stems(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)})
    Image.fromarray(_rgb(3)).save(root / "images" / "a.jpg")
    with pytest.raises(DataError, match="stem 'a'"):
        load_dataset("folder", root)


def test_size_mismatch_names_file_and_sizes(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0), "b": _labels(1)})
    _png(root / "masks" / "b.png", np.zeros((H + 1, W), np.uint8), "L")
    with pytest.raises(DataError, match=r"b\.png: size 9x10 .* 8x10"):
        load_dataset("folder", root)


def test_label_out_of_range_names_file_and_values(tmp_path: Path) -> None:
    meta = {"classes": ["bg", "fg"], "ignore_index": 255}
    root = _folder(tmp_path, {"a": _labels(0, 1, 255), "b": _labels(0, 7, 9)}, meta)
    with pytest.raises(DataError, match=r"b\.png: label values 7, 9 .*num_classes=2"):
        load_dataset("folder", root)


def test_rgb_mask_is_rejected(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)})
    _png(root / "masks" / "a.png", _rgb(5))
    with pytest.raises(DataError, match=r"a\.png: mode 'RGB'"):
        load_dataset("folder", root)


def test_bad_dataset_json(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)})
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"dataset\.json: not valid JSON"):
        load_dataset("folder", root)


def test_num_classes_disagreeing_with_names(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a": _labels(0)}, {"classes": ["bg", "fg"]})
    with pytest.raises(ConfigError, match="num_classes=3"):
        load_dataset("folder", root, num_classes=3)


def test_unknown_kind_and_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'folder'"):
        load_dataset("foldr", tmp_path)
    with pytest.raises(ConfigError, match="'catgory'.*valid: .*num_classes"):
        load_dataset("folder", tmp_path, catgory="x")
    with pytest.raises(ConfigError, match="size"):
        load_dataset("folder", tmp_path, size=(0, 4))


# --- MVTec-AD ---------------------------------------------------------------------------


def _mvtec(root: Path, category: str = "bottle") -> Path:
    cat = root / category
    _png(cat / "train" / "good" / "000.png", _rgb(0))
    _png(cat / "test" / "good" / "000.png", _rgb(1))
    for i in range(2):
        _png(cat / "test" / "broken" / f"00{i}.png", _rgb(2 + i))
        gt = np.zeros((H, W), np.uint8)
        gt[2:5, 3 + i : 7] = 255
        _png(cat / "ground_truth" / "broken" / f"00{i}_mask.png", gt, "L")
    return root


def test_mvtec_test_split(tmp_path: Path) -> None:
    dataset = load_dataset("mvtec", _mvtec(tmp_path), category="bottle", split="test")
    assert len(dataset) == 3 and dataset.class_names == ("good", "defect")
    names = [(p.parent.name, p.name, m is None) for p, m in dataset.pairs]
    assert names == [
        ("broken", "000.png", False),
        ("broken", "001.png", False),
        ("good", "000.png", True),
    ]
    _, defect = dataset[0]
    assert defect.sum() == 12 and set(defect.unique().tolist()) == {0, 1}
    _, good = dataset[2]
    assert good.shape == (H, W) and good.sum() == 0
    assert dataset.class_counts is not None and dataset.class_counts[1] == 12 + 9


def test_mvtec_all_split_and_single_category_default(tmp_path: Path) -> None:
    dataset = load_dataset("mvtec", _mvtec(tmp_path), size=(4, 5))  # split "all" by default
    assert len(dataset) == 4 and dataset[0][1].shape == (4, 5)
    assert dataset.strata == ("good", "broken", "broken", "good")
    assert dataset.test_indices is None  # MVTec's own test split is not a segmentation test set
    assert len(load_dataset("mvtec", tmp_path / "bottle", split="train")) == 1


def test_mvtec_bilevel_masks(tmp_path: Path) -> None:
    root = _mvtec(tmp_path)
    gt = np.zeros((H, W), bool)
    gt[0, :4] = True
    Image.fromarray(gt).save(root / "bottle" / "ground_truth" / "broken" / "000_mask.png")
    assert load_dataset("mvtec", root, split="test")[0][1].sum() == 4


def test_mvtec_category_errors(tmp_path: Path) -> None:
    _mvtec(_mvtec(tmp_path), "cable")
    with pytest.raises(ConfigError, match="2 categories.*category="):
        load_dataset("mvtec", tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'bottle'"):
        load_dataset("mvtec", tmp_path, category="botle")


def test_mvtec_missing_ground_truth_is_named(tmp_path: Path) -> None:
    root = _mvtec(tmp_path)
    (root / "bottle" / "ground_truth" / "broken" / "001_mask.png").unlink()
    with pytest.raises(DataError, match=r"lack a mask.*broken/001\.png"):
        load_dataset("mvtec", root)


# --- Cityscapes -------------------------------------------------------------------------

_IDS = np.array([[7, 26, 0, 33, 9], [24, 11, 23, 1, 31]], dtype=np.uint8)
_TRAIN_IDS = np.array([[0, 13, 255, 18, 255], [11, 2, 10, 255, 16]])


def _cityscapes(root: Path, split: str = "val") -> Path:
    for city, frame in [("aachen", "aachen_000000_000019"), ("bonn", "bonn_000001_000019")]:
        _png(root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png", _rgb(0, (2, 5)))
        labels = root / "gtFine" / split / city / f"{frame}_gtFine_labelIds.png"
        _png(labels, _IDS, "L")
        _png(labels.with_name(f"{frame}_gtFine_color.png"), _rgb(1, (2, 5)))
    return root


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path: Path) -> None:
    dataset = load_dataset("cityscapes", _cityscapes(tmp_path), split="val")
    assert len(dataset) == 2 and dataset.num_classes == 19 and dataset.ignore_index == 255
    assert dataset.class_names[0] == "road" and dataset.class_names[13] == "car"
    for i in range(2):
        assert np.array_equal(dataset[i][1].numpy(), _TRAIN_IDS)


def test_cityscapes_table_matches_official_ids() -> None:
    table = cityscapes_label_map()
    assert (table[7], table[26], table[0], table[33], table[255]) == (0, 13, 255, 18, 255)
    assert sorted(table[table != 255].tolist()) == list(range(19))


def test_cityscapes_errors(tmp_path: Path) -> None:
    root = _cityscapes(tmp_path)
    with pytest.raises(ConfigError, match="split.*'train'.*valid: val"):
        load_dataset("cityscapes", root, split="train")
    (root / "gtFine" / "val" / "bonn" / "bonn_000001_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DataError, match="lack a labelIds.*bonn/bonn_000001_000019"):
        load_dataset("cityscapes", root, split="val")
