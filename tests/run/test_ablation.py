"""`linas ablation`: the rows switch on what they claim, the claims are judged on the figures,
and a tiny two-row ablation runs end to end from the CLI, resumes without recomputing, and
refuses changed settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from linas._errors import ConfigError
from linas.config import load_config
from linas.latency import LUT, save_lut
from linas.run.ablation import ROWS, parse_rows, parse_seeds, profile, row_config
from linas.run.ablation_table import check_claims
from linas.space import NUM_CHOICES, NUM_LAYERS

SIZE = (64, 64)


def test_rows_switch_on_one_improvement_each() -> None:
    base = load_config(None, ["devices.this-cpu.budget_ms=50"])
    cfgs = {r.id: row_config(base, r, 3) for r in ROWS}
    b = cfgs["baseline"]
    assert (b.search.strategy, b.search.train_mode, b.search.calr, b.pareto.strategy,
            b.final.kd) == ("bilevel", "soft", "none", "baseline", "none")
    assert not b.devices[0].use_interactions and b.seed == 3
    assert (cfgs["i2"].search.train_mode, cfgs["i2"].search.calr,
            cfgs["i2"].search.momentum) == ("single-path", "seed", "seed")
    assert cfgs["i2-i1"].search.strategy == "hypernet"
    assert cfgs["i2-i1-i3"].pareto.strategy == "zero-cost"
    assert cfgs["i2-i1-i3-i4"].devices[0].use_interactions
    assert cfgs["full"].final.kd == "latency"
    # every row differs from the one before in its own section only, and keeps the budget
    changed = {"i2": {"search"}, "i2-i1": {"search"}, "i2-i1-i3": {"pareto"},
               "i2-i1-i3-i4": {"devices"}, "full": {"final"}}
    ids = [r.id for r in ROWS]
    for prev, cur in zip(ids, ids[1:], strict=False):
        a, c = cfgs[prev].to_dict(), cfgs[cur].to_dict()
        assert {k for k in a if a[k] != c[k]} == changed[cur], cur
        assert cfgs[cur].devices[0].budget_ms == 50


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="--rows 'i9'.*baseline, i2"):
        parse_rows("i9")
    assert [r.id for r in parse_rows("full,baseline")] == ["baseline", "full"]
    with pytest.raises(ConfigError, match="--seeds '0,0'"):
        parse_seeds("0,0")
    with pytest.raises(ConfigError, match="--seeds 'a'"):
        parse_seeds("a")
    with pytest.raises(ConfigError, match="--profile 'huge'.*small, paper"):
        profile("huge")
    with pytest.raises(ConfigError, match="--truth-archs 2"):
        profile("small", truth_archs=2)
    assert profile("small", reference_archs=7).reference_archs == 7


def _table(columns: dict[str, dict[str, list[float | None]]]) -> dict:
    rows = {}
    for rid, cols in columns.items():
        rows[rid] = {"columns": {c: {"per_seed": v, "mean": None if None in v else
                                     float(np.mean(v)), "std": None if None in v else
                                     float(np.std(v)), "n": len(v)} for c, v in cols.items()}}
    return {"rows": rows}


def test_claims_are_judged_on_the_figures() -> None:
    table = _table({
        "baseline": {"evals_to_95": [90.0, 110.0], "kendall_tau": [0.5, 0.7]},
        "i2": {"hypervolume": [10.0, 20.0], "kendall_tau": [0.85, 0.9]},
        "i2-i1-i3": {"hypervolume": [11.0, 22.0], "evals_to_95": [8.0, 10.0],
                     "mape": [0.15, 0.15]},
        "i2-i1-i3-i4": {"miou": [0.50, 0.60], "mape": [0.04, 0.06]},
        "full": {"miou": [0.52, 0.63]},
    })
    claims = {c["claim"][:6]: c for c in check_claims(table)}
    kd = claims["KD (I5"]
    assert kd["value"] == pytest.approx(4.5) and kd["verdict"] == "holds"  # +4% and +5%
    hv = claims["I1+I3 "]
    assert hv["value"] == pytest.approx(10.0) and hv["verdict"] == "does not hold"
    assert claims["I4 tak"]["value"] == pytest.approx(5.0)
    assert claims["I4 tak"]["verdict"] == "does not hold"  # 5% is not < 5%
    assert claims["I3 nee"]["verdict"] == "holds"  # 9 = a tenth of 100 or less
    assert claims["I2 rai"]["value"] == pytest.approx(0.875)
    assert claims["I2 rai"]["verdict"] == "holds"
    missing = check_claims(_table({"baseline": {"kendall_tau": [0.1]}}))
    assert all(c["verdict"].startswith("cannot be checked") for c in missing)


def _config(root: Path) -> Path:
    mean = np.random.default_rng(0).uniform(0.5, 5.0, (NUM_LAYERS, NUM_CHOICES))
    lut = save_lut(LUT(hardware="edge", input_size=SIZE, mean_ms=mean, std_ms=mean * 0.02),
                   root / "edge_lut.json")
    cfg = {"data": {"kind": "synthetic", "size": list(SIZE), "n_images": 16},
           "encoder": {"weights": "random"},
           "devices": [{"name": "cpu", "budget_ms": 1000.0, "measure": {
               "runtime": "torch", "threads": 1, "warmup": 1, "repeat": 3, "fit_archs": 12,
               "e2e_warmup": 1, "e2e_repeat": 3, "throughput_batches": [1, 8],
               "throughput_images": 8}},
               {"name": "edge", "lut": str(lut), "budget_ms": 9.0}],
           "search": {"warmup_epochs": 1, "search_epochs": 1, "soft_epochs": 1,
                      "batch_size": 8},
           "pareto": {"n_candidates": 20, "n_evaluate": 4, "n_sample": 30,
                      "n_prefilter": 8},
           "hypernet": {"sweep_points": 5}, "final": {"epochs": 1, "batch_size": 8}}
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _ablation(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "linas", "ablation", "--config", str(config), "--out",
           str(out), "--seeds", "0", "--rows", "baseline,full", "--profile", "paper",
           "--truth-archs", "4", "--reference-archs", "8", "--validate-archs", "3",
           "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_two_row_ablation_runs_resumes_and_refuses_changes(tmp_path: Path) -> None:
    config, out = _config(tmp_path), tmp_path / "abl"
    first = _ablation(config, out)
    assert first.returncode == 0, first.stderr[-3000:]
    table = json.loads((out / "ablation.json").read_text())
    assert list(table["rows"]) == ["baseline", "full"]
    for rid, row in table["rows"].items():
        for col, v in row["columns"].items():
            assert v["mean"] is not None or v["why"], (rid, col)  # filled, or says why
        assert (out / rid / "seed0" / "report.md").is_file()  # a normal run directory
        assert set(row["per_seed"]["0"]["hv_per_device"]) == {"cpu", "edge"}
    assert table["rows"]["baseline"]["columns"]["hv_ratio"]["mean"] == pytest.approx(1.0)
    full = json.loads((out / "full" / "seed0" / "results.json").read_text())
    assert full["deploy"]["cpu"]["kd"]["mode"] == "latency"
    assert len(json.loads((out / "shared" / "seed0" / "latency_validation.json").read_text())
               ) == 1  # the measured device only: the LUT-only one cannot be timed here
    md = (out / "ablation.md").read_text()
    assert "latency-aware distillation" in md and "| Full |" in md
    assert (out / "plots" / "fronts_cpu.png").is_file()
    assert (out / "plots" / "ablation_bars.png").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "shared").rglob("standalone/*.json")}
    assert len(stamps) == 4
    again = _ablation(config, out)  # finished: nothing is recomputed, the table is the same
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "ablation.json").read_text())["rows"] == table["rows"]
    changed = _ablation(config, out, "--set", "final.epochs=2")
    assert changed.returncode != 0
    err = changed.stderr.strip().splitlines()
    assert len(err) == 1 and "final.epochs" in err[0] and "Traceback" not in changed.stderr
