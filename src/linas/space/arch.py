"""Architectures of the fixed decoder search space: plain, hashable data.

An :class:`Arch` is five choice indices (0..20), one per decoder layer. Its canonical string
joins the five LUT keys with ``-``; its integer id (``0 .. 21**5 - 1``) is the base-21 number
whose most significant digit is layer 0, which lets numpy enumerate the whole space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from linas._errors import ConfigError
from linas.space.ops import CHOICE_KEYS, NUM_CHOICES, OPS, WIDTHS, key_index

NUM_LAYERS = 5


@dataclass(frozen=True)
class LayerSpec:
    """One decoder layer: channels in/out and the output stride relative to the input."""

    c_in: int
    c_out: int
    out_stride: int


# SPEC.md section 2: 1024->512 @H/16, 512->256 @H/8, 256->128 @H/4, 128->64 @H/2, 64->32 @H.
LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(1024, 512, 16),
    LayerSpec(512, 256, 8),
    LayerSpec(256, 128, 4),
    LayerSpec(128, 64, 2),
    LayerSpec(64, 32, 1),
)


@dataclass(frozen=True, order=True)
class Arch:
    """Five (op, width) choices, stored as choice indices 0..20 (``op * 3 + width``)."""

    choices: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.choices) != NUM_LAYERS:
            raise ConfigError(
                f"an architecture has {NUM_LAYERS} layers, got {len(self.choices)}: "
                f"{self.choices!r}; give one (op, width) choice per decoder layer"
            )
        for i, c in enumerate(self.choices):
            if not isinstance(c, int | np.integer) or not 0 <= int(c) < NUM_CHOICES:
                raise ConfigError(f"layer {i} choice {c!r} is not an index in 0..{NUM_CHOICES - 1}")
        object.__setattr__(self, "choices", tuple(int(c) for c in self.choices))

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Parse the canonical string, e.g. ``Conv3x3_w50-DWSep5x5_w100-...`` (5 keys)."""
        parts = text.strip().split("-")
        if len(parts) != NUM_LAYERS:
            raise ConfigError(
                f"architecture '{text}' has {len(parts)} parts, expected {NUM_LAYERS} LUT keys "
                "joined by '-', e.g. Conv3x3_w50-DWSep5x5_w100-EdgeConv_w75-Conv3x3_w100-"
                "DilatedDWSep_w50"
            )
        return cls(tuple(key_index(p) for p in parts))

    @classmethod
    def from_index(cls, index: int) -> Arch:
        """The architecture with integer id ``index`` in ``0 .. 21**5 - 1``."""
        return cls(tuple(int(d) for d in ids_to_choices(np.asarray([index]))[0]))

    @property
    def index(self) -> int:
        """Integer id of this architecture (base 21, layer 0 most significant)."""
        out = 0
        for c in self.choices:
            out = out * NUM_CHOICES + c
        return out

    @property
    def keys(self) -> tuple[str, ...]:
        """The five LUT keys."""
        return tuple(CHOICE_KEYS[c] for c in self.choices)

    def op(self, layer: int) -> str:
        return OPS[self.choices[layer] // len(WIDTHS)]

    def width(self, layer: int) -> float:
        return WIDTHS[self.choices[layer] % len(WIDTHS)]

    def __str__(self) -> str:
        return "-".join(self.keys)

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self), "layers": [{"op": self.op(i), "width": self.width(i)}
                                              for i in range(NUM_LAYERS)]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Arch:
        """Inverse of :meth:`to_json`; also accepts the canonical string or its JSON text."""
        if isinstance(data, str):
            text = data.strip()
            data = json.loads(text) if text.startswith("{") else {"arch": text}
        if "arch" not in data:
            raise ConfigError("architecture JSON lacks the key 'arch' (the canonical string)")
        return cls.parse(str(data["arch"]))


def ids_to_choices(ids: np.ndarray) -> np.ndarray:
    """Integer ids (N,) -> choice indices (N, 5), vectorised."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.empty((ids.shape[0], NUM_LAYERS), dtype=np.int64)
    rest = ids.copy()
    for layer in range(NUM_LAYERS - 1, -1, -1):
        out[:, layer] = rest % NUM_CHOICES
        rest //= NUM_CHOICES
    return out


def choices_to_ids(choices: np.ndarray) -> np.ndarray:
    """Choice indices (N, 5) -> integer ids (N,), vectorised."""
    choices = np.asarray(choices, dtype=np.int64)
    ids = np.zeros(choices.shape[0], dtype=np.int64)
    for layer in range(NUM_LAYERS):
        ids = ids * NUM_CHOICES + choices[:, layer]
    return ids
