"""The one base class of every search strategy: epoch loop, fair weight step, checkpoint.

:class:`SupernetSearch` owns what the strategies share: the epoch schedule
(:func:`~linas.search.config.epoch_phase`: warm-up, soft then hard Gumbel epochs), one weight
step and one architecture step per train batch (arch-val batches cycle when the split is
shorter), the weight step itself through :class:`~linas.search.fair.FairTraining` (I2:
single-path sampling, CaLR, momentum separation, for every strategy; the sandwich rule of
:mod:`~linas.search.sandwich`), the epoch statistics,
and the checkpoint (supernet weights, every weight-optimizer state, RNG, epoch, config). A
strategy fills in the protected hooks: where the weight step's architecture comes from
(:meth:`~SupernetSearch._weight_logits`), the architecture step (``_arch_step``), its own
epoch statistics, result type and checkpoint entries.

Every random choice (batch order, sampled paths, Gumbel noise, a strategy's own draws) takes a
generator seeded from ``config.seed``: no global RNG.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import torch

from linas._errors import ConfigError, DataError
from linas._io import save_torch_atomic, write_json_atomic
from linas._registry import Registry
from linas.compute import CPU, Compute, shard_batches
from linas.data.features import FeatureSet
from linas.progress import Reporter
from linas.search.checkpoint import (
    FIX,
    check_compatible,
    history_path,
    load_supernet_state,
    read_checkpoint,
    read_history,
    resumable_history,
    supernet_state,
    trains_encoder,
)
from linas.search.config import SearchConfig, epoch_phase
from linas.search.fair import FairTraining
from linas.search.gumbel import gumbel_softmax
from linas.search.losses import segmentation_ce
from linas.search.sandwich import SANDWICH_RANDOM_PATHS, inplace_kd, sandwich_paths
from linas.supernet import Supernet

# The checkpoint holds the whole supernet and its optimizer states (~2 GB), so writing it every
# epoch would cost more than the minute of work a crash can lose.
CHECKPOINT_EVERY_S = 600.0

Batch = tuple[list[torch.Tensor], torch.Tensor]


class SearchResult(Protocol):
    """What every strategy's result holds: epochs done and one stats dict per epoch."""

    epoch: int
    history: list[dict[str, Any]]


S = TypeVar("S", bound=SearchResult)


def cycle_batches(data: FeatureSet, batch_size: int, generator: torch.Generator,
                  compute: Compute = CPU) -> Iterator[tuple[float, Batch]]:
    """:func:`shard_batches` without end, reshuffled each pass (lazily: a pass draws its
    order on its first batch, so an unused cycle draws nothing)."""
    while True:
        yield from shard_batches(data, batch_size, generator, compute)


def shared_ce(out: torch.Tensor, masks: torch.Tensor, share: float, ignore_index: int
              ) -> torch.Tensor:
    """This rank's part of the global batch's mean CE: its mean CE times its ``share`` (an
    empty shard gives a zero that still carries the graph)."""
    if masks.numel() == 0:
        return out.sum() * 0.0
    return segmentation_ce(out, masks, ignore_index) * share


