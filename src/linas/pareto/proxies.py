"""Zero-cost proxies of decoder architectures, by name: ``near``, ``params``, ``flops``,
``grad_norm`` (I3, SPEC.md section 5). Higher scores mean "expected to be more accurate".

Every proxy scores choices (N, 5) in a :class:`ProxyContext`: a decoder (a trained
supernet's, or a fresh one initialised from a seed) and one batch of *cached* encoder
features. The encoder is neither run nor re-initialised, and proxies never hold a reference to
it: :class:`ProxyDecoder` exposes only the decoder's candidates and head.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from linas._errors import ConfigError, unknown_name
from linas._registry import Registry
from linas.data.features import FeatureSet
from linas.pareto.diversity import _check_choices
from linas.pareto.near import near_scores
from linas.space import CHOICE_KEYS, LAYERS, NUM_CHOICES, NUM_LAYERS
from linas.supernet import DecoderHead, DenseNetEncoder, Supernet, build_candidate

PROXY_INITS = ("seed", "supernet")


class ProxyDecoder:
    """The decoder side of the supernet as proxies see it: ``candidate(layer, choice)`` + head.

    Args:
        head: skip fusions and classifier.
        candidate: ``candidate(layer, choice)`` -> that choice's module.
    """

    def __init__(self, head: DecoderHead, candidate: Callable[[int, int], nn.Module]) -> None:
        self.head, self._candidate = head, candidate
        self._modes: dict[int, tuple[nn.Module, bool]] = {}

    @classmethod
    def from_supernet(cls, net: Supernet) -> ProxyDecoder:
        """A view of a (trained) supernet's decoder; its weights are only read."""
        return cls(net.head, net.candidate)

    @classmethod
    def seeded(cls, num_classes: int, seed: int) -> ProxyDecoder:
        """A freshly initialised decoder, deterministic by ``seed``.

        Candidates are built lazily, each from its own seed derived from (seed, layer,
        choice), so a score never depends on which other architectures are scored. The global
        torch RNG is forked, so callers' random state is left as it was.
        """
        with _seeded(seed, NUM_LAYERS, 0):
            head = DecoderHead(DenseNetEncoder.channels, num_classes)
        built: dict[tuple[int, int], nn.Module] = {}

        def candidate(layer: int, choice: int) -> nn.Module:
            if (layer, choice) not in built:
                spec = LAYERS[layer]
                # built outside inference mode even when first asked for inside it, so the
                # same module also serves gradient proxies
                with _seeded(seed, layer, choice + 1), torch.inference_mode(False):
                    built[layer, choice] = build_candidate(CHOICE_KEYS[choice], spec.c_in,
                                                           spec.c_out)
            return built[layer, choice]

        return cls(head, candidate)

    def candidate(self, layer: int, choice: int) -> nn.Module:
        """The module of (layer, choice), switched to eval mode while inside :meth:`evaluating`."""
        module = self._candidate(layer, choice)
        if id(module) not in self._modes:
            self._modes[id(module)] = (module, module.training)
            module.eval()
        return module

    @contextmanager
    def evaluating(self) -> Iterator[ProxyDecoder]:
        """Eval mode (BN running statistics) for the head and every candidate used; restores
        each module's previous mode on exit."""
        self._modes = {id(self.head): (self.head, self.head.training)}
        self.head.eval()
        try:
            yield self
        finally:
            for module, training in self._modes.values():
                module.train(training)
            self._modes = {}


@contextmanager
def _seeded(seed: int, layer: int, slot: int) -> Iterator[None]:
    """Run module initialisation under a seed derived from (seed, layer, slot), RNG forked."""
    child = int(np.random.SeedSequence([seed, layer, slot]).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(child)
        yield


@dataclass
class ProxyContext:
    """What proxies score with: a decoder and one batch of cached encoder features + masks."""

    decoder: ProxyDecoder
    feats: list[torch.Tensor]  # five (B, C_i, H_i, W_i)
    masks: torch.Tensor  # (B, H, W) int64
    num_classes: int
    ignore_index: int = 255

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.masks.shape[-2]), int(self.masks.shape[-1])


