"""The ablation table from the rows' run directories and measures: per (row, seed) figures,
their mean +- std over seeds, the plan's claims checked, and ``ablation.json``, ``ablation.md``
and the plots.

Columns (every row measured the same way):

- ``miou``: test mIoU of each device's final model, averaged over devices.
- ``hypervolume``: per device, of the row's reported front re-timed with the device's full
  latency model (fixed part + ops + pairs: one yardstick for every row) and the fixed
  reference point (maximum latency of the space, mIoU 0); the mean over devices.
- ``hv_ratio``: per seed, the mean over devices of hypervolume / the baseline row's.
- ``mape``: end-to-end MAPE, on this machine, of the latency model the row uses (fixed part
  + op sum; with I4 + pair terms), over the devices measured here.
- ``evals_to_95``: evaluations (in the row's order) until every device's hypervolume reaches
  95% of the reference hypervolume: that of the row's evaluated architectures together with a
  fixed random reference set, all scored by the row's own supernet.
- ``kendall_tau``: weight-sharing vs stand-alone mIoU (arch-val) on the fixed stratified
  subset, stand-alone = the final recipe from a fresh decoder, per seed.
- ``c3``: share of devices whose final model meets the C3 budget (measured here where the
  device is this machine, else by its LUT prediction).
- ``search_s``: wall time of the search stage (a row that shares another row's search
  reports that search's time).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from linas._io import write_json_atomic, write_text_atomic
from linas.pareto.indicators import hypervolume_2d, hypervolume_trace, reference_point
from linas.space import Arch

COLUMNS = ("miou", "hypervolume", "hv_ratio", "mape", "evals_to_95", "kendall_tau", "c3",
           "search_s")
HEADS = {"miou": "mIoU (test, avg devices)", "hypervolume": "hypervolume (avg devices)",
         "hv_ratio": "HV / baseline", "mape": "LUT-vs-E2E MAPE", "evals_to_95":
         "evals to 95% ref HV", "kendall_tau": "Kendall tau (WS vs SA)", "c3": "C3 compliance",
         "search_s": "search wall time (s)"}


def arch_choices(text: str) -> tuple[int, ...]:
    return Arch.parse(text).choices


def row_figures(rec: dict[str, Any], models: dict[str, Any],
                uses_pairs: bool) -> dict[str, Any]:
    """One (row, seed)'s figures (a figure that cannot be computed is None, with a reason
    under ``why``)."""
    res, pareto = rec["results"], rec["pareto"]
    names = list(models)
    cards = [res["deploy"][n] for n in names]
    out: dict[str, Any] = {"why": {}}
    out["miou"] = float(np.mean([c["test_miou"] for c in cards]))
    out["c3"] = float(np.mean([bool(c.get("meets_c3", c["meets_budget"])) for c in cards]))
    hv, evals, reached = {}, [], []
    order = np.asarray([arch_choices(e["arch"]) for e in pareto["evaluated"]])
    acc = np.asarray([e["miou"] for e in pareto["evaluated"]])
    ref_c, ref_acc = rec["reference_choices"], np.asarray(rec["reference_ws_miou"])
    for n, m in models.items():
        ref = reference_point(float(m.exhaustive().max()))
        front = pareto["devices"][n]["front"]
        f_c = np.asarray([arch_choices(p["arch"]) for p in front])
        hv[n] = hypervolume_2d(m.predict(f_c), np.asarray([p["miou"] for p in front]), ref)
        target = hypervolume_2d(np.concatenate([m.predict(order), m.predict(ref_c)]),
                                np.concatenate([acc, ref_acc]), ref)
        trace = hypervolume_trace(m.predict(order), acc, ref) / target
        hit = np.flatnonzero(trace >= 0.95 - 1e-12)
        evals.append(int(hit[0]) + 1 if hit.size else None)
        reached.append(float(trace[-1]))
    out["hv_per_device"] = hv
    out["hypervolume"] = float(np.mean(list(hv.values())))
    out["evaluations"] = int(len(order))
    out["ref_hv_share_reached"] = float(min(reached))
    out["evals_to_95"] = None if None in evals else max(e for e in evals if e is not None)
    if out["evals_to_95"] is None:
        out["why"]["evals_to_95"] = (f"not reached: its {len(order)} evaluations reach "
                                     f"{100 * min(reached):.0f}% of the reference hypervolume")
    ws, sa = rec["truth_ws_miou"], rec["truth_miou"]
    tau = kendalltau(ws, sa).statistic
    out["kendall_tau"] = float(tau) if np.isfinite(tau) else None
    if out["kendall_tau"] is None:
        out["why"]["kendall_tau"] = "undefined: constant weight-sharing or stand-alone mIoU"
    out["mape"], why = row_mape(rec["validation"], uses_pairs)
    if out["mape"] is None:
        out["why"]["mape"] = why
    out["search_s"] = res.get("timings_s", {}).get("search")
    out["search_from"] = rec.get("search_from")
    return out


def row_mape(validation: dict[str, Any], uses_pairs: bool) -> tuple[float | None, str]:
    """Mean MAPE over the devices measured here of the latency model the row uses."""
    if not validation:
        return None, "no device is measured on this machine (LUT files only): nothing to time"
    vals = []
    for v in validation.values():
        variant = "with_interactions" if uses_pairs and v["has_interactions"] else "with_fixed"
        vals.append(float(v["mape"][variant]))
    return float(np.mean(vals)), ""


def build_table(plan: Any, rows: Sequence[Any], records: dict[str, dict[int, Any]]
                ) -> dict[str, Any]:
    """Per-seed figures and mean +- std per column, for every row, and the claims."""
    from linas.run.ablation import mean_std
    from linas.run.ablation_measures import latency_models

    names = [d.name for d in plan.cfg.devices]
    per: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        per[row.id] = {}
        for seed, rec in records[row.id].items():
            models = latency_models(plan.out / row.id / f"seed{seed}", names)
            uses = bool(row.overrides.get("devices.*.use_interactions"))
            per[row.id][seed] = row_figures(rec, models, uses)
        for seed, fig in per[row.id].items():  # a shared search reports its source's time
            src = fig.get("search_from")
            if src and src in per:
                fig["search_s"] = per[src][seed]["search_s"]
    base = per.get("baseline")
    for row in rows:
        for seed, fig in per[row.id].items():
            if base is None:
                fig["hv_ratio"] = None
                fig["why"]["hv_ratio"] = "the baseline row was not run (--rows)"
                continue
            b = base[seed]["hv_per_device"]
            fig["hv_ratio"] = float(np.mean([fig["hv_per_device"][n] / b[n] for n in names
                                             if b[n] > 0])) if any(b.values()) else None
    table: dict[str, Any] = {"rows": {}, "devices": names, "seeds": plan.seeds}
    for row in rows:
        cols = {}
        for col in COLUMNS:
            vals = [per[row.id][s].get(col) for s in plan.seeds if s in per[row.id]]
            mean, std, n = mean_std(vals)
            whys = sorted({per[row.id][s]["why"].get(col, "") for s in per[row.id]} - {""})
            cols[col] = {"mean": mean, "std": std, "n": n, "per_seed": vals,
                         "why": "; ".join(whys) or None}
        table["rows"][row.id] = {"name": row.name, "adds": row.adds, "columns": cols,
                                 "per_seed": per[row.id]}
    table["claims"] = check_claims(table)
    return table


def paired(table: dict[str, Any], a: str, b: str, col: str, relative: bool = False
           ) -> tuple[float | None, float | None, int]:
    """Mean +- std over seeds of row ``b`` minus row ``a`` in ``col`` (relative: in %)."""
    from linas.run.ablation import mean_std

    rows = table["rows"]
    if a not in rows or b not in rows:
        return None, None, 0
    diffs = []
    for x, y in zip(rows[a]["columns"][col]["per_seed"], rows[b]["columns"][col]["per_seed"],
                    strict=False):
        if x is None or y is None or (relative and x == 0):
            continue
        diffs.append(100.0 * (y - x) / abs(x) if relative else y - x)
    return mean_std(diffs)


def check_claims(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's five expectations, each: the figure here, its spread, and whether it held."""
    rows = table["rows"]

    def col(r: str, c: str) -> dict[str, Any] | None:
        return rows[r]["columns"].get(c) if r in rows else None

    out = []
    m, s, n = paired(table, "i2-i1-i3-i4", "full", "miou", relative=True)
    out.append(claim("KD (I5) raises mIoU by 2-5%", m, s, n, "% (Full vs +I2+I1+I3+I4, "
                     "paired by seed)", None if m is None else m >= 2.0))
    m, s, n = paired(table, "i2", "i2-i1-i3", "hypervolume", relative=True)
    out.append(claim("I1+I3 raise the hypervolume by 15-30%", m, s, n,
                     "% (+I2+I1+I3 vs +I2, paired by seed)", None if m is None else m >= 15.0))
    before, after = col("i2-i1-i3", "mape"), col("i2-i1-i3-i4", "mape")
    m = None if not after or after["mean"] is None else 100 * after["mean"]
    was = None if not before or before["mean"] is None else 100 * before["mean"]
    out.append(claim("I4 takes the MAPE from ~15% to < 5%", m, None, after["n"] if after else 0,
                     f"% with pairs (without: {fmt(was)}%)", None if m is None else m < 5.0))
    b, z = col("baseline", "evals_to_95"), col("i2-i1-i3", "evals_to_95")
    m = None if not z else z["mean"]
    out.append(claim("I3 needs ~100 evaluations where the baseline needs ~1000", m,
                     None if not z else z["std"], 0 if not z else z["n"],
                     f" evaluations with I3 (seeds reaching: {0 if not z else z['n']}); "
                     f"baseline: {fmt(b['mean'] if b else None)} "
                     f"(seeds reaching: {b['n'] if b else 0})",
                     None if m is None or not b or b["mean"] is None else
                     m * 10 <= b["mean"] and z is not None and z["n"] == len(z["per_seed"])))
    b, i2 = col("baseline", "kendall_tau"), col("i2", "kendall_tau")
    m = None if not i2 else i2["mean"]
    out.append(claim("I2 raises Kendall tau from 0.6 to > 0.8", m, None if not i2 else i2["std"],
                     0 if not i2 else i2["n"], f" with I2 (baseline: "
                     f"{fmt(b['mean'] if b else None)} +- {fmt(b['std'] if b else None)})",
                     None if m is None else m > 0.8))
    return out


