"""Segmentation datasets: one in-memory pair list, and loaders registered by name.

A loader turns a folder layout (plain folder, MVTec-AD, Cityscapes, the synthetic generator)
into a :class:`SegmentationDataset`; :func:`load_dataset` picks the loader from
:data:`DATASETS` by kind, checks its options, fits the sample size to the network (see
:mod:`linas.data.sizing`) and validates the result once, so that bad data fails at load time
with one clear line rather than mid-training.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from linas._errors import DataError, unknown_name
from linas._registry import Registry
from linas.data.sizing import check_network_size, check_size, pad_sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_MASK_MODES = ("L", "P", "I", "I;16", "1")

Pair = tuple[Path, Path | None]
Loader = Callable[..., "SegmentationDataset"]
DATASETS: Registry[Loader] = Registry("dataset kind")
_WRITES_ROOT: set[str] = set()  # kinds whose loader creates its root (the generator)


class SegmentationDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Image/mask pairs read on demand, resized and normalised for a segmentation network.

    Args:
        pairs: ``(image_path, mask_path)``; a ``None`` mask means every pixel is class 0.
        class_names: one name per class; ``None`` infers ``class_0..`` in :meth:`validate`
            from the largest label value found.
        ignore_index: label value excluded from loss and metrics.
        size: ``(H, W)`` to resize to (images bilinear, masks nearest); ``None`` keeps size.
        label_map: lookup table applied to raw mask values (``label = label_map[raw]``), e.g.
            Cityscapes labelIds -> trainIds; ``None`` uses the raw values.
        name: how errors refer to this dataset.
        pad_to: ``(H2, W2)`` to pad to after resizing (bottom/right; images 0 after
            normalisation, masks ``ignore_index``); ``None`` pads nothing.
        test_indices: the layout's own test subset (e.g. Cityscapes ``val`` in ``train+val``,
            a folder's ``splits.json``), honoured by :func:`linas.data.make_splits`.
        strata: one group label per pair (e.g. MVTec ``good`` / defect type) that splits
            spread over train / arch_val / test; ``None`` splits without strata.

    Raises:
        DataError: ``pairs`` is empty.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        class_names: Sequence[str] | None,
        ignore_index: int = 255,
        size: tuple[int, int] | None = None,
        label_map: np.ndarray | None = None,
        name: str = "dataset",
        *,
        pad_to: tuple[int, int] | None = None,
        test_indices: Sequence[int] | np.ndarray | None = None,
        strata: Sequence[str] | None = None,
    ) -> None:
        if not pairs:
            raise DataError(f"{name}: no image/mask pairs; check the dataset root and layout")
        if strata is not None and len(strata) != len(pairs):
            raise ValueError(f"{name}: {len(strata)} strata for {len(pairs)} pairs")
        self.pairs = [(Path(img), None if msk is None else Path(msk)) for img, msk in pairs]
        self.class_names = None if class_names is None else tuple(class_names)
        self.ignore_index = int(ignore_index)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.label_map = None if label_map is None else np.asarray(label_map, dtype=np.int64)
        self.name = name
        self.pad_to = None if pad_to is None else (int(pad_to[0]), int(pad_to[1]))
        self.test_indices = (
            None if test_indices is None else np.unique(np.asarray(test_indices, dtype=np.int64))
        )
        self.strata = None if strata is None else tuple(strata)
        self.class_counts: np.ndarray | None = None  # pixels per class, set by validate()
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)  # (3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)  # (3, 1, 1)

    @property
    def num_classes(self) -> int:
        """Number of classes (not counting the ignore index)."""
        if self.class_names is None:
            raise DataError(f"{self.name}: class count not known yet; call validate() first")
        return len(self.class_names)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of every sample (after resize and pad); ``None`` keeps native sizes."""
        return self.pad_to if self.pad_to is not None else self.size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(image, mask)``: float32 ``(3, H, W)`` ImageNet-normalised, int64 ``(H, W)``.

        ``H, W`` is :attr:`input_size` when set; padded pixels are 0 in the image and the
        ignore index in the mask.
        """
        with Image.open(self.pairs[index][0]) as raw:
            image = raw.convert("RGB")
        mask = torch.from_numpy(self.read_mask(index, resize=True))  # (H, W)
        if self.size is not None:
            image = image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3)
        x = torch.from_numpy(pixels).permute(2, 0, 1)  # (3, H, W)
        x = ((x - self._mean) / self._std).contiguous()
        if self.pad_to is not None:
            x, mask = pad_sample(x, mask, self.pad_to, self.ignore_index)  # (3, H2, W2), (H2, W2)
        return x, mask

    def native_size(self) -> tuple[int, int]:
        """The ``(H, W)`` all images share on disk (reads headers only).

        Raises:
            DataError: images of different sizes, naming two of them.
        """
        sizes: dict[tuple[int, int], Path] = {}
        for image_path, _ in self.pairs:
            with Image.open(image_path) as image:
                sizes.setdefault((image.size[1], image.size[0]), image_path)
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise DataError(
                f"{self.name}: images have {len(sizes)} sizes ({pa.name} {a[0]}x{a[1]}, "
                f"{pb.name} {b[0]}x{b[1]}, HxW); set data.size so every sample is resized alike"
            )
        return next(iter(sizes))

    def fit_to_network(self, fit: str = "refuse") -> tuple[int, int]:
        """Set ``size`` / ``pad_to`` so that every sample has a network-runnable size.

        The base size is ``size``, or the images' common native size when ``size`` is None.

        Args:
            fit: ``refuse``, ``resize`` or ``pad`` (see :mod:`linas.data.sizing`).

        Returns:
            The network input size, also :attr:`input_size`.

        Raises:
            ConfigError: under ``refuse``, a size that is not a multiple of 32.
            DataError: ``size`` is None and the images differ in size.
        """
        key = "data.size" if self.size is not None else f"data.size (native, {self.name})"
        base = self.size if self.size is not None else self.native_size()
        network = check_network_size(base, fit, key)
        self.size = base if fit == "pad" else network
        self.pad_to = network if fit == "pad" and network != base else None
        return network

    def read_mask(self, index: int, resize: bool = False) -> np.ndarray:
        """Decode, check and map one mask to class labels.

        Args:
            index: pair index.
            resize: apply ``size`` (nearest) before mapping.

        Returns:
            int64 ``(H, W)`` labels (after ``label_map``).

        Raises:
            DataError: the mask is not single-channel, its size differs from the image's, or a
                raw value has no entry in ``label_map``.
        """
        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as image:  # header only: no pixel decode
            width, height = image.size
        if mask_path is None:
            out = self.size if resize and self.size is not None else (height, width)
            return np.zeros(out, dtype=np.int64)
        with Image.open(mask_path) as raw:
            mask = _check_mask_image(raw, mask_path, (width, height), image_path)
            if resize and self.size is not None:
                mask = mask.resize((self.size[1], self.size[0]), Image.Resampling.NEAREST)
            values = np.asarray(mask).astype(np.int64)  # decodes while the file is open
        return self._map_labels(values, mask_path)

    def validate(self) -> np.ndarray:
        """Check every pair once and count pixels per class.

        Decodes each mask once; on failure a second pass (error path only) names the file.

        Returns:
            int64 ``(num_classes,)`` pixel counts, also stored as ``class_counts``.

        Raises:
            DataError: a size mismatch, a bad mask, or a label value that is neither below
                ``num_classes`` nor the ignore index (naming the file and the values).
        """
        hist = np.zeros(1, dtype=np.int64)
        for index in range(len(self)):
            counts = np.bincount(self.read_mask(index).ravel())
            hist = _add_padded(hist, counts)
        if self.class_names is None:
            labels = np.flatnonzero(hist)
            labels = labels[labels != self.ignore_index]
            n = int(labels.max()) + 1 if labels.size else 1
            self.class_names = tuple(f"class_{i}" for i in range(n))
        bad = self._bad_values(hist)
        if bad.size:
            self._raise_bad_values()
        counts = np.zeros(self.num_classes, dtype=np.int64)
        kept = min(self.num_classes, hist.size)
        counts[:kept] = hist[:kept]
        self.class_counts = counts
        return counts

    def _bad_values(self, hist: np.ndarray) -> np.ndarray:
        values = np.flatnonzero(hist)
        return values[(values >= self.num_classes) & (values != self.ignore_index)]

    def _raise_bad_values(self) -> None:
        for index, (_, mask_path) in enumerate(self.pairs):
            bad = self._bad_values(np.bincount(self.read_mask(index).ravel()))
            if bad.size:
                shown = ", ".join(str(v) for v in bad[:8])
                raise DataError(
                    f"mask {mask_path}: label values {shown} are not below num_classes="
                    f"{self.num_classes} nor the ignore index {self.ignore_index}; fix the "
                    "mask, or set classes / ignore_index (dataset.json or loader options)"
                )

    def _map_labels(self, raw: np.ndarray, mask_path: Path) -> np.ndarray:
        if raw.size and raw.min() < 0:
            raise DataError(f"mask {mask_path}: negative label {raw.min()}; labels must be >= 0")
        if self.label_map is None:
            return raw
        if raw.size and raw.max() >= self.label_map.size:
            raise DataError(
                f"mask {mask_path}: raw value {raw.max()} has no entry in the label map of "
                f"{self.name} (size {self.label_map.size}); check that this is a {self.name} mask"
            )
        return self.label_map[raw]


def _check_mask_image(
    raw: Image.Image, mask_path: Path, image_size: tuple[int, int], image_path: Path
) -> Image.Image:
    """Return the mask as a single-channel image of the image's size, or raise DataError."""
    if raw.mode not in _MASK_MODES:
        raise DataError(
            f"mask {mask_path}: mode '{raw.mode}' is not a class-index image; save masks as "
            "single-channel PNGs (mode L or P) whose pixel values are class indices"
        )
    if raw.size != image_size:
        (mw, mh), (iw, ih) = raw.size, image_size
        raise DataError(
            f"mask {mask_path}: size {mh}x{mw} (HxW) differs from image {image_path.name} "
            f"{ih}x{iw}; resize the mask with nearest-neighbour to the image size"
        )
    # Bilevel masks decode as 0/1 booleans; as "L" they read 0/255 like other binary masks.
    return raw.convert("L") if raw.mode == "1" else raw


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Add two histograms of different lengths."""
    out = np.zeros(max(a.size, b.size), dtype=np.int64)
    out[: a.size] += a
    out[: b.size] += b
    return out


def register_loader(kind: str, writes_root: bool = False) -> Callable[[Loader], Loader]:
    """Register a dataset loader in :data:`DATASETS` under ``kind``.

    The loader is called as ``loader(root, size, **opts)`` and returns an unvalidated
    :class:`SegmentationDataset`.

    Args:
        kind: the ``data.kind`` name.
        writes_root: the loader creates its data in ``root`` (the synthetic generator), so
            :func:`load_dataset` does not require ``root`` to exist.

    Raises:
        ValueError: ``kind`` is already registered.
    """

    def decorate(loader: Loader) -> Loader:
        DATASETS.add(kind, loader)
        if writes_root:
            _WRITES_ROOT.add(kind)
        return loader

    return decorate


def available_datasets() -> list[str]:
    """Return the registered dataset kinds, sorted."""
    return sorted(DATASETS.names())


def load_dataset(
    kind: str,
    root: str | Path,
    size: Sequence[int] | None = None,
    fit: str | None = None,
    **opts: object,
) -> SegmentationDataset:
    """Load, size and validate a dataset by kind.

    Args:
        kind: registered loader name (``folder``, ``mvtec``, ``cityscapes``, ``synthetic``).
        root: dataset root folder.
        size: ``(H, W)`` to resize every sample to, or ``None`` for the native size.
        fit: ``refuse`` / ``resize`` / ``pad`` to make the sample size network-runnable
            (multiples of 32, see :mod:`linas.data.sizing`); ``None`` uses ``size`` as given
            (for reading data outside a run).
        **opts: loader options (e.g. ``category`` for mvtec, ``split`` for cityscapes).

    Returns:
        The validated dataset (``class_counts`` filled in; ``input_size`` is the network
        size when ``fit`` is given).

    Raises:
        ConfigError: unknown kind, unknown option, bad ``size`` or ``fit``, or (``refuse``)
            a size that is not a multiple of 32.
        DataError: missing root, bad layout or bad masks.
    """
    loader = DATASETS.get(kind)
    valid = [p for p in inspect.signature(loader).parameters if p not in ("root", "size")]
    for key in opts:
        if key not in valid:
            raise unknown_name(f"'{kind}' dataset option", key, valid)
    checked = None if size is None else check_size(size)
    if fit is not None and checked is not None:
        check_network_size(checked, fit)  # refuse a bad size before reading any file
    root = Path(root).expanduser()
    if kind not in _WRITES_ROOT and not root.is_dir():
        raise DataError(
            f"dataset root {root} does not exist or is not a folder (kind '{kind}'); pass the "
            "folder that holds the data, or write one with `linas data synth`"
        )
    dataset = loader(root, checked, **opts)
    if fit is not None:
        dataset.fit_to_network(fit)
    dataset.validate()
    return dataset


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder`` (known suffixes, no hidden files), sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def index_by_stem(folder: Path) -> dict[str, Path]:
    """Map stem -> image file in ``folder``; raise DataError if two files share a stem."""
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            raise DataError(
                f"folder {folder}: two files share the stem '{path.stem}' ({files[path.stem].name}"
                f", {path.name}); keep one file per stem"
            )
        files[path.stem] = path
    return files


def few(names: Sequence[str], k: int = 5) -> str:
    """Join the first ``k`` names for an error message, noting how many were left out."""
    shown = ", ".join(names[:k])
    return shown + (f" (+{len(names) - k} more)" if len(names) > k else "")