def proxy_context(split: FeatureSet, num_classes: int, seed: int, batch_size: int = 2,
                  init: str = "seed", supernet: Supernet | None = None,
                  ignore_index: int = 255) -> ProxyContext:
    """One scoring batch drawn by ``seed`` from a split with cached features, and a decoder.

    Args:
        split: a split whose encoder features are cached (frozen encoder).
        num_classes: classes of the task.
        seed: picks the batch and (``init='seed'``) initialises the decoder.
        batch_size: images in the batch, 1..len(split).
        init: ``seed`` (fresh decoder, zero-cost proper) or ``supernet`` (its trained weights).
        supernet: required for ``init='supernet'``.
        ignore_index: label ignored by the gradient proxy's loss.

    Returns:
        The context.

    Raises:
        ConfigError: on features that are not cached, a bad batch size or init.
    """
    if split.feats is None:
        raise ConfigError("proxies need cached encoder features; freeze the encoder and use "
                          "linas.data.cache_features")
    if not 1 <= batch_size <= len(split):
        raise ConfigError(f"proxy batch_size={batch_size} must be in 1..{len(split)} (split size)")
    if init not in PROXY_INITS:
        raise unknown_name("proxy init", init, PROXY_INITS)
    if init == "supernet" and supernet is None:
        raise ConfigError("proxy init 'supernet' needs the trained supernet; pass supernet=")
    idx = torch.as_tensor(np.sort(np.random.default_rng(seed).choice(
        len(split), size=batch_size, replace=False)))
    feats, masks = split.batch(idx)
    decoder = (ProxyDecoder.from_supernet(supernet) if init == "supernet" and supernet
               else ProxyDecoder.seeded(num_classes, seed))
    # the supernet's weights may sit on a GPU (compute.device): the batch goes where they are
    device = (next(supernet.parameters()).device if init == "supernet" and supernet
              else torch.device("cpu"))
    return ProxyContext(decoder, [f.detach().to(device) for f in feats], masks.to(device),
                        num_classes, ignore_index)


