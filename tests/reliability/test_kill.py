"""Kill -9 anywhere: a tiny `linas demo` is killed at one point after another (while the data
is generated, the encoder features cached, the supernet searched and checkpointed, the fronts
evaluated, the final models trained, exported and carded, the report written, and once from
outside at an arbitrary moment of the search), each time rerun with the same command, and
finally left to finish. Its results must equal an uninterrupted run's with the same seed,
byte for byte where the files are deterministic, and no temporary file may be left.

The kill points are those of :mod:`linas._failpoint`: a real SIGKILL of the process, with no
cleanup, at a chosen place (``write:NAME`` is after a temporary file is complete and before it
is renamed, the worst moment for an atomic write)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from linas._failpoint import ENV
from linas.latency import LUT, save_lut
from linas.space import NUM_CHOICES, NUM_LAYERS

pytestmark = pytest.mark.slow

SIZE = (64, 64)
KILLS = (
    "write:00007.png",  # data: the 8th image written, not yet renamed
    "step:caching encoder features:2",
    "external",  # SIGKILL from this test, 1 s into the search (mid-epoch, no checkpoint yet)
    "write:search.pt",  # the checkpoint complete on disk under its temporary name
    "step:weight-sharing evaluation:4",
    "step:final training:1",
    "write:card.json",  # the first device deployed, the second not
    "write:model.onnx",
    "write:report.md",
)
# Files that must be identical to the uninterrupted run's, byte for byte.
SAME_BYTES = ("pareto.json", "checkpoints/search_history.json", "deploy/edge/card.json",
              "deploy/gpu/card.json", "deploy/edge/model.onnx", "deploy/gpu/model.onnx",
              "luts/edge.json", "luts/gpu.json", "data/dataset.json")


def write_config(root: Path) -> Path:
    rng = np.random.default_rng(0)
    devices = []
    for name, scale, budget in (("edge", 10.0, 120.0), ("gpu", 0.05, 0.4)):
        mean = rng.uniform(0.5, 5.0, (NUM_LAYERS, NUM_CHOICES)) * scale
        path = save_lut(LUT(hardware=name, input_size=SIZE, mean_ms=mean, std_ms=mean * 0.02),
                        root / f"{name}_lut.json")
        devices.append({"name": name, "lut": str(path), "budget_ms": budget})
    cfg = {"seed": 5, "encoder": {"weights": "random"},
           "data": {"size": list(SIZE), "n_images": 16}, "devices": devices}
    path = root / "fleet.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def demo(cwd: Path, cfg: Path, kill: str | None = None) -> subprocess.CompletedProcess[str]:
    """`linas demo --quick --out run` in ``cwd``, killed at ``kill`` (None: runs to the end)."""
    cmd = [sys.executable, "-m", "linas.cli", "demo", "--config", str(cfg), "--quick", "--out",
           "run"]
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill not in (None, "external"):
        env[ENV] = kill  # type: ignore[assignment]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if kill == "external" and line.startswith("stage search"):
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
    proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), "")


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without its wall-clock timings (the only figures a kill may change)."""
    return {k: v for k, v in results.items() if k != "timings_s"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_anywhere_and_rerun_gives_the_uninterrupted_results(tmp_path) -> None:
    cfg = write_config(tmp_path)
    ref, chain = tmp_path / "ref", tmp_path / "chain"
    ref.mkdir()
    chain.mkdir()
    done = demo(ref, cfg)
    assert done.returncode == 0, done.stdout[-3000:]

    for point in KILLS:
        killed = demo(chain, cfg, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode,
                                                     killed.stdout[-3000:])
    final = demo(chain, cfg)
    assert final.returncode == 0, final.stdout[-3000:]
    assert "resuming from run/checkpoints/search.pt" in final.stdout  # the search was not redone

    a, b = ref / "run", chain / "run"
    assert comparable(json.loads((b / "results.json").read_text())) == \
        comparable(json.loads((a / "results.json").read_text()))
    for name in SAME_BYTES:
        assert digest(b / name) == digest(a / name), name
    weights = sorted(p.name for p in (a / "checkpoints" / "final").iterdir())
    assert weights and weights == sorted(p.name for p in (b / "checkpoints" / "final").iterdir())
    for name in weights:
        assert digest(b / "checkpoints" / "final" / name) == \
            digest(a / "checkpoints" / "final" / name), name
    images = sorted((a / "data" / "images").iterdir())
    assert len(images) == 16 and all(digest(p) == digest(b / "data" / "images" / p.name)
                                     for p in images)
    assert not [p for p in b.rglob(".*.tmp")], "a temporary file was left behind"


def test_a_lut_measurement_killed_is_measured_again_never_read_half_done(tmp_path) -> None:
    """Timings cannot repeat exactly, so a measured device is checked apart: a kill during
    the measurement and one while its LUT file is being written leave no LUT behind; the rerun
    measures a complete LUT, which the run then uses."""
    from linas.latency import load_lut

    cfg_path = write_config(tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["devices"] = [{"name": "here", "measure": {"runtime": "torch", "threads": 1,
                                                   "interactions": "none"}}]  # table only
    cfg_path.write_text(yaml.safe_dump(cfg))
    for point in ("step:measuring LUT:5", "write:here.json"):
        killed = demo(tmp_path, cfg_path, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stdout[-3000:])
        assert not (tmp_path / "run" / "luts" / "here.json").exists(), point
    killed = demo(tmp_path, cfg_path, "step:searching:1")  # the LUT done, then killed
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    path = tmp_path / "run" / "luts" / "here.json"
    lut = load_lut(path)
    assert lut.input_size == SIZE and lut.mean_ms.shape == (NUM_LAYERS, NUM_CHOICES)
    assert np.all(np.isfinite(lut.mean_ms)) and np.all(lut.mean_ms > 0)
    before = digest(path)
    killed = demo(tmp_path, cfg_path, "step:searching:1")
    assert killed.returncode == -signal.SIGKILL and digest(path) == before  # reused, not redone
    assert not [p for p in (tmp_path / "run").rglob(".*.tmp")]
