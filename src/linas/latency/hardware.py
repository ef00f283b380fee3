"""Hardware descriptions: public spec figures per device, and a log-scaled feature vector.

The reference devices live in ``hardware_specs.json`` (package data), every figure with its
source and an ``uncertain`` flag. LUT ``hardware`` names (and file stems) map to entries
through the file's explicit ``aliases`` table, never by loose string matching. A LUT measured
by ``linas lut measure`` on this machine's CPU (its provenance names this CPU model exactly)
maps to :func:`local_spec`, built from ``/proc/cpuinfo`` and ``lscpu``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from linas._errors import ConfigError, closest
from linas.latency.lut import LUT
from linas.latency.measure import cpu_name

Kind = Literal["gpu", "cpu", "unknown"]
SPEC_FILE = "hardware_specs.json"
FEATURE_NAMES: tuple[str, ...] = ("log10_peak_fp32_gflops", "log10_memory_bandwidth_gbs",
                                  "log10_cache_mb", "is_gpu")
# FP32 FLOP per cycle per core from the ISA flags: two FMA pipes of the widest vector unit
# (an assumption: some CPUs have one 512-bit pipe; a VM cannot tell).
_FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("asimd", 16), ("neon", 16))


@dataclass(frozen=True)
class Figure:
    """One spec figure: its value (None when unknown), unit, source and certainty."""

    value: float | None
    source: str = "unknown"
    uncertain: bool = True
    unit: str = ""

    @classmethod
    def parse(cls, data: Any) -> Figure:
        if not isinstance(data, dict):
            return cls(None)
        value = data.get("value")
        return cls(None if value is None else float(value), str(data.get("source", "unknown")),
                   bool(data.get("uncertain", True)), str(data.get("unit", "")))


@dataclass(frozen=True)
class HardwareSpec:
    """A device as the predictor sees it: the processor its LUT was measured on.

    ``threads`` is the number of cores in use when a LUT records it (local CPU LUTs), so
    1-thread and 2-thread runtimes of one CPU get different effective peaks.
    """

    key: str
    name: str
    family: str
    kind: Kind
    peak_fp32_gflops: Figure
    memory_bandwidth_gbs: Figure
    compute_units: Figure
    cache_mb: Figure
    threads: int | None = None
    runtime: str = "torch"
    notes: tuple[str, ...] = ()
    processors: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def effective_peak_gflops(self) -> float | None:
        """Peak FP32 of the cores in use (all of them unless ``threads`` is set)."""
        peak, units = self.peak_fp32_gflops.value, self.compute_units.value
        if peak is None or self.threads is None or self.kind != "cpu" or not units:
            return peak
        return peak * min(self.threads, units) / units

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (figures with their sources)."""
        fig = {k: vars(getattr(self, k)) for k in ("peak_fp32_gflops", "memory_bandwidth_gbs",
                                                   "compute_units", "cache_mb")}
        return {"key": self.key, "name": self.name, "family": self.family, "kind": self.kind,
                "threads": self.threads, "runtime": self.runtime, **fig,
                "effective_peak_gflops": self.effective_peak_gflops,
                "notes": list(self.notes)}


@lru_cache(maxsize=1)
def _spec_file() -> dict[str, Any]:
    text = resources.files("linas.latency").joinpath(SPEC_FILE).read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def known_specs() -> dict[str, HardwareSpec]:
    """Every spec entry of ``hardware_specs.json`` by key."""
    return {key: _entry_spec(key, entry) for key, entry in _spec_file()["devices"].items()}


def known_names() -> list[str]:
    """Every LUT ``hardware`` name and file stem that maps to a spec, sorted."""
    return sorted(_spec_file()["aliases"])


def _entry_spec(key: str, entry: dict[str, Any]) -> HardwareSpec:
    proc = entry["processors"][entry["lut_processor"]]
    return HardwareSpec(key=key, name=entry["name"], family=entry["family"], kind=proc["kind"],
                        peak_fp32_gflops=Figure.parse(proc.get("peak_fp32_gflops")),
                        memory_bandwidth_gbs=Figure.parse(proc.get("memory_bandwidth_gbs")),
                        compute_units=Figure.parse(proc.get("compute_units")),
                        cache_mb=Figure.parse(proc.get("cache_mb")),
                        notes=tuple(entry.get("notes", ())), processors=entry["processors"])


def spec_for_name(name: str) -> HardwareSpec:
    """The spec a LUT ``hardware`` name or file stem maps to, by the explicit alias table.

    Raises:
        ConfigError: for a name not in the table, listing the known names.
    """
    aliases = _spec_file()["aliases"]
    if name not in aliases:
        raise _unknown(name)
    return known_specs()[aliases[name]]


def _unknown(name: str, where: str = "") -> ConfigError:
    return ConfigError(f"{where}unknown hardware '{name}'{closest(name, known_names())}; known "
                       f"names: {', '.join(known_names())}; add it to the 'aliases' of "
                       f"linas/latency/{SPEC_FILE} or pass --allow-unknown")


