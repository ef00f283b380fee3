"""The supernet: frozen-or-trained DenseNet121 encoder + 5 MixedOp decoder layers.

Forward modes of the decoder (all take the encoder's feature list, so cached features work):

* path: one choice per layer (``set_arch`` or ``choices=``); only that path is computed.
* soft: per-layer weights (5, 21), every candidate with a non-zero weight is computed and
  mixed (Gumbel-softmax soft mode).
* hard straight-through: ``choices`` plus ``weights``; only the chosen path is computed and
  scaled by its (straight-through) weight so gradients reach the architecture logits.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from linas.space import CHOICE_KEYS, LAYERS, NUM_LAYERS, Arch
from linas.supernet.decoder import DecoderHead
from linas.supernet.encoder import DenseNetEncoder
from linas.supernet.ops import Candidate, build_candidate


class MixedOp(nn.Module):
    """All 21 candidates of one decoder layer."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(build_candidate(k, c_in, c_out) for k in CHOICE_KEYS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                choice: int | None = None) -> torch.Tensor:
        if choice is not None:
            out = self.candidates[choice](x)
            return out if weights is None else out * weights[choice]
        if weights is None:
            raise ValueError("MixedOp needs a choice or weights")
        active = torch.nonzero(weights.detach() > 0).flatten().tolist()
        return sum((weights[i] * self.candidates[i](x) for i in active),
                   torch.zeros((), device=x.device))


class Supernet(nn.Module):
    """Encoder + weight-sharing decoder over the fixed search space (SPEC.md section 2)."""

    def __init__(self, num_classes: int, encoder: DenseNetEncoder | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else DenseNetEncoder()
        self.layers = nn.ModuleList(MixedOp(s.c_in, s.c_out) for s in LAYERS)
        self.head = DecoderHead(self.encoder.channels, num_classes)
        self.num_classes = num_classes
        self._arch: Arch | None = None

    def set_arch(self, arch: Arch | None) -> None:
        """Fix the path used by :meth:`forward` when no weights/choices are given."""
        self._arch = arch

    def freeze_encoder(self) -> None:
        """Freeze the encoder (eval mode, no grads), which makes its features cacheable."""
        self.encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("encoder.")]

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                choices: Sequence[int] | None = None) -> torch.Tensor:
        return self.decode(self.encoder(x), weights, choices)

    def decode(self, feats: list[torch.Tensor], weights: torch.Tensor | None = None,
               choices: Sequence[int] | None = None) -> torch.Tensor:
        """Decoder on encoder features; logits (B, num_classes, H, W)."""
        if weights is None and choices is None:
            if self._arch is None:
                raise ValueError("Supernet.decode needs weights, choices or set_arch(arch)")
            choices = self._arch.choices
        x = feats[-1]
        if weights is not None:  # architecture weights live on the CPU, features may not
            weights = weights.to(x.device)
        for i, layer in enumerate(self.layers):
            w = None if weights is None else weights[i]
            x = layer(x, w, None if choices is None else int(choices[i]))
            x = self.head.fuse(i, x, feats)
        return self.head.classifier(x)

    def candidate(self, layer: int, choice: int) -> Candidate:
        """The candidate module of (layer, choice), as it runs in the model."""
        mixed: MixedOp = self.layers[layer]  # type: ignore[assignment]
        return mixed.candidates[choice]  # type: ignore[return-value]

    def extract(self, arch: Arch) -> SegmentationModel:
        """A plain static model for ``arch`` (deep copies; no MixedOps)."""
        return SegmentationModel(
            copy.deepcopy(self.encoder),
            nn.ModuleList(copy.deepcopy(self.candidate(i, c)) for i, c in enumerate(arch.choices)),
            copy.deepcopy(self.head), arch)


class SegmentationModel(nn.Module):
    """A static segmentation model: encoder, five chosen candidates, skip fusions, classifier."""

    def __init__(self, encoder: DenseNetEncoder, layers: nn.ModuleList, head: DecoderHead,
                 arch: Arch) -> None:
        super().__init__()
        if len(layers) != NUM_LAYERS:
            raise ValueError(f"expected {NUM_LAYERS} decoder layers, got {len(layers)}")
        self.encoder, self.layers, self.head = encoder, layers, head
        self.arch_string = str(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encoder(x))  # (B, num_classes, H, W)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for i, layer in enumerate(self.layers):
            x = self.head.fuse(i, layer(x), feats)
        return self.head.classifier(x)

    def decode_with_features(self, feats: list[torch.Tensor]
                             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`decode` that also returns the five decoder layer outputs (each chosen
        candidate's output, before its skip fusion), for feature distillation.

        Returns:
            (logits (B, num_classes, H, W), five maps (B, C_out_i, H_i, W_i)).
        """
        x, outs = feats[-1], []
        for i, layer in enumerate(self.layers):
            y = layer(x)  # (B, C_out_i, 2H_in, 2W_in)
            outs.append(y)
            x = self.head.fuse(i, y, feats)
        return self.head.classifier(x), outs


class FixedPart(nn.Module):
    """What every architecture runs besides its five ops: encoder, fusions, classifier.

    Timed once per device for the LUT's ``fixed`` entry; decoder activations are replaced by
    zeros of the right shape, which costs the same to fuse.
    """

    def __init__(self, supernet: Supernet) -> None:
        super().__init__()
        self.encoder, self.head = supernet.encoder, supernet.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        out = x
        for i in range(NUM_LAYERS):
            b, _, h, w = feats[-1].shape
            spec = LAYERS[i]
            out = torch.zeros(b, spec.c_out, h * 2 ** (i + 1), w * 2 ** (i + 1), device=x.device)
            out = self.head.fuse(i, out, feats)
        return self.head.classifier(out)
