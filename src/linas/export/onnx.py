"""ONNX export of an extracted model and a parity check with ONNX Runtime."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from linas._io import write_atomic


def export_onnx(model: nn.Module, input_size: tuple[int, int], path: str | Path,
                opset: int = 17) -> Path:
    """Export ``model`` for a (1, 3, H, W) input with the TorchScript-based exporter."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    x = torch.randn(1, 3, *input_size)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp), input_names=["image"],
                              output_names=["logits"], opset_version=opset, dynamo=False)

    return write_atomic(path, write)


def onnx_parity(model: nn.Module, onnx_path: str | Path, input_size: tuple[int, int],
                seed: int = 0, threads: int | None = None) -> float:
    """Max absolute difference between torch and ONNX Runtime logits on a seeded input."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    x = torch.randn(1, 3, *input_size, generator=torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad():
        ref = model(x).numpy()
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(out - ref).max())
