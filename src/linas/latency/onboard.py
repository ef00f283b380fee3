"""Onboarding a new device: fingerprint files and a predicted LUT from a fingerprint.

A fingerprint file (``linas lut fingerprint --out fp.json``) holds the measured latencies of
the 10 :data:`~linas.latency.fingerprint.REFERENCE_ARCHS`, decoder only (the five chosen
ops chained, no encoder, skip fusions or classifier), which is what the predictor and the
reference LUTs describe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linas._errors import LUTError
from linas._io import write_json_atomic
from linas.latency.fingerprint import REFERENCE_ARCHS
from linas.latency.lut import LUT
from linas.latency.predictor import LatencyPredictor

FINGERPRINT_SCHEMA = "linas-fingerprint/v1"


@dataclass(frozen=True)
class Fingerprint:
    """Measured latencies (ms) of the reference architectures on one device."""

    hardware: str
    mean_ms: np.ndarray  # (10,)
    std_ms: np.ndarray  # (10,)
    input_size: tuple[int, int] = (128, 128)
    provenance: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": FINGERPRINT_SCHEMA, "hardware": self.hardware, "mode": "decoder-only",
                "input_size": list(self.input_size),
                "archs": [str(a) for a in REFERENCE_ARCHS],
                "mean_ms": [float(v) for v in self.mean_ms],
                "std_ms": [float(v) for v in self.std_ms],
                "provenance": self.provenance or {}}


def save_fingerprint(fp: Fingerprint, path: str | Path) -> Path:
    """Write a fingerprint file (JSON, atomically)."""
    path = Path(path)
    write_json_atomic(path, fp.to_dict())
    return path


def load_fingerprint(path: str | Path) -> Fingerprint:
    """Read a fingerprint file, checking that it covers the 10 reference architectures.

    Raises:
        LUTError: naming the file and what is missing or wrong.
    """
    path = Path(path)
    where = f"fingerprint {path}"
    fix = "re-measure it with `linas lut fingerprint --out FILE`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LUTError(f"{where}: no such file; {fix}") from None
    except json.JSONDecodeError as exc:
        raise LUTError(f"{where}: not valid JSON ({exc.msg}); {fix}") from None
    except (UnicodeDecodeError, OSError):
        raise LUTError(f"{where}: cannot be read as UTF-8 JSON text; {fix}") from None
    if not isinstance(data, dict) or data.get("schema") != FINGERPRINT_SCHEMA:
        raise LUTError(f"{where}: schema is not '{FINGERPRINT_SCHEMA}'; {fix}")
    want = [str(a) for a in REFERENCE_ARCHS]
    if data.get("archs") != want:
        raise LUTError(f"{where}: 'archs' are not the 10 reference architectures in order; {fix}")
    mean = _numbers(data.get("mean_ms", []), len(want), f"{where}: 'mean_ms'", fix)
    if np.any(mean <= 0) or np.any(mean > 60_000.0):
        raise LUTError(f"{where}: 'mean_ms' must be {len(want)} positive numbers of ms (under a "
                       f"minute); {fix}")
    std = _numbers(data.get("std_ms", [0.0] * len(want)), len(want), f"{where}: 'std_ms'", fix)
    size = data.get("input_size", [128, 128])
    if not (isinstance(size, list) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 32 for v in size)):
        raise LUTError(f"{where}: 'input_size' is {size!r}; expected [H, W] (ints >= 32); {fix}")
    return Fingerprint(str(data.get("hardware", path.stem)), mean, std,
                       (int(size[0]), int(size[1])), dict(data.get("provenance") or {}))


def _numbers(values: Any, n: int, where: str, fix: str) -> np.ndarray:
    """``values`` as ``n`` finite floats, or a LUTError naming the key."""
    ok = isinstance(values, list) and len(values) == n and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    arr = np.asarray(values, dtype=np.float64) if ok else np.zeros(0)
    if not ok or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise LUTError(f"{where} must be {n} finite non-negative numbers, got "
                       f"{str(values)[:60]}; {fix}")
    return arr


@dataclass(frozen=True)
class Onboarding:
    """The result of onboarding: predicted LUT, embedding, fit error, novelty."""

    lut: LUT
    embedding: np.ndarray
    fit_rms_log_error: float
    distance: float
    closest_device: str
    far: bool

    @property
    def warning(self) -> str | None:
        """A one-line warning when the device is far from every training device."""
        if not self.far:
            return None
        return (f"device '{self.lut.hardware}' is far from every device the predictor was "
                f"trained on (distance {self.distance:.2f} to '{self.closest_device}', beyond the "
                "novelty threshold): treat the predicted LUT as rough and measure a real one "
                "with `linas lut measure`")


def onboard(model: LatencyPredictor, fp: Fingerprint, name: str | None = None) -> Onboarding:
    """Fit the device's embedding to its fingerprint and predict its whole LUT (schema v2).

    Args:
        model: a trained predictor.
        fp: the device's fingerprint.
        name: device name for the LUT (default: the fingerprint's ``hardware``).

    Returns:
        The :class:`Onboarding`; ``far`` is set when the embedding is beyond the predictor's
        novelty threshold or the fingerprint fit is poor (RMS log error > 0.25).
    """
    emb, err = model.embed_fingerprint(fp.mean_ms)
    dist, closest = model.distance(emb)
    threshold = float(model.meta.get("novelty_threshold", float("inf")))
    prov = {"fingerprint": fp.to_dict(), "fingerprint_fit_rms_log_error": err,
            "closest_training_device": closest, "distance": dist}
    lut = model.predicted_lut(emb, name or fp.hardware, fp.input_size, prov)
    return Onboarding(lut, emb, err, dist, closest, far=dist > threshold or err > 0.25)
