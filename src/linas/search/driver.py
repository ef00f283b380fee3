"""Running a search strategy with checkpoints and resume (shared by every strategy)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

from linas.latency.lut import write_json_atomic
from linas.progress import Reporter
from linas.data.features import FeatureSet

CHECKPOINT_EVERY_S = 60.0


class CheckpointedSearch(Protocol):
    """What :func:`run_checkpointed` needs of a search strategy."""

    state: Any

    @property
    def total_epochs(self) -> int: ...

    def steps_per_epoch(self, train: FeatureSet) -> int: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path, history: list[dict[str, Any]]) -> None: ...

    def run(self, train: FeatureSet, arch_val: FeatureSet, on_epoch: Any, on_step: Any) -> Any: ...


def run_checkpointed(search: CheckpointedSearch, train: FeatureSet, arch_val: FeatureSet,
                     ckpt_dir: Path, name: str, rep: Reporter, label: str) -> Any:
    """Resume ``search`` from ``ckpt_dir/<name>.pt`` if present, run it to the end, and
    checkpoint it at most once a minute and after the last epoch.

    The checkpoint holds the whole supernet and its optimizer states (~2 GB), so writing it
    every epoch would cost more than the minute of work a crash can lose.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt, hist = ckpt_dir / f"{name}.pt", ckpt_dir / f"{name}_history.json"
    if ckpt.is_file() and hist.is_file():
        search.load(ckpt, json.loads(hist.read_text()))
        rep.info(f"resuming from {ckpt} at epoch {search.state.epoch}")
    last_save = [time.perf_counter()]

    def on_epoch(state: Any) -> None:
        done = state.epoch >= search.total_epochs
        if done or time.perf_counter() - last_save[0] >= CHECKPOINT_EVERY_S:
            search.save(ckpt)
            write_json_atomic(hist, state.history)
            last_save[0] = time.perf_counter()

    steps = search.steps_per_epoch(train) * (search.total_epochs - search.state.epoch)
    with rep.task(label, steps) as advance:
        return search.run(train, arch_val, on_epoch, on_step=lambda: advance(1))
