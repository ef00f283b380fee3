"""Where and how training runs: the device, the precision, and the process group under
``torchrun``.

One :class:`Compute` is resolved per process from ``compute.device`` / ``compute.precision``
and torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). The stages use it to
move batches, run forward passes under autocast, scale fp16 losses, shard a global batch among
the ranks, and reduce what must agree over the whole split:

- gradients (weights, architecture logits) are summed over ranks with
  ``torch.distributed.all_reduce`` after each rank scaled its loss by its share of the global
  batch, so every rank steps with the gradient of the whole batch and the parameters stay
  identical on every rank;
- BatchNorm statistics are taken from rank 0 (as DDP's ``broadcast_buffers`` does);
- confusion matrices are summed, so a metric covers the whole split, never one shard.

Gloo serves CPUs, NCCL GPUs. Only rank 0 writes files (see :func:`linas._io.forbid_writes`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from linas._errors import ConfigError

if TYPE_CHECKING:
    from linas.data.features import FeatureSet

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Compute:
    """One process's device, precision and place in the process group."""

    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and reports (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def describe(self) -> dict[str, Any]:
        """What the results record."""
        return {"device": str(self.device), "precision": self.precision,
                "processes": self.world,
                "backend": dist.get_backend() if self.distributed else None}

    # ---- device and precision -----------------------------------------------------------

    def to(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [t.to(self.device, non_blocking=True) for t in tensors]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for bf16/fp16, nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.precision])

    def scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16 (None otherwise: fp32 and bf16 need none)."""
        if self.precision != "fp16":
            return None
        return torch.amp.GradScaler(self.device.type)

    # ---- the process group --------------------------------------------------------------

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch's indices (every world-th, from its rank)."""
        return idx[self.rank::self.world] if self.distributed else idx

    def share(self, local: int, total: int) -> float:
        """The factor a rank scales its mean loss by, so that the sum over ranks of the
        gradients is the gradient of the global batch's mean: ``local / total``."""
        return local / total if total else 0.0

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Sum the gradients of ``params`` over the ranks (a parameter without a gradient on
        some rank counts as zero there); a no-op in one process."""
        if not self.distributed:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32,
                           device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        used = [p for p, h in zip(params, has.tolist(), strict=True) if h]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in used if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self.device)  # NCCL: on the GPU
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks in place; returns it."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics)."""
        if not self.distributed:
            return
        for buf in module.buffers():
            dist.broadcast(buf, src=0)

    def sync_module(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (as DDP does when it wraps a
        model), so that training starts from the same weights everywhere."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def agree(self, flag: bool) -> bool:
        """Rank 0's value of ``flag`` on every rank (a decision made from files, e.g.
        whether to resume, must be the same everywhere)."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


CPU = Compute()

Batch = tuple[list[torch.Tensor], torch.Tensor]


def shard_batches(data: FeatureSet, batch_size: int, generator: torch.Generator | None,
                  compute: Compute = CPU) -> Iterator[tuple[float, Batch]]:
    """Batches of ``data`` (shuffled when a generator is given), each cut to this rank's
    shard and moved to the compute device, with the rank's share of the global batch.

    Every rank draws the same order from its identically seeded generator, so the shards of
    one global batch are disjoint and cover it. A shard may be empty (a last batch smaller
    than the number of ranks): it still runs, with share 0, so that every rank takes part in
    every gradient sum.
    """
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        whole = order[start:start + batch_size]
        idx = compute.shard(whole)
        feats, masks = data.batch(idx)
        yield compute.share(len(idx), len(whole)), (compute.to(feats),
                                                     masks.to(compute.device, non_blocking=True))


def split_confusion(predict: Callable[[list[torch.Tensor]], torch.Tensor], data: FeatureSet,
                    num_classes: int, ignore_index: int, batch_size: int,
                    compute: Compute = CPU) -> np.ndarray:
    """The confusion matrix (num_classes, num_classes) of ``predict`` (features -> logits)
    over the whole of ``data``: each rank predicts its shard, the matrices are summed."""
    from linas.metrics import confusion_matrix

    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for _, (feats, masks) in shard_batches(data, batch_size, None, compute):
        if masks.numel() == 0:
            continue
        with compute.autocast():
            pred = predict(feats).argmax(dim=1)
        cm += torch.from_numpy(confusion_matrix(pred.cpu(), masks.cpu(), num_classes,
                                                ignore_index))
    return compute.sum_(cm.to(compute.device)).cpu().numpy()


def resolve_compute(device: str, precision: str) -> Compute:
    """The :class:`Compute` of this process; joins torchrun's process group when launched by
    it (gloo on CPU, NCCL on CUDA).

    Raises:
        ConfigError: CUDA asked for on a machine without it, a CUDA index out of range, fp16
            on a CPU, or torchrun with CUDA and fewer GPUs than processes per node.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise ConfigError(f"compute.device = {device}: this machine has no CUDA device "
                              "(torch.cuda.is_available() is False); set compute.device: cpu "
                              "or auto")
        index = int(device.partition(":")[2] or 0) + (local if world > 1 else 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"compute.device = {device}: needs GPU {index}, this machine has "
                              f"{torch.cuda.device_count()}; use fewer processes per node or "
                              "another index")
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if precision == "fp16" and dev.type == "cpu":
        raise ConfigError("compute.precision = fp16: needs a CUDA device; use bf16 (or fp32) "
                          "on a CPU")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Compute(dev, precision, rank, world)
