"""The run report: ``report.md`` and plots (Pareto front per device, LUT heat maps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from linas.latency import LUT  # noqa: E402
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
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, results: dict[str, Any], luts: dict[str, LUT]) -> None:
    """Write plots under ``out/plots`` and ``out/report.md``."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for name, info in results["devices"].items():
        plot_front(name, info, plots / f"pareto_{name}.png")
        plot_lut(luts[name], plots / f"lut_{name}.png")
    (out / "report.md").write_text(render_markdown(results))


def render_markdown(results: dict[str, Any]) -> str:
    """The human-readable summary of ``results.json``."""
    fin = results["final"]
    lines = [
        "# LINAS+ run report", "",
        f"- search space: {results['search_space_size']:,} architectures; input "
        f"{results['input_size'][0]}x{results['input_size'][1]}; encoder weights: "
        f"{results['encoder_weights']}", "",
        "## Devices", "",
        "| device | LUT kind | budget ms | front size | hypervolume | HV ref (ms, mIoU) | "
        "selected | latency ms | mIoU | meets budget | share of space within budget |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, d in results["devices"].items():
        s = d["selected"]
        kind = "decoder-only" if d.get("decoder_only") else "end-to-end"
        lines.append(f"| {name} | {kind} | {d['budget_ms']:g} | {len(d['front'])} | "
                     f"{d['hypervolume']:.4g} | ({d['hv_reference'][0]:.4g}, "
                     f"{d['hv_reference'][1]:g}) | `{s['arch']}` | {s['latency_ms']:.3f} | "
                     f"{s['miou']:.3f} | {s['meets_budget']} | "
                     f"{d['space_share_within_budget']:.1%} |")
    lines += ["", "Decoder-only LUTs (the reference tables) time the five decoder ops only, so "
              "their budget check is decoder-only.", "", "## Final model", "",
              f"- device: {fin['device']}; architecture `{fin['arch']}`",
              f"- test mIoU {fin['test_miou']:.3f}; per-class IoU " + ", ".join(
                  f"{n} {v:.3f}" if v is not None else f"{n} n/a"
                  for n, v in zip(fin["class_names"], fin["per_class_iou"], strict=True)),
              f"- measured end-to-end latency {fin['measured_latency_ms']:.2f} ms "
              f"(+- {fin['measured_latency_std_ms']:.2f}); LUT prediction "
              f"{fin['predicted_latency_ms']:.2f} ms ({fin['prediction_error_pct']:+.1f}%)",
              f"- throughput {fin['images_per_16s']:.0f} images / 16 s; C3 (160 ms/image, "
              f"100 images in 16 s): {'met' if fin['meets_c3'] else 'NOT met'}",
              f"- ONNX: {fin['onnx']} (max |torch - onnxruntime| = {fin['onnx_max_abs_diff']:.2e})",
              "", "## Wall time per stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in results["timings_s"].items()]
    lines += ["", "Plots: `plots/pareto_<device>.png`, `plots/lut_<device>.png`.", ""]
    return "\n".join(lines)
