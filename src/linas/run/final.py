"""Final stage: a model per device. Every device's selected architecture is trained (each
distinct architecture once, from supernet weights, seeded), tested, exported to
``RUN/deploy/<device>/model.onnx`` with a parity check, and given a card.

A device measured on this machine (a ``measure:`` block) is timed here, in its own runtime,
and its C3 verdict comes from that timing (batch 1, and 100 images with batching, pre- and
post-processing included). A device known by its LUT only is judged by the LUT's prediction,
and its card says so: it is never judged by this machine's timing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError
from linas._io import save_safetensors_atomic, write_atomic, write_json_atomic, write_text_atomic
from linas._tensors import check_tensors, read_safetensors
from linas.config import DeviceConfig
from linas.distill import evaluate_model, train_final
from linas.export import export_onnx, onnx_parity
from linas.run.cards import build_card, render_card
from linas.run.prepare import Context
from linas.run.state import Run
from linas.run.throughput import batched_throughput, time_deployed
from linas.space import Arch
from linas.supernet import SegmentationModel

N_SAMPLES = 4  # test images stored for the report's overlay figure


def run_final(run: Run, ctx: Context, devices: dict[str, Any],
              only: str | None = None) -> dict[str, Any]:
    """Train, test, export and check the selection of every device (or of ``only``).

    Returns:
        ``{device: card}``, merged into ``results['deploy']``.
    """
    targets = [d for d in run.cfg.devices if only is None or d.name == only]
    archs = list(dict.fromkeys(devices[d.name]["selected"]["arch"] for d in targets))
    trained = {a: train_arch(run, ctx, Arch.parse(a)) for a in archs}
    if not run.compute.main:  # rank 0 exports, times and writes the cards
        return {}
    cards = {d.name: deploy_device(run, ctx, d, devices[d.name], *trained[
        devices[d.name]["selected"]["arch"]]) for d in targets}
    run.results.setdefault("deploy", {}).update(cards)
    run.results["deploy_stale"] = [n for n in run.results.get("deploy_stale", []) if n not in cards]
    return cards


def train_arch(run: Run, ctx: Context,
               arch: Arch) -> tuple[SegmentationModel, dict[str, Any], Path]:
    """Train ``arch`` once (reusing its weights when a previous run of this directory trained
    it), test it; returns (model, metrics with history, weights file)."""
    model = ctx.net.extract(arch)
    splits = ctx.splits
    if run.cfg.encoder.finetune:  # the extracted model trains its own copy of the encoder
        splits = {k: replace(v, encoder=model.encoder) for k, v in splits.items()}
    weights = run.dir.checkpoints / "final" / f"{arch}.safetensors"
    ignore = run.results.get("ignore_index", 255)
    history: list[dict[str, Any]]
    compute = run.compute
    if compute.agree(weights.is_file()):
        history = load_trained(model, weights)
        run.rep.info(f"reusing trained weights {weights}")
        model.to(compute.device)
    else:
        cfg = replace(run.cfg.final, seed=run.seeds["final"])
        steps = cfg.epochs * -(-len(splits["train"]) // cfg.batch_size)
        model.to(compute.device)
        with run.rep.task(f"final training {arch}", steps) as advance:
            history = train_final(model, splits["train"], cfg, ignore,
                                  on_step=lambda: advance(1), compute=compute)
        if compute.main:
            save_safetensors_atomic(weights, {k: v.cpu() for k, v in model.state_dict().items()},
                                    metadata={"train_history": json.dumps(history)})
    metrics = evaluate_model(model, splits["test"], run.results["num_classes"], ignore,
                             compute=compute)
    metrics["train_history"] = history
    return model.cpu(), metrics, weights  # exported and timed on the CPU


def load_trained(model: SegmentationModel, weights: Path) -> list[dict[str, Any]]:
    """Load final weights written by :func:`train_arch` into ``model`` (names, shapes and
    values checked first); returns the training history stored with them.

    Raises:
        ConfigError: the file is unreadable, of another architecture or config, or corrupt.
    """
    fix = "delete it to train this architecture again"
    tensors, meta = read_safetensors(weights, fix)
    check_tensors(model.state_dict(), tensors, f"final weights {weights}", fix)
    try:
        history = json.loads(meta["train_history"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigError(f"final weights {weights}: lack their training history (written by "
                          f"another version?); {fix}") from None
    model.load_state_dict(tensors)
    return list(history)


def deploy_device(run: Run, ctx: Context, dev: DeviceConfig, front: dict[str, Any],
                  model: SegmentationModel, metrics: dict[str, Any],
                  weights: Path) -> dict[str, Any]:
    """Export ``model`` for ``dev``, time it when ``dev`` is this machine, write its card."""
    out = run.dir.deploy(dev.name)
    onnx_path = export_onnx(model, run.size, out / "model.onnx")
    threads = dev.measure.threads if dev.measure else run.cfg.compute.threads
    parity = onnx_parity(model, onnx_path, run.size, threads=threads)
    arch = Arch.parse(front["selected"]["arch"])
    lat_model = ctx.models[dev.name]
    choices = np.asarray([arch.choices])
    timing = None
    if dev.measure is not None:
        timing = time_deployed(model, onnx_path, run.size, dev.measure)
        if dev.measure.runtime == "torch":
            timing["throughput"] = batched_throughput(model, run.size, dev.measure)
        write_samples(ctx, model, out / "samples.npz", run.results.get("ignore_index", 255))
    card = build_card(run, dev, arch, float(lat_model.predict(choices)[0]),
                      float(lat_model.p95(choices)[0]), lat_model.end_to_end, metrics, timing,
                      {"onnx": str(onnx_path), "onnx_max_abs_diff": parity,
                       "weights": str(weights)})
    write_json_atomic(out / "card.json", card)
    write_text_atomic(out / "card.md", render_card(card))
    return card


@torch.no_grad()
def write_samples(ctx: Context, model: SegmentationModel, path: Path, ignore_index: int) -> None:
    """A few test images (uint8), their ground truth and the model's prediction, for the
    report's overlay figure (so `linas report` needs nothing but the run directory)."""
    from linas.data import IMAGENET_MEAN, IMAGENET_STD

    if ctx.test_images is None:
        return
    test = ctx.splits["test"]
    k = min(N_SAMPLES, len(test))
    images = ctx.test_images[:k]
    feats, masks = test.batch(torch.arange(k))
    model.eval()
    pred = model.decode(feats).argmax(dim=1)  # (k, H, W)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = ((images * std + mean).clamp(0, 1) * 255).to(torch.uint8)  # (k, 3, H, W)
    arrays: dict[str, Any] = {"images": rgb.permute(0, 2, 3, 1).numpy(), "masks": masks.numpy(),
              "pred": pred.numpy().astype(np.int64), "ignore_index": np.int64(ignore_index),
              "classes": np.asarray(ctx.class_names)}

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: numpy would append .npz to a name
            np.savez_compressed(fh, **arrays)

    write_atomic(path, write)

