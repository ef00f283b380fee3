"""The demo pipeline: stages wired from one frozen config; the CLI is a thin layer over it.

Stages: data -> encoder features -> LUTs -> search -> Pareto -> final model -> report. Each
writes its artefacts into the run directory atomically; the search checkpoints every epoch
and resumes when rerun with the same directory and config.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from linas._errors import ConfigError
from linas.data import (
    FeatureSet,
    cache_features,
    generate_sealer_dataset,
    load_dataset,
    load_tensors,
    split_indices,
)
from linas.distill import FinalTrainConfig, evaluate_model, train_final
from linas.export import export_onnx, onnx_parity
from linas.hypernet_stage import check_strategy, hypernet_fronts, search_hypernet
from linas.latency import LUT, LUTLatencyModel, find_luts, load_lut, save_lut
from linas.latency.lut import write_json_atomic
from linas.latency.measure import time_module
from linas.lutcli import DEMO_FIT_ARCHS, measure_supernet_lut
from linas.pareto.stage import (
    Evaluated,
    ParetoConfig,
    check_pareto_strategy,
    device_front,
    exact_latencies,
    finish_search_info,
    pick_for_evaluation,
    pick_zero_cost,
)
from linas.progress import Reporter
from linas.search import (
    BilevelSearch,
    DeviceTarget,
    HypernetConfig,
    SearchConfig,
    evaluate_choices,
)
from linas.search.driver import run_checkpointed
from linas.space import Arch, SearchSpace
from linas.supernet import Supernet, load_encoder

LOCAL_DEVICE = "local_torch_cpu"
BUDGET_MS = 160.0  # C3: 100 images in 16 s


@dataclass(frozen=True)
class DemoConfig:
    """Everything the demo run depends on (written to ``config.json``)."""

    out: Path
    lut_dir: Path | None = None
    seed: int = 0
    n_images: int = 320
    size: tuple[int, int] = (128, 128)
    encoder_weights: str = "auto"
    finetune_encoder: bool = False  # frozen (default) allows caching the encoder's features
    budget_ms: float = BUDGET_MS
    lut_warmup: int = 3
    lut_repeat: int = 15
    lut_fit_archs: int = DEMO_FIT_ARCHS  # end-to-end timings that fit the interaction terms
    e2e_warmup: int = 10
    e2e_repeat: int = 50
    threads: int | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    strategy: str = "bilevel"  # search strategy: bilevel (baseline) | hypernet (I1)
    holdout: str | None = None  # hypernet: device left out of training, swept zero-shot
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    pareto: ParetoConfig = field(default_factory=ParetoConfig)
    final: FinalTrainConfig = field(default_factory=FinalTrainConfig)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["lut_dir"] = str(self.out), None if self.lut_dir is None else str(self.lut_dir)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DemoConfig:
        """Inverse of :meth:`to_json` (a run directory's ``config.json``)."""
        d = dict(d)
        d["out"] = Path(d["out"])
        d["lut_dir"] = None if d.get("lut_dir") is None else Path(d["lut_dir"])
        d["size"] = tuple(d["size"])
        d["search"] = SearchConfig(**d["search"])
        d["hypernet"] = HypernetConfig(**d.get("hypernet", {}))
        d["pareto"] = ParetoConfig(**d["pareto"])
        d["final"] = FinalTrainConfig(**d["final"])
        return cls(**d)

    @classmethod
    def load(cls, out: Path) -> DemoConfig:
        """The config of an existing run directory (its ``config.json``)."""
        path = out / "config.json"
        if not path.is_file():
            raise ConfigError(f"run directory {out}: lacks config.json; start it with "
                              "`linas search --out DIR` or `linas demo --out DIR`")
        return replace(cls.from_json(json.loads(path.read_text())), out=out)


@dataclass
class Run:
    """State passed between stages; ``results`` accumulates into ``results.json``."""

    cfg: DemoConfig
    rep: Reporter
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.rep.info(f"[bold]stage[/bold] {name}")
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)

    def save_results(self) -> None:
        """Merge this run's results into ``results.json`` (atomic)."""
        path = self.cfg.out / "results.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        timings = {**old.get("timings_s", {}), **self.timings}
        write_json_atomic(path, {**old, **self.results, "timings_s": timings})


