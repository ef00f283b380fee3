"""The bad-input suite: every kind of bad file, folder, config or argument a user can hand the
CLI gives a non-zero exit and one line naming the file, key or value (and a fix), never a
traceback or silent garbage. Table-driven: a new kind is one row.

Commands run in-process through the console entry point (fast); run commands use a tiny
config whose only device is a LUT file, so no timing is done.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from linas.latency import LUT, save_lut
from linas.space import NUM_CHOICES, NUM_LAYERS


def run_linas(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``linas ARGS`` through the console entry point; (exit code, stdout, stderr)."""
    from linas.cli.main import entrypoint

    argv = sys.argv
    sys.argv = ["linas", *args]
    try:
        entrypoint()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def lut(path: Path, size: tuple[int, int] = (64, 64), scale: float = 1.0) -> Path:
    mean = np.random.default_rng(0).uniform(0.5, 5.0, (NUM_LAYERS, NUM_CHOICES)) * scale
    save_lut(LUT(hardware="edge", input_size=size, mean_ms=mean, std_ms=mean * 0.05), path)
    return path


def tiny_config(tmp: Path, lut_path: Path | None = None, devices: list[dict] | None = None,
                encoder: dict | None = None, **data: object) -> Path:
    cfg = {"encoder": encoder or {"weights": "random"}, "data": {"size": [64, 64], **data},
           "devices": devices or [{"name": "edge", "lut": str(lut_path or lut(tmp / "edge.json"))}]}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_args(tmp: Path, command: str = "search", **kw: object) -> list[str]:
    return [command, "--config", str(tiny_config(tmp, **kw)), "--out", str(tmp / "run"),
            "--quick", "--quiet"]  # type: ignore[arg-type]


def searched_run(tmp: Path) -> Path:
    """A run directory whose config is valid (nothing trained)."""
    out = tmp / "run"
    out.mkdir()
    from linas.config import load_config, to_yaml

    (out / "config.yaml").write_text(to_yaml(load_config(tiny_config(tmp))))
    return out


def noise(n: int) -> bytes:
    """``n`` random bytes, the same on every run (seeded by ``n``)."""
    return np.random.default_rng(n).bytes(n)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def lut_json(**edit: object) -> str:
    lut(Path("/tmp/_linas_ref_lut.json"))
    data = json.loads(Path("/tmp/_linas_ref_lut.json").read_text())
    data.update(edit)
    return json.dumps(data)


def huge_entry_lut() -> str:
    data = json.loads(lut_json())
    data["layers"]["layer_2"]["ops"]["Conv3x3_w50"]["mean_ms"] = 1e300
    return json.dumps(data)


def absurd_lut() -> str:
    data = json.loads(lut_json())
    for layer in data["layers"].values():
        for entry in layer["ops"].values():
            entry["mean_ms"] *= 1e6
    return json.dumps(data)


class Evil:
    def __reduce__(self):  # the payload: it must never run
        return (os.system, ("touch /tmp/linas_pwned",))


def folder_data(root: Path, mask_mode: str = "L", mask_ext: str = ".png", n: int = 6,
                drop_masks: bool = False, extra_image: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        write(root / "images" / f"im{i}.png", b"")
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i}.png")
        if not drop_masks:
            (root / "masks").mkdir(exist_ok=True)
            m = rng.integers(0, 3, (64, 64), dtype=np.uint8)
            img = Image.fromarray(m).convert(mask_mode)
            img.save(root / "masks" / f"im{i}{mask_ext}")
    if extra_image:
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            root / "images" / "lonely.png")
    return root


@dataclass(frozen=True)
class Case:
    """One kind of bad input: ``setup(tmp) -> argv``; the error must name ``needle``."""

    kind: str
    setup: Callable[[Path], list[str]]
    needle: str
    code: int = 2
    report: bool = False  # `lut check` reports a broken file as an error finding (exit 1)


def _ckpt_case(kind: str, payload: Callable[[Path], None], needle: str = "search.pt") -> Case:
    def setup(tmp: Path) -> list[str]:
        args = run_args(tmp)
        ckpt = tmp / "run" / "checkpoints" / "search.pt"
        ckpt.parent.mkdir(parents=True)
        payload(ckpt)
        write(ckpt.with_name("search_history.json"), "[]")
        return args
    return Case(kind, setup, needle)


def _evil(path: Path) -> None:
    path.write_bytes(pickle.dumps({"epoch": Evil()}))


