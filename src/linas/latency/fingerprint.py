"""Latency fingerprints: a device described by the latencies of 10 fixed architectures.

The ten reference architectures are fixed (never re-drawn) so fingerprints from different
devices, runs and people compare. They cover every op and width, the cheapest and the most
expensive corners of the space, and mixed architectures in between.
"""

from __future__ import annotations

import numpy as np

from linas.latency.model import LUTLatencyModel
from linas.space import Arch

REFERENCE_ARCHS: tuple[Arch, ...] = tuple(Arch.parse(s) for s in (
    "DWSep3x3_w50-DWSep3x3_w50-DWSep3x3_w50-DWSep3x3_w50-DWSep3x3_w50",
    "Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50",
    "Conv3x3_w100-Conv3x3_w100-Conv3x3_w100-Conv3x3_w100-Conv3x3_w100",
    "Conv5x5_w75-Conv5x5_w75-Conv5x5_w75-Conv5x5_w75-Conv5x5_w75",
    "Conv7x7_w100-Conv7x7_w100-Conv7x7_w100-Conv7x7_w100-Conv7x7_w100",
    "DWSep5x5_w100-DWSep5x5_w100-DWSep5x5_w100-DWSep5x5_w100-DWSep5x5_w100",
    "EdgeConv_w75-EdgeConv_w75-EdgeConv_w75-EdgeConv_w75-EdgeConv_w75",
    "DilatedDWSep_w100-DilatedDWSep_w75-DilatedDWSep_w50-DilatedDWSep_w75-DilatedDWSep_w100",
    "Conv7x7_w50-DWSep5x5_w75-EdgeConv_w100-Conv3x3_w75-DilatedDWSep_w50",
    "DWSep3x3_w100-Conv5x5_w50-DilatedDWSep_w100-Conv7x7_w75-EdgeConv_w50",
))


def reference_choices() -> np.ndarray:
    """Choice indices of the reference architectures, shape (10, 5)."""
    return np.asarray([a.choices for a in REFERENCE_ARCHS], dtype=np.int64)


def fingerprint(model: LUTLatencyModel) -> np.ndarray:
    """Predicted latencies (ms) of the reference architectures on one device, shape (10,)."""
    return model.predict(reference_choices())


def fingerprint_embedding(latencies_ms: np.ndarray) -> np.ndarray:
    """A scale-free device embedding from a fingerprint: centred log-latencies plus the mean
    log-latency (the device's overall speed), shape (11,)."""
    logs = np.log(np.asarray(latencies_ms, dtype=np.float64))
    return np.concatenate([logs - logs.mean(), [logs.mean()]])
