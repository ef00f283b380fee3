"""A small end-to-end run of the demo pipeline and the CLI contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from linas.pipeline import DemoConfig, quick_config, run_demo
from linas.progress import Reporter

LINAS = [sys.executable, "-m", "linas.cli"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, reference_luts) -> Iterator[tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("demo")
    cfg = quick_config(DemoConfig(out=out, lut_dir=reference_luts, seed=1,
                                  encoder_weights="random"))
    yield out, run_demo(cfg, Reporter(quiet=True))
    shutil.rmtree(out)  # the supernet checkpoint alone is ~2 GB


def test_results_contract(demo_run, check_device_result):
    out, res = demo_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["search_space_size"] == 4_084_101
    assert on_disk["encoder_weights"] == "random"
    assert len(on_disk["devices"]) == 7  # this machine + six reference LUTs
    for name, dev in on_disk["devices"].items():
        check_device_result(out, name, dev)
    fin = on_disk["final"]
    assert fin["device"] in on_disk["devices"]
    assert Path(fin["onnx"]).is_file() and fin["onnx_max_abs_diff"] < 1e-3
    assert fin["measured_latency_ms"] > 0 and len(fin["per_class_iou"]) == 3
    assert fin["images_per_16s"] == pytest.approx(16000 / fin["measured_latency_ms"])
    assert set(on_disk["timings_s"]) >= {"data", "search", "pareto", "final"}
    assert (out / "report.md").read_text().startswith("# LINAS+ run report")


def test_decoder_only_luts_are_marked(demo_run):
    _, res = demo_run
    assert res["devices"]["raspberrypi5"]["decoder_only"] is True
    assert res["devices"]["local_torch_cpu"]["decoder_only"] is False


def test_rerun_resumes_and_reuses(demo_run):
    out, res = demo_run
    cfg = quick_config(DemoConfig(out=out, seed=1, encoder_weights="random"))
    again = run_demo(cfg, Reporter(quiet=True))
    # the search checkpoint is complete: no epoch is retrained, the history is kept
    assert again["search"]["history"] == res["search"]["history"]
    assert again["search"]["argmax_arch"] == res["search"]["argmax_arch"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINAS, *args], capture_output=True, text=True, timeout=300)


def test_cli_errors_are_one_line(tmp_path):
    proc = run_cli("demo", "--out", str(tmp_path / "x"), "--lut-dir", str(tmp_path / "nope"))
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "--lut-dir" in err[0] and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"hardware": "x", "input_size": 128, "layers": {}}')
    proc = run_cli("lut", "check", str(bad))
    assert proc.returncode == 1 and "layer_0" in proc.stdout


def test_cli_lut_check_reports_reference_defects(reference_luts):
    proc = run_cli("lut", "check", *sorted(str(p) for p in reference_luts.glob("*.json")))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "orin.json" in out and "cross-device-rank" in out
    assert "layer_0.Conv7x7_w100" in out and "layer_0.Conv3x3_w50" in out
    assert "non-monotonic-width" in out and "launch-overhead" in out


def test_cli_data_synth(tmp_path):
    proc = run_cli("data", "synth", "--out", str(tmp_path / "d"), "--n", "4", "--size", "64x64")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "d" / "masks").glob("*.png"))) == 4
    proc = run_cli("data", "synth", "--out", str(tmp_path / "d"), "--n", "4", "--size", "60x64")
    assert proc.returncode == 2 and "multiples of 32" in proc.stderr
