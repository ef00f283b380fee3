"""Latency look-up tables: the v1 reference schema, the v2 schema, one validating loader.

Schema v1 (the reference LUTs in ``../shared/reference-luts``)::

    {"hardware": str, "input_size": 128, "warmup": int, "repeat": int,
     "layers": {"layer_0": {"C_in", "C_out", "H_out", "W_out",
                            "ops": {"Conv3x3_w50": {"mean_ms", "std_ms"}, ...}}, ...}}

Schema v2 is a superset: ``"schema": "linas-lut/v2"``, ``input_size`` may be ``[H, W]``,
per-op entries may add ``median_ms``, ``p95_ms``, ``count``; plus ``provenance`` (runtime,
versions, device, threads, date, ...), an optional ``fixed`` entry (encoder, skip fusions,
classifier, measured once) and optional ``interactions`` (adjacent-layer pair terms).

Files written by the original LINAS code (hopo55/Seg-NAS ``lut_builder.py``) load as they are:
``input_size`` may be the string ``"480x640"`` and/or ``input_h`` / ``input_w`` may give the
size, and the tables may hold entries outside this search space (widths ``w25``/``w125``, ops
such as ``Conv3x3_SE``). Those are skipped and listed in :attr:`LUT.ignored_entries`
(:meth:`LUT.ignored_summary` says it in one line); an entry *of* the space that is missing is
still an error.

A table with interaction terms is refused when its full model (fixed + ops + pairs) would
predict a non-positive latency for any architecture of the space (checked exactly, see
:func:`linas.latency.sums.space_minimum`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linas._errors import LUTError
from linas._io import write_json_atomic
from linas.latency.sums import require_positive
from linas.space import CHOICE_KEYS, LAYERS, NUM_CHOICES, NUM_LAYERS, OPS, WIDTH_TAGS

# ``write_json_atomic`` is re-exported for importers not yet moved to ``linas._io``.
__all__ = ["LUT", "SCHEMA_V2", "STAT_KEYS", "find_luts", "load_lut", "lut_from_dict",
           "check_input_size", "describe_ignored", "parse_input_size", "save_lut",
           "write_json_atomic"]

SCHEMA_V2 = "linas-lut/v2"
STAT_KEYS = ("mean_ms", "std_ms", "median_ms", "p95_ms")
_SIZE_TEXT = re.compile(r"^\s*(\d+)\s*(?:[xX*]\s*(\d+)\s*)?$")  # "480x640" or "128"
_SHOWN_IGNORED = 3  # example keys named by LUT.ignored_summary


@dataclass
class LUT:
    """A per-device latency table as arrays; index ``[layer, choice]`` (choice = 0..20).

    ``fixed_ms`` is the end-to-end part outside the searched ops (None for decoder-only LUTs
    such as the reference ones); ``interactions`` has shape (4, 21, 21) for the pairs
    (layer i, layer i+1), or is None. ``ignored_entries`` lists what the file held outside the
    search space (``layer_0.Conv3x3_w25``, ...), skipped by the loader.
    """

    hardware: str
    input_size: tuple[int, int]
    mean_ms: np.ndarray  # (5, 21)
    std_ms: np.ndarray  # (5, 21)
    median_ms: np.ndarray | None = None
    p95_ms: np.ndarray | None = None
    count: np.ndarray | None = None
    fixed_ms: float | None = None
    fixed_std_ms: float | None = None
    interactions: np.ndarray | None = None
    interaction_method: str | None = None
    warmup: int | None = None
    repeat: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA_V2
    source: str = "<memory>"
    ignored_entries: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Device name used in results: the file stem when loaded from a file."""
        return Path(self.source).stem if self.source != "<memory>" else self.hardware

    @property
    def is_end_to_end(self) -> bool:
        """True when the LUT has a fixed part, so its predictions are end to end."""
        return self.fixed_ms is not None

    def ignored_summary(self) -> str | None:
        """One line on the entries skipped as outside the search space, or None if none.

        E.g. ``LUT orin_480.json: ignored 120 entries outside the search space (widths w25,
        w125; ops Conv3x3_SE, DWSep3x3_SE; e.g. layer_0.Conv3x3_w25, ...)``.
        """
        if not self.ignored_entries:
            return None
        return (f"LUT {self.source}: ignored {len(self.ignored_entries)} entries outside the "
                f"search space ({describe_ignored(self.ignored_entries)}); the space has "
                f"{len(OPS)} ops x widths {'/'.join(WIDTH_TAGS)}")

    def to_dict(self) -> dict[str, Any]:
        """Serialise as schema v2 (a superset of v1; ignored entries are not written)."""
        layers: dict[str, Any] = {}
        for i, spec in enumerate(LAYERS):
            ops: dict[str, Any] = {}
            for c, key in enumerate(CHOICE_KEYS):
                entry: dict[str, Any] = {"mean_ms": float(self.mean_ms[i, c]),
                                         "std_ms": float(self.std_ms[i, c])}
                if self.median_ms is not None:
                    entry["median_ms"] = float(self.median_ms[i, c])
                if self.p95_ms is not None:
                    entry["p95_ms"] = float(self.p95_ms[i, c])
                if self.count is not None:
                    entry["count"] = int(self.count[i, c])
                ops[key] = entry
            h, w = self.input_size
            layers[f"layer_{i}"] = {"C_in": spec.c_in, "C_out": spec.c_out,
                                    "H_out": h // spec.out_stride, "W_out": w // spec.out_stride,
                                    "ops": ops}
        out: dict[str, Any] = {"schema": SCHEMA_V2, "hardware": self.hardware,
                               "input_size": list(self.input_size),
                               "warmup": self.warmup, "repeat": self.repeat,
                               "provenance": self.provenance, "layers": layers}
        if self.fixed_ms is not None:
            out["fixed"] = {"mean_ms": self.fixed_ms, "std_ms": self.fixed_std_ms or 0.0}
        if self.interactions is not None:
            out["interactions"] = {
                "method": self.interaction_method or "unknown",
                "pairs": {f"layer_{i}-layer_{i + 1}": self.interactions[i].tolist()
                          for i in range(NUM_LAYERS - 1)},
            }
        return out


