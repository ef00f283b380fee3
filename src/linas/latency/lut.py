"""Latency look-up tables: the v1 reference schema, the v2 schema, one validating loader.

Schema v1 (the reference LUTs in ``../shared/reference-luts``)::

    {"hardware": str, "input_size": 128, "warmup": int, "repeat": int,
     "layers": {"layer_0": {"C_in", "C_out", "H_out", "W_out",
                            "ops": {"Conv3x3_w50": {"mean_ms", "std_ms"}, ...}}, ...}}

Schema v2 is a superset: ``"schema": "linas-lut/v2"``, ``input_size`` may be ``[H, W]``,
per-op entries may add ``median_ms``, ``p95_ms``, ``count``; plus ``provenance`` (runtime,
versions, device, threads, date, ...), an optional ``fixed`` entry (encoder, skip fusions,
classifier, measured once) and optional ``interactions`` (adjacent-layer pair terms).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from linas._errors import LUTError
from linas.space import CHOICE_KEYS, LAYERS, NUM_CHOICES, NUM_LAYERS

SCHEMA_V2 = "linas-lut/v2"
STAT_KEYS = ("mean_ms", "std_ms", "median_ms", "p95_ms")


@dataclass
class LUT:
    """A per-device latency table as arrays; index ``[layer, choice]`` (choice = 0..20).

    ``fixed_ms`` is the end-to-end part outside the searched ops (None for decoder-only LUTs
    such as the reference ones); ``interactions`` has shape (4, 21, 21) for the pairs
    (layer i, layer i+1), or is None.
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

    @property
    def name(self) -> str:
        """Device name used in results: the file stem when loaded from a file."""
        return Path(self.source).stem if self.source != "<memory>" else self.hardware

    @property
    def is_end_to_end(self) -> bool:
        """True when the LUT has a fixed part, so its predictions are end to end."""
        return self.fixed_ms is not None

    def to_dict(self) -> dict[str, Any]:
        """Serialise as schema v2 (a superset of v1)."""
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


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_lut(path: str | Path, expect_input_size: tuple[int, int] | None = None) -> LUT:
    """Load a v1 or v2 LUT file, validating every key and value.

    Args:
        path: the JSON file.
        expect_input_size: when given, the LUT must have been measured at this (H, W).

    Raises:
        LUTError: naming the file, the key or value at fault, and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise LUTError(f"LUT {path}: no such file; measure one with "
                       f"`linas lut measure --out {path}`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LUTError(f"LUT {path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                       "re-measure it or fix the file") from None
    lut = lut_from_dict(data, source=str(path))
    if expect_input_size is not None and tuple(lut.input_size) != tuple(expect_input_size):
        raise LUTError(
            f"LUT {path}: measured at input {lut.input_size[0]}x{lut.input_size[1]} but the model "
            f"runs at {expect_input_size[0]}x{expect_input_size[1]}; re-measure with "
            f"`linas lut measure --size {expect_input_size[0]}x{expect_input_size[1]}`")
    return lut


def lut_from_dict(data: Any, source: str = "<memory>") -> LUT:
    """Build a validated :class:`LUT` from parsed JSON (v1 or v2)."""
    where = f"LUT {source}"
    if not isinstance(data, dict):
        raise LUTError(f"{where}: top level must be a JSON object with 'hardware' and 'layers'")
    schema = data.get("schema", "v1")
    if schema not in ("v1", SCHEMA_V2):
        raise LUTError(f"{where}: unknown schema '{schema}'; supported: v1 (no 'schema' key), "
                       f"'{SCHEMA_V2}'")
    for key in ("hardware", "input_size", "layers"):
        if key not in data:
            raise LUTError(f"{where}: lacks the key '{key}'; re-measure with `linas lut measure`")
    input_size = _parse_input_size(data["input_size"], where)
    layers = data["layers"]
    if not isinstance(layers, dict):
        raise LUTError(f"{where}: 'layers' must be an object with layer_0..layer_4")
    stats = {k: np.full((NUM_LAYERS, NUM_CHOICES), np.nan) for k in STAT_KEYS}
    count = np.zeros((NUM_LAYERS, NUM_CHOICES), dtype=np.int64)
    has = {k: True for k in (*STAT_KEYS, "count")}
    for i, spec in enumerate(LAYERS):
        layer = _layer_block(layers, i, spec, input_size, where)
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
    return LUT(hardware=str(data["hardware"]), input_size=input_size,
               mean_ms=stats["mean_ms"], std_ms=stats["std_ms"],
               median_ms=stats["median_ms"] if has["median_ms"] else None,
               p95_ms=stats["p95_ms"] if has["p95_ms"] else None,
               count=count if has["count"] else None,
               fixed_ms=fixed_ms, fixed_std_ms=fixed_std, interactions=interactions,
               interaction_method=method, warmup=data.get("warmup"), repeat=data.get("repeat"),
               provenance=dict(data.get("provenance") or {}), schema=schema, source=source)


def _parse_input_size(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, int) and value > 0:
        return (value, value)
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and v > 0 for v in value)):
        return (int(value[0]), int(value[1]))
    raise LUTError(f"{where}: 'input_size' is {value!r}; expected a positive int or [H, W]")


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
    want_h = size[0] // spec.out_stride
    if "H_out" in layer and layer["H_out"] != want_h:
        raise LUTError(f"{where}: {name}.H_out is {layer['H_out']}, expected {want_h} for input "
                       f"size {size[0]}x{size[1]}; fix 'input_size' or re-measure")
    return layer


def _number(value: Any, where: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LUTError(f"{where} is {value!r}, not a number; re-measure this entry")
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        need = "positive" if positive else "non-negative"
        raise LUTError(f"{where} is {value!r}; it must be finite and {need}; re-measure this entry")
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
