"""Final stage: a model per device. Every device's selected architecture is trained (from
supernet weights, seeded), tested, exported to ``RUN/deploy/<device>/model.onnx`` with a parity
check, and given a card.

With ``final.kd`` other than ``none`` (I5) a teacher (``final.teacher``, default the largest
subnet) is extracted from the supernet, fine-tuned once per run with the CE recipe (unless
``final.teacher_epochs`` is 0), frozen and tested; each device's student is distilled from it
with the KD weight alpha of that device's latency model (``latency`` mode). Each distinct
(architecture, alpha) is trained once.

Trained weights live in ``RUN/checkpoints/final/``, named by the architecture and a hash of
everything they depend on (the resolved ``final`` section with its stage seed, alpha and the
teacher), so a rerun reuses them and a changed ``final`` section never does.

A device measured on this machine (a ``measure:`` block) is timed here, in its own runtime,
and its C3 verdict comes from that timing (batch 1, and 100 images with batching, pre- and
post-processing included). A device known by its LUT only is judged by the LUT's prediction,
and its card says so: it is never judged by this machine's timing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError, LUTError
from linas._io import save_safetensors_atomic, write_atomic, write_json_atomic, write_text_atomic
from linas._tensors import check_tensors, read_safetensors
from linas.config import DeviceConfig
from linas.data import FeatureSet
from linas.distill import (
    Distillation,
    FinalTrainConfig,
    evaluate_model,
    kd_alpha,
    train_final,
)
from linas.export import export_onnx, onnx_parity
from linas.latency.measure import this_machine
from linas.run.cards import build_card, render_card
from linas.run.prepare import Context
from linas.run.state import Run
from linas.run.throughput import batched_throughput, time_deployed
from linas.space import NUM_LAYERS, Arch
from linas.supernet import SegmentationModel

N_SAMPLES = 4  # test images stored for the report's overlay figure
LARGEST = Arch.parse("-".join(["Conv7x7_w100"] * NUM_LAYERS))  # the default teacher
# Options that only shape distillation: left out of the key of weights they cannot affect.
KD_ONLY = ("kd", "T", "base_alpha", "beta", "gamma", "teacher", "teacher_epochs")


@dataclass
class Teacher:
    """The run's frozen KD teacher: its architecture, model, test mIoU and the key of its
    weights (what a student's weights name depends on)."""

    arch: Arch
    model: SegmentationModel
    test_miou: float
    key: str


@dataclass(frozen=True)
class Plan:
    """How one device's student is trained: its architecture and KD weight, and the
    predicted latencies (on that device) alpha came from."""

    arch: str
    alpha: float
    student_ms: float | None = None
    teacher_ms: float | None = None

    @property
    def job(self) -> tuple[str, float]:
        return self.arch, self.alpha


def run_final(run: Run, ctx: Context, devices: dict[str, Any],
              only: str | None = None) -> dict[str, Any]:
    """Train, test, export and check the selection of every device (or of ``only``).

    Returns:
        ``{device: card}``, merged into ``results['deploy']``.
    """
    targets = [d for d in run.cfg.devices if only is None or d.name == only]
    kd = run.cfg.final.kd != "none"
    t_arch = teacher_arch(run.cfg.final) if kd else None
    plans = {d.name: plan_device(run, ctx, d, Arch.parse(devices[d.name]["selected"]["arch"]),
                                 t_arch) for d in targets}  # a LUT error fails before training
    teacher = build_teacher(run, ctx) if kd else None
    if teacher is None:
        run.results.pop("final_teacher", None)  # a teacher of earlier settings
    jobs = list(dict.fromkeys(p.job for p in plans.values()))
    trained = {job: train_arch(run, ctx, Arch.parse(job[0]), teacher, job[1]) for job in jobs}
    if not run.compute.main:  # rank 0 exports, times and writes the cards
        return {}
    cards = {}
    for d in targets:
        model, metrics, weights = trained[plans[d.name].job]
        block = kd_block(run, d, plans[d.name], teacher, metrics)
        cards[d.name] = deploy_device(run, ctx, d, devices[d.name], model, metrics, weights,
                                      block)
    run.results.setdefault("deploy", {}).update(cards)
    run.results["deploy_stale"] = [n for n in run.results.get("deploy_stale", []) if n not in cards]
    return cards


def predicted_ms(ctx: Context, dev: DeviceConfig, arch: Arch) -> float:
    """``arch``'s mean latency on ``dev`` by its latency model."""
    return float(ctx.models[dev.name].predict(np.asarray([arch.choices]))[0])


def plan_device(run: Run, ctx: Context, dev: DeviceConfig, arch: Arch,
                teacher: Arch | None) -> Plan:
    """The student and alpha of ``dev`` with the ``teacher`` architecture (alpha 0 without
    one).

    Raises:
        LUTError: the device's latency model predicts a non-positive or non-finite latency.
    """
    cfg = run.cfg.final
    if teacher is None:
        return Plan(str(arch), 0.0)
    s_ms, t_ms = predicted_ms(ctx, dev, arch), predicted_ms(ctx, dev, teacher)
    try:
        alpha = kd_alpha(cfg.kd, cfg.base_alpha, s_ms, t_ms)
    except ValueError as exc:
        raise LUTError(f"device {dev.name}: {exc} (its latency model's prediction); check its "
                       "LUT with `linas lut check`") from None
    return Plan(str(arch), alpha, s_ms, t_ms)


def teacher_arch(cfg: FinalTrainConfig) -> Arch:
    """``final.teacher``, or the largest subnet when it is unset."""
    return LARGEST if cfg.teacher is None else Arch.parse(cfg.teacher)


def digest(data: dict[str, Any]) -> str:
    """A short hash of plain data (canonical JSON): the key of cached weights and results."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _recipe(cfg: FinalTrainConfig, kd: bool) -> dict[str, Any]:
    """The resolved final section (stage seed, teacher arch resolved), without the KD-only
    options when the weights do not depend on them."""
    data = asdict(replace(cfg, teacher=str(teacher_arch(cfg))))
    return data if kd else {k: v for k, v in data.items() if k not in KD_ONLY}


def weights_path(run: Run, arch: Arch, cfg: FinalTrainConfig, alpha: float,
                 teacher: Teacher | None) -> Path:
    """``checkpoints/final/<arch>-<hash>.safetensors``: the hash of the recipe, alpha and the
    teacher (its architecture and weights key)."""
    key = {"recipe": _recipe(cfg, teacher is not None), "alpha": alpha,
           "teacher": None if teacher is None else teacher.key}
    return run.dir.checkpoints / "final" / f"{arch}-{digest(key)}.safetensors"


def _stage_recipe(run: Run) -> FinalTrainConfig:
    return replace(run.cfg.final, seed=run.seeds["final"])


def own_splits(run: Run, ctx: Context, model: SegmentationModel) -> dict[str, FeatureSet]:
    """The run's splits, encoding with ``model``'s own encoder when it is fine-tuned."""
    if run.cfg.encoder.finetune:  # the extracted model trains its own copy of the encoder
        return {k: replace(v, encoder=model.encoder) for k, v in ctx.splits.items()}
    return ctx.splits


def build_teacher(run: Run, ctx: Context) -> Teacher:
    """Extract the teacher, fine-tune it with the CE recipe (``teacher_epochs`` epochs, default
    ``epochs``; its weights cached like the students'), freeze and test it."""
    cfg = _stage_recipe(run)
    arch = teacher_arch(cfg)
    model = ctx.net.extract(arch)
    splits = own_splits(run, ctx, model)
    epochs = cfg.epochs if cfg.teacher_epochs is None else cfg.teacher_epochs
    recipe = replace(cfg, epochs=epochs)
    key: dict[str, Any] = {"role": "teacher", "arch": str(arch),
                           "recipe": _recipe(recipe, False)}
    if epochs > 0:
        weights = run.dir.checkpoints / "final" / f"teacher-{arch}-{digest(key)}.safetensors"
        fit(run, model, splits["train"], recipe, weights, f"teacher training {arch}")
    else:
        key, weights = {"role": "teacher", "arch": str(arch), "extracted": True}, None
        model.to(run.compute.device)
    metrics = evaluate_model(model, splits["test"], run.results["num_classes"],
                             run.results.get("ignore_index", 255), compute=run.compute)
    run.rep.info(f"KD teacher {arch}: test mIoU {metrics['miou']:.3f} "
                 f"({'as extracted' if weights is None else f'fine-tuned {epochs} epochs'})")
    run.results["final_teacher"] = {"arch": str(arch), "test_miou": metrics["miou"],
                                    "epochs": epochs, "weights": str(weights) if weights else None}
    model.eval()
    model.requires_grad_(False)  # frozen from here on
    return Teacher(arch, model, float(metrics["miou"]), digest(key))


def train_arch(run: Run, ctx: Context, arch: Arch, teacher: Teacher | None = None,
               alpha: float = 0.0) -> tuple[SegmentationModel, dict[str, Any], Path]:
    """Train ``arch`` once (distilled from ``teacher`` with weight ``alpha`` when given;
    reusing the weights a previous run of this directory trained under the same settings),
    test it; returns (model, metrics with history, weights file)."""
    model = ctx.net.extract(arch)
    splits = own_splits(run, ctx, model)
    cfg = _stage_recipe(run)
    weights = weights_path(run, arch, cfg, alpha, teacher)
    distill = None if teacher is None else Distillation.from_config(teacher.model, alpha, cfg)
    history = fit(run, model, splits["train"], cfg, weights, f"final training {arch}", distill)
    metrics = evaluate_model(model, splits["test"], run.results["num_classes"],
                             run.results.get("ignore_index", 255), compute=run.compute)
    metrics["train_history"] = history
    return model.cpu(), metrics, weights  # exported and timed on the CPU


def fit(run: Run, model: SegmentationModel, train: FeatureSet, cfg: FinalTrainConfig,
        weights: Path, label: str, distill: Distillation | None = None) -> list[dict[str, Any]]:
    """Load ``weights`` into ``model`` when a previous run wrote them, else train it (CE, or
    KD with ``distill``) and write them; the model ends on the compute device. Returns the
    training history."""
    compute = run.compute
    model.to(compute.device)
    if compute.agree(weights.is_file()):
        history = load_trained(model, weights)
        run.rep.info(f"reusing trained weights {weights}")
        return history
    steps = cfg.epochs * -(-len(train) // cfg.batch_size)
    with run.rep.task(label, steps) as advance:
        history = train_final(model, train, cfg, run.results.get("ignore_index", 255),
                              on_step=lambda: advance(1), compute=compute, distill=distill)
    if compute.main:
        save_safetensors_atomic(weights, {k: v.cpu() for k, v in model.state_dict().items()},
                                metadata={"train_history": json.dumps(history)})
    return history


def kd_block(run: Run, dev: DeviceConfig, plan: Plan, teacher: Teacher | None,
             metrics: dict[str, Any]) -> dict[str, Any]:
    """The card's ``kd`` block of ``dev`` (warns when the teacher tests worse than the
    student it taught)."""
    cfg = run.cfg.final
    if teacher is None:
        return {"mode": "none", "alpha": 0.0, "T": None, "beta": None, "gamma": None,
                "teacher_arch": None, "teacher_test_miou": None, "teacher_predicted_ms": None,
                "student_predicted_ms": None, "teacher_worse_than_student": None}
    worse = bool(teacher.test_miou < metrics["miou"])
    if worse:
        run.rep.warn(f"device {dev.name}: the KD teacher {teacher.arch} tests worse (mIoU "
                     f"{teacher.test_miou:.3f}) than its student {plan.arch} "
                     f"({metrics['miou']:.3f}); fine-tune it longer (final.teacher_epochs), pick "
                     "another (final.teacher) or train without it (final.kd=none)")
    return {"mode": cfg.kd, "alpha": plan.alpha, "T": cfg.T, "beta": cfg.beta,
            "gamma": cfg.gamma, "teacher_arch": str(teacher.arch),
            "teacher_test_miou": teacher.test_miou, "teacher_predicted_ms": plan.teacher_ms,
            "student_predicted_ms": plan.student_ms, "teacher_worse_than_student": worse}


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
                  model: SegmentationModel, metrics: dict[str, Any], weights: Path,
                  kd: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export ``model`` for ``dev``, time it when ``dev`` is this machine, write its card
    (with the ``kd`` block of its training). A card already written from the same weights,
    config, LUT, distillation and machine is kept as it is (a rerun re-times nothing)."""
    out = run.dir.deploy(dev.name)
    summary = run.results.get("devices_config", {}).get(dev.name, {})
    expect = {"arch": front["selected"]["arch"], "weights": str(weights),
              "config_sha256": run.cfg.sha256(), "lut_sha256": summary.get("lut_sha256"),
              "kd": kd, "test_miou": metrics["miou"],
              "measured_on": this_machine() if dev.measure is not None else None}
    kept = kept_card(out, expect, samples=dev.measure is not None)
    if kept is not None:
        run.rep.info(f"{dev.name}: deployed model up to date ({out / 'card.json'})")
        return kept
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
                       "weights": str(weights)}, kd=kd)
    card["measured_on"] = expect["measured_on"]
    write_json_atomic(out / "card.json", card)
    write_text_atomic(out / "card.md", render_card(card))
    return card


def kept_card(out: Path, expect: dict[str, Any], samples: bool) -> dict[str, Any] | None:
    """The card in ``out`` when its ``expect`` keys match and its files are there (the model,
    and the sample predictions of a device timed here), else None."""
    path = out / "card.json"
    files = [out / "model.onnx", out / "card.md"] + ([out / "samples.npz"] if samples else [])
    if not path.is_file() or not all(f.is_file() for f in files):
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(card, dict) and all(card.get(k, None) == v for k, v in expect.items())
    return card if ok else None


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

