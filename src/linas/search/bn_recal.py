"""BatchNorm recalibration of one path of the supernet before weight-sharing evaluation.

A supernet's BatchNorm running statistics are averaged over every path that trained them:
the fusions' and the classifier's over all subnets, a candidate's over every subnet that
used it. Evaluated in eval mode, a path then normalises with statistics that are not its
own, which distorts weight-sharing accuracy and its ranking of architectures (the reason
once-for-all, BigNAS and AttentiveNAS recalibrate before evaluating a subnet).

:func:`recalibrate_bn` resets the statistics of the BatchNorm layers that the path runs (the
active candidate of each layer and the shared fusion BNs; found by hooks in one forward, so
nothing outside ``net.decode`` is touched: in particular not the encoder, whose BN stays in
eval mode and whose features may be cached), sets them to cumulative averaging
(``momentum=None``: every batch counts once), runs the path in train mode under ``no_grad``
over the given feature batches, and puts the net back in eval mode with the original
momentum. No parameter changes (weights and BN affine are read only), and the result is a
function of the batches alone.

The shared supernet must not keep one path's statistics for the next path: the context
manager :func:`recalibrated` restores the saved statistics on exit, so each architecture is
evaluated from the same supernet whatever was evaluated before it. :func:`recalibrate_bn`
alone recalibrates for good and returns the :class:`BNSnapshot` to restore by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from linas._errors import ConfigError, DataError
from linas.compute import CPU, Compute, shard_batches
from linas.data.features import FeatureSet
from linas.supernet import Supernet

BN_RECAL_BATCHES = 8  # default number of recalibration batches (256 images at batch 32)


@dataclass(frozen=True)
class BNSnapshot:
    """Saved running statistics and momentum of some BatchNorm layers."""

    layers: tuple[_BatchNorm, ...]
    stats: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]  # mean, var, count
    momenta: tuple[float | None, ...]

    @classmethod
    def take(cls, layers: Sequence[_BatchNorm]) -> BNSnapshot:
        """Copies of the statistics and momentum of ``layers``."""
        stats = tuple((_buf(m, "running_mean").clone(), _buf(m, "running_var").clone(),
                       _buf(m, "num_batches_tracked").clone()) for m in layers)
        return cls(tuple(layers), stats, tuple(m.momentum for m in layers))

    def restore(self) -> None:
        """Write the saved statistics and momentum back (in place)."""
        with torch.no_grad():
            for m, (mean, var, count), momentum in zip(self.layers, self.stats, self.momenta,
                                                       strict=True):
                _buf(m, "running_mean").copy_(mean)
                _buf(m, "running_var").copy_(var)
                _buf(m, "num_batches_tracked").copy_(count)
                m.momentum = momentum


def _buf(m: _BatchNorm, name: str) -> torch.Tensor:
    """A running-statistics buffer of ``m`` (only layers that track them are recalibrated)."""
    buf = getattr(m, name)
    if not isinstance(buf, torch.Tensor):
        raise ValueError(f"BatchNorm {m} has no {name} buffer (track_running_stats=False)")
    return buf


def feature_batches(data: FeatureSet, batch_size: int, n_batches: int = BN_RECAL_BATCHES,
                    compute: Compute = CPU) -> Iterator[list[torch.Tensor]]:
    """The encoder features of the first ``n_batches`` batches of ``data``, in order (no
    shuffling: the recalibration is a function of ``data``); under torchrun this rank's
    shard of each (empty shards are skipped).

    Raises:
        ConfigError: ``n_batches`` below 1.
        DataError: an empty ``data``.
    """
    if n_batches < 1:
        raise ConfigError(f"bn_recal_batches = {n_batches}: expected at least 1; pass 1 or "
                          "more, or no recalibration split")
    if len(data) == 0:
        raise DataError("BN recalibration split: holds no images; pass one with at least one")
    for _, (feats, masks) in islice(shard_batches(data, batch_size, None, compute), n_batches):
        if masks.numel() > 0:
            yield feats


def path_batchnorms(net: Supernet, choices: Sequence[int],
                    feats: list[torch.Tensor]) -> list[_BatchNorm]:
    """The BatchNorm layers (tracking running statistics, outside ``net.encoder``) that
    ``net.decode(feats, choices)`` runs, in call order; found by forward hooks in one eval-mode
    forward of the first image of ``feats``."""
    encoder = set(net.encoder.modules()) if isinstance(net.encoder, nn.Module) else set()
    seen: dict[int, _BatchNorm] = {}

    def hook(m: nn.Module, args: object, out: object) -> None:
        if isinstance(m, _BatchNorm):
            seen.setdefault(id(m), m)

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, _BatchNorm) and m.track_running_stats and m not in encoder]
    try:
        net.eval()
        with torch.no_grad():
            net.decode([f[:1] for f in feats], choices=list(choices))
    finally:
        for h in handles:
            h.remove()
    return list(seen.values())


def recalibrate_bn(net: Supernet, choices: Sequence[int], batches: Iterable[list[torch.Tensor]],
                   compute: Compute = CPU) -> BNSnapshot:
    """Recompute the running statistics of the BatchNorm layers on one path from ``batches``.

    Args:
        net: the supernet; left in eval mode.
        choices: the path, one choice per layer.
        batches: encoder feature lists (five maps each) of training images, e.g.
            :func:`feature_batches`; each batch counts once in the cumulative average.
        compute: device and precision; under torchrun the statistics are averaged over the
            ranks, weighted by their numbers of batches, so every rank evaluates alike.

    Returns:
        The statistics before recalibration (:meth:`BNSnapshot.restore` puts them back).

    Raises:
        DataError: ``batches`` is empty.
    """
    it = iter(batches)
    first = next(it, None)
    if first is None:
        raise DataError("BN recalibration: no feature batches; pass at least one")
    layers = path_batchnorms(net, choices, first)
    saved = BNSnapshot.take(layers)
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: running = mean over the batches seen
        m.train()
    try:
        with torch.no_grad():
            for feats in chain([first], it):
                with compute.autocast():
                    net.decode(feats, choices=list(choices))
        _average_over_ranks(layers, compute)
    except BaseException:
        saved.restore()
        raise
    finally:
        net.eval()
        for m, momentum in zip(layers, saved.momenta, strict=True):
            m.momentum = momentum
    return saved


def _average_over_ranks(layers: Sequence[_BatchNorm], compute: Compute) -> None:
    """Under torchrun, each layer's statistics averaged over the ranks, weighted by the
    number of batches each rank saw (the cumulative average over all of them)."""
    if not compute.distributed:
        return
    for m in layers:
        mean, var, count = (_buf(m, n) for n in ("running_mean", "running_var",
                                                 "num_batches_tracked"))
        n = count.to(compute.device, torch.float64)
        total = compute.sum_(n.clone())
        for buf in (mean, var):
            weighted = compute.sum_(buf.to(compute.device, torch.float64) * n)
            buf.copy_((weighted / total.clamp(min=1.0)).to(buf.device, buf.dtype))
        count.copy_(total.to(count.device, count.dtype))


@contextmanager
def recalibrated(net: Supernet, choices: Sequence[int], batches: Iterable[list[torch.Tensor]],
                 compute: Compute = CPU) -> Iterator[None]:
    """:func:`recalibrate_bn` for the block; the saved statistics are restored on exit (also
    on an error), so the next path starts from the supernet's own statistics."""
    saved = recalibrate_bn(net, choices, batches, compute)
    try:
        yield
    finally:
        saved.restore()
