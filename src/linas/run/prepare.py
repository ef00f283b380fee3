"""Preparing a run: the dataset and its splits, the supernet with cached encoder features,
and every device's LUT (measured here, or read from its file, checked, at the run's size)."""

from __future__ import annotations

import hashlib
import platform
import shutil
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from linas._errors import LUTError
from linas.config import DeviceConfig, RunConfig
from linas.data import FeatureSet, cache_features, load_tensors
from linas.latency import LUT, LUTLatencyModel, load_lut, save_lut
from linas.run.resources import check_feature_cache
from linas.run.state import Run
from linas.space import SearchSpace
from linas.supernet import Supernet, load_encoder

CACHE_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass
class Context:
    """What every stage after preparation works on."""

    net: Supernet
    splits: dict[str, FeatureSet]
    luts: dict[str, LUT]  # by device name, in config order
    class_names: list[str] = field(default_factory=list)
    test_images: torch.Tensor | None = None  # (N, 3, H, W) normalised, for the report figure
    interactions: dict[str, bool] = field(default_factory=dict)  # by device; absent: True

    @cached_property
    def models(self) -> dict[str, LUTLatencyModel]:
        """Every device's latency model, built once (each checks its exact minimum); pair
        terms (I4) only where the device's ``use_interactions`` allows them."""
        return {name: LUTLatencyModel(lut, use_interactions=self.interactions.get(name, True))
                for name, lut in self.luts.items()}


def prepare(run: Run) -> Context:
    """Data, cached encoder features and the LUTs of every device (LUT files are read and
    checked first, so a bad LUT fails before any expensive work)."""
    external = {d.name: read_device_lut(run, d) for d in run.cfg.devices if d.lut is not None}
    with run.stage("data"):
        data = prepare_data(run)
    with run.stage("encoder_features"):
        net, splits = prepare_features(run, data)
    with run.stage("luts"):
        luts = {d.name: external[d.name] if d.lut is not None else measured_lut(run, net, d)
                for d in run.cfg.devices}
    check_all(run, luts)
    run.results["devices_config"] = {d.name: _device_summary(run, d, luts[d.name])
                                     for d in run.cfg.devices}
    net.to(run.compute.device)  # after the LUTs: a measurement keeps its own device
    return Context(net, splits, luts, list(data["class_names"]), data["tensors"]["test"][0],
                   {d.name: d.use_interactions for d in run.cfg.devices})


def prepare_data(run: Run) -> dict[str, Any]:
    """Load the configured dataset at the run size and split it (seeded)."""
    from linas.data import build_dataset, make_splits

    cfg = run.cfg.data
    ds, size = build_dataset(cfg, run.dir.data, run.seeds["data"])
    idx = make_splits(ds, cfg.splits, run.seeds["data"])
    tensors = {name: load_tensors(ds, ix) for name, ix in idx.items()}
    names = list(ds.class_names or ())
    run.results.update(search_space_size=SearchSpace().size, input_size=list(size),
                       num_classes=ds.num_classes, ignore_index=ds.ignore_index,
                       dataset={"kind": cfg.kind, "root": str(ds_root(run)), "classes": names,
                                "splits": {k: int(len(v)) for k, v in idx.items()}})
    return {"ds": ds, "tensors": tensors, "class_names": names}


def ds_root(run: Run) -> Path:
    """The dataset folder of the run (``RUN/data`` for synthetic data)."""
    root = run.cfg.data.root
    return run.dir.data if run.cfg.data.kind == "synthetic" or not root else Path(root)


