"""The ``cityscapes`` dataset: leftImg8bit images with gtFine labelIds mapped to trainIds.

Cityscapes withholds the labels of its ``test`` split, so ``val`` serves as the test set: the
default ``split="train+val"`` loads both and reports the ``val`` images as the layout's test
set, which :func:`linas.data.make_splits` honours (train / arch_val are drawn from ``train``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linas._errors import ConfigError, DataError, unknown_name
from linas.data.datasets import Pair, SegmentationDataset, few, register_loader

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip
IGNORE_INDEX = 255

# Official labelId -> trainId table (cityscapesScripts, helpers/labels.py); every id not
# listed (unlabeled, ego vehicle, ..., parking, rail track, guard rail, bridge, tunnel,
# polegroup, caravan, trailer, license plate) is ignored.
LABEL_TO_TRAIN = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip

_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"


def cityscapes_label_map() -> np.ndarray:
    """Lookup table over raw labelIds 0..255: trainId, or 255 for ignored ids."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    for label_id, train_id in LABEL_TO_TRAIN.items():
        table[label_id] = train_id
    return table


@register_loader("cityscapes")
def load_cityscapes(
    root: Path, size: tuple[int, int] | None = None, split: str = "train+val"
) -> SegmentationDataset:
    """Cityscapes: ``leftImg8bit/<split>/<city>/*`` with ``gtFine/<split>/<city>/*_labelIds``.

    Args:
        root: the Cityscapes root (holding ``leftImg8bit/`` and ``gtFine/``).
        size: ``(H, W)`` to resize to, or ``None`` (native 1024 x 2048).
        split: a folder under ``leftImg8bit/`` (``train``, ``val``, ``test``), or several
            joined by ``+``; when several include ``val``, its images are the test set.

    Returns:
        The (not yet validated) dataset: 19 trainId classes, ignore index 255.

    Raises:
        ConfigError: a split folder does not exist, or one is named twice.
        DataError: no images, or images without a labelIds file.
    """
    image_root, label_root = root / "leftImg8bit", root / "gtFine"
    for folder in (image_root, label_root):
        if not folder.is_dir():
            raise DataError(
                f"Cityscapes root {root}: missing {folder.name}/; pass the folder that holds "
                "leftImg8bit/ and gtFine/"
            )
    parts = split.split("+")
    if len(set(parts)) != len(parts):
        raise ConfigError(f"Cityscapes split '{split}' names a folder twice; name each once")
    pairs: list[Pair] = []
    test: list[int] = []
    for part in parts:
        if not (image_root / part).is_dir():
            splits = [p.name for p in image_root.iterdir() if p.is_dir()]
            raise unknown_name(f"Cityscapes split in {image_root}", part, splits)
        found = _pairs(image_root / part, label_root / part)
        if part == "val" and len(parts) > 1:
            test += range(len(pairs), len(pairs) + len(found))
        pairs += found
    name = f"Cityscapes {split} split at {root}"
    return SegmentationDataset(
        pairs,
        CITYSCAPES_CLASSES,
        IGNORE_INDEX,
        size,
        cityscapes_label_map(),
        name=name,
        test_indices=test or None,
    )


def _pairs(image_dir: Path, label_dir: Path) -> list[Pair]:
    pairs: list[Pair] = []
    missing: list[str] = []
    for image in sorted(image_dir.glob(f"*/*{_IMAGE_SUFFIX}")):
        prefix = image.name[: -len(_IMAGE_SUFFIX)]
        label = label_dir / image.parent.name / f"{prefix}{_LABEL_SUFFIX}"
        if not label.is_file():
            missing.append(f"{image.parent.name}/{prefix}")
        pairs.append((image, label))
    if not pairs:
        raise DataError(
            f"Cityscapes: no *{_IMAGE_SUFFIX} files in {image_dir}/<city>/; check the root"
        )
    if missing:
        raise DataError(
            f"Cityscapes: {len(missing)} image(s) lack a labelIds file in {label_dir}: "
            f"{few(missing)}; expected <city>/<prefix>{_LABEL_SUFFIX}"
        )
    return pairs