@dataclass
class Context:
    """What every stage after data preparation works on."""

    net: Supernet
    splits: dict[str, FeatureSet]
    luts: dict[str, LUT]


def start_run(cfg: DemoConfig, reporter: Reporter | None, write_config: bool = True) -> Run:
    """Create the run directory, record the config, set threads and seeds."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    if write_config:
        write_json_atomic(cfg.out / "config.json", cfg.to_json())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    return Run(cfg, reporter or Reporter())


def prepare(run: Run) -> Context:
    """Data, cached encoder features and the LUTs of every device."""
    external = load_external_luts(run.cfg)  # fail on a bad LUT before any expensive work
    with run.stage("data"):
        data = prepare_data(run)
    with run.stage("encoder_features"):
        net, splits = prepare_features(run, data)
    with run.stage("luts"):
        luts = prepare_luts(run, net, external)
    return Context(net, splits, luts)


def quick_config(cfg: DemoConfig) -> DemoConfig:
    """A tiny configuration for smoke tests (seconds, not minutes); not the real demo."""
    return replace(cfg, n_images=24, size=(64, 64), lut_warmup=1, lut_repeat=3,
                   lut_fit_archs=8, e2e_warmup=1,
                   e2e_repeat=3,
                   search=replace(cfg.search, warmup_epochs=1, search_epochs=2, soft_epochs=1,
                                  batch_size=8),
                   pareto=replace(cfg.pareto, n_candidates=60, n_evaluate=8),
                   final=replace(cfg.final, epochs=1, batch_size=8))


def run_demo(cfg: DemoConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run every stage of the demo and write ``results.json``, ``report.md`` and plots."""
    run = start_run(cfg, reporter)
    ctx = prepare(run)
    with run.stage("search"):
        state = run_search(run, ctx.net, ctx.splits, ctx.luts)
    with run.stage("pareto"):
        devices = run_fronts(run, ctx, state)
    with run.stage("final"):
        final = run_final(run, ctx.net, ctx.splits, ctx.luts[LOCAL_DEVICE],
                          devices[LOCAL_DEVICE])
    return finish(run, ctx, devices, final)


def finish(run: Run, ctx: Context, devices: dict[str, Any],
           final: dict[str, Any]) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and the plots."""
    from linas.report import write_report

    run.results.update(devices=devices, final=final, timings_s=run.timings)
    write_report(run.cfg.out, run.results, ctx.luts)
    write_json_atomic(run.cfg.out / "results.json", run.results)
    return run.results


def run_search_stage(cfg: DemoConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """``linas search``: prepare and search, checkpointing into ``cfg.out``."""
    run = start_run(cfg, reporter)
    ctx = prepare(run)
    with run.stage("search"):
        run_search(run, ctx.net, ctx.splits, ctx.luts)
    run.save_results()
    return run.results


def resume_searched(out: Path, reporter: Reporter | None = None) -> tuple[Run, Context, Any]:
    """Rebuild a searched run from its directory: config, data, features, LUTs, supernet."""
    cfg = DemoConfig.load(out)
    run = start_run(cfg, reporter, write_config=False)
    old = out / "results.json"
    if old.is_file():
        run.results.update(json.loads(old.read_text()))
    ctx = prepare(run)
    with run.stage("search"):  # completes an unfinished search, else only loads it
        state = run_search(run, ctx.net, ctx.splits, ctx.luts)
    return run, ctx, state


def run_pareto_stage(out: Path, reporter: Reporter | None = None,
                     strategy: str | None = None) -> dict[str, Any]:
    """``linas pareto``: fronts per device from a searched run directory; ``strategy``
    (``baseline`` | ``zero-cost``) overrides the run config's Pareto strategy."""
    if strategy is not None:
        check_pareto_strategy(strategy)
    run, ctx, state = resume_searched(out, reporter)
    if strategy is not None:
        if strategy != "baseline" and run.cfg.strategy == "hypernet":
            raise ConfigError(f"run {out}: a hypernet run sweeps preferences; --strategy "
                              f"{strategy} applies to bilevel runs only")
        run.cfg = replace(run.cfg, pareto=replace(run.cfg.pareto, strategy=strategy))
    with run.stage("pareto"):
        run.results["devices"] = run_fronts(run, ctx, state)
    run.save_results()
    return run.results


