"""The DenseNet121 encoder (torchvision) with feature taps at strides 2, 4, 8, 16, 32.

Weights: ``imagenet`` (torchvision weights API, cached file or download), a local state_dict
file (``.pth``/``.pt`` loaded with ``weights_only=True``, or ``.safetensors``), ``random``,
or ``auto`` (imagenet when obtainable, else random, recorded in the results).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import torch
import torchvision
from torch import nn

from linas._errors import ConfigError

# (module name in densenet121.features, channels, stride) of each tap, shallow to deep.
TAPS: tuple[tuple[str, int, int], ...] = (
    ("relu0", 64, 2),
    ("denseblock1", 256, 4),
    ("denseblock2", 512, 8),
    ("denseblock3", 1024, 16),
    ("norm5", 1024, 32),
)
WEIGHT_MODES = ("imagenet", "random", "auto")
# torchvision's old DenseNet checkpoints name 'norm.1' what the model calls 'norm1'.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class DenseNetEncoder(nn.Module):
    """DenseNet121 ``features`` returning the five tapped maps, shallow to deep."""

    channels: tuple[int, ...] = tuple(c for _, c, _ in TAPS)
    strides: tuple[int, ...] = tuple(s for _, _, s in TAPS)

    def __init__(self) -> None:
        super().__init__()
        self.features = torchvision.models.densenet121(weights=None).features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = {name for name, _, _ in TAPS}
        outs: list[torch.Tensor] = []
        for name, module in self.features.named_children():
            x = module(x)
            if name in taps:
                outs.append(torch.relu(x) if name == "norm5" else x)
        # [(B,64,H/2,W/2), (B,256,H/4,..), (B,512,H/8,..), (B,1024,H/16,..), (B,1024,H/32,..)]
        return outs


def imagenet_cache_path() -> Path:
    """Where torchvision caches the ImageNet DenseNet121 weights on this machine."""
    url = torchvision.models.DenseNet121_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_encoder(weights: str) -> tuple[DenseNetEncoder, str]:
    """Build the encoder and load ``weights``; returns (encoder, what was actually loaded).

    Raises:
        ConfigError: ``imagenet`` unobtainable offline (names the cache file to provide), or a
            local file that is missing or does not fit DenseNet121.
    """
    encoder = DenseNetEncoder()
    if weights == "random":
        return encoder, "random"
    if weights in ("imagenet", "auto"):
        try:
            state = _imagenet_state_dict()
        except ConfigError:
            if weights == "auto":
                return encoder, "random"
            raise
        _load_features(encoder, state, "imagenet")
        return encoder, "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"encoder weights '{weights}': not one of {', '.join(WEIGHT_MODES)} "
                          "and no such file; pass a DenseNet121 state_dict (.pth/.safetensors)")
    _load_features(encoder, read_state_dict(path), str(path))
    return encoder, str(path)


def save_encoder(encoder: DenseNetEncoder, path: Path) -> Path:
    """Write ``encoder``'s weights as a torchvision-named densenet121 state_dict
    (``features.*``, safetensors, atomically): what ``encoder.weights: PATH`` reads back."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"features.{k}": v.detach().cpu().contiguous()
             for k, v in encoder.features.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    return path


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    cache = imagenet_cache_path()
    if not cache.is_file():
        try:
            # torch.hub announces "Downloading: https://..." on stderr even when the machine is
            # offline; the outcome is reported here instead, in one line
            with contextlib.redirect_stderr(io.StringIO()):
                torchvision.models.DenseNet121_Weights.IMAGENET1K_V1.get_state_dict(
                    progress=False)
        except Exception as exc:  # noqa: BLE001 - any download failure means "offline"
            raise ConfigError(
                f"ImageNet weights for DenseNet121 are not cached and could not be downloaded "
                f"({type(exc).__name__}); copy densenet121 weights to {cache}, or set "
                "encoder.weights to random, auto or a state_dict file") from None
    return read_state_dict(cache)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state_dict safely: safetensors, or torch.load with ``weights_only=True``."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any unreadable file as a user error
        raise ConfigError(f"encoder weights {path}: cannot be read as a state_dict "
                          f"({type(exc).__name__}: {exc}); save one with torch.save(model."
                          "state_dict()) or safetensors") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"encoder weights {path}: holds {type(state).__name__}, not a state_dict")
    return state


def _load_features(encoder: DenseNetEncoder, state: dict[str, torch.Tensor], source: str) -> None:
    feats: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("classifier."):
            continue
        key = _LEGACY_KEY.sub(r"\1\2", key.removeprefix("features."))
        feats[key] = value
    bad = [k for k, v in feats.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ConfigError(f"encoder weights {source}: {bad[0]} holds NaN or inf ({len(bad)} "
                          "tensor(s) affected); pass an intact densenet121 state_dict")
    try:
        missing, unexpected = encoder.features.load_state_dict(feats, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise ConfigError(f"encoder weights {source}: do not fit DenseNet121 ({first}); pass a "
                          "torchvision densenet121 state_dict") from None
    # old checkpoints predate BN's num_batches_tracked buffers; that gap is harmless
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConfigError(f"encoder weights {source}: do not fit DenseNet121 ({len(missing)} "
                          f"missing keys e.g. {missing[:2]}, {len(unexpected)} unexpected e.g. "
                          f"{unexpected[:2]}); pass a torchvision densenet121 state_dict")
