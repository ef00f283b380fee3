"""Profiling: timing the supernet's candidates and extracted models in a runtime.

The glue between :mod:`linas.supernet` and :mod:`linas.latency` (which times any module it is
handed and never imports the supernet): measuring a supernet LUT with its fixed part and
interaction terms, validating a LUT end to end, and a device's fingerprint.
"""

from linas.profiling.drift import anchor_ms, warn_drift
from linas.profiling.fingerprint import measure_fingerprint
from linas.profiling.runners import ArchRunners, build_supernet, layer_inputs
from linas.profiling.supernet_lut import (
    DEMO_FIT_ARCHS,
    FIT_ARCHS,
    INTERACTION_METHODS,
    measure_supernet_lut,
)
from linas.profiling.terms import (
    FIT_SEED,
    add_context_interactions,
    add_fitted_interactions,
    add_pair_interactions,
)
from linas.profiling.validation import VALIDATE_SEED, validate_lut, validate_luts

__all__ = [
    "DEMO_FIT_ARCHS",
    "FIT_ARCHS",
    "FIT_SEED",
    "INTERACTION_METHODS",
    "VALIDATE_SEED",
    "ArchRunners",
    "add_context_interactions",
    "add_fitted_interactions",
    "add_pair_interactions",
    "anchor_ms",
    "build_supernet",
    "layer_inputs",
    "measure_fingerprint",
    "measure_supernet_lut",
    "validate_lut",
    "validate_luts",
    "warn_drift",
]
