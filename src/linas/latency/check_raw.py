"""Schema and value checks of raw LUT JSON: every missing key and bad value as a finding.

The loader (:func:`linas.latency.lut.lut_from_dict`) stops at the first problem; this pass
reports all of them, so ``linas lut check`` can list a broken file's every fault at once.
Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from linas._errors import LUTError
from linas.latency.lut import SCHEMA_V2, STAT_KEYS, describe_ignored, parse_input_size
from linas.space import CHOICE_KEYS, LAYERS, NUM_LAYERS

Severity = Literal["error", "warning", "info"]
MEASURE_HINT = "`linas lut measure`"  # the fix most findings name
_MEASURE = MEASURE_HINT


@dataclass(frozen=True)
class Finding:
    """One problem in a LUT: ``severity``, a short ``code`` slug, where, and what to do."""

    severity: Severity
    code: str
    location: str
    message: str


_err, _warn, _info = (partial(Finding, sev) for sev in ("error", "warning", "info"))


def check_raw(data: Any) -> list[Finding]:
    """Schema and value checks of parsed LUT JSON (v1 or v2), reporting every problem.

    Args:
        data: the parsed JSON.

    Returns:
        Errors for anything the loader would refuse; one ``ignored-entries`` info summarising
        the keys outside the search space that it skips.
    """
    if not isinstance(data, dict):
        return [_err("schema", "file", "top level is not an object with 'hardware', 'layers'")]
    out: list[Finding] = []
    if (schema := data.get("schema", "v1")) not in ("v1", SCHEMA_V2):
        out.append(_err("schema", "schema", f"unknown schema {schema!r}; supported: v1 (no "
                        f"'schema' key) and '{SCHEMA_V2}'"))
    out += [_err("missing-entry", k, f"top-level key '{k}' is missing")
            for k in ("hardware", "layers") if k not in data]
    size = _raw_input_size(data, out)
    if "layers" in data and not isinstance(data["layers"], dict):
        out.append(_err("schema", "layers", "'layers' is not an object with layer_0..layer_4"))
    elif "layers" in data:
        ignored: list[str] = []
        out += _check_raw_layers(data["layers"], size, ignored)
        out += ignored_findings(ignored)
    return out


def _raw_input_size(data: dict[str, Any], out: list[Finding]) -> tuple[int, int] | None:
    try:
        return parse_input_size(data, "LUT")
    except LUTError as exc:
        given = any(k in data for k in ("input_size", "input_h", "input_w"))
        out.append(_err("schema" if given else "missing-entry", "input_size",
                        str(exc).removeprefix("LUT: ")))
        return None


def ignored_findings(ignored: list[str]) -> list[Finding]:
    """One ``ignored-entries`` info summarising keys outside the search space (or none)."""
    if not ignored:
        return []
    return [_info("ignored-entries", "layers", f"{len(ignored)} entries outside the search "
                  f"space are ignored ({describe_ignored(ignored)}); nothing to fix unless one "
                  "of them was meant as an entry of the space")]


def _check_raw_layers(layers: dict[str, Any], size: tuple[int, int] | None,
                      ignored: list[str]) -> list[Finding]:
    names = [f"layer_{i}" for i in range(NUM_LAYERS)]
    ignored += [str(k) for k in layers if k not in names]
    out: list[Finding] = []
    for name, spec in zip(names, LAYERS, strict=True):
        layer = layers.get(name)
        if not isinstance(layer, dict) or not isinstance(layer.get("ops"), dict):
            out.append(_err("missing-entry", name, "layer missing or without an 'ops' object; "
                            f"re-measure with {_MEASURE}"))
            continue
        want = {"C_in": spec.c_in, "C_out": spec.c_out}
        if size is not None:
            want |= {"H_out": size[0] // spec.out_stride, "W_out": size[1] // spec.out_stride}
        out += [_err("schema", f"{name}.{k}", f"is {layer[k]!r}, expected {v} for this decoder "
                     "and input size; fix 'input_size' or re-measure")
                for k, v in want.items() if k in layer and layer[k] != v]
        ignored += [f"{name}.{k}" for k in layer["ops"] if k not in CHOICE_KEYS]
        out += _check_raw_ops(layer["ops"], name)
    return out


def _check_raw_ops(ops: dict[str, Any], layer: str) -> list[Finding]:
    out: list[Finding] = []
    for key in CHOICE_KEYS:
        loc, entry = f"{layer}.{key}", ops.get(key)
        if not isinstance(entry, dict):
            what = "missing" if entry is None else f"{entry!r}, not an object"
            out.append(_err("missing-entry", loc, f"entry {what}; re-measure with {_MEASURE} "
                            "(the loader refuses tables with holes)"))
            continue
        for stat in STAT_KEYS:
            if stat in entry:
                out += _value_findings(entry[stat], f"{loc}.{stat}", stat != "std_ms")
            elif stat in ("mean_ms", "std_ms"):
                out.append(_err("missing-entry", f"{loc}.{stat}", f"'{stat}' is missing; "
                                f"re-measure with {_MEASURE}"))
        count = entry.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            out.append(_err("schema", f"{loc}.count", f"is {count!r}; expected an int >= 1"))
    return out


def _value_findings(value: Any, loc: str, positive: bool) -> list[Finding]:
    fix = f"re-measure this entry with {_MEASURE}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [_err("not-a-number", loc, f"is {value!r}, not a number; {fix}")]
    if not math.isfinite(value):
        return [_err("non-finite", loc, f"is {value!r}; {fix}")]
    if value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        return [_err("non-positive", loc, f"is {value!r} ms, must be {need}; {fix}")]
    return []
