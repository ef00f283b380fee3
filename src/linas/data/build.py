"""One call from a run's ``data`` config section to a loaded, network-sized dataset.

The section is read through :class:`DataSpec`, a protocol, so that this layer never imports
the run config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from linas._errors import ConfigError
from linas.data.datasets import SegmentationDataset, load_dataset

_SYNTHETIC_KEYS = ("n_images", "seed")


class DataSpec(Protocol):
    """What :func:`build_dataset` reads of a run's ``data`` section."""

    @property
    def kind(self) -> str: ...
    @property
    def root(self) -> str | None: ...
    @property
    def size(self) -> Sequence[int]: ...
    @property
    def fit(self) -> str: ...
    @property
    def n_images(self) -> int: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


def build_dataset(
    spec: DataSpec, data_dir: Path, seed: int
) -> tuple[SegmentationDataset, tuple[int, int]]:
    """Load the configured dataset at its network size.

    Args:
        spec: the ``data`` section: ``kind``, ``root``, ``size``, ``fit``, ``n_images``
            (synthetic only) and loader ``options``.
        data_dir: the run's data folder; the ``synthetic`` kind is generated or reused there
            (``data.root`` is not used for it), see :func:`linas.data.ensure_synthetic`.
        seed: the run's data seed, which the synthetic generator uses.

    Returns:
        ``(dataset, (H, W))``: the validated dataset and the size every sample has and the
        network runs at (``data.size`` after ``data.fit``).

    Raises:
        ConfigError: unknown kind or option, no ``root`` for a non-synthetic kind, a size
            the network cannot run under ``fit: refuse``.
        DataError: unreadable data, or a synthetic folder holding foreign files.
    """
    options = dict(spec.options)
    if spec.kind == "synthetic":
        clash = sorted(set(options) & set(_SYNTHETIC_KEYS))
        if clash:
            raise ConfigError(
                f"data.options {clash}: the synthetic kind takes data.n_images and the run "
                "seed; drop these options"
            )
        root = Path(data_dir)
        options.update(n_images=spec.n_images, seed=seed)
    elif not spec.root:
        raise ConfigError(
            f"data.root is not set for data.kind '{spec.kind}'; set it to the dataset folder"
        )
    else:
        root = Path(spec.root)
    dataset = load_dataset(spec.kind, root, tuple(spec.size), spec.fit, **options)
    size = dataset.input_size
    assert size is not None  # a fit always sets it
    return dataset, size
