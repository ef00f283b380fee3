"""Latency: LUT schema and loading, latency models, measurement, QA."""

from linas.latency.check import (
    DEVICE_CLASSES,
    CheckConfig,
    DeviceClass,
    Finding,
    check_lut,
    check_lut_file,
    check_luts,
    check_many,
    format_findings,
    rank_correlations,
)
from linas.latency.constrained import keep_positive
from linas.latency.hardware import (
    HardwareSpec,
    known_names,
    local_spec,
    spec_features,
    spec_for_lut,
    spec_for_name,
)
from linas.latency.interactions import InteractionFit, fit_interactions, pair_interactions
from linas.latency.lut import (
    LUT,
    SCHEMA_V2,
    check_input_size,
    find_luts,
    load_lut,
    lut_from_dict,
    save_lut,
)
from linas.latency.measure import (
    TimingStats,
    iqr_filter,
    measure_lut,
    summarize,
    time_callable,
    time_module,
)
from linas.latency.model import LatencyModel, LUTLatencyModel
from linas.latency.onboard import Fingerprint, Onboarding, load_fingerprint, onboard
from linas.latency.predictor import LatencyPredictor, PredictorConfig
from linas.latency.predictor_eval import lodo
from linas.latency.predictor_train import DeviceData, load_devices, train_predictor
from linas.latency.runtimes import RUNTIMES, Runner, Runtime, available_runtimes, get_runtime
from linas.latency.validate import (
    format_table,
    metrics,
    sample_architectures,
    time_architectures,
    validation_report,
)

__all__ = [
    "train_predictor",
    "spec_for_name",
    "spec_for_lut",
    "spec_features",
    "onboard",
    "lodo",
    "local_spec",
    "load_fingerprint",
    "load_devices",
    "known_names",
    "PredictorConfig",
    "Onboarding",
    "LatencyPredictor",
    "HardwareSpec",
    "Fingerprint",
    "DeviceData",
    "CheckConfig",
    "DEVICE_CLASSES",
    "DeviceClass",
    "Finding",
    "InteractionFit",
    "LUT",
    "LUTLatencyModel",
    "LatencyModel",
    "RUNTIMES",
    "Runner",
    "Runtime",
    "SCHEMA_V2",
    "TimingStats",
    "available_runtimes",
    "check_lut",
    "check_input_size",
    "check_lut_file",
    "check_luts",
    "check_many",
    "find_luts",
    "fit_interactions",
    "format_findings",
    "format_table",
    "get_runtime",
    "iqr_filter",
    "keep_positive",
    "load_lut",
    "lut_from_dict",
    "measure_lut",
    "metrics",
    "pair_interactions",
    "rank_correlations",
    "sample_architectures",
    "save_lut",
    "summarize",
    "time_callable",
    "time_architectures",
    "time_module",
    "validation_report",
]