def prepare_features(run: Run, data: dict[str, Any]) -> tuple[Supernet, dict[str, FeatureSet]]:
    """Build the supernet (seeded) and, for a frozen encoder, cache its features per split."""
    torch.manual_seed(run.seeds["encoder"])  # random encoder + decoder init, same every stage
    encoder, loaded = load_encoder(run.cfg.encoder.weights)
    if loaded == "random" and run.cfg.encoder.weights == "auto":
        run.rep.info("encoder weights: ImageNet not available offline, using random (recorded)")
    run.results["encoder_weights"] = loaded
    net = Supernet(data["ds"].num_classes, encoder)
    finetune = run.cfg.encoder.finetune
    run.results["encoder_mode"] = "finetuned" if finetune else "frozen"
    if finetune:  # features change every step: encode each batch
        if run.cfg.compute.grad_checkpoint:
            set_grad_checkpointing(net.encoder)
        return net, {name: FeatureSet(masks=masks, images=images, encoder=net.encoder)
                     for name, (images, masks) in data["tensors"].items()}
    net.freeze_encoder()
    return net, cache_splits(run, net, data["tensors"])


# Pixels encoded at once while caching: DenseNet121's activations at 480x640 take ~0.2 GiB
# per image (measured), so two such images, or 16 at 128x128 (the cap), at a time.
ENCODE_PIXELS = 2 * 480 * 640


