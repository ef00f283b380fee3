"""Disk and memory checks made before long work starts, so a run refuses up front with the
figure needed instead of failing after minutes of training."""

from __future__ import annotations

import shutil
from pathlib import Path

from linas._errors import ConfigError
from linas.search.fair import MOMENTUM_MODES
from linas.supernet import Supernet
from linas.supernet.encoder import TAPS

GIB = 1024**3


CACHE_DTYPE_BYTES = {"float32": 4, "float16": 2}


def feature_cache_bytes(n_images: int, size: tuple[int, int], dtype_bytes: int = 4) -> int:
    """Bytes of the frozen encoder's cached features (five taps) for ``n_images`` at ``size``
    (H, W), ``dtype_bytes`` a value (4: float32, 2: float16)."""
    h, w = size
    per_image = sum(c * (h // s) * (w // s) for _, c, s in TAPS) * dtype_bytes
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


def check_feature_cache(n_images: int, size: tuple[int, int], where: str = "ram",
                        dtype: str = "float32", folder: Path | None = None,
                        batch_size: int = 16) -> tuple[int, str]:
    """(bytes, a one-line estimate) of the feature cache, kept in RAM or on disk.

    Args:
        n_images: images of all splits together.
        size: (H, W) the encoder runs at.
        where: ``ram`` or ``disk`` (``compute.feature_cache``).
        dtype: ``float32`` or ``float16`` (``compute.cache_dtype``).
        folder: the cache folder (``RUN/cache``), required for ``disk``.
        batch_size: images encoded at a time (the RAM a disk cache needs).

    Raises:
        ConfigError: the cache would not fit the available RAM (``ram``) or the free disk
            space of ``folder`` (``disk``), with the figures and the fixes.
        ValueError: an unknown ``where``/``dtype``, or ``disk`` without a folder.
    """
    if dtype not in CACHE_DTYPE_BYTES or where not in ("ram", "disk"):
        raise ValueError(f"feature cache {where!r} {dtype!r}: use ram/disk and float32/float16")
    need = feature_cache_bytes(n_images, size, CACHE_DTYPE_BYTES[dtype])
    if where == "ram":
        return need, _check_ram_cache(n_images, size, dtype, need)
    if folder is None:
        raise ValueError("check_feature_cache(where='disk') needs the cache folder")
    return need, _check_disk_cache(n_images, size, dtype, need, Path(folder), batch_size)


def _check_ram_cache(n_images: int, size: tuple[int, int], dtype: str, need: int) -> str:
    avail = available_ram_bytes()
    line = (f"feature cache: {n_images} images at {size[0]}x{size[1]} need {need / GIB:.2f} GiB "
            f"of RAM in {dtype}" + (f" ({avail / GIB:.1f} GiB available)" if avail else ""))
    if avail is not None and need > 0.8 * avail:
        raise ConfigError(f"{line}: more than 80% of the available memory; use "
                          "compute.feature_cache: disk (memory-mapped, read batch by batch), "
                          "fewer images (data.n_images / a smaller dataset), a smaller "
                          "data.size, or encoder.finetune: true (no cache)")
    return line


def _check_disk_cache(n_images: int, size: tuple[int, int], dtype: str, need: int,
                      folder: Path, batch_size: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    # a cache already there is reused or replaced file by file: its bytes count as free
    have = sum(p.stat().st_size for p in folder.glob("*.npy") if p.is_file())
    batch = feature_cache_bytes(min(batch_size, n_images), size, 4)  # float32 maps of a batch
    line = (f"feature cache: {n_images} images at {size[0]}x{size[1]} in {dtype}: "
            f"{need / GIB:.1f} GiB on disk under {folder} ({free / GIB:.1f} GiB free); "
            f"RAM per batch ~{batch / GIB:.1f} GiB")
    if 1.1 * need > free + have:
        raise ConfigError(f"{line}: not enough space ({1.1 * need / GIB:.1f} GiB needed with a "
                          f"10% margin, {(free + have) / GIB:.1f} GiB usable); use "
                          "compute.cache_dtype: float16 (half the size), fewer images "
                          "(data.n_images / a smaller dataset), a smaller data.size, or "
                          "another --out on a larger disk")
    return line


def trainable_bytes(net: Supernet) -> int:
    """Bytes of the supernet's trainable weights."""
    return sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)


def moment_bytes(net: Supernet, momentum: str = "shared", split_layer: int = 0,
                 soft: bool = False) -> int:
    """Bytes of Adam's two moments over every optimizer state of the ``momentum`` mode.

    Adam creates a weight's moments on its first step, so a state holds moments only of the
    weights it trains: every weight for ``shared`` and ``seed`` (any candidate can fall in any
    state), but in ``dynas`` single-path steps state k trains only choice k of the split
    layer, which is most of the decoder's weights when that layer is layer 0 (21 states at
    the demo's 128x128, batch 16: a 10.0 GiB search estimated and ~9 GB seen, where counting
    21 full copies gave 28.6 GiB). A soft step trains every candidate through whichever state
    it picks, so with soft epochs every state counts in full.
    """
    params = trainable_bytes(net)
    rule = MOMENTUM_MODES.get(momentum)
    if not rule.pins_split_choice or soft:
        return 2 * rule.n_states * params
    split = sum(p.numel() * p.element_size() for p in net.layers[split_layer].parameters()
                if p.requires_grad)
    # state k: everything but the split layer, plus the split layer's choice k
    return 2 * (rule.n_states * (params - split) + split)


def checkpoint_bytes(net: Supernet, momentum: str = "shared", split_layer: int = 0,
                     soft: bool = False) -> int:
    """Estimated size of the search checkpoint: trainable weights and the Adam moments of
    every optimizer state."""
    return trainable_bytes(net) + moment_bytes(net, momentum, split_layer, soft)


def check_checkpoint_disk(net: Supernet, folder: Path, momentum: str = "shared",
                          split_layer: int = 0, soft: bool = False) -> tuple[int, str]:
    """(bytes, a one-line estimate) of the search checkpoint (arguments of the search as
    :func:`moment_bytes`).

    Raises:
        ConfigError: ``folder``'s disk lacks the space, with the figure needed.
    """
    need = checkpoint_bytes(net, momentum, split_layer, soft)
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


# Peak-memory model of a search step, fitted to benchmarks/scale.py on this CPU (fp32, batch
# 8): the process itself (torch, encoder, supernet weights) ~1.3 GiB; activations per image
# pixel of a single-path step ~2.1 kB (480x640: 6.4 GiB peak), of a soft step (all 21
# candidates of every layer kept) ~42 kB (128x128: 6.9 GiB peak).
PROCESS_BYTES = int(1.3 * GIB)
ACTIVATION_BYTES_PER_PIXEL = {"single": 2_100, "soft": 42_000}


def search_memory_bytes(net: Supernet, batch: int, size: tuple[int, int], soft: bool,
                        momentum: str = "shared", split_layer: int = 0) -> int:
    """Estimated peak RSS of a search step: the process, every trainable weight's gradient,
    the Adam moments of the ``momentum`` mode's states (:func:`moment_bytes`), and the step's
    activations (the soft step's when the schedule has soft epochs)."""
    per_pixel = ACTIVATION_BYTES_PER_PIXEL["soft" if soft else "single"]
    return (PROCESS_BYTES + trainable_bytes(net) + moment_bytes(net, momentum, split_layer, soft)
            + per_pixel * batch * size[0] * size[1])


def search_memory_line(need: int, batch: int, size: tuple[int, int], soft: bool,
                       n_optimizers: int = 1) -> str:
    """One line: the estimate, the RAM available, and the fixes that apply to this run when
    it does not fit."""
    avail = available_ram_bytes()
    kind = "soft" if soft else "single-path"
    line = (f"search memory: ~{need / GIB:.1f} GiB peak estimated ({kind} steps, batch {batch} "
            f"at {size[0]}x{size[1]})" + (f", {avail / GIB:.1f} GiB available" if avail else ""))
    if avail is not None and need > avail:
        fixes = ["lower search.batch_size"]
        if soft:
            fixes.append("set search.soft_epochs: 0 or search.train_mode: single-path")
        if n_optimizers > 1:
            fixes.append(f"search.momentum: shared (one optimizer state, not {n_optimizers})")
        fixes += ["a smaller data.size", "compute.device: cuda"]
        line += "; LIKELY OUT OF MEMORY: " + ", ".join(fixes[:-1]) + ", or " + fixes[-1]
    return line