def spec_for_lut(lut: LUT, allow_unknown: bool = False) -> HardwareSpec:
    """The spec of the device a LUT was measured on.

    Tries the LUT's ``hardware`` field, then its file stem, in the alias table; then a LUT
    whose provenance names this machine's CPU model exactly maps to :func:`local_spec`.

    Args:
        lut: the table.
        allow_unknown: return :func:`unknown_spec` with a warning instead of raising.

    Raises:
        ConfigError: when nothing maps and ``allow_unknown`` is False.
    """
    aliases = _spec_file()["aliases"]
    for name in (lut.hardware, lut.name):
        if name in aliases:
            return spec_for_name(name)
    prov = lut.provenance
    if prov.get("device_type") == "cpu" and prov.get("device") == cpu_name():
        threads = prov.get("threads")
        return local_spec(threads=int(threads) if threads else None,
                          runtime=str(prov.get("runtime", "torch")), name=lut.hardware)
    if allow_unknown:
        warnings.warn(f"LUT {lut.source}: hardware '{lut.hardware}' has no spec; using "
                      "imputed features (zero-shot predictions for it are guesses)", stacklevel=2)
        return unknown_spec(lut.hardware)
    raise _unknown(lut.hardware, where=f"LUT {lut.source}: ")


def unknown_spec(name: str) -> HardwareSpec:
    """A spec with every figure unknown (features fall back to imputed values)."""
    none = Figure(None)
    return HardwareSpec(key=f"unknown:{name}", name=name, family="unknown", kind="unknown",
                        peak_fp32_gflops=none, memory_bandwidth_gbs=none, compute_units=none,
                        cache_mb=none, notes=("no spec known for this device",))


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, MHz, logical CPU count and ISA flags from ``/proc/cpuinfo`` text."""
    info: dict[str, Any] = {"model": None, "mhz": None, "cpus": 0, "flags": set()}
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key == "processor":
            info["cpus"] += 1
        elif key in ("model name", "Model") and value and info["model"] is None:
            info["model"] = value
        elif key == "cpu MHz" and value and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key in ("flags", "Features") and not info["flags"]:
            info["flags"] = set(value.split())
    return info


def parse_lscpu_cache_mb(text: str) -> float | None:
    """Last-level cache in MB from ``lscpu`` text (e.g. ``L3 cache: 32 MiB (1 instance)``)."""
    sizes: dict[str, float] = {}
    scale = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "K": 1 / 1024, "M": 1.0}
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        parts = value.split()
        if key in ("L2 cache", "L3 cache") and len(parts) >= 2 and parts[1] in scale:
            sizes[key] = float(parts[0]) * scale[parts[1]]
    return sizes.get("L3 cache", sizes.get("L2 cache"))


def local_spec(threads: int | None = None, runtime: str = "torch",
               name: str = "local") -> HardwareSpec:
    """This machine's CPU, read from ``/proc/cpuinfo`` and ``lscpu`` (Linux; else unknowns).

    Peak FP32 is derived (cores x reported MHz x FLOP/cycle from the ISA flags) and marked
    uncertain; memory bandwidth is not knowable from inside a VM and stays None.
    """
    path = Path("/proc/cpuinfo")
    info = parse_cpuinfo(path.read_text(errors="replace") if path.is_file() else "")
    lscpu = shutil.which("lscpu")
    text = (subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout
            if lscpu else "")
    return _local_from(info, parse_lscpu_cache_mb(text), threads, runtime, name)


def _local_from(info: dict[str, Any], cache_mb: float | None, threads: int | None,
                runtime: str, name: str) -> HardwareSpec:
    cpus, mhz = int(info["cpus"]) or None, info["mhz"]
    per_cycle = next((n for flag, n in _FLOP_PER_CYCLE if flag in info["flags"]), None)
    peak = cpus * mhz / 1000 * per_cycle if (cpus and mhz and per_cycle) else None
    src = "this machine: /proc/cpuinfo"
    return HardwareSpec(
        key="local-cpu", name=f"{info['model'] or 'unknown CPU'} ({name})", family="local CPU",
        kind="cpu",
        peak_fp32_gflops=Figure(peak, f"derived: {cpus} CPUs x {mhz} MHz x {per_cycle} FP32 "
                                "FLOP/cycle (two FMA pipes assumed from the ISA flags)", True),
        memory_bandwidth_gbs=Figure(None, "not knowable from inside a VM; imputed", True),
        compute_units=Figure(cpus, src, False, "logical CPU"),
        cache_mb=Figure(cache_mb, "this machine: lscpu (last-level cache)", True),
        threads=threads, runtime=runtime,
        notes=("measured by linas on this machine; the VM may share the host's caches",))


def spec_features(spec: HardwareSpec) -> np.ndarray:
    """The predictor's log-scaled hardware features, shape (4,), in :data:`FEATURE_NAMES` order.

    A missing figure takes the median of the known entries of the same processor kind (all
    entries for an unknown kind), so the vector is always finite.
    """
    values = (spec.effective_peak_gflops, spec.memory_bandwidth_gbs.value, spec.cache_mb.value)
    fields = ("peak_fp32_gflops", "memory_bandwidth_gbs", "cache_mb")
    out = [math.log10(v if v is not None else _median_known(f, spec.kind))
           for v, f in zip(values, fields, strict=True)]
    return np.asarray([*out, 1.0 if spec.kind == "gpu" else 0.0])


def _median_known(fig: str, kind: Kind) -> float:
    vals = [getattr(s, fig).value for s in known_specs().values()
            if (kind == "unknown" or s.kind == kind) and getattr(s, fig).value is not None]
    return float(np.median(vals))


def with_threads(spec: HardwareSpec, threads: int | None) -> HardwareSpec:
    """A copy of ``spec`` with ``threads`` cores in use."""
    return replace(spec, threads=threads)
