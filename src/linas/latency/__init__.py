"""Latency: LUT schema and loading, latency models, measurement, QA."""

from linas.latency.lut import LUT, SCHEMA_V2, find_luts, load_lut, lut_from_dict, save_lut
from linas.latency.model import LatencyModel, LUTLatencyModel

__all__ = [
    "LUT",
    "LUTLatencyModel",
    "LatencyModel",
    "SCHEMA_V2",
    "find_luts",
    "load_lut",
    "lut_from_dict",
    "save_lut",
]
