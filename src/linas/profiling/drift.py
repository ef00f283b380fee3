"""The machine's speed while timing: the anchor architecture's time, and when it drifted."""

from __future__ import annotations

import numpy as np

from linas.latency.lut import LUT
from linas.latency.validate import DRIFT_WARN
from linas.progress import Reporter


def warn_drift(anchors: list[float], reference: float, what: str, rep: Reporter) -> float:
    """Largest relative move of the anchor from ``reference``; warns above DRIFT_WARN, since
    corrected timings from a drifting machine stay noisy."""
    change = float(np.max(np.abs(np.asarray(anchors) / reference - 1.0))) if anchors else 0.0
    if change > DRIFT_WARN:
        rep.warn(f"the machine's speed moved by up to {100 * change:.0f}% while {what} "
                 "(corrected with the anchor, but the terms may be noisy); re-measure the LUT "
                 "when the machine is quiet")
    return change


def anchor_ms(lut: LUT) -> float | None:
    """The anchor time recorded when ``lut`` was measured (``provenance['anchor']['ms']``)."""
    anchor = lut.provenance.get("anchor")
    return float(anchor["ms"]) if isinstance(anchor, dict) and "ms" in anchor else None


def per_group(anchors: list[float]) -> list[float]:
    """One anchor time per group (the log repeats it per architecture)."""
    return [round(a, 4) for a in dict.fromkeys(anchors)]