def run_train_stage(out: Path, device: str = LOCAL_DEVICE,
                    reporter: Reporter | None = None) -> dict[str, Any]:
    """``linas train``: final training of ``device``'s selected architecture."""
    run, ctx, _ = resume_searched(out, reporter)
    devices = run.results.get("devices")
    if not devices:
        raise ConfigError(f"run {out}: has no fronts yet; run `linas pareto --run {out}` first")
    if device not in devices:
        raise ConfigError(f"--device '{device}': not in run {out}; devices: "
                          f"{', '.join(devices)}")
    with run.stage("final"):
        final = run_final(run, ctx.net, ctx.splits, ctx.luts[device], devices[device], device)
    return finish(run, ctx, devices, final)


def prepare_data(run: Run) -> dict[str, Any]:
    """Synthesise (or reuse) the sealer dataset and load it as tensors per split."""
    cfg = run.cfg
    root = cfg.out / "data"
    meta = root / "dataset.json"
    fresh = not meta.is_file() or json.loads(meta.read_text()).get("seed") != cfg.seed or \
        json.loads(meta.read_text()).get("n_images") != cfg.n_images
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
        generate_sealer_dataset(root, cfg.n_images, cfg.size, cfg.seed)
    ds = load_dataset("folder", root, size=cfg.size)
    idx = split_indices(len(ds), seed=cfg.seed)
    tensors = {name: load_tensors(ds, ix) for name, ix in idx.items()}
    run.results.update(search_space_size=SearchSpace().size, input_size=list(cfg.size),
                       dataset={"root": str(root), "classes": list(ds.class_names or ()),
                                "splits": {k: int(len(v)) for k, v in idx.items()}})
    return {"ds": ds, "tensors": tensors}


def prepare_features(run: Run, data: dict[str, Any]) -> tuple[Supernet, dict[str, FeatureSet]]:
    """Build the supernet, freeze the encoder and cache its features for every split."""
    torch.manual_seed(run.cfg.seed)  # a random encoder is the same in every stage command
    encoder, loaded = load_encoder(run.cfg.encoder_weights)
    if loaded == "random" and run.cfg.encoder_weights == "auto":
        run.rep.info("encoder weights: ImageNet not available offline, using random (recorded)")
    run.results["encoder_weights"] = loaded
    ds = data["ds"]
    net = Supernet(ds.num_classes, encoder)
    run.results["encoder_mode"] = "finetuned" if run.cfg.finetune_encoder else "frozen"
    if run.cfg.finetune_encoder:  # features change every step: encode each batch
        return net, {name: FeatureSet(masks=masks, images=images, encoder=net.encoder)
                     for name, (images, masks) in data["tensors"].items()}
    net.freeze_encoder()
    splits: dict[str, FeatureSet] = {}
    total = sum(int(t[0].shape[0]) for t in data["tensors"].values())
    with run.rep.task("caching encoder features", total) as advance:
        for name, (images, masks) in data["tensors"].items():
            splits[name] = cache_features(net.encoder, images, masks, progress=advance)
    run.results["num_classes"] = ds.num_classes
    run.results["ignore_index"] = ds.ignore_index
    return net, splits