def save_lut(lut: LUT, path: str | Path) -> Path:
    """Write ``lut`` as schema v2 JSON, atomically (temp file + rename)."""
    path = Path(path)
    write_json_atomic(path, lut.to_dict())
    return path



def load_lut(path: str | Path, expect_input_size: tuple[int, int] | None = None) -> LUT:
    """Load a v1 or v2 LUT file (or one of the original LINAS code), validating it.

    Args:
        path: the JSON file.
        expect_input_size: when given, the LUT must have been measured at this (H, W).

    Returns:
        The :class:`LUT`; entries outside the search space are in ``ignored_entries``.

    Raises:
        LUTError: naming the file, the key or value at fault, and the fix; also when the
            LUT's input size differs from ``expect_input_size`` or its interaction terms make
            some architecture's latency non-positive.
    """
    path = Path(path)
    if not path.is_file():
        raise LUTError(f"LUT {path}: no such file; measure one with "
                       f"`linas lut measure --out {path}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LUTError(f"LUT {path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                       "re-measure it or fix the file") from None
    except UnicodeDecodeError:
        raise LUTError(f"LUT {path}: not UTF-8 JSON text (binary, or another encoding such as "
                       "UTF-16); save it as UTF-8 JSON or re-measure it") from None
    except OSError as exc:
        raise LUTError(f"LUT {path}: cannot be read ({exc.strerror}); check the path and its "
                       "permissions") from None
    if not isinstance(data, dict):
        raise LUTError(f"LUT {path}: top level is a {type(data).__name__}, not a JSON object; "
                       "re-measure it with `linas lut measure`")
    lut = lut_from_dict(data, source=str(path))
    if expect_input_size is not None:
        check_input_size(lut, expect_input_size)
    return lut


def check_input_size(lut: LUT, expect_input_size: tuple[int, int]) -> None:
    """Refuse ``lut`` unless it was measured at input ``expect_input_size`` (H, W).

    Raises:
        LUTError: naming the file, both sizes and how to measure a LUT at the right size.
    """
    want = (int(expect_input_size[0]), int(expect_input_size[1]))
    if tuple(lut.input_size) != want:
        h, w = want
        raise LUTError(
            f"LUT {lut.source}: measured at input {lut.input_size[0]}x{lut.input_size[1]} but "
            f"the model runs at {h}x{w}; latency does not scale across sizes, so measure one at "
            f"that size (`linas lut measure --size {h}x{w} --out FILE`) or run at "
            f"{lut.input_size[0]}x{lut.input_size[1]}")


def lut_from_dict(data: Any, source: str = "<memory>") -> LUT:
    """Build a validated :class:`LUT` from parsed JSON (v1, v2 or the original code's)."""
    where = f"LUT {source}"
    if not isinstance(data, dict):
        raise LUTError(f"{where}: top level must be a JSON object with 'hardware' and 'layers'")
    schema = data.get("schema", "v1")
    if schema not in ("v1", SCHEMA_V2):
        raise LUTError(f"{where}: unknown schema '{schema}'; supported: v1 (no 'schema' key), "
                       f"'{SCHEMA_V2}'")
    for key in ("hardware", "layers"):
        if key not in data:
            raise LUTError(f"{where}: lacks the key '{key}'; re-measure with `linas lut measure`")
    input_size = parse_input_size(data, where)
    layers = data["layers"]
    if not isinstance(layers, dict):
        raise LUTError(f"{where}: 'layers' must be an object with layer_0..layer_4")
    stats = {k: np.full((NUM_LAYERS, NUM_CHOICES), np.nan) for k in STAT_KEYS}
    count = np.zeros((NUM_LAYERS, NUM_CHOICES), dtype=np.int64)
    has = {k: True for k in (*STAT_KEYS, "count")}
    ignored = [str(k) for k in layers if k not in _LAYER_NAMES]
    for i, spec in enumerate(LAYERS):
        layer = _layer_block(layers, i, spec, input_size, where)
        ignored += [f"layer_{i}.{k}" for k in layer["ops"] if k not in _CHOICE_SET]
        for c, key in enumerate(CHOICE_KEYS):
            entry = layer["ops"].get(key)
            if not isinstance(entry, dict):
                raise LUTError(f"{where}: layer_{i} lacks '{key}'; re-measure with "
                               "`linas lut measure` or fill the entry")
            for stat in STAT_KEYS:
                if stat not in entry:
                    has[stat] = False
                    if stat in ("mean_ms", "std_ms"):
                        raise LUTError(f"{where}: layer_{i}.{key} lacks '{stat}'")
                    continue
                stats[stat][i, c] = _number(entry[stat], f"{where}: layer_{i}.{key}.{stat}",
                                            positive=stat != "std_ms")
            if "count" in entry:
                count[i, c] = _count(entry["count"], f"{where}: layer_{i}.{key}.count")
            else:
                has["count"] = False
    fixed_ms, fixed_std = _parse_fixed(data.get("fixed"), where)
    interactions, method = _parse_interactions(data.get("interactions"), where)
    if interactions is not None:
        require_positive(stats["mean_ms"], fixed_ms or 0.0, interactions, where)
    return LUT(hardware=str(data["hardware"]), input_size=input_size,
               mean_ms=stats["mean_ms"], std_ms=stats["std_ms"],
               median_ms=stats["median_ms"] if has["median_ms"] else None,
               p95_ms=stats["p95_ms"] if has["p95_ms"] else None,
               count=count if has["count"] else None,
               fixed_ms=fixed_ms, fixed_std_ms=fixed_std, interactions=interactions,
               interaction_method=method, warmup=data.get("warmup"), repeat=data.get("repeat"),
               provenance=dict(data.get("provenance") or {}), schema=schema, source=source,
               ignored_entries=ignored)


_LAYER_NAMES = frozenset(f"layer_{i}" for i in range(NUM_LAYERS))
_CHOICE_SET = frozenset(CHOICE_KEYS)


def parse_input_size(data: dict[str, Any], where: str) -> tuple[int, int]:
    """The (H, W) a LUT was measured at.

    Accepts ``input_size`` as an int (N x N), ``[H, W]`` or a string ``"HxW"`` (the original
    code writes ``"480x640"``), and/or ``input_h`` with ``input_w``; when both forms are given
    they must agree.

    Raises:
        LUTError: a missing, malformed or contradictory size.
    """
    given = _size_value(data["input_size"], where) if "input_size" in data else None
    if "input_h" in data or "input_w" in data:
        h: Any = data.get("input_h")
        w: Any = data.get("input_w")
        if not (_positive_int(h) and _positive_int(w)):
            raise LUTError(f"{where}: 'input_h'/'input_w' are {h!r}/{w!r}; both must be "
                           "positive ints (or drop them and give 'input_size')")
        hw = (int(h), int(w))
        if given is not None and given != hw:
            raise LUTError(f"{where}: 'input_size' says {given[0]}x{given[1]} but 'input_h'/"
                           f"'input_w' say {hw[0]}x{hw[1]}; fix the one that is wrong")
        return hw
    if given is None:
        raise LUTError(f"{where}: lacks the key 'input_size' (or 'input_h' and 'input_w'); "
                       "add the size it was measured at, e.g. \"input_size\": [128, 128]")
    return given


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _size_value(value: Any, where: str) -> tuple[int, int]:
    if _positive_int(value):
        return (value, value)
    if isinstance(value, list) and len(value) == 2 and all(map(_positive_int, value)):
        return (int(value[0]), int(value[1]))
    match = _SIZE_TEXT.match(value) if isinstance(value, str) else None
    if match is not None:
        h, w = int(match.group(1)), int(match.group(2) or match.group(1))
        if h > 0 and w > 0:
            return (h, w)
    raise LUTError(f"{where}: 'input_size' is {value!r}; expected a positive int, [H, W] or "
                   "\"HxW\" (e.g. \"480x640\")")


def _layer_block(layers: dict[str, Any], i: int, spec: Any, size: tuple[int, int],
                 where: str) -> dict[str, Any]:
    name = f"layer_{i}"
    layer = layers.get(name)
    if not isinstance(layer, dict) or not isinstance(layer.get("ops"), dict):
        raise LUTError(f"{where}: lacks '{name}' with an 'ops' object; the decoder has 5 layers "
                       "(layer_0..layer_4)")
    for key, want in (("C_in", spec.c_in), ("C_out", spec.c_out)):
        if key in layer and layer[key] != want:
            raise LUTError(f"{where}: {name}.{key} is {layer[key]}, but the search space has "
                           f"{want}; this LUT is for another decoder, re-measure it")
    for key, dim in (("H_out", size[0]), ("W_out", size[1])):
        want = dim // spec.out_stride
        if key in layer and layer[key] != want:
            raise LUTError(f"{where}: {name}.{key} is {layer[key]}, expected {want} for input "
                           f"size {size[0]}x{size[1]}; fix 'input_size' or re-measure")
    return layer


def describe_ignored(keys: list[str]) -> str:
    """Summarise ignored keys: unknown widths and ops, then a few example keys."""
    widths: dict[str, None] = {}
    ops: dict[str, None] = {}
    for key in keys:
        op, _, tag = key.rpartition(".")[2].rpartition("_")
        if op and tag.startswith("w"):
            if tag not in WIDTH_TAGS:
                widths[tag] = None
            if op not in OPS:
                ops[op] = None
    parts = [f"widths {', '.join(widths)}"] if widths else []
    parts += [f"ops {', '.join(ops)}"] if ops else []
    shown = ", ".join(keys[:_SHOWN_IGNORED]) + (", ..." if len(keys) > _SHOWN_IGNORED else "")
    return "; ".join([*parts, f"e.g. {shown}"])


MAX_ENTRY_MS = 60_000.0  # one op taking a minute per image is a unit error, not a device


def _number(value: Any, where: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LUTError(f"{where} is {value!r}, not a number; re-measure this entry")
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        need = "positive" if positive else "non-negative"
        raise LUTError(f"{where} is {value!r}; it must be finite and {need}; re-measure this entry")
    if v > MAX_ENTRY_MS:
        raise LUTError(f"{where} is {value!r} ms, over {MAX_ENTRY_MS:,.0f} ms (a minute per "
                       "image): a unit error (seconds or microseconds?) or a broken measurement; "
                       "re-measure this entry in milliseconds")
    return v


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LUTError(f"{where} is {value!r}; it must be an int >= 1; re-measure this entry")
    return value


def _parse_fixed(block: Any, where: str) -> tuple[float | None, float | None]:
    if block is None:
        return None, None
    if not isinstance(block, dict) or "mean_ms" not in block:
        raise LUTError(f"{where}: 'fixed' must be an object with 'mean_ms'")
    mean = _number(block["mean_ms"], f"{where}: fixed.mean_ms", positive=True)
    std = _number(block.get("std_ms", 0.0), f"{where}: fixed.std_ms", positive=False)
    return mean, std


def _parse_interactions(block: Any, where: str) -> tuple[np.ndarray | None, str | None]:
    if block is None:
        return None, None
    pairs = block.get("pairs") if isinstance(block, dict) else None
    if not isinstance(pairs, dict):
        raise LUTError(f"{where}: 'interactions' must be an object with 'pairs'")
    out = np.zeros((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES))
    for i in range(NUM_LAYERS - 1):
        name = f"layer_{i}-layer_{i + 1}"
        if name not in pairs:
            raise LUTError(f"{where}: interactions lack the pair '{name}'")
        try:
            arr = np.asarray(pairs[name], dtype=float)
        except (TypeError, ValueError):  # ragged or non-numeric nested lists
            arr = np.full((0,), np.nan)
        if arr.shape != (NUM_CHOICES, NUM_CHOICES) or not np.all(np.isfinite(arr)):
            raise LUTError(f"{where}: interactions '{name}' must be a finite 21x21 matrix, got "
                           f"shape {arr.shape}")
        out[i] = arr
    return out, str(block.get("method", "unknown"))


def find_luts(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of ``*.json`` LUT files."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.glob("*.json") if q.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise LUTError(f"LUT path {p}: no such file or folder")
    return found