CASES = [
    # --- LUT files -------------------------------------------------------------------------
    Case("lut-binary", lambda t: ["lut", "check", str(write(t / "b.json", noise(300)))],
         "b.json", 1, True),
    Case("lut-utf16", lambda t: ["lut", "check", str(write(
        t / "u.json", lut_json().encode("utf-16")))], "u.json", 1, True),
    Case("lut-truncated", lambda t: ["lut", "check", str(write(t / "t.json", lut_json()[:200]))],
         "t.json", 1, True),
    Case("lut-list", lambda t: ["lut", "check", str(write(t / "l.json", "[1, 2]"))], "l.json",
         1, True),
    Case("lut-in-run-binary", lambda t: run_args(t, lut_path=write(t / "b.json",
                                                                    noise(300))), "b.json"),
    Case("lut-in-run-1e300", lambda t: run_args(t, lut_path=write(t / "h.json",
                                                                   huge_entry_lut())), "h.json"),
    Case("lut-in-run-absurd", lambda t: run_args(t, lut_path=write(t / "a.json", absurd_lut())),
         "a.json"),
    Case("lut-in-run-folder", lambda t: run_args(t, lut_path=(t / "dir.json")
                                                 if (t / "dir.json").mkdir() is None else t),
         "dir.json"),
    Case("lut-in-run-missing", lambda t: run_args(t, lut_path=t / "nope.json"), "nope.json"),
    Case("lut-in-run-other-size", lambda t: run_args(t, lut_path=lut(t / "s.json", (128, 128))),
         "128x128"),
    Case("lut-in-run-size-zero", lambda t: run_args(t, lut_path=write(
        t / "z.json", lut_json(input_size=[0, -5]))), "z.json"),
    # --- fingerprints ----------------------------------------------------------------------
    Case("fingerprint-binary", lambda t: ["predictor", "onboard", "--predictor",
                                          str(t / "p.safetensors"), "--fingerprint",
                                          str(write(t / "fp.json", noise(100)))], "fp.json"),
    Case("fingerprint-int-size", lambda t: ["predictor", "onboard", "--predictor",
                                            str(t / "p.safetensors"), "--fingerprint",
                                            str(write(t / "fp.json", _fingerprint(
                                                input_size=128)))], "fp.json"),
    Case("fingerprint-string-latency", lambda t: ["predictor", "onboard", "--predictor",
                                                  str(t / "p.safetensors"), "--fingerprint",
                                                  str(write(t / "fp.json", _fingerprint(
                                                      mean_ms=["fast"] * 10)))], "fp.json"),
    Case("predictor-tensor-wrong-shape", lambda t: _predictor_args(t, mu=(4, 21)), "mu"),
    Case("predictor-tensor-nan", lambda t: _predictor_args(t, nan="basis"), "NaN"),
    Case("predictor-header-mangled", lambda t: _predictor_args(t, header="{"), "format"),
    # --- run configs -----------------------------------------------------------------------
    Case("compute-cuda-without-gpu", lambda t: [*run_args(t), "--set", "compute.device=cuda"],
         "compute.device", 2),
    Case("compute-fp16-on-cpu", lambda t: [*run_args(t), "--set", "compute.device=cpu", "--set",
                                           "compute.precision=fp16"], "bf16"),
    Case("compute-unknown-precision", lambda t: [*run_args(t), "--set",
                                                 "compute.precision=fp8"], "fp8"),
    Case("device-name-escapes", lambda t: run_args(t, devices=[{"name": "../../etc", "lut": str(
        lut(t / "e.json"))}]), "../../etc"),
    Case("encoder-weights-nan", lambda t: run_args(t, encoder={"weights": str(_nan_encoder(
        t / "enc.safetensors"))}), "enc.safetensors"),
    Case("config-not-yaml", lambda t: ["search", "--config", str(write(t / "c.yaml", "a: [1")),
                                       "--out", str(t / "r")], "c.yaml"),
    Case("config-binary", lambda t: ["search", "--config", str(write(t / "c.yaml",
                                                                     noise(64))),
                                     "--out", str(t / "r")], "c.yaml"),
    Case("config-list", lambda t: ["demo", "--config", str(write(t / "c.yaml", "- 1\n")),
                                   "--out", str(t / "r")], "c.yaml"),
    Case("config-unknown-key", lambda t: ["demo", "--config", str(write(
        t / "c.yaml", "pareto: {n_evalute: 3}\n")), "--out", str(t / "r")], "n_evaluate"),
    Case("config-wrong-type", lambda t: ["demo", "--config", str(write(
        t / "c.yaml", "final: {epochs: soon}\n")), "--out", str(t / "r")], "final.epochs"),
    Case("config-missing", lambda t: ["demo", "--config", str(t / "none.yaml"), "--out",
                                      str(t / "r")], "none.yaml"),
    Case("config-seed-in-section", lambda t: ["demo", "--set", "final.seed=3", "--out",
                                              str(t / "r")], "final.seed"),
    Case("set-malformed", lambda t: ["demo", "--set", "seed", "--out", str(t / "r")], "--set"),
    Case("set-unknown-device", lambda t: ["demo", "--set", "devices.pi.budget_ms=3", "--out",
                                          str(t / "r")], "'pi'"),
    Case("size-not-runnable", lambda t: ["demo", "--set", "data.size=[100, 150]", "--out",
                                         str(t / "r")], "nearest valid"),
    Case("unknown-data-kind", lambda t: ["demo", "--set", "data.kind=voc", "--set",
                                         f"data.root={t}", "--out", str(t / "r")], "voc"),
    # --- run directories -------------------------------------------------------------------
    Case("rundir-not-a-run", lambda t: ["pareto", "--run", str(t)], "config.yaml"),
    Case("rundir-config-garbage", lambda t: ["pareto", "--run", str(write(
        searched_run(t) / "config.yaml", "::: [").parent)], "config.yaml"),
    Case("rundir-config-list", lambda t: ["train", "--run", str(write(
        searched_run(t) / "config.yaml", "- 3\n").parent)], "config.yaml"),
    Case("rundir-config-extra-key", lambda t: ["pareto", "--run", str(write(
        searched_run(t) / "config.yaml", "bogus: 1\n").parent)], "bogus"),
    Case("rundir-results-truncated", lambda t: ["train", "--run", str(write(
        searched_run(t) / "results.json", '{"devices": {').parent)], "results.json"),
    Case("rundir-no-fronts", lambda t: ["train", "--run", str(searched_run(t))],
         "linas pareto"),
    Case("train-unknown-device", lambda t: ["train", "--run", str(searched_run(t)), "--device",
                                            "pi9"], "pi9"),
    Case("export-untrained", lambda t: ["export", "--run", str(searched_run(t))], "linas train"),
    Case("report-not-a-run", lambda t: ["report", "--run", str(t)], "config.yaml"),
    Case("history-truncated", lambda t: _history_truncated(t), "search_history.json"),
    # --- checkpoints -----------------------------------------------------------------------
    _ckpt_case("checkpoint-random-bytes", lambda p: p.write_bytes(noise(4096))),
    _ckpt_case("checkpoint-empty", lambda p: p.write_bytes(b"")),
    _ckpt_case("checkpoint-malicious-pickle", _evil),
    _ckpt_case("checkpoint-wrong-content", lambda p: __import__("torch").save({"x": 1}, p)),
    # --- output paths ----------------------------------------------------------------------
    Case("out-is-a-file-demo", lambda t: ["demo", "--out", str(write(t / "f", "x")), "--quick"],
         "f"),
    Case("out-is-a-file-synth", lambda t: ["data", "synth", "--out", str(write(t / "f", "x")),
                                           "--n", "3"], "f"),
    Case("synth-size-absurd", lambda t: ["data", "synth", "--out", str(t / "d"), "--size",
                                         "100000x100000"], "100000"),
    Case("predictor-out-is-a-folder", lambda t: ["predictor", "train", "--luts",
                                                 str(Path(__file__).parents[2].parent / "shared"
                                                     / "reference-luts"), "--out", str(t)],
         "is a folder"),
    Case("synthetic-folder-with-foreign-files", lambda t: _foreign(t), "mine"),
    # --- datasets --------------------------------------------------------------------------
    Case("folder-no-masks", lambda t: run_args(t, kind="folder", root=str(folder_data(
        t / "d", drop_masks=True))), "masks"),
    Case("folder-rgb-masks", lambda t: run_args(t, kind="folder", root=str(folder_data(
        t / "d", mask_mode="RGB"))), "mode 'RGB'"),
    Case("folder-jpeg-masks", lambda t: run_args(t, kind="folder", root=str(folder_data(
        t / "d", mask_ext=".jpg"))), ".jpg"),
    Case("folder-unmatched-image", lambda t: run_args(t, kind="folder", root=str(folder_data(
        t / "d", extra_image=True))), "lonely"),
    Case("folder-dataset-json-truncated", lambda t: run_args(t, kind="folder", root=str(write(
        folder_data(t / "d") / "dataset.json", '{"classes": [').parent)), "dataset.json"),
    Case("data-root-missing", lambda t: run_args(t, kind="folder", root=str(t / "nowhere")),
         "nowhere"),
    Case("mvtec-no-category", lambda t: run_args(t, kind="mvtec", root=str(
        (t / "mv").mkdir() or (t / "mv"))), "mv"),
    Case("cityscapes-missing-split", lambda t: run_args(t, kind="cityscapes", root=str(
        (t / "cs").mkdir() or (t / "cs"))), "cs"),
    Case("init-overwrite", lambda t: ["init", "--out", str(write(t / "l.yaml", "seed: 0\n"))],
         "--force"),
    Case("init-unknown-kind", lambda t: ["init", "--out", str(t / "l.yaml"), "--kind", "vocc"],
         "vocc"),
]


