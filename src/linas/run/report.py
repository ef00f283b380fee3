"""The run report: ``report.md`` and plots (Pareto front per device, LUT heat maps, test images
with ground truth and prediction), regenerated from the run directory alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from linas._io import write_atomic, write_text_atomic  # noqa: E402
from linas.latency import LUT, load_lut  # noqa: E402
from linas.run.rundir import RunDir  # noqa: E402
from linas.space import CHOICE_KEYS  # noqa: E402


def plot_front(name: str, info: dict[str, Any], path: Path) -> None:
    """Scatter of evaluated architectures, the front, the budget and the selection."""
    ev = info["evaluated"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(ev["latency_ms"], ev["miou"], s=10, c="0.6", label="evaluated")
    front = info["front"]
    ax.step([p["latency_ms"] for p in front], [p["miou"] for p in front], where="post",
            c="tab:blue", marker="o", ms=4, label="Pareto front")
    if info["budget_ms"] <= max(ev["latency_ms"]) * 1.2:
        ax.axvline(info["budget_ms"], c="tab:red", ls="--", label=f"budget {info['budget_ms']} ms")
    sel = info["selected"]
    ax.scatter([sel["latency_ms"]], [sel["miou"]], marker="*", s=160, c="tab:orange",
               label="selected", zorder=5)
    kind = "decoder-only LUT" if info.get("decoder_only") else "end-to-end LUT"
    ax.set(xlabel=f"predicted latency (ms, {kind})", ylabel="weight-sharing mIoU (arch-val)",
           title=name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def save_figure(fig: Any, path: Path, dpi: int) -> None:
    """Save ``fig`` as a PNG atomically and close it."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    plt.close(fig)


def plot_lut(lut: LUT, path: Path) -> None:
    """Heat map of the LUT's mean latency per (layer, choice), log colour scale."""
    fig, ax = plt.subplots(figsize=(9, 3))
    im = ax.imshow(np.log10(lut.mean_ms), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(CHOICE_KEYS)), CHOICE_KEYS, rotation=90, fontsize=6)
    ax.set_yticks(range(lut.mean_ms.shape[0]), [f"layer_{i}" for i in range(lut.mean_ms.shape[0])])
    ax.set_title(f"{lut.name}: log10 mean ms")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_samples(samples: Path, path: Path) -> None:
    """Test images with ground truth and prediction overlaid (class colours, background
    left clear), one row per image."""
    data = np.load(samples)
    images, masks, pred = data["images"], data["masks"], data["pred"]
    classes, ignore = [str(c) for c in data["classes"]], int(data["ignore_index"])
    colours = plt.get_cmap("tab10")(np.arange(max(len(classes), 1)))[:, :3]  # (C, 3)
    fig, axes = plt.subplots(len(images), 3, figsize=(9, 2.6 * len(images)), squeeze=False)
    for r, (img, gt, pr) in enumerate(zip(images, masks, pred, strict=True)):
        for c, (title, lab) in enumerate((("image", None), ("ground truth", gt),
                                          ("prediction", pr))):
            ax = axes[r, c]
            ax.imshow(img if lab is None else _overlay(img, lab, colours, ignore))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[i]) for i in range(1, len(classes))]
    fig.legend(handles, classes[1:], loc="lower center", ncol=max(len(classes) - 1, 1))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save_figure(fig, path, dpi=100)


def _overlay(img: np.ndarray, labels: np.ndarray, colours: np.ndarray,
             ignore: int) -> np.ndarray:
    out = img.astype(np.float64) / 255.0  # (H, W, 3)
    show = (labels > 0) & (labels != ignore)
    lab = np.where(show, labels, 0)
    out[show] = 0.45 * out[show] + 0.55 * colours[lab[show] % len(colours)]
    return out


def write_report(run_dir: RunDir) -> Path:
    """Write ``plots/`` and ``report.md`` from ``results.json``, the run's LUTs and the
    deployment cards; returns the report's path."""
    results = run_dir.read_results()
    plots = run_dir.plots
    plots.mkdir(parents=True, exist_ok=True)
    for name, info in results.get("devices", {}).items():
        plot_front(name, info, plots / f"pareto_{name}.png")
        lut_path = run_dir.luts / f"{name}.json"
        if lut_path.is_file():
            plot_lut(load_lut(lut_path), plots / f"lut_{name}.png")
    samples = []
    for name in results.get("deploy", {}):
        npz = run_dir.deploy(name) / "samples.npz"
        if npz.is_file():
            plot_samples(npz, plots / f"samples_{name}.png")
            samples.append(name)
    cards = {}
    for name in results.get("deploy", {}):
        card = run_dir.deploy(name) / "card.json"
        if card.is_file():
            cards[name] = json.loads(card.read_text())
    path = run_dir.root / "report.md"
    write_text_atomic(path, render_markdown(results, cards, samples))
    return path


