"""`linas lut measure --interactions context` then `linas lut validate`, end to end, tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from linas.cli.lut import lut_app
from linas.latency import LUTLatencyModel, load_lut
from linas.latency.validate import ANCHOR_CHOICES


@pytest.mark.slow
def test_context_lut_reproduces_its_anchor_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "ctx.json"
    runner = CliRunner()
    res = runner.invoke(lut_app, ["measure", "--out", str(out), "--size", "32x32",
                              "--threads", "1", "--warmup", "0", "--repeat", "3",
                              "--interactions", "context", "--quiet"])
    assert res.exit_code == 0, res.output
    lut = load_lut(out)
    prov = lut.provenance
    assert lut.interaction_method == "context" and lut.interactions is not None
    assert len(prov["interactions"]["arch_ids"]) == 100
    # the full model predicts the anchor's measured end-to-end time exactly
    anchor = LUTLatencyModel(lut).predict(np.asarray([ANCHOR_CHOICES]))[0]
    assert anchor == pytest.approx(prov["anchor"]["ms"], rel=1e-9)
    report_path = tmp_path / "val.json"
    res = runner.invoke(lut_app, ["validate", "--lut", str(out), "--archs", "3",
                              "--out", str(report_path), "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads(report_path.read_text())
    assert report["n_archs"] == 3 and set(report["mape"]) == {"op_sum", "with_fixed",
                                                              "with_interactions"}
    assert report["drift"]["reference"] == "lut" and "raw" in report
    ids = {a["arch"] for a in report["archs"]}
    assert len(ids) == 3
