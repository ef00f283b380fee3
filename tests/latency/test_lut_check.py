"""LUT QA: every known defect of the reference LUTs, and all problems of a broken file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linas.latency import (
    Finding,
    check_lut,
    check_lut_file,
    check_many,
    format_findings,
    load_lut,
    lut_from_dict,
    rank_correlations,
)

GPUS = ("a6000", "rtx3090", "rtx4090")
CPUS = ("raspberrypi5", "odroid")


def _has(findings: list[Finding], code: str, location: str | None = None,
         severity: str | None = None) -> bool:
    return any(f.code == code and location in (None, f.location)
               and severity in (None, f.severity) for f in findings)


@pytest.fixture(scope="module")
def reference(ref_dir: Path) -> dict[str, list[Finding]]:
    return {Path(p).stem: f for p, f in check_many([ref_dir]).items()}


def test_reference_files_are_usable(reference: dict[str, list[Finding]]) -> None:
    assert sorted(reference) == sorted((*GPUS, "orin", *CPUS))
    for stem, findings in reference.items():
        assert not _has(findings, "schema") and all(f.severity != "error" for f in findings), stem
        assert _has(findings, "decoder-only", "fixed", "info"), stem
        assert _has(findings, "device-name", "hardware", "info"), stem  # not spec-sheet names


def test_orin_is_flagged_as_cpu_like(reference: dict[str, list[Finding]]) -> None:
    orin = reference["orin"]
    assert _has(orin, "device-name", "table", "warning")
    assert _has(orin, "cross-device-rank", "ranking", "warning")
    msg = next(f.message for f in orin if f.code == "cross-device-rank")
    assert "raspberrypi5" in msg and "0.97" in msg
    for stem in (*GPUS, *CPUS):  # nobody else
        assert not _has(reference[stem], "device-name", severity="warning"), stem
        assert not _has(reference[stem], "cross-device-rank"), stem


def test_gpu_tables_are_launch_overhead_bound(reference: dict[str, list[Finding]]) -> None:
    for stem in GPUS:
        assert _has(reference[stem], "launch-overhead", "table"), stem
        assert _has(reference[stem], "non-monotonic-width"), stem
    assert _has(reference["rtx4090"], "non-monotonic-width", "layer_0.DWSep3x3_w75")
    for stem in ("orin", *CPUS):
        assert not _has(reference[stem], "launch-overhead"), stem


def test_raspberrypi5_defects(reference: dict[str, list[Finding]]) -> None:
    rpi = reference["raspberrypi5"]
    assert _has(rpi, "dominant-entry", "layer_0.Conv7x7_w100")
    assert _has(rpi, "non-monotonic-width", "layer_0.Conv5x5_w75")
    assert sum(f.code == "dominant-entry" for f in rpi) == 1
    assert not any(_has(reference[s], "dominant-entry") for s in (*GPUS, "odroid"))


def test_odroid_outlier_entry(reference: dict[str, list[Finding]]) -> None:
    odroid = reference["odroid"]
    assert _has(odroid, "outlier-entry", "layer_0.Conv3x3_w50")
    assert not _has(odroid, "high-cv", "layer_0.Conv3x3_w50")  # reported once, as the worse
    assert "26.7" in next(f.message for f in odroid if f.code == "outlier-entry")


def test_reference_report_is_not_noise(reference: dict[str, list[Finding]]) -> None:
    warnings = {s: sum(f.severity == "warning" for f in fs) for s, fs in reference.items()}
    assert max(warnings.values()) <= 20, warnings
    text = format_findings(reference, max_per_code=3)
    assert "6 files: 0 errors" in text and "... 5 more" in text  # orin's 8 high-cv entries
    for stem in reference:
        assert f"{stem}: 0 errors" in text


def test_rank_correlations_orin_follows_raspberrypi5(ref_dir: Path) -> None:
    luts = [load_lut(ref_dir / f"{s}.json") for s in ("orin", "raspberrypi5", "a6000")]
    r = rank_correlations(luts, n=5000, seed=1)
    assert r.shape == (3, 3) and np.allclose(np.diag(r), 1.0)
    assert r[0, 1] > 0.9 and abs(r[0, 2]) < 0.3


def test_orin_alone_still_profiled_and_not_ranked(ref_dir: Path) -> None:
    orin = check_lut_file(ref_dir / "orin.json")
    assert _has(orin, "device-name", "table") and not _has(orin, "cross-device-rank")


def test_broken_file_reports_every_problem(tmp_path: Path,
                                           v1_dict: Callable[[], dict[str, Any]]) -> None:
    d = v1_dict()
    ops = d["layers"]
    ops["layer_1"]["ops"]["Conv5x5_w75"]["mean_ms"] = float("nan")
    ops["layer_2"]["ops"]["EdgeConv_w50"]["std_ms"] = float("inf")
    del ops["layer_3"]["ops"]["Conv3x3_w50"]
    ops["layer_4"]["ops"]["DWSep3x3_w75"]["mean_ms"] = -1.0
    ops["layer_0"]["ops"]["Conv3x3_w50"]["std_ms"] = "fast"
    ops["layer_0"]["ops"]["Conv9x9_w50"] = {"mean_ms": 1.0, "std_ms": 0.1}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(d))
    found = check_lut_file(path)
    assert _has(found, "non-finite", "layer_1.Conv5x5_w75.mean_ms", "error")
    assert _has(found, "non-finite", "layer_2.EdgeConv_w50.std_ms", "error")
    assert _has(found, "missing-entry", "layer_3.Conv3x3_w50", "error")
    assert _has(found, "non-positive", "layer_4.DWSep3x3_w75.mean_ms", "error")
    assert _has(found, "not-a-number", "layer_0.Conv3x3_w50.std_ms", "error")
    assert _has(found, "ignored-entries", "layers", "info")  # one summary, not one per key
    assert "Conv9x9_w50" in next(f.message for f in found if f.code == "ignored-entries")
    assert sum(f.severity == "error" for f in found) == 5
    assert "broken.json: 5 errors" in format_findings({str(path): found})


@pytest.mark.parametrize(("mutate", "code", "location"), [
    (lambda d: {**d, "schema": "v0"}, "schema", "schema"),
    (lambda d: {k: v for k, v in d.items() if k != "hardware"}, "missing-entry", "hardware"),
    (lambda d: {**d, "input_size": [128]}, "schema", "input_size"),
    (lambda d: {**d, "layers": {k: v for k, v in d["layers"].items() if k != "layer_2"}},
     "missing-entry", "layer_2"),
    (lambda d: {**d, "latency_range": {"min_ms": 1.0, "max_ms": 2.0}}, "latency-range",
     "latency_range"),
])
def test_structural_problems(tmp_path: Path, v1_dict: Callable[[], dict[str, Any]],
                             mutate: Callable[[dict[str, Any]], Any], code: str,
                             location: str) -> None:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(mutate(v1_dict())))
    assert _has(check_lut_file(path), code, location)


def test_unreadable_files(tmp_path: Path) -> None:
    assert _has(check_lut_file(tmp_path / "absent.json"), "unreadable", "file", "error")
    (tmp_path / "bad.json").write_text("{nope")
    assert _has(check_lut_file(tmp_path / "bad.json"), "schema", "file", "error")


def test_clean_table_has_only_infos(v1_dict: Callable[[], dict[str, Any]]) -> None:
    found = check_lut(lut_from_dict(v1_dict()))
    assert all(f.severity == "info" for f in found), found
    assert _has(found, "device-name", "hardware")  # 'Synthetic' is not in the device table


def test_provenance_contradicting_the_name(v1_dict: Callable[[], dict[str, Any]]) -> None:
    lut = lut_from_dict({**v1_dict(), "hardware": "RTX4090", "schema": "linas-lut/v2",
                         "provenance": {"device_type": "cpu", "device": "AMD EPYC"}})
    assert _has(check_lut(lut), "device-name", "hardware", "warning")


def test_run_start_check_on_lut_objects(ref_dir: Path) -> None:
    """What a run calls per loaded LUT: findings from the objects alone, the Orin table
    flagged as CPU-like, nothing that stops a run for the six reference tables."""
    from linas.latency import check_luts

    luts = {p.stem: load_lut(p) for p in sorted(ref_dir.glob("*.json"))}
    alone = check_lut(luts["orin"], expect_input_size=(128, 128))
    flag = next(f for f in alone if f.code == "device-name" and f.location == "table")
    assert flag.severity == "warning" and "looks like a CPU" in flag.message
    results = check_luts(luts, expect_input_size=(128, 128))
    assert sorted(results) == sorted(luts)
    assert not [f for fs in results.values() for f in fs if f.severity == "error"]
    assert _has(results["orin"], "cross-device-rank", "ranking", "warning")
    assert not any(_has(results[s], "cross-device-rank") for s in (*GPUS, *CPUS))
    # the same findings as `linas lut check` on the files, less the file-only range check
    files = {Path(p).stem: fs for p, fs in check_many([ref_dir]).items()}
    assert {s: sorted(f.code for f in fs) for s, fs in results.items()} == {
        s: sorted(f.code for f in fs if f.code != "latency-range") for s, fs in files.items()}
    wrong = check_luts(luts, expect_input_size=(480, 640))
    assert all(_has(fs, "input-size", "input_size", "error") for fs in wrong.values())