def load_external_luts(cfg: DemoConfig) -> dict[str, LUT]:
    """Load and validate every LUT of ``cfg.lut_dir`` (the further devices), by name."""
    luts: dict[str, LUT] = {}
    if cfg.lut_dir is None:
        return luts
    paths = find_luts([cfg.lut_dir])
    if not paths:
        raise ConfigError(f"--lut-dir {cfg.lut_dir}: holds no .json LUT files")
    for path in paths:
        lut = load_lut(path)
        if lut.name in luts or lut.name == LOCAL_DEVICE:
            raise ConfigError(f"LUT {path}: device name '{lut.name}' is used twice; rename it")
        luts[lut.name] = lut
    return luts


def prepare_luts(run: Run, net: Supernet, external: dict[str, LUT]) -> dict[str, LUT]:
    """Measure this machine's LUT (torch eager, CPU, with its fixed part) and add the others,
    copying each LUT used into the run directory."""
    cfg = run.cfg
    lut_dir = cfg.out / "luts"
    local_path = lut_dir / f"{LOCAL_DEVICE}.json"
    if local_path.is_file():
        local = load_lut(local_path, expect_input_size=cfg.size)
        run.rep.info(f"reusing measured LUT {local_path}")
    else:
        local = measure_local_lut(run, net, local_path)
    for name, lut in external.items():
        shutil.copyfile(lut.source, lut_dir / Path(lut.source).name)
        if not lut.is_end_to_end:
            run.rep.info(f"{name}: decoder-only LUT (no fixed part): its latencies, front and "
                         "budget check cover the five decoder ops only, not end to end")
    return {LOCAL_DEVICE: local, **external}


def measure_local_lut(run: Run, net: Supernet, path: Path) -> LUT:
    """Time every candidate of every layer, plus the fixed part, on this machine, and fit the
    adjacent-layer interaction terms from a small seeded sample of end-to-end runs (I4)."""
    cfg = run.cfg
    lut = measure_supernet_lut(net, cfg.size, cfg.lut_warmup, cfg.lut_repeat, cfg.threads,
                               LOCAL_DEVICE, run.rep, interactions="fit",
                               fit_archs=cfg.lut_fit_archs)
    save_lut(lut, path)
    return load_lut(path)


def run_search(run: Run, net: Supernet, splits: dict[str, FeatureSet], luts: dict[str, LUT]):
    """Bi-level search over every device at once, checkpointed each epoch (or, with
    ``strategy="hypernet"``, the hypernetwork search of :mod:`linas.hypernet_stage`)."""
    cfg = run.cfg
    check_strategy(cfg.strategy, cfg.holdout)
    if cfg.strategy == "hypernet":
        return search_hypernet(run, net, splits, luts)
    devices = [DeviceTarget(name, LUTLatencyModel(lut), cfg.budget_ms)
               for name, lut in luts.items()]
    search = BilevelSearch(net, devices, cfg.search, run.results.get("ignore_index", 255))
    state = run_checkpointed(search, splits["train"], splits["arch_val"],
                             cfg.out / "checkpoints", "search", run.rep, "searching (bi-level)")
    run.results["search"] = {"config": asdict(cfg.search), "history": state.history,
                             "argmax_arch": str(state.best_arch()),
                             "devices": {d.name: {"target_ms": d.target_ms} for d in devices}}
    return state


def run_fronts(run: Run, ctx: Context, state: Any) -> dict[str, Any]:
    """The Pareto stage of the run's search strategy: a preference sweep per device for a
    hypernet run, else the baseline sampling of :func:`run_pareto` from the logits."""
    if run.cfg.strategy == "hypernet":
        return hypernet_fronts(run, ctx.net, ctx.splits, ctx.luts, state)
    return run_pareto(run, ctx.net, ctx.splits, ctx.luts, state.logits.numpy())