def _fingerprint(**edit: object) -> str:
    from linas.latency.fingerprint import REFERENCE_ARCHS
    from linas.latency.onboard import FINGERPRINT_SCHEMA

    data = {"schema": FINGERPRINT_SCHEMA, "hardware": "x", "archs": [str(a) for a in
                                                                   REFERENCE_ARCHS],
            "mean_ms": [1.0] * 10, "std_ms": [0.1] * 10, "input_size": [128, 128]}
    data.update(edit)
    return json.dumps(data)


def _predictor_args(tmp: Path, mu: tuple[int, ...] = (NUM_LAYERS, NUM_CHOICES),
                    nan: str | None = None, header: str | None = None) -> list[str]:
    """``predictor onboard`` on a predictor file with one tensor of another shape, NaN in one
    tensor, or a mangled header."""
    from dataclasses import asdict

    import torch
    from safetensors.torch import save_file

    from linas.latency.predictor import FORMAT, PredictorConfig, empty_factors

    tensors = asdict(empty_factors(rank=2, n_devices=3))
    tensors["mu"] = torch.zeros(mu)
    if nan is not None:
        tensors[nan] = torch.full_like(tensors[nan], float("nan"))
    meta = {"format": FORMAT, "devices": ["a", "b", "c"], "config": asdict(PredictorConfig()),
            "meta": {}}
    path = tmp / "p.safetensors"
    save_file(tensors, str(path), metadata={"linas": header or json.dumps(meta)})
    fp = write(tmp / "fp.json", _fingerprint())
    return ["predictor", "onboard", "--predictor", str(path), "--fingerprint", str(fp), "--out",
            str(tmp / "lut.json")]


