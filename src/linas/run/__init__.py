"""The stages of a run over a run directory: prepare (data, features, LUTs), search, fronts
(and the fleet plan), final (a model per device: train, export, card), report.

Only the CLI (and benchmarks) import this package; stages never import the CLI.
"""

from linas.run.prepare import Context, prepare
from linas.run.rundir import RunDir, open_run
from linas.run.stages import (
    build_config,
    run_demo,
    run_export,
    run_pareto_stage,
    run_report,
    run_search_stage,
    run_train_stage,
)
from linas.run.state import Run

__all__ = [
    "Context",
    "Run",
    "RunDir",
    "build_config",
    "open_run",
    "prepare",
    "run_demo",
    "run_export",
    "run_pareto_stage",
    "run_report",
    "run_search_stage",
    "run_train_stage",
]