def run_pareto(run: Run, net: Supernet, splits: dict[str, FeatureSet], luts: dict[str, LUT],
               logits: np.ndarray) -> dict[str, Any]:
    """Sample, evaluate by weight sharing, and build every device's front and selection."""
    cfg = run.cfg
    models = {name: LUTLatencyModel(lut) for name, lut in luts.items()}
    tables = {name: m.exhaustive() for name, m in models.items()}

    def latencies(choices: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(choices) for m in models.values()], axis=1)

    num_classes = run.results["num_classes"]
    if check_pareto_strategy(cfg.pareto.strategy) == "zero-cost":
        picked, search_info = pick_zero_cost(cfg.pareto, net, splits["train"], num_classes,
                                             latencies, run.results.get("ignore_index", 255))
    else:
        picked = pick_for_evaluation(logits, list(tables.values()), cfg.pareto, latencies)
        search_info = {"strategy": "baseline", "candidates": cfg.pareto.n_candidates}
    miou = np.zeros(len(picked))
    with run.rep.task("weight-sharing evaluation", len(picked)) as advance:
        for i, choices in enumerate(picked):
            miou[i], _ = evaluate_choices(net, splits["arch_val"], choices.tolist(), num_classes,
                                          run.results.get("ignore_index", 255))
            advance(1)
    evaluated = Evaluated(picked, miou)
    run.results["pareto_search"] = finish_search_info(search_info, miou)
    devices: dict[str, Any] = {}
    for name, model in models.items():
        info = device_front(evaluated, model, cfg.budget_ms, exact_latencies(model))
        info["lut"] = luts[name].source
        info["decoder_only"] = not model.end_to_end
        devices[name] = info
    write_json_atomic(cfg.out / "pareto.json",
                      {"search": run.results["pareto_search"],
                       "evaluated": [{"arch": str(a), "miou": float(m)} for a, m in
                                     zip(map(_arch, picked), miou, strict=True)],
                       "devices": {k: {"front": v["front"], "hypervolume": v["hypervolume"],
                                       "hv_reference": v["hv_reference"]}
                                   for k, v in devices.items()}})
    return devices


def _arch(choices: np.ndarray) -> Arch:
    return Arch(tuple(int(c) for c in choices))


def run_final(run: Run, net: Supernet, splits: dict[str, FeatureSet], lut: LUT,
              device: dict[str, Any], device_name: str = LOCAL_DEVICE) -> dict[str, Any]:
    """Train the local device's selected architecture from supernet weights, test, export,
    time end to end and give the C3 verdict."""
    cfg = run.cfg
    arch = Arch.parse(device["selected"]["arch"])
    model = net.extract(arch)
    if cfg.finetune_encoder:  # the extracted model trains its own copy of the encoder
        splits = {k: replace(v, encoder=model.encoder) for k, v in splits.items()}
    steps = cfg.final.epochs * -(-len(splits["train"]) // cfg.final.batch_size)
    with run.rep.task("final training", steps) as advance:
        history = train_final(model, splits["train"], cfg.final,
                              run.results.get("ignore_index", 255), on_step=lambda: advance(1))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(cfg.out / "checkpoints" / "final.safetensors"))
    metrics = evaluate_model(model, splits["test"], run.results["num_classes"],
                             run.results.get("ignore_index", 255))
    onnx_path = export_onnx(model, cfg.size, cfg.out / "model.onnx")
    parity = onnx_parity(model, onnx_path, cfg.size, threads=cfg.threads)
    stats = time_module(model, torch.randn(1, 3, *cfg.size), cfg.e2e_warmup, cfg.e2e_repeat,
                        cfg.threads)
    predicted = LUTLatencyModel(lut).latency(arch)
    per_image = stats.mean_ms
    return {"device": device_name, "arch": str(arch), "test_miou": metrics["miou"],
            "per_class_iou": metrics["per_class_iou"],
            "class_names": run.results["dataset"]["classes"],
            "pixel_accuracy": metrics["pixel_accuracy"], "train_history": history,
            "onnx": str(onnx_path), "onnx_max_abs_diff": parity,
            "measured_latency_ms": per_image, "measured_latency_std_ms": stats.std_ms,
            "predicted_latency_ms": predicted,
            "prediction_error_pct": 100.0 * (predicted - per_image) / per_image,
            "images_per_16s": 16000.0 / per_image,
            "meets_c3": bool(per_image <= cfg.budget_ms and 16000.0 / per_image >= 100.0)}
