"""Latency: LUT schema and loading, latency models, measurement, QA."""

from linas.latency.check import (
    DEVICE_CLASSES,
    CheckConfig,
    DeviceClass,
    Finding,
    check_lut,
    check_lut_file,
    check_many,
    format_findings,
    rank_correlations,
)
from linas.latency.lut import LUT, SCHEMA_V2, find_luts, load_lut, lut_from_dict, save_lut
from linas.latency.measure import (
    TimingStats,
    iqr_filter,
    measure_lut,
    summarize,
    time_callable,
    time_module,
)
from linas.latency.model import LatencyModel, LUTLatencyModel

__all__ = [
    "CheckConfig",
    "DEVICE_CLASSES",
    "DeviceClass",
    "Finding",
    "LUT",
    "LUTLatencyModel",
    "LatencyModel",
    "SCHEMA_V2",
    "TimingStats",
    "check_lut",
    "check_lut_file",
    "check_many",
    "find_luts",
    "format_findings",
    "iqr_filter",
    "load_lut",
    "lut_from_dict",
    "measure_lut",
    "rank_correlations",
    "save_lut",
    "summarize",
    "time_callable",
    "time_module",
]