@contextmanager
def frozen(params: Sequence[torch.Tensor]) -> Iterator[None]:
    """The supernet weights without ``requires_grad`` for the block: an architecture step
    needs gradients for the logits (or hypernetwork) only, and autograd then keeps none of
    the tensors that the weights' gradients would need (less memory, a faster backward; the
    logits' gradients are the same)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def step_with(loss: torch.Tensor, opt: torch.optim.Optimizer, params: Sequence[torch.Tensor],
              compute: Compute, scaler: torch.amp.GradScaler | None) -> None:
    """Backward ``loss``, sum the gradients of ``params`` over the ranks, step ``opt`` (through
    the fp16 gradient scaler when there is one)."""
    backward_scaled(loss, scaler)
    finish_step(opt, params, compute, scaler)


def backward_scaled(loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    """Backward ``loss`` (scaled by the fp16 gradient scaler when there is one); gradients
    accumulate until :func:`finish_step`."""
    (loss if scaler is None else scaler.scale(loss)).backward()


def finish_step(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], compute: Compute,
                scaler: torch.amp.GradScaler | None) -> None:
    """Sum the accumulated gradients of ``params`` over the ranks and step ``opt`` (through
    the scaler when there is one)."""
    compute.sum_grads(params)
    if scaler is None:
        opt.step()
        return
    scaler.step(opt)
    scaler.update()


class SupernetSearch(ABC, Generic[S]):
    """A search over the supernet: the shared loop, weight step and checkpoint.

    Subclasses set :attr:`strategy` and :attr:`arch_stats`, call ``super().__init__`` first,
    then build their own parts and set ``self.state = self._make_state(0, [])``.

    Args:
        supernet: the weight-sharing supernet (its trainable parameters are the weights).
        config: the schedule, weight-step and I2 options, and the seed.
        ignore_index: label ignored by the loss.
    """

    strategy: ClassVar[str]  # its name in SEARCH_STRATEGIES and in checkpoints
    arch_stats: ClassVar[tuple[str, ...]]  # keys of _arch_step's stats (0.0 in warm-up)
    state: S

    def __init__(self, supernet: Supernet, config: SearchConfig, ignore_index: int = 255,
                 compute: Compute = CPU) -> None:
        self.net, self.cfg, self.ignore_index = supernet, config, ignore_index
        self.compute = compute
        self.gen = torch.Generator().manual_seed(config.seed)  # CPU: the same on every device
        self.params = [p for p in supernet.parameters() if p.requires_grad]
        self.fair = FairTraining(self.params, config.lr_weights, config.weight_decay,
                                 config.calr, config.momentum, config.split_layer,
                                 config.path_sampler)
        self.scaler = compute.scaler()
        compute.sync_module(supernet)
        self._progress = 0.0  # fraction of all weight steps done, for CaLR 'dynas'

    @property
    def total_epochs(self) -> int:
        return self.cfg.warmup_epochs + self.cfg.search_epochs

    def steps_per_epoch(self, train: FeatureSet) -> int:
        return -(-len(train) // self.cfg.batch_size)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, train: FeatureSet, arch_val: FeatureSet,
            on_epoch: Callable[[S], None] | None = None,
            on_step: Callable[[], None] | None = None) -> S:
        """Train from ``self.state.epoch`` to the last epoch.

        Args:
            train: the weight-training split.
            arch_val: the split of the architecture steps.
            on_epoch: called with the new state after every epoch (checkpointing).
            on_step: called after every train batch (progress).

        Returns:
            The final state.

        Raises:
            DataError: an empty split.
        """
        if len(train) == 0 or (len(arch_val) == 0 and self.cfg.search_epochs > 0):
            raise DataError(f"search: the train split has {len(train)} images and arch-val "
                            f"{len(arch_val)}; both need at least one (add images)")
        for epoch in range(self.state.epoch, self.total_epochs):
            stats = self._epoch(epoch, train, arch_val, on_step)
            self.state = self._make_state(epoch + 1, [*self.state.history, stats])
            if on_epoch is not None:
                on_epoch(self.state)
        return self.state

    def _epoch(self, epoch: int, train: FeatureSet, arch_val: FeatureSet,
               on_step: Callable[[], None] | None) -> dict[str, Any]:
        """One epoch: a weight step per train batch, each followed (after warm-up) by an
        architecture step on the next arch-val batch."""
        warm, tau, hard = epoch_phase(epoch, self.cfg)
        self.net.train()
        sums = dict.fromkeys(("ce_train", *self.arch_stats), 0.0)
        val = cycle_batches(arch_val, self.cfg.batch_size, self.gen, self.compute)
        n, per_epoch = 0, self.steps_per_epoch(train)
        for share, (feats, masks) in shard_batches(train, self.cfg.batch_size, self.gen,
                                                   self.compute):
            self._progress = (epoch + n / per_epoch) / self.total_epochs
            sums["ce_train"] += self._weight_step(feats, masks, share, warm, tau, hard)
            if not warm:
                v_share, (v_feats, v_masks) = next(val)
                with frozen(self.params):
                    stats = self._arch_step(v_feats, v_masks, v_share, tau, hard)
                for key, value in stats.items():
                    sums[key] += value
            n += 1
            if on_step is not None:
                on_step()
        # each rank summed its share of every batch's figures: their sum is the whole batch's
        totals = self.compute.sum_(torch.tensor(list(sums.values()), dtype=torch.float64,
                                                device=self.compute.device)).tolist()
        self.compute.sync_buffers(self.net)  # rank 0's BatchNorm statistics everywhere
        means = {k: v / max(n, 1) for k, v in zip(sums, totals, strict=True)}
        phase = "warmup" if warm else ("hard" if hard else "soft")
        return {"epoch": epoch, "phase": phase, "tau": tau, **means, **self._epoch_stats()}

    # ---- the weight step (FairTraining, every strategy) ------------------------------------

    def _weight_step(self, feats: list[torch.Tensor], masks: torch.Tensor, share: float,
                     warm: bool, tau: float, hard: bool) -> float:
        """One step on the supernet weights with the architecture held fixed, with the
        FairTraining optimizer state and CaLR learning rate of the sampled choices; returns
        this rank's share of the batch's CE (of the largest subnet in ``sandwich`` mode)."""
        if self.cfg.train_mode == "sandwich":
            return self._sandwich_step(feats, masks, share, warm, tau)
        with self.compute.autocast():
            choices, out = self._weight_forward(feats, warm, tau, hard)
            loss = shared_ce(out, masks, share, self.ignore_index)
        opt = self.fair.optimizer_for(choices, self._progress)
        opt.zero_grad(set_to_none=True)
        step_with(loss, opt, self.params, self.compute, self.scaler)
        return float(loss.detach())

    def _sandwich_step(self, feats: list[torch.Tensor], masks: torch.Tensor, share: float,
                       warm: bool, tau: float) -> float:
        """The sandwich rule (:mod:`linas.search.sandwich`): CE of the largest subnet, then
        in-place KD of the smallest and :data:`SANDWICH_RANDOM_PATHS` sampled subnets to its
        detached logits; each term's backward right after its forward (one path's activations
        held at a time), gradients accumulated, one step of the shared optimizer state at the
        base learning rate (check_fair_options refuses per-subnet CaLR and momentum). Returns
        this rank's share of the largest subnet's CE."""
        paths = sandwich_paths(self.gen, SANDWICH_RANDOM_PATHS,
                               lambda gen: self._sample_weight_path(tau, uniform=warm),
                               self.fair.table)
        opt = self.fair.optimizer_for(paths[0], self._progress)
        opt.zero_grad(set_to_none=True)
        teacher: torch.Tensor | None = None
        ce = 0.0
        for path in paths:
            with self.compute.autocast():
                out = self.net.decode(feats, choices=path)
                loss = (shared_ce(out, masks, share, self.ignore_index) if teacher is None
                        else inplace_kd(out, teacher, masks, share, self.ignore_index))
            backward_scaled(loss, self.scaler)
            if teacher is None:
                teacher, ce = out.detach(), float(loss.detach())
        finish_step(opt, self.params, self.compute, self.scaler)
        return ce

    def _weight_forward(self, feats: list[torch.Tensor], warm: bool, tau: float,
                        hard: bool) -> tuple[list[int], torch.Tensor]:
        """The sampled choices of a weight step and the decoder's logits for them."""
        if warm or self.cfg.train_mode == "single-path":
            # warm-up: uniform single path, every candidate trained and none favoured
            choices = self._sample_weight_path(tau, uniform=warm)
            return choices, self.net.decode(feats, choices=choices)
        weights, choices = gumbel_softmax(self._weight_logits(), tau, hard, self.gen)
        out = (self.net.decode(feats, choices=choices) if hard
               else self.net.decode(feats, weights=weights))
        return choices, out

    def _sample_weight_path(self, tau: float, uniform: bool) -> list[int]:
        """One single path: uniform, or sampled from :meth:`_weight_logits` (``gumbel``)."""
        needs = not uniform and self.fair.samples_from_logits
        return self.fair.sample_path(self._weight_logits() if needs else None, tau, self.gen,
                                     uniform)

    # ---- strategy hooks ---------------------------------------------------------------------

    @abstractmethod
    def _weight_logits(self) -> torch.Tensor:
        """Detached architecture logits (5, 21) that a weight step samples from."""

    @abstractmethod
    def _arch_step(self, feats: list[torch.Tensor], masks: torch.Tensor, share: float,
                   tau: float, hard: bool) -> dict[str, float]:
        """One architecture step on this rank's ``share`` of an arch-val batch; returns the
        :attr:`arch_stats` times ``share`` (summed over ranks by the loop)."""

    @abstractmethod
    def _epoch_stats(self) -> dict[str, Any]:
        """The strategy's own entries of an epoch's stats (after the epoch)."""

    @abstractmethod
    def _make_state(self, epoch: int, history: list[dict[str, Any]]) -> S:
        """The result after ``epoch`` epochs."""

    @abstractmethod
    def _strategy_config(self) -> dict[str, Any]:
        """What a checkpoint must match besides the search config (devices, options)."""

    @abstractmethod
    def _strategy_state(self) -> dict[str, Any]:
        """The strategy's checkpoint entries (``weights_only``-loadable values)."""

    @abstractmethod
    def _load_strategy_state(self, blob: dict[str, Any], where: str) -> None:
        """Restore :meth:`_strategy_state` from a loaded checkpoint."""

    # ---- checkpoint -------------------------------------------------------------------------

    def checkpoint_config(self) -> dict[str, Any]:
        """The options a checkpoint records and must match to resume."""
        return {"search": asdict(self.cfg), "ignore_index": self.ignore_index,
                "trains_encoder": trains_encoder(self.net), **self._strategy_config()}

    def save(self, path: Path) -> int:
        """Checkpoint the search atomically; returns the file's size in bytes.

        Holds the supernet's decoder weights (and the encoder's when it is trained), every
        FairTraining optimizer state, the RNG, the epoch, the config and the strategy's own
        entries. The checkpoint of a finished search leaves the weight-optimizer states out:
        nothing trains from it again (a changed schedule is refused), and they are two
        thirds or more of its size (Adam's two moments per parameter, per momentum state).
        """
        done = self.state.epoch >= self.total_epochs
        blob = {"strategy": self.strategy, "config": self.checkpoint_config(),
                "epoch": self.state.epoch, "rng": self.gen.get_state(),
                "supernet": supernet_state(self.net),
                "fair": [] if done else self.fair.state_dicts(),
                **self._strategy_state()}
        save_torch_atomic(path, blob)
        return Path(path).stat().st_size

    def load(self, path: Path, history: list[dict[str, Any]]) -> None:
        """Resume from :meth:`save` (loaded with ``weights_only=True``).

        Args:
            path: the checkpoint.
            history: the epoch stats written beside it (entries past its epoch are dropped).

        Raises:
            ConfigError: a checkpoint of another strategy, config, supernet or momentum mode,
                or a history shorter than its epoch.
        """
        where = str(path)
        blob = read_checkpoint(Path(path))
        check_compatible(blob, self.strategy, self.checkpoint_config(), where)
        epoch = int(blob["epoch"])
        history = resumable_history(history, epoch, where)
        try:
            load_supernet_state(self.net, blob["supernet"], where)
            if epoch < self.total_epochs:  # a finished search's states were left out
                self.fair.load_state_dicts(blob["fair"], where)
            self.gen.set_state(blob["rng"])
            self._load_strategy_state(blob, where)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            raise ConfigError(f"checkpoint {where}: does not fit this search "
                              f"({type(exc).__name__}: {first}); {FIX}") from None
        self.state = self._make_state(epoch, history)

    def fit(self, train: FeatureSet, arch_val: FeatureSet, ckpt_path: Path, reporter: Reporter,
            label: str, every_s: float = CHECKPOINT_EVERY_S) -> S:
        """Resume from ``ckpt_path`` (when it and ``<stem>_history.json`` exist), run to the
        last epoch, and checkpoint at most once per ``every_s`` seconds and after the last
        epoch (a finished checkpoint is only loaded). Under torchrun rank 0 decides whether to
        resume and writes the checkpoints.

        Args:
            train: the weight-training split.
            arch_val: the split of the architecture steps.
            ckpt_path: the checkpoint file; the history is written beside it.
            reporter: progress bar ``label`` and messages (resume; size of each checkpoint).
            label: the progress bar's title.
            every_s: the least time between two checkpoints.

        Returns:
            The final state.

        Raises:
            ConfigError: a checkpoint that does not belong to this search (see :meth:`load`).
        """
        ckpt_path, hist = Path(ckpt_path), history_path(Path(ckpt_path))
        if self.compute.agree(ckpt_path.is_file() and hist.is_file()):
            self.load(ckpt_path, read_history(hist))
            reporter.info(f"resuming from {ckpt_path} at epoch {self.state.epoch}")
        last_save = time.monotonic()

        def on_epoch(state: S) -> None:
            nonlocal last_save
            due = state.epoch >= self.total_epochs or time.monotonic() - last_save >= every_s
            if due and self.compute.main:  # only rank 0 writes; every rank holds the same
                self._checkpoint(ckpt_path, reporter)
                last_save = time.monotonic()

        steps = self.steps_per_epoch(train) * (self.total_epochs - self.state.epoch)
        with reporter.task(label, steps) as advance:
            return self.run(train, arch_val, on_epoch, on_step=lambda: advance(1))

    def _checkpoint(self, ckpt_path: Path, reporter: Reporter) -> int:
        """History first, then the checkpoint: a crash in between leaves a history ahead of
        its checkpoint, which :meth:`load` truncates."""
        write_json_atomic(history_path(ckpt_path), self.state.history)
        size = self.save(ckpt_path)
        reporter.info(f"checkpoint {ckpt_path} at epoch {self.state.epoch}: {size} bytes")
        return size


SEARCH_STRATEGIES: Registry[type[SupernetSearch[Any]]] = Registry("search strategy")
"""Search strategies by name (``bilevel``, ``hypernet``), filled by their modules."""