def encode_batch(size: tuple[int, int]) -> int:
    """Images per encoder batch while caching features at ``size`` (1..16)."""
    return max(1, min(16, ENCODE_PIXELS // (size[0] * size[1])))


def cache_splits(run: Run, net: Supernet, tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
                 ) -> dict[str, FeatureSet]:
    """The frozen encoder's features of every split, in RAM or memory-mapped under
    ``RUN/cache`` (``compute.feature_cache``), in ``compute.cache_dtype``; a disk cache that
    matches is reused.

    Raises:
        ConfigError: the cache would not fit the RAM or the disk (with the fixes).
    """
    where, dtype = run.cfg.compute.feature_cache, run.cfg.compute.cache_dtype
    folder = run.dir.cache
    total = sum(int(t[0].shape[0]) for t in tensors.values())
    need, line = check_feature_cache(total, run.size, where, dtype, folder)
    run.rep.info(line)
    run.results["feature_cache_bytes"] = need
    run.results["feature_cache"] = {"where": where, "dtype": dtype, "bytes": need}
    splits: dict[str, FeatureSet] = {}
    with run.rep.task("caching encoder features", total) as advance:
        for name, (images, masks) in tensors.items():
            splits[name] = cache_features(
                net.encoder, images, masks, batch_size=encode_batch(run.size),
                progress=advance,
                path_prefix=folder / name if where == "disk" else None,
                dtype=CACHE_TORCH_DTYPES[dtype], info=run.rep.info)
    return splits


def set_grad_checkpointing(encoder: torch.nn.Module) -> int:
    """Recompute the dense layers' activations in the backward pass instead of keeping them
    (torchvision DenseNet's ``memory_efficient``, i.e. torch.utils.checkpoint): less memory
    for a fine-tuned encoder at high resolution, for roughly one more encoder forward per
    step. Returns the number of layers switched."""
    layers = [m for m in encoder.modules() if hasattr(m, "memory_efficient")]
    for m in layers:
        setattr(m, "memory_efficient", True)  # noqa: B010 - a plain attribute of the layer
    return len(layers)


def read_device_lut(run: Run, dev: DeviceConfig) -> LUT:
    """Copy a device's LUT file into ``RUN/luts/<device>.json``, load it at the run size and
    check it: errors stop the run, warnings go to the results and report.

    Raises:
        LUTError: unreadable or invalid LUT, another input size, or failed checks.
    """
    from linas.latency.check import check_lut

    src = Path(str(dev.lut))
    if not src.is_file():
        raise LUTError(f"devices.{dev.name}.lut: {src} does not exist; give the LUT file "
                       "measured on that device (`linas lut measure` there)")
    size = run.size
    # read and checked once, on the user's file (errors name it as they wrote it); the run
    # keeps a byte-identical copy named after the device
    lut = load_lut(src, expect_input_size=size)
    copy = run.dir.luts / f"{dev.name}.json"
    copy.parent.mkdir(parents=True, exist_ok=True)
    if not copy.is_file() or copy.read_bytes() != src.read_bytes():
        shutil.copyfile(src, copy)
    lut = replace(lut, source=str(copy))
    if lut.ignored_entries:
        run.rep.info(f"{dev.name}: {lut.ignored_summary()}")
    _stop_on_errors(dev.name, check_lut(lut, expect_input_size=size), src)
    if not lut.is_end_to_end:
        run.rep.info(f"{dev.name}: decoder-only LUT (no fixed part): its latencies, front and "
                     "budget check cover the five decoder ops only, not end to end")
    return lut


def measured_lut(run: Run, net: Supernet, dev: DeviceConfig) -> LUT:
    """Measure (or reuse) the LUT of a device measured on this machine, at the run size."""
    from linas.latency import get_runtime
    from linas.latency.check import check_lut
    from linas.profiling import measure_supernet_lut

    path = run.dir.luts / f"{dev.name}.json"
    m = dev.measure
    assert m is not None
    if path.is_file():
        run.rep.info(f"reusing measured LUT {path}")
        lut = load_lut(path, expect_input_size=run.size)
        host = lut.provenance.get("host")
        if host is not None and host != platform.node():
            raise LUTError(f"LUT {path} (device {dev.name}) was measured on host {host!r}, "
                           f"this is {platform.node()!r}: a device is never judged by another "
                           f"machine's timing; delete {path} to measure it here")
    else:
        rt = get_runtime(m.runtime, m.device, m.threads)
        lut = measure_supernet_lut(net, run.size, m.warmup, m.repeat, m.threads, dev.name,
                                   run.rep, runtime=rt, interactions=m.interactions,
                                   fit_archs=m.fit_archs)
        save_lut(lut, path)
        lut = load_lut(path, expect_input_size=run.size)
    _stop_on_errors(dev.name, check_lut(lut, expect_input_size=run.size), path)
    return lut


def check_all(run: Run, luts: dict[str, LUT]) -> None:
    """`linas lut check` over every device's LUT (cross-device checks included): warnings go
    to the results and the report."""
    from linas.latency.check import check_luts

    for name, findings in check_luts(luts, expect_input_size=run.size).items():
        _stop_on_errors(name, findings, run.dir.luts / f"{name}.json")
        warnings = [f"{f.code} {f.location}: {f.message}" for f in findings
                    if f.severity == "warning"]
        if warnings:
            run.results.setdefault("lut_warnings", {})[name] = warnings
            run.rep.info(f"{name}: {len(warnings)} LUT check warning(s), see the report")


def _stop_on_errors(name: str, findings: list[Any], path: Path) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise LUTError(f"LUT {path} (device {name}) fails `linas lut check`: "
                       f"{errors[0].message}" + (f" (+{len(errors) - 1} more errors)"
                                                 if len(errors) > 1 else "")
                       + f"; run `linas lut check {path}` for the list")


def _device_summary(run: Run, dev: DeviceConfig, lut: LUT) -> dict[str, Any]:
    path = run.dir.luts / f"{dev.name}.json"
    return {"budget_ms": dev.budget_ms, "measured_here": dev.measured_here,
            "runtime": dev.measure.runtime if dev.measure else lut.provenance.get("runtime"),
            "lut": str(path), "lut_source": str(dev.lut) if dev.lut else "measured here",
            "lut_sha256": file_sha256(path), "end_to_end": lut.is_end_to_end,
            "interactions": dev.use_interactions and lut.interactions is not None}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_size(cfg: RunConfig) -> tuple[int, int]:
    """The size the network runs at (``data.size`` after the ``data.fit`` policy).

    Raises:
        ConfigError: a size the network cannot run under ``fit: refuse``.
    """
    from linas.data import check_network_size

    return check_network_size(tuple(cfg.data.size), cfg.data.fit)
