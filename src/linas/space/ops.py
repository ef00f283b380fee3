"""The decoder's candidate operations and widths (names only; no torch here).

The seven op names and three widths are the keys of the reference LUTs
(``Conv3x3_w50`` ... ``DilatedDWSep_w100``); their order fixes the choice index 0..20 used
by every array in the project: ``index = op_index * 3 + width_index``.
"""

from __future__ import annotations

from linas._errors import ConfigError, unknown_name

OPS: tuple[str, ...] = (
    "Conv3x3",
    "Conv5x5",
    "Conv7x7",
    "DWSep3x3",
    "DWSep5x5",
    "EdgeConv",
    "DilatedDWSep",
)
WIDTHS: tuple[float, ...] = (0.5, 0.75, 1.0)
WIDTH_TAGS: tuple[str, ...] = ("w50", "w75", "w100")
NUM_CHOICES = len(OPS) * len(WIDTHS)  # 21
CHOICE_KEYS: tuple[str, ...] = tuple(f"{op}_{tag}" for op in OPS for tag in WIDTH_TAGS)
_KEY_INDEX = {key: i for i, key in enumerate(CHOICE_KEYS)}


def choice_key(op: str, width: float) -> str:
    """LUT key of an (op, width) choice, e.g. ``('EdgeConv', 0.75) -> 'EdgeConv_w75'``."""
    return CHOICE_KEYS[choice_index(op, width)]


def choice_index(op: str, width: float) -> int:
    """Index 0..20 of an (op, width) choice; raises ConfigError naming the valid values."""
    if op not in OPS:
        raise unknown_name("op", op, OPS)
    if width not in WIDTHS:
        raise ConfigError(f"unknown width {width!r} for op '{op}'; valid widths: 0.5, 0.75, 1.0")
    return OPS.index(op) * len(WIDTHS) + WIDTHS.index(width)


def parse_choice(key: str) -> tuple[str, float]:
    """Parse a LUT key such as ``'DWSep5x5_w100'`` into ``('DWSep5x5', 1.0)``."""
    if key in _KEY_INDEX:
        i = _KEY_INDEX[key]
        return OPS[i // len(WIDTHS)], WIDTHS[i % len(WIDTHS)]
    op, _, tag = key.rpartition("_")
    if op in OPS:
        raise ConfigError(f"unknown width tag '{tag}' in '{key}'; valid tags: w50, w75, w100")
    raise unknown_name("choice", key, CHOICE_KEYS)


def key_index(key: str) -> int:
    """Index 0..20 of a LUT key."""
    if key not in _KEY_INDEX:
        parse_choice(key)  # raises the precise error
    return _KEY_INDEX[key]
