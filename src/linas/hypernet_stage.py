"""Pipeline stages of the hypernetwork strategy (I1): search, then a preference sweep per device.

``linas search --strategy hypernet`` trains the supernet and one hypernetwork over every
device but ``--holdout``; ``linas pareto`` on such a run sweeps preferences for every device of
the run (the held-out one zero-shot, from its LUT fingerprint alone), evaluates the distinct
generated architectures once by weight sharing (devices share the supernet, so evaluations are
cached across devices) and writes the same per-device contract as the baseline Pareto stage.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from linas._errors import ConfigError
from linas.latency import LUT, LUTLatencyModel
from linas.latency.lut import write_json_atomic
from linas.pareto.stage import Evaluated, device_front
from linas.data import FeatureSet
from linas.search import evaluate_choices
from linas.search.driver import run_checkpointed
from linas.search.hypernet_search import (
    HypernetDevice,
    HypernetSearch,
    HypernetState,
    arch_strings,
)
from linas.supernet import Supernet

if TYPE_CHECKING:  # the pipeline imports this module; no import back at run time
    from linas.pipeline import Run

STRATEGIES = ("bilevel", "hypernet")


def check_strategy(strategy: str, holdout: str | None) -> None:
    """Validate ``--strategy`` / ``--holdout`` before any work.

    Raises:
        ConfigError: on an unknown strategy, or a holdout without the hypernet strategy.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy '{strategy}': unknown; valid: {', '.join(STRATEGIES)}")
    if holdout is not None and strategy != "hypernet":
        raise ConfigError(f"--holdout {holdout}: only the hypernet strategy holds devices out; "
                          "add --strategy hypernet")


def hypernet_devices(luts: dict[str, LUT], budget_ms: float,
                     holdout: str | None) -> tuple[list[HypernetDevice], list[HypernetDevice]]:
    """(training devices, all devices of the run) in LUT order.

    Raises:
        ConfigError: when ``holdout`` is not a device of the run, or is its only device.
    """
    if holdout is not None and holdout not in luts:
        raise ConfigError(f"--holdout '{holdout}': not a device of this run; devices: "
                          f"{', '.join(luts)}")
    if holdout is not None and len(luts) < 2:
        raise ConfigError(f"--holdout '{holdout}': it is the only device; add --lut-dir")
    every = [HypernetDevice.from_model(n, LUTLatencyModel(lut), budget_ms)
             for n, lut in luts.items()]
    return [d for d in every if d.name != holdout], every


def search_hypernet(run: Run, net: Supernet, splits: dict[str, FeatureSet],
                    luts: dict[str, LUT]) -> HypernetState:
    """Hypernetwork search over every training device, checkpointed each epoch."""
    cfg = run.cfg
    train_devs, every = hypernet_devices(luts, cfg.budget_ms, cfg.holdout)
    search = HypernetSearch(net, train_devs, cfg.search, cfg.hypernet,
                            run.results.get("ignore_index", 255))
    state = run_checkpointed(search, splits["train"], splits["arch_val"],
                             cfg.out / "checkpoints", "hypernet", run.rep,
                             "searching (hypernetwork)")
    run.results["search"] = {
        "strategy": "hypernet", "config": asdict(cfg.search), "hypernet": asdict(cfg.hypernet),
        "history": state.history, "holdout": cfg.holdout,
        "train_devices": [d.name for d in train_devs],
        "devices": {d.name: {"target_ms": d.budget_ms, "zero_shot": d.name == cfg.holdout,
                             "budget_feasible": d.budget_feasible,
                             "embedding": state.embedder(d.raw).tolist()} for d in every}}
    return state


def hypernet_fronts(run: Run, net: Supernet, splits: dict[str, FeatureSet],
                    luts: dict[str, LUT], state: HypernetState) -> dict[str, Any]:
    """Sweep preferences per device, evaluate the generated architectures, build fronts."""
    cfg = run.cfg
    _, every = hypernet_devices(luts, cfg.budget_ms, cfg.holdout)
    swept = {d.name: state.architectures(d, cfg.hypernet, cfg.seed) for d in every}
    miou = evaluate_cached(run, net, splits["arch_val"], [c for c, _ in swept.values()])
    devices: dict[str, Any] = {}
    for dev in every:
        choices, w_lat = swept[dev.name]
        acc = np.asarray([miou[tuple(int(c) for c in row)] for row in choices])
        info = device_front(Evaluated(choices, acc), dev.model, cfg.budget_ms,
                            dev.model.exhaustive())
        info["lut"] = luts[dev.name].source
        info["decoder_only"] = not dev.model.end_to_end
        info["hypernet"] = {"zero_shot": dev.name == cfg.holdout, "generated": len(choices),
                            "archs": arch_strings(choices), "w_lat": w_lat}
        devices[dev.name] = info
    write_json_atomic(cfg.out / "pareto.json", {
        "strategy": "hypernet", "n_evaluated": len(miou),
        "evaluated": [{"arch": a, "miou": m} for a, m in
                      zip(arch_strings(np.asarray(list(miou))), miou.values(), strict=True)],
        "devices": {k: {"front": v["front"], "hypervolume": v["hypervolume"],
                        "hv_reference": v["hv_reference"]} for k, v in devices.items()}})
    return devices


def evaluate_cached(run: Run, net: Supernet, data: FeatureSet,
                    per_device: list[np.ndarray]) -> dict[tuple[int, ...], float]:
    """Weight-sharing mIoU of every distinct architecture of ``per_device``, each once."""
    # first occurrence order, duplicates across devices dropped
    todo = list(dict.fromkeys(tuple(int(c) for c in row) for ch in per_device for row in ch))
    out: dict[tuple[int, ...], float] = {}
    with run.rep.task("weight-sharing evaluation", len(todo)) as advance:
        for key in todo:
            out[key], _ = evaluate_choices(net, data, list(key), run.results["num_classes"],
                                           run.results.get("ignore_index", 255))
            advance(1)
    return out
