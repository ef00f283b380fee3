"""Runnable models of the supernet for timing: the supernet itself, per-layer inputs, and the
end-to-end runner of an architecture's extracted model in a runtime."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from linas.latency.runtimes import OnnxModelRuntime, Runner, Runtime, export_onnx_bytes
from linas.space import Arch, SearchSpace
from linas.supernet import Supernet
from linas.supernet.supernet import SegmentationModel

_FEATS = tuple(f"feat{i}" for i in range(5))


def build_supernet(device: str) -> Supernet:
    """A 3-class supernet on ``device`` in eval mode, seeded (weights do not change dense-op
    latency, but keep runs identical)."""
    torch.manual_seed(0)
    return Supernet(num_classes=3).to(device).eval()


def layer_inputs(size: tuple[int, int], dev: torch.device) -> list[torch.Tensor]:
    """One input per decoder layer: layer i sees the previous output, C_in channels at half
    its own output size, (1, C_in, H / (2 * stride), W / (2 * stride))."""
    h, w = size
    return [torch.randn(1, s.c_in, h // (2 * s.out_stride), w // (2 * s.out_stride), device=dev)
            for s in SearchSpace().layers]


class ArchRunners:
    """Prepares the end-to-end runner of an architecture's extracted model in a runtime.

    Torch runs ``Supernet.extract(arch)``. ONNX runtimes run one ONNX graph of the whole
    model, stitched from the encoder exported once and the architecture's decoder (exporting
    DenseNet121 afresh per architecture would take seconds each); the graph computes exactly
    what the extracted model computes.
    """

    def __init__(self, net: Supernet, runtime: Runtime, size: tuple[int, int]) -> None:
        self.net, self.runtime = net, runtime
        dev = next(net.parameters()).device
        self.x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(dev)
        self._encoder_onnx: bytes | None = None

    def __call__(self, choices: Sequence[int]) -> Runner:
        arch = Arch(tuple(int(c) for c in choices))
        if not isinstance(self.runtime, OnnxModelRuntime):
            return self.runtime.prepare(self.net.extract(arch), self.x)
        return self.runtime.prepare_onnx(self.onnx(arch), self.x)

    def onnx(self, arch: Arch) -> bytes:
        """The serialised ONNX graph of ``arch``'s whole model (encoder + decoder)."""
        import onnx
        from onnx import compose

        if self._encoder_onnx is None:
            self._encoder_onnx = export_onnx_bytes(_Encoder(self.net).eval(), (self.x,),
                                                   ["input"], _FEATS)
        with torch.no_grad():
            feats = tuple(self.net.encoder.eval()(self.x.cpu()))
        dec = export_onnx_bytes(_Decoder(self.net, arch).eval(), feats, _FEATS, ["output"])
        merged = compose.merge_models(onnx.load_from_string(self._encoder_onnx),
                                      onnx.load_from_string(dec),
                                      io_map=[(f, f) for f in _FEATS], prefix1="enc/",
                                      prefix2="dec/")
        return bytes(merged.SerializeToString())


class _Encoder(nn.Module):
    def __init__(self, net: Supernet) -> None:
        super().__init__()
        self.encoder = net.encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(x))  # five maps, shallow to deep


class _Decoder(nn.Module):
    """The decoder of ``arch`` exactly as in :class:`SegmentationModel` (shared weights)."""

    def __init__(self, net: Supernet, arch: Arch) -> None:
        super().__init__()
        layers = nn.ModuleList(net.candidate(i, c) for i, c in enumerate(arch.choices))
        self.model = SegmentationModel(net.encoder, layers, net.head, arch)

    def forward(self, *feats: torch.Tensor) -> torch.Tensor:
        return self.model.decode(list(feats))