class Proxy(ABC):
    """A zero-cost proxy: ``score`` checks the choices, ``_score`` computes (higher = better)."""

    name: ClassVar[str]

    def score(self, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
        """Score architectures.

        Args:
            choices: int choice indices, shape (N, 5).
            ctx: decoder and batch, see :func:`proxy_context`.

        Returns:
            float64 scores, shape (N,).

        Raises:
            ConfigError: on bad choices.
        """
        arr = _check_choices(choices)
        with ctx.decoder.evaluating():
            out = np.asarray(self._score(arr, ctx), dtype=np.float64)
        if out.shape != (arr.shape[0],) or not np.all(np.isfinite(out)):
            raise ConfigError(f"proxy '{self.name}' returned shape {out.shape} or non-finite "
                              "scores; report this as a bug")
        return out

    @abstractmethod
    def _score(self, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
        """Scores (N,) of checked int64 choices (N, 5); decoder modules are in eval mode."""


PROXIES: Registry[type[Proxy]] = Registry("proxy")


def register_proxy(name: str) -> Callable[[type[Proxy]], type[Proxy]]:
    """Class decorator registering a proxy under ``name``."""

    def add(cls: type[Proxy]) -> type[Proxy]:
        cls.name = name
        PROXIES.add(name, cls)
        return cls

    return add


def get_proxy(name: str, **kwargs: object) -> Proxy:
    """An instance of the proxy registered as ``name`` (keyword options passed on).

    Raises:
        ConfigError: for an unknown name, listing the registered ones and the closest match.
    """
    return PROXIES.get(name)(**kwargs)  # type: ignore[arg-type]


@register_proxy("near")
class NEAR(Proxy):
    """Sum over the 5 layers of the effective rank of the candidate's output (prefix reuse).

    Args:
        max_positions: positions kept (spatial grid subsample) per activation matrix.
        chunk: architectures walked together.
        reuse_prefixes: share the work of common prefixes (False: the per-arch oracle).
    """

    def __init__(self, max_positions: int = 64, chunk: int = 64,
                 reuse_prefixes: bool = True) -> None:
        self.max_positions, self.chunk, self.reuse = max_positions, chunk, reuse_prefixes

    def _score(self, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
        return near_scores(ctx.decoder.candidate, ctx.decoder.head, ctx.feats, choices,
                           self.chunk, self.max_positions, self.reuse)


@lru_cache(maxsize=8)
def candidate_costs(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Analytic #params and FLOPs of every candidate at input size ``size`` (H, W).

    Modules are built on the meta device (no memory, no init) and FLOPs counted from shapes
    by torch's ``FlopCounterMode`` for one image.

    Returns:
        ``(params, flops)``, each float64 of shape (5, 21).
    """
    params = np.zeros((NUM_LAYERS, NUM_CHOICES))
    flops = np.zeros((NUM_LAYERS, NUM_CHOICES))
    with torch.device("meta"):
        for i, spec in enumerate(LAYERS):
            h, w = size[0] // 2 ** (NUM_LAYERS - i), size[1] // 2 ** (NUM_LAYERS - i)
            x = torch.empty(1, spec.c_in, h, w)  # (1, C_in, H/32 * 2^i, ...)
            for c, key in enumerate(CHOICE_KEYS):
                module = build_candidate(key, spec.c_in, spec.c_out)
                params[i, c] = sum(p.numel() for p in module.parameters())
                with FlopCounterMode(display=False) as counter:
                    module(x)
                flops[i, c] = counter.get_total_flops()
    return params, flops


class _TableProxy(Proxy):
    """Sum over layers of a per-candidate table (5, 21)."""

    column: ClassVar[int]

    def _score(self, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
        table = candidate_costs(ctx.input_size)[self.column]
        return table[np.arange(NUM_LAYERS)[None, :], choices].sum(axis=1)


@register_proxy("params")
class Params(_TableProxy):
    """Number of parameters of the five chosen candidates."""

    column = 0


@register_proxy("flops")
class Flops(_TableProxy):
    """FLOPs of the five chosen candidates for one image at the batch's input size."""

    column = 1


@register_proxy("grad_norm")
class GradNorm(Proxy):
    """Sum of the L2 norms of the cross-entropy gradients of the path's candidate weights on
    the batch (one forward + backward per architecture; no prefix reuse). Gradients are taken
    with ``torch.autograd.grad``, so no ``.grad`` of any module is written."""

    def _score(self, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
        out = np.empty(choices.shape[0])
        feats = [f.clone() for f in ctx.feats]  # normal tensors, even from inference mode
        with torch.enable_grad():
            for n, row in enumerate(choices):
                mods = [ctx.decoder.candidate(i, int(c)) for i, c in enumerate(row)]
                x = feats[-1]
                for i, module in enumerate(mods):
                    x = ctx.decoder.head.fuse(i, module(x), feats)  # (B, C_i, ...)
                logits = ctx.decoder.head.classifier(x)  # (B, classes, H, W)
                loss = nn.functional.cross_entropy(logits, ctx.masks,
                                                   ignore_index=ctx.ignore_index)
                params = [p for m in mods for p in m.parameters()]
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                out[n] = sum(float(g.norm()) for g in grads if g is not None)
        return out


def score_architectures(name: str, choices: np.ndarray, ctx: ProxyContext) -> np.ndarray:
    """Scores (N,) of ``choices`` (N, 5) by the proxy registered as ``name``."""
    return get_proxy(name).score(choices, ctx)
