"""Input sizes the network can run: H and W multiples of the encoder's 32x downsampling.

A run asks for ``data.size``; :func:`check_network_size` turns it into the size the network
sees, by one of three ``data.fit`` policies:

- ``refuse`` (default): the size must already be valid, else a ConfigError names the nearest
  valid size.
- ``resize``: each side is rounded to the nearest multiple of 32 and samples are resized to
  that (images bilinear, masks nearest).
- ``pad``: samples are resized to the requested size, then padded bottom/right up to the next
  multiple of 32: images with zeros after normalisation, masks with the ignore index, so
  padded pixels never count in loss or metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from linas._errors import ConfigError, unknown_name

NETWORK_STRIDE = 32  # the encoder's total downsampling
FITS = ("refuse", "resize", "pad")


def check_size(size: Sequence[int], key: str = "data.size") -> tuple[int, int]:
    """Check that ``size`` is ``(H, W)`` with two positive integers.

    Raises:
        ConfigError: naming ``key`` and the value.
    """
    values = list(size) if isinstance(size, Sequence) and not isinstance(size, str) else None
    if (
        values is None
        or len(values) != 2
        or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in values)
        or min(values) < 1
    ):
        raise ConfigError(
            f"{key} {size!r}: dataset size must be (H, W) with two positive ints, e.g. [128, 128]"
        )
    return int(values[0]), int(values[1])


def nearest_valid(side: int) -> int:
    """The multiple of 32 nearest to ``side`` (halves round up), at least 32."""
    return max(NETWORK_STRIDE, (side + NETWORK_STRIDE // 2) // NETWORK_STRIDE * NETWORK_STRIDE)


def next_valid(side: int) -> int:
    """The smallest multiple of 32 that is at least ``side`` (and at least 32)."""
    return max(NETWORK_STRIDE, -(-side // NETWORK_STRIDE) * NETWORK_STRIDE)


def is_network_size(size: Sequence[int]) -> bool:
    """Whether the network can run ``(H, W)`` as is."""
    return all(s >= NETWORK_STRIDE and s % NETWORK_STRIDE == 0 for s in size)


def check_network_size(
    size: Sequence[int], fit: str = "refuse", key: str = "data.size"
) -> tuple[int, int]:
    """The ``(H, W)`` the network runs at for a requested ``size`` under a fit policy.

    Args:
        size: requested ``(H, W)``.
        fit: ``refuse``, ``resize`` or ``pad`` (see the module docstring).
        key: how error messages name the size (a config key).

    Returns:
        The network input size: ``size`` itself (``refuse``), each side rounded to the nearest
        multiple of 32 (``resize``) or rounded up to the next one (``pad``).

    Raises:
        ConfigError: unknown ``fit``; a malformed ``size``; under ``refuse``, a size that is
            not a multiple of 32, naming the nearest valid size.
    """
    if fit not in FITS:
        raise unknown_name("data.fit value", str(fit), FITS)
    h, w = check_size(size, key)
    if fit == "resize":
        return nearest_valid(h), nearest_valid(w)
    if fit == "pad":
        return next_valid(h), next_valid(w)
    if not is_network_size((h, w)):
        raise ConfigError(
            f"{key} [{h}, {w}]: H and W must be multiples of {NETWORK_STRIDE} (the encoder "
            f"downsamples {NETWORK_STRIDE}x); nearest valid: [{nearest_valid(h)}, "
            f"{nearest_valid(w)}]; set data.size to it or data.fit: resize / pad"
        )
    return h, w


def pad_sample(
    image: torch.Tensor, mask: torch.Tensor, to: tuple[int, int], ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a normalised image with zeros and its mask with ``ignore_index``, bottom/right.

    Args:
        image: float ``(3, H, W)``, already normalised.
        mask: int64 ``(H, W)``.
        to: target ``(H2, W2)``, each at least the current size.

    Returns:
        ``(image (3, H2, W2), mask (H2, W2))``.
    """
    dh, dw = to[0] - image.shape[-2], to[1] - image.shape[-1]
    if dh < 0 or dw < 0:
        raise ValueError(f"pad_sample: {tuple(image.shape[-2:])} is larger than {to}")
    if dh == 0 and dw == 0:
        return image, mask
    padded = F.pad(image, (0, dw, 0, dh), value=0.0)  # (3, H2, W2)
    # F.pad's constant mode keeps the int64 dtype of the mask.
    labels = F.pad(mask, (0, dw, 0, dh), value=ignore_index)  # (H2, W2)
    return padded, labels
