"""Disk and memory checks made before long work starts, so a run refuses up front with the
figure needed instead of failing after minutes of training."""

from __future__ import annotations

import shutil
from pathlib import Path

from linas._errors import ConfigError
from linas.supernet import Supernet
from linas.supernet.encoder import TAPS

GIB = 1024**3


def feature_cache_bytes(n_images: int, size: tuple[int, int]) -> int:
    """RAM of the frozen encoder's cached features (float32, five taps) for ``n_images``."""
    h, w = size
    per_image = sum(c * (h // s) * (w // s) for _, c, s in TAPS) * 4
    return n_images * per_image


def available_ram_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def check_feature_cache(n_images: int, size: tuple[int, int]) -> tuple[int, str]:
    """(bytes, a one-line estimate) of the feature cache.

    Raises:
        ConfigError: the cache would not fit the available RAM, with the figure and the fix.
    """
    need = feature_cache_bytes(n_images, size)
    avail = available_ram_bytes()
    line = (f"feature cache: {n_images} images at {size[0]}x{size[1]} need {need / GIB:.2f} GiB "
            f"of RAM" + (f" ({avail / GIB:.1f} GiB available)" if avail else ""))
    if avail is not None and need > 0.8 * avail:
        raise ConfigError(f"{line}: more than 80% of the available memory; use fewer images "
                          "(data.n_images / a smaller dataset), a smaller data.size, or "
                          "encoder.finetune: true (no cache)")
    return need, line


def checkpoint_bytes(net: Supernet) -> int:
    """Estimated size of the search checkpoint: trainable weights and Adam's two moments."""
    params = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
    return 3 * params


def check_checkpoint_disk(net: Supernet, folder: Path) -> tuple[int, str]:
    """(bytes, a one-line estimate) of the search checkpoint.

    Raises:
        ConfigError: ``folder``'s disk lacks the space, with the figure needed.
    """
    need = checkpoint_bytes(net)
    folder.mkdir(parents=True, exist_ok=True)
    # an atomic write keeps the old checkpoint until the new one is complete: a whole new
    # copy must fit beside it
    free = shutil.disk_usage(folder).free
    line = f"search checkpoint: ~{need / GIB:.1f} GiB on disk ({free / GIB:.1f} GiB free)"
    if free < 1.1 * need:
        raise ConfigError(f"{line} in {folder}: not enough space for it; free "
                          f"{(1.1 * need - free) / GIB:.1f} GiB or pass an --out on a larger "
                          "disk")
    return need, line