def claim(text: str, value: float | None, std: float | None, n: int, unit: str,
          held: bool | None) -> dict[str, Any]:
    verdict = "cannot be checked (rows missing)" if held is None else (
        "holds" if held else "does not hold")
    shown = f"{fmt(value)}{'' if std is None else f' +- {fmt(std)}'}{unit} (n={n})"
    return {"claim": text, "value": value, "std": std, "n": n, "figure": shown,
            "verdict": verdict}


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"


def markdown(table: dict[str, Any], plan: Any) -> str:
    """``ablation.md``: what every row switches on, the table, the claims, the settings."""
    lines = ["# Ablation", "", f"Seeds {', '.join(map(str, plan.seeds))}; profile "
             f"`{plan.profile.name}`: {plan.profile.description}.", "",
             "Each row keeps the row above and adds:", ""]
    for rid, row in table["rows"].items():
        lines.append(f"- **{row['name']}** (`{rid}`): {row['adds']}")
    lines += ["", "Mean +- std over seeds (n = seeds with a value).", "",
              "| row | " + " | ".join(HEADS[c] for c in COLUMNS) + " |",
              "|---|" + "---|" * len(COLUMNS)]
    notes = []
    for row in table["rows"].values():
        cells = []
        for c in COLUMNS:
            v = row["columns"][c]
            pct = c in ("mape", "c3")
            mean = None if v["mean"] is None else v["mean"] * (100 if pct else 1)
            std = None if v["std"] is None else v["std"] * (100 if pct else 1)
            cell = "n/a" if mean is None else f"{fmt(mean)} +- {fmt(std)}{'%' if pct else ''}"
            if v["n"] and v["n"] < len(v["per_seed"]):
                cell += f" (n={v['n']})"
            if v["why"]:
                notes.append(f"- {row['name']}, {HEADS[c]}: {v['why']}")
                cell += " [note]"
            cells.append(cell)
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += ["", *notes, "", "## The plan's expectations", "",
              "| expectation | here | verdict |", "|---|---|---|"]
    lines += [f"| {c['claim']} | {c['figure']} | {c['verdict']} |" for c in table["claims"]]
    lines += ["", "Columns are defined in `linas.run.ablation_table`; every row is a run "
              "directory `<row>/seed<k>/` with its own `report.md`.", ""]
    return "\n".join(lines)


def write_outputs(out: Path, table: dict[str, Any], plan: Any, rows: Sequence[Any],
                  records: dict[str, dict[int, Any]]) -> None:
    """``ablation.json``, ``ablation.md`` and ``plots/`` into ``out`` (atomic writes)."""
    from linas.run.ablation_plots import plot_bars, plot_fronts

    write_json_atomic(out / "ablation.json", {"plan": plan.describe(rows), **table})
    write_text_atomic(out / "ablation.md", markdown(table, plan))
    plot_fronts(out / "plots", plan, rows, records)
    plot_bars(out / "plots" / "ablation_bars.png", table)
