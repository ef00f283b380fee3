"""Candidate decoder operations: each upsamples x2 and is followed by BN, ReLU and a width
projection, so that every one of the 21 choices maps ``C_in @ HxW -> C_out @ 2Hx2W``.

A :class:`Candidate` is exactly the module that runs in the model for one (op, width) choice,
and therefore exactly what the LUT times.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from linas._registry import Registry
from linas.space import OPS, parse_choice


def _up_conv(c_in: int, c_out: int, k: int, dilation: int = 1, groups: int = 1) -> nn.Module:
    """Transposed conv that exactly doubles H and W for odd ``k``."""
    # out = (H-1)*2 - 2p + d*(k-1) + output_padding(1) + 1 == 2H  <=>  2p = d*(k-1)
    pad = (dilation * (k - 1)) // 2
    return nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=pad, output_padding=1,
                              dilation=dilation, groups=groups, bias=False)


def conv_op(k: int) -> Callable[[int, int], nn.Module]:
    def build(c_in: int, c_out: int) -> nn.Module:
        return _up_conv(c_in, c_out, k)
    return build


def dwsep_op(k: int, dilation: int = 1) -> Callable[[int, int], nn.Module]:
    def build(c_in: int, c_out: int) -> nn.Module:
        # depthwise transposed conv (upsamples) then pointwise channel mixing
        return nn.Sequential(_up_conv(c_in, c_in, k, dilation=dilation, groups=c_in),
                             nn.Conv2d(c_in, c_out, 1, bias=False))
    return build


class EdgeConv(nn.Module):
    """Sobel edge magnitudes (|gx| + |gy| per channel) concatenated to the input, then a
    transposed 3x3 conv on the 2*C_in channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        kernel = torch.stack([sobel_x, sobel_x.t()])  # (2, 3, 3)
        self.sobel: torch.Tensor
        self.register_buffer("sobel", kernel.repeat(c_in, 1, 1).unsqueeze(1))  # (2C, 1, 3, 3)
        self.c_in = c_in
        self.conv = _up_conv(2 * c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grads = nn.functional.conv2d(x, self.sobel, padding=1, groups=self.c_in)  # (B, 2C, H, W)
        edges = grads.abs().reshape(b, c, 2, h, w).sum(dim=2)  # (B, C, H, W)
        return self.conv(torch.cat([x, edges], dim=1))  # (B, C_out, 2H, 2W)


OP_BUILDERS: Registry[Callable[[int, int], nn.Module]] = Registry("op")
for _name, _build in (("Conv3x3", conv_op(3)), ("Conv5x5", conv_op(5)), ("Conv7x7", conv_op(7)),
                      ("DWSep3x3", dwsep_op(3)), ("DWSep5x5", dwsep_op(5)),
                      ("EdgeConv", EdgeConv), ("DilatedDWSep", dwsep_op(3, dilation=2))):
    OP_BUILDERS.add(_name, _build)
assert tuple(OP_BUILDERS.names()) == OPS, "op registry must follow linas.space.OPS order"


def build_op(op: str, c_in: int, c_out: int) -> nn.Module:
    """Build the bare op ``op`` (no BN/ReLU/projection); unknown names list the menu."""
    return OP_BUILDERS.get(op)(c_in, c_out)


class Candidate(nn.Module):
    """One (op, width) choice: op -> BN -> ReLU -> 1x1 width projection to ``c_out``.

    The op produces ``round(width * c_out)`` channels; the projection (1x1 conv + BN) restores
    ``c_out`` so the decoder's channel chain never changes. Width 1.0 needs no projection.
    """

    def __init__(self, op: str, width: float, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = max(1, int(round(width * c_out)))
        self.op_name, self.width = op, width
        self.op = build_op(op, c_in, mid)
        self.bn = nn.BatchNorm2d(mid)
        self.act = nn.ReLU(inplace=True)
        self.proj: nn.Module = (nn.Identity() if mid == c_out else
                                nn.Sequential(nn.Conv2d(mid, c_out, 1, bias=False),
                                              nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.bn(self.op(x))))  # (B, C_out, 2H, 2W)


def build_candidate(key: str, c_in: int, c_out: int) -> Candidate:
    """Build the candidate for a LUT key such as ``'DWSep5x5_w75'``."""
    op, width = parse_choice(key)
    return Candidate(op, width, c_in, c_out)