def render_markdown(results: dict[str, Any], cards: dict[str, Any], samples: list[str]) -> str:
    """The human-readable summary of a run."""
    size = results.get("input_size", ["?", "?"])
    lines = ["# LINAS+ run report", "",
             f"- search space: {results.get('search_space_size', 0):,} architectures; input "
             f"{size[0]}x{size[1]}; encoder weights: {results.get('encoder_weights')}; seed "
             f"{results.get('seed')}; config sha256 `{results.get('config_sha256')}`",
             f"- dataset: {results.get('dataset', {}).get('kind')} at "
             f"{results.get('dataset', {}).get('root')}, classes "
             f"{', '.join(results.get('dataset', {}).get('classes', []))}, splits "
             f"{results.get('dataset', {}).get('splits')}", ""]
    lines += _fronts_table(results) + _cards_table(cards, results.get("deploy_stale"))
    lines += _kd_lines(cards)
    lines += _fleet_lines(results)
    lines += _warning_lines(results)
    for name in samples:
        lines += [f"## Test images: {name}", "", f"![{name}](plots/samples_{name}.png)", ""]
    lines += ["## Wall time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in results.get("timings_s", {}).items()]
    lines += ["", "Plots: `plots/pareto_<device>.png`, `plots/lut_<device>.png`, "
              "`plots/samples_<device>.png`.", ""]
    return "\n".join(lines)


def _fronts_table(results: dict[str, Any]) -> list[str]:
    lines = ["## Fronts", "",
             "| device | LUT kind | budget ms | front size | hypervolume | HV ref (ms, mIoU) | "
             "selected | latency ms | ws mIoU | meets budget | share of space within budget |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in results.get("devices", {}).items():
        s = d["selected"]
        kind = "decoder-only" if d.get("decoder_only") else "end-to-end"
        lines.append(f"| {name} | {kind} | {d['budget_ms']:g} | {len(d['front'])} | "
                     f"{d['hypervolume']:.4g} | ({d['hv_reference'][0]:.4g}, "
                     f"{d['hv_reference'][1]:g}) | `{s['arch']}` | {s['latency_ms']:.3f} | "
                     f"{s['miou']:.3f} | {s['meets_budget']} | "
                     f"{d['space_share_within_budget']:.1%} |")
    return lines + ["", "Decoder-only LUTs (such as the reference tables) time the five decoder "
                    "ops only, so their latencies and budget check are decoder-only.", ""]


def _cards_table(cards: dict[str, Any], stale: list[str] | None = None) -> list[str]:
    if not cards:
        return []
    lines = ["## Deployed models (one per device)", ""]
    if stale:
        lines += [f"**Stale**: the selection of {', '.join(stale)} changed after its model was "
                  "trained; run `linas train --run RUN` to deploy the new one.", ""]
    lines += ["| device | arch | predicted ms (p95) | measured ms | budget ms | meets budget | "
              "verdict from | test mIoU | model |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in cards.items():
        measured = "—" if c["measured_latency_ms"] is None else f"{c['measured_latency_ms']:.2f}"
        lines.append(f"| {name} | `{c['arch']}` | {c['predicted_latency_ms']:.3f} "
                     f"({c['predicted_p95_ms']:.3f}) | {measured} | {c['budget_ms']:g} | "
                     f"{'yes' if c['meets_budget'] else '**no**'} | {c['verdict_basis']} | "
                     f"{c['test_miou']:.3f} | `deploy/{name}/model.onnx` |")
    return lines + [""]


def _kd_lines(cards: dict[str, Any]) -> list[str]:
    """Distillation (I5) per device, when any model was distilled."""
    kds = {n: c["kd"] for n, c in cards.items() if (c.get("kd") or {}).get("mode", "none")
           != "none"}
    if not kds:
        return []
    lines = ["## Distillation (I5)", "", "| device | mode | alpha | teacher | teacher test mIoU "
             "| teacher / student predicted ms | teacher worse |", "|---|---|---|---|---|---|---|"]
    for name, kd in kds.items():
        lines.append(f"| {name} | {kd['mode']} | {kd['alpha']:.3f} | `{kd['teacher_arch']}` | "
                     f"{kd['teacher_test_miou']:.3f} | {kd['teacher_predicted_ms']:.3f} / "
                     f"{kd['student_predicted_ms']:.3f} | "
                     f"{'**yes**' if kd['teacher_worse_than_student'] else 'no'} |")
    return lines + [""]


def _fleet_lines(results: dict[str, Any]) -> list[str]:
    plan = results.get("fleet_plan")
    if not plan:
        return []
    lines = ["## Fleet plan", "",
             f"{plan['n_decoders']} distinct decoder(s) meet every device's budget: "
             + ", ".join(f"`{a}`" for a in plan["decoders"]) + ".", "",
             "| device | planned arch | ws mIoU | own best ws mIoU | mIoU given up |",
             "|---|---|---|---|---|"]
    for name, d in plan["devices"].items():
        if d is None:
            lines.append(f"| {name} | none meets the budget | | | |")
        else:
            lines.append(f"| {name} | `{d['arch']}` | {d['miou']:.3f} | {d['own_best_miou']:.3f}"
                         f" | {d['miou_given_up']:.3f} |")
    return lines + ["", f"Method: {plan['method']}.", ""]


def _warning_lines(results: dict[str, Any]) -> list[str]:
    warns = results.get("lut_warnings", {})
    if not warns:
        return []
    lines = ["## LUT check warnings", ""]
    for name, items in warns.items():
        lines += [f"- {name}: {w}" for w in items[:5]]
        if len(items) > 5:
            lines.append(f"- {name}: ... {len(items) - 5} more (`linas lut check` lists all)")
    return lines + [""]
