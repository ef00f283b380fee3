"""The ablation's plots: every row's front per device (first seed, one latency yardstick),
and a bar chart per column with the spread over seeds as error bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linas.run.report import plt, save_figure


def plot_fronts(folder: Path, plan: Any, rows: Sequence[Any],
                records: dict[str, dict[int, Any]]) -> list[Path]:
    """``fronts_<device>.png``: each row's front (first seed), re-timed with the device's
    full latency model, weight-sharing mIoU of the row's own supernet."""
    from linas.run.ablation_measures import latency_models
    from linas.run.ablation_table import arch_choices

    seed = plan.seeds[0]
    names = [d.name for d in plan.cfg.devices]
    written = []
    for name in names:
        fig, ax = plt.subplots(figsize=(6, 4))
        for row in rows:
            rec = records[row.id].get(seed)
            if rec is None:
                continue
            model = latency_models(plan.out / row.id / f"seed{seed}", [name])[name]
            front = rec["pareto"]["devices"][name]["front"]
            lat = model.predict(np.asarray([arch_choices(p["arch"]) for p in front]))
            acc = np.asarray([p["miou"] for p in front])
            order = np.argsort(lat)
            ax.step(lat[order], acc[order], where="post", marker="o", ms=3, label=row.name)
        budget = plan.cfg.device(name).budget_ms
        ax.axvline(budget, color="grey", ls="--", lw=0.8, label=f"budget {budget:g} ms")
        ax.set_xlabel("latency, full model (ms)")
        ax.set_ylabel("weight-sharing mIoU (arch-val)")
        ax.set_title(f"{name}: fronts of every row (seed {seed})")
        ax.legend(fontsize=7)
        path = folder / f"fronts_{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, 120)
        written.append(path)
    return written


def plot_bars(path: Path, table: dict[str, Any]) -> Path:
    """One bar chart per column: mean per row, std over seeds as error bars."""
    from linas.run.ablation_table import COLUMNS, HEADS

    rows = list(table["rows"].values())
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, col in zip(axes.flat, COLUMNS, strict=True):
        means = [r["columns"][col]["mean"] for r in rows]
        stds = [r["columns"][col]["std"] or 0.0 for r in rows]
        x = np.arange(len(rows))
        ax.bar(x, [0.0 if m is None else m for m in means], yerr=stds, capsize=3,
               color=["C0" if m is not None else "lightgrey" for m in means])
        for i, m in enumerate(means):
            if m is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [r["name"] for r in rows], rotation=35, ha="right", fontsize=7)
        ax.set_title(HEADS[col], fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, 110)
    return path
