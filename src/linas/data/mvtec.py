"""The ``mvtec`` dataset: MVTec-AD layout with binary defect masks (0 good, 1 defect).

MVTec-AD is an anomaly-detection benchmark: its ``train/good`` holds no defects at all, and
every defect image sits in ``test/<defect>/``. Its own train/test split is therefore useless
for segmentation, and the loader does not report it as a layout test set. The default
``split="all"`` pools ``train/good`` and ``test/*``; each sample carries a stratum (``good`` or
its defect type) so that :func:`linas.data.make_splits` spreads good images and every defect
type over train, arch_val and test by ratio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linas._errors import ConfigError, DataError, unknown_name
from linas.data.datasets import Pair, SegmentationDataset, few, list_images, register_loader

MVTEC_CLASSES = ("good", "defect")
_SPLITS = ("test", "train", "all")


def mvtec_label_map() -> np.ndarray:
    """Lookup table for MVTec masks: raw 0..127 -> 0 good, 128..255 -> 1 defect."""
    # Masks are stored 0/255; the threshold also survives any resampling done upstream.
    table = np.zeros(256, dtype=np.int64)
    table[128:] = 1
    return table


@register_loader("mvtec")
def load_mvtec(
    root: Path,
    size: tuple[int, int] | None = None,
    category: str | None = None,
    split: str = "all",
) -> SegmentationDataset:
    """MVTec-AD: ``<category>/test/<defect>/*.png`` with ``ground_truth/<defect>/<stem>_mask.png``.

    ``good`` images (``test/good`` and ``train/good``) have no mask: all pixels are class 0.

    Args:
        root: the MVTec-AD root (holding categories) or one category folder.
        size: ``(H, W)`` to resize to, or ``None``.
        category: category folder under ``root``; may be omitted when ``root`` is a category
            or holds exactly one.
        split: ``all`` (default: ``train/good`` + ``test/*``, for splitting by ratio),
            ``test`` (all defect types and ``test/good``) or ``train`` (``train/good`` only).

    Returns:
        The (not yet validated) dataset, classes ``good`` / ``defect``, ignore index 255;
        ``strata`` is ``good`` or the defect type of each image, and no layout test set.

    Raises:
        ConfigError: unknown category or split.
        DataError: no images, or defect images without a ground-truth mask.
    """
    if split not in _SPLITS:
        raise unknown_name("MVTec split", split, _SPLITS)
    cat_dir = _category_dir(root, category)
    pairs: list[Pair] = []
    if split in ("train", "all"):
        pairs += [(p, None) for p in _images_in(cat_dir / "train" / "good")]
    if split in ("test", "all"):
        pairs += _test_pairs(cat_dir)
    if not pairs:
        raise DataError(
            f"MVTec category {cat_dir}: no images for split '{split}' (looked in test/<defect>/ "
            "and train/good/); check the root and category"
        )
    name = f"MVTec category {cat_dir}"
    strata = ["good" if mask is None else image.parent.name for image, mask in pairs]
    return SegmentationDataset(
        pairs, MVTEC_CLASSES, 255, size, mvtec_label_map(), name=name, strata=strata
    )


def _category_dir(root: Path, category: str | None) -> Path:
    if category is not None:
        cat_dir = root / category
        if not cat_dir.is_dir():
            raise unknown_name(f"MVTec category under {root}", category, _categories(root))
        return cat_dir
    if (root / "test").is_dir() or (root / "train").is_dir():
        return root  # root is itself a category folder
    found = _categories(root)
    if len(found) == 1:
        return root / found[0]
    raise ConfigError(
        f"MVTec root {root}: {len(found)} categories ({few(found)}); pass category=<name>"
    )


def _categories(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "test").is_dir() or (p / "train").is_dir())


def _images_in(folder: Path) -> list[Path]:
    return list_images(folder) if folder.is_dir() else []


def _test_pairs(cat_dir: Path) -> list[Pair]:
    test_dir = cat_dir / "test"
    if not test_dir.is_dir():
        return []
    pairs: list[Pair] = []
    missing: list[str] = []
    for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for image in list_images(defect_dir):
            if defect_dir.name == "good":
                pairs.append((image, None))
                continue
            mask = cat_dir / "ground_truth" / defect_dir.name / f"{image.stem}_mask.png"
            if not mask.is_file():
                missing.append(f"{defect_dir.name}/{image.name}")
            pairs.append((image, mask))
    if missing:
        raise DataError(
            f"MVTec category {cat_dir}: {len(missing)} defect image(s) lack a mask in "
            f"ground_truth/<defect>/<stem>_mask.png: {few(missing)}; restore the ground truth"
        )
    return pairs