def _nan_encoder(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"features.conv0.weight": torch.full((64, 3, 7, 7), float("nan"))}, str(path))
    return path


def _history_truncated(tmp: Path) -> list[str]:
    args = run_args(tmp)
    hist = tmp / "run" / "checkpoints" / "search_history.json"
    write(hist, '[{"epoch": 0')
    write(hist.with_name("search.pt"), b"")
    return args


def _foreign(tmp: Path) -> list[str]:
    args = run_args(tmp)
    write(tmp / "run" / "data" / "mine" / "keep.txt", "x")
    return args


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input_gives_one_clear_line(case: Case, tmp_path: Path, capsys) -> None:
    argv = case.setup(tmp_path)
    code, out, err = run_linas(argv, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == case.code, (code, err[-2000:])
    assert "Traceback" not in err + out
    if case.report:  # one error finding naming the file, on stdout
        found = [line for line in out.splitlines() if " error " in f" {line} "]
        assert found and case.needle in out, out
        return
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, err[-2000:]
    assert case.needle in errors[0], errors[0]


def test_kinds_are_distinct_and_many() -> None:
    kinds = [c.kind for c in CASES]
    assert len(set(kinds)) == len(kinds) >= 40


def test_malicious_checkpoint_payload_never_runs(tmp_path, capsys) -> None:
    marker = Path("/tmp/linas_pwned")
    marker.unlink(missing_ok=True)
    case = next(c for c in CASES if c.kind == "checkpoint-malicious-pickle")
    run_linas(case.setup(tmp_path), capsys)
    assert not marker.exists()


def test_foreign_files_are_never_deleted(tmp_path, capsys) -> None:
    run_linas(_foreign(tmp_path), capsys)
    assert (tmp_path / "run" / "data" / "mine" / "keep.txt").read_text() == "x"
