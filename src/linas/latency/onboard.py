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
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LUTError(f"{where}: no such file; {fix}") from None
    except json.JSONDecodeError as exc:
        raise LUTError(f"{where}: not valid JSON ({exc.msg}); {fix}") from None
    if not isinstance(data, dict) or data.get("schema") != FINGERPRINT_SCHEMA:
        raise LUTError(f"{where}: schema is not '{FINGERPRINT_SCHEMA}'; {fix}")
    want = [str(a) for a in REFERENCE_ARCHS]
    if data.get("archs") != want:
        raise LUTError(f"{where}: 'archs' are not the 10 reference architectures in order; {fix}")
    mean = np.asarray(data.get("mean_ms", []), dtype=np.float64)
    if mean.shape != (len(want),) or not np.all(np.isfinite(mean)) or np.any(mean <= 0):
        raise LUTError(f"{where}: 'mean_ms' must be {len(want)} positive numbers; {fix}")
    std = np.asarray(data.get("std_ms", np.zeros(len(want))), dtype=np.float64)
    size = data.get("input_size", [128, 128])
    return Fingerprint(str(data.get("hardware", path.stem)), mean, std,
                       (int(size[0]), int(size[1])), dict(data.get("provenance") or {}))


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
