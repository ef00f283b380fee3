"""Deployment cards: what a device's model is, how fast it is predicted and (when the device is
this machine) measured to be, whether it meets its budget and on what evidence, and how
accurate it is on the test split. Written as ``deploy/<device>/card.json`` and ``card.md``."""

from __future__ import annotations

from typing import Any

from linas.config import DeviceConfig
from linas.run.state import Run
from linas.space import Arch


def build_card(run: Run, dev: DeviceConfig, arch: Arch, predicted_ms: float, p95_ms: float,
               end_to_end: bool, metrics: dict[str, Any], timing: dict[str, Any] | None,
               files: dict[str, Any], kd: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of one device (plain data); ``kd``: how its model was distilled (I5), see
    :func:`linas.run.final.kd_block`."""
    measured = None if timing is None else float(timing["mean_ms"])
    if measured is not None:
        meets, basis = measured <= dev.budget_ms, (
            f"measured on this machine in {timing['runtime']} ({timing['device']}, "  # type: ignore[index]
            f"{timing['threads']} threads), batch 1")  # type: ignore[index]
    else:
        meets = predicted_ms <= dev.budget_ms
        basis = ("LUT prediction (end to end; the device cannot be timed here)" if end_to_end
                 else "LUT prediction of the five decoder ops only (decoder-only LUT, no "
                      "encoder/fixed part; the device cannot be timed here)")
    names = run.results["dataset"]["classes"]
    per_class = dict(zip(names, metrics["per_class_iou"], strict=True))
    summary = run.results.get("devices_config", {}).get(dev.name, {})
    card: dict[str, Any] = {
        "device": dev.name, "arch": str(arch), "input_size": list(run.size),
        "predicted_latency_ms": predicted_ms, "predicted_p95_ms": p95_ms,
        "measured_latency_ms": measured, "budget_ms": dev.budget_ms,
        "meets_budget": bool(meets), "verdict_basis": basis,
        "test_miou": metrics["miou"], "per_class_iou": per_class,
        "pixel_accuracy": metrics["pixel_accuracy"],
        "lut_sha256": summary.get("lut_sha256"), "config_sha256": run.cfg.sha256(),
        "lut": summary.get("lut"), "encoder_weights": run.results.get("encoder_weights"),
        "classes": names, "ignore_index": run.results.get("ignore_index"), **files}
    if kd is not None:
        card["kd"] = kd
    if measured is not None:
        card["prediction_error_pct"] = 100.0 * (predicted_ms - measured) / measured
        card["measured_std_ms"] = timing["std_ms"]  # type: ignore[index]
        thr = timing.get("throughput")  # type: ignore[union-attr]
        if thr is not None:
            card["throughput"] = thr
            card["meets_c3"] = bool(meets and thr["meets_c3_batched"])
        else:
            card["meets_c3"] = bool(meets and 16000.0 / measured >= 100)
    return card


def render_card(card: dict[str, Any]) -> str:
    """``card.md``: the card for a person."""
    measured = card["measured_latency_ms"]
    lines = [
        f"# {card['device']}: deployment card", "",
        f"- architecture: `{card['arch']}` at {card['input_size'][0]}x{card['input_size'][1]}",
        f"- budget {card['budget_ms']:g} ms/image: "
        f"**{'met' if card['meets_budget'] else 'NOT met'}** ({card['verdict_basis']})",
        f"- predicted latency {card['predicted_latency_ms']:.3f} ms (p95 "
        f"{card['predicted_p95_ms']:.3f} ms)",
        "- measured latency: " + (f"{measured:.2f} ms (+- {card['measured_std_ms']:.2f}), "
                                  f"prediction error {card['prediction_error_pct']:+.1f}%"
                                  if measured is not None else "not measured (not this machine)"),
    ]
    thr = card.get("throughput")
    if thr:
        timed = thr.get("images_timed", thr["images"])
        scaled = f" (scaled from {timed} timed)" if timed != thr["images"] else ""
        best = thr["best_batch"]
        lines.append(f"- 100 images{scaled}: batch 1 {thr['seconds_by_batch']['1']:.2f} s, "
                     f"best batch {best} {thr['seconds_by_batch'][str(best)]:.2f}"
                     f" s (C3 with batching: {'met' if thr['meets_c3_batched'] else 'NOT met'};"
                     f" {thr['includes']})")
    ious = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a"
                     for k, v in card["per_class_iou"].items())
    lines += [f"- test mIoU {card['test_miou']:.3f} ({ious}); pixel accuracy "
              f"{card['pixel_accuracy']:.3f}", *kd_lines(card.get("kd")),
              f"- model: `{card['onnx']}` (max |torch - onnxruntime| "
              f"{card['onnx_max_abs_diff']:.2e})",
              f"- LUT sha256 `{card['lut_sha256']}`; config sha256 `{card['config_sha256']}`", ""]
    return "\n".join(lines)


def kd_lines(kd: dict[str, Any] | None) -> list[str]:
    """The card's distillation line (none for cards written before I5)."""
    if kd is None:
        return []
    if kd["mode"] == "none":
        return ["- training: CE only (no distillation, final.kd = none)"]
    worse = " **the teacher tests worse than the student**" if kd["teacher_worse_than_student"] \
        else ""
    return [f"- distillation ({kd['mode']}): alpha {kd['alpha']:.3f}, T {kd['T']:g}, beta "
            f"{kd['beta']:g}, gamma {kd['gamma']:g}; teacher `{kd['teacher_arch']}` (test mIoU "
            f"{kd['teacher_test_miou']:.3f}; predicted {kd['teacher_predicted_ms']:.3f} ms vs the "
            f"student's {kd['student_predicted_ms']:.3f} ms){worse}"]
