"""The ``folder`` dataset: ``images/`` and ``masks/`` matched by file stem.

Layout::

    root/images/<stem>.{png,jpg,...}   RGB images
    root/masks/<stem>.png              class-index masks (mode L or P), same size as the image
    root/dataset.json                  optional: {"classes": [...], "ignore_index": 255}
    root/splits.json                   optional: {"test": ["<stem>", ...]}, the layout's own
                                       test set, honoured by :func:`linas.data.make_splits`
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from linas._errors import ConfigError, DataError
from linas.data.datasets import (
    IMAGE_SUFFIXES,
    Pair,
    SegmentationDataset,
    few,
    index_by_stem,
    register_loader,
)


@register_loader("folder")
def load_folder(
    root: Path,
    size: tuple[int, int] | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = None,
) -> SegmentationDataset:
    """Folder dataset: ``root/images/*`` and ``root/masks/*`` (class-index PNGs) by stem.

    Classes and ignore index come from the options, else ``root/dataset.json`` (keys
    ``classes`` and ``ignore_index``), else the class count is inferred from the mask values
    when the dataset is validated (ignore index 255). An optional ``root/splits.json``
    ``{"test": [stems]}`` fixes the test set; the other images are split by ratio.

    Args:
        root: dataset folder.
        size: ``(H, W)`` to resize to, or ``None``.
        num_classes: class count, when no names are known.
        class_names: class names (override ``dataset.json``).
        ignore_index: ignored label value (overrides ``dataset.json``).

    Returns:
        The (not yet validated) dataset.

    Raises:
        DataError: missing folders, no images, unmatched images or masks, bad dataset.json
            or splits.json.
        ConfigError: ``num_classes`` disagrees with the class names.
    """
    pairs = _match_folder(root)
    meta_path = root / "dataset.json"
    meta = _read_meta(meta_path)
    names = list(class_names) if class_names is not None else _meta_classes(meta, meta_path)
    if names is not None and num_classes is not None and len(names) != num_classes:
        raise ConfigError(
            f"folder dataset {root}: num_classes={num_classes} but {len(names)} class names "
            f"{names}; drop one of the two or make them agree"
        )
    if names is None and num_classes is not None:
        names = [f"class_{i}" for i in range(int(num_classes))]
    ignore = ignore_index if ignore_index is not None else _meta_ignore(meta, meta_path)
    test = _layout_test(root / "splits.json", [image.stem for image, _ in pairs])
    name = f"folder dataset {root}"
    return SegmentationDataset(pairs, names, ignore, size, name=name, test_indices=test)


def _layout_test(path: Path, stems: list[str]) -> list[int] | None:
    """Indices of the stems listed under "test" in ``splits.json``; ``None`` without the file."""
    if not path.is_file():
        return None
    meta = _read_meta(path)
    listed = meta.get("test")
    extra = sorted(set(meta) - {"test"})
    if extra or not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
        raise DataError(
            f'splits file {path}: expected {{"test": ["<stem>", ...]}} (got keys '
            f'{sorted(meta)}); list the test images\' stems under "test" only'
        )
    position = {stem: i for i, stem in enumerate(stems)}
    unknown = sorted(set(listed) - set(position))
    if unknown:
        raise DataError(
            f"splits file {path}: {len(unknown)} test stem(s) have no image in images/: "
            f"{few(unknown)}; fix the stems or add the images"
        )
    if not listed:
        raise DataError(f'splits file {path}: "test" is empty; list test stems or delete it')
    return [position[stem] for stem in listed]


LOSSY_SUFFIXES = (".jpg", ".jpeg")


def _match_folder(root: Path) -> list[Pair]:
    images_dir, masks_dir = root / "images", root / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataError(
                f"folder dataset {root}: missing {folder.name}/ folder; a folder dataset holds "
                "images/ and masks/ with matching file stems"
            )
    images, masks = index_by_stem(images_dir), index_by_stem(masks_dir)
    if not images:
        raise DataError(
            f"folder dataset {root}: no images in {images_dir} (suffixes "
            f"{', '.join(IMAGE_SUFFIXES)}); add images or pass the right root"
        )
    orphans = sorted(set(images) - set(masks))
    if orphans:
        raise DataError(
            f"folder dataset {root}: {len(orphans)} image(s) have no mask in {masks_dir}: "
            f"{few(orphans)}; add <stem>.png masks or remove those images"
        )
    strays = sorted(set(masks) - set(images))
    if strays:
        raise DataError(
            f"folder dataset {root}: {len(strays)} mask(s) have no image in {images_dir}: "
            f"{few(strays)}; add the images or remove those masks"
        )
    lossy = sorted(p.name for p in masks.values() if p.suffix.lower() in LOSSY_SUFFIXES)
    if lossy:
        raise DataError(
            f"folder dataset {root}: {len(lossy)} mask(s) are JPEG ({few(lossy)}); lossy "
            "compression changes class indices along every edge; save masks as PNG"
        )
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _read_meta(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"dataset metadata {path}: not valid JSON ({err}); fix or delete it"
        ) from err
    if not isinstance(meta, dict):
        raise DataError(f"dataset metadata {path}: expected a JSON object; fix or delete it")
    return meta


def _meta_classes(meta: dict[str, object], path: Path) -> list[str] | None:
    classes = meta.get("classes")
    if classes is None:
        return None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(
            f"dataset metadata {path}: 'classes' is {classes!r}; give a non-empty list of names"
        )
    return [str(c) for c in classes]


def _meta_ignore(meta: dict[str, object], path: Path) -> int:
    ignore = meta.get("ignore_index", 255)
    if not isinstance(ignore, int) or isinstance(ignore, bool):
        raise DataError(f"dataset metadata {path}: 'ignore_index' is {ignore!r}; give an integer")
    return ignore
