"""NEAR activations over many decoder paths with prefix reuse (the engine of the ``near`` proxy).

NEAR (Husistein et al., 2024) scores a network by the effective rank of its activation
matrices on one batch. Here the network is a decoder path on cached encoder features, and the
activations are the outputs of the five chosen candidates (op -> BN -> ReLU -> projection),
read where a forward hook on each candidate module would read them. The encoder is never run.

Two architectures with the same first ``d`` choices have identical activations up to layer
``d``, so the paths are sorted lexicographically and walked chunk by chunk: every distinct
prefix is computed once, its activation's effective rank is computed once, and the
candidates of one layer are run on the stacked inputs of all prefixes that choose them (one
batched call per (layer, choice) instead of one per architecture). In eval mode (BN with
running statistics) stacking paths along the batch axis changes nothing but float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from linas.space import LAYERS, NUM_LAYERS
from linas.supernet.decoder import SKIP_TAP, DecoderHead

CandidateFn = Callable[[int, int], nn.Module]
Prefix = tuple[int, ...]
# bound on the elements of one batched candidate output (4 MiB of float32: stays in cache)
_MAX_OUT_ELEMS = 1 << 20


def effective_rank(acts: torch.Tensor, max_positions: int = 64) -> torch.Tensor:
    """Effective rank (Roy & Vetterli) of each path's channel-by-position activation matrix.

    ``erank = exp(H(p))`` with ``p = s / sum(s)`` over the singular values ``s`` of the
    (channels x positions) matrix; positions are subsampled on a regular spatial grid
    (stride chosen so that at most ``max_positions`` remain over the batch).

    The default 64 positions keep every eigenproblem at most 64 x 64: from about 90 x 90 up,
    MKL's threaded symmetric eigensolver took 0.5-3 s per matrix on this 2-core machine when
    the cores are shared, against < 1 ms single-threaded (measured), so larger matrices
    would dominate the cost. The price: a layer's effective rank is capped at 64.

    Args:
        acts: activations of K paths, shape (K, B, C, H, W).
        max_positions: cap on B x (subsampled H x W).

    Returns:
        float64 effective ranks, shape (K,); 0 for an all-zero matrix.
    """
    k, b, c, h, w = acts.shape
    stride = max(1, math.ceil(math.sqrt(b * h * w / max_positions)))
    sub = acts[..., ::stride, ::stride]  # (K, B, C, h', w')
    mat = sub.permute(0, 2, 1, 3, 4).reshape(k, c, -1).double()  # (K, C, B*h'*w')
    # singular values from the smaller Gram matrix: eigvalsh of (K, m, m), m = min(C, P)
    gram = mat @ mat.transpose(1, 2) if c <= mat.shape[2] else mat.transpose(1, 2) @ mat
    sv = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt()  # (K, m)
    total = sv.sum(dim=1, keepdim=True)
    p = sv / total.clamp_min(1e-300)
    ent = -(p * torch.log(p.clamp_min(1e-300))).sum(dim=1)  # (K,)
    return torch.where(total[:, 0] > 0, torch.exp(ent), torch.zeros_like(ent))


class PrefixWalker:
    """Layer outputs and effective ranks of decoder prefixes, each distinct prefix once.

    Args:
        candidate: ``candidate(layer, choice)`` -> the module of that choice (eval mode).
        head: the decoder head (skip fusions).
        feats: the five cached encoder maps of the batch, shallow to deep.
        max_positions: see :func:`effective_rank`.
    """

    def __init__(self, candidate: CandidateFn, head: DecoderHead, feats: list[torch.Tensor],
                 max_positions: int = 64) -> None:
        self.candidate, self.max_positions = candidate, max_positions
        self.root = feats[-1]  # (B, 1024, H/32, W/32): decoder input
        # the skip projection does not depend on the architecture: computed once per layer
        self.skips = [head.fusions[i].proj(feats[SKIP_TAP[i]])  # type: ignore[operator]
                      for i in range(len(head.fusions))]
        self.outputs: dict[Prefix, torch.Tensor] = {}  # prefix -> fused output (B, C, H, W)
        self.erank: dict[Prefix, float] = {}  # prefix -> effective rank of its last layer

    def _slices(self, layer: int, choice: int,
                parents: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Run one candidate on the stacked parents, a few paths per call; yields outputs of
        shape (k, B, C', 2H, 2W). Small calls keep activations in cache: on a CPU one call
        on 64 paths is slower per path than 64 calls on one."""
        module = self.candidate(layer, choice)
        b, _, h, w = parents[0].shape
        per_path = b * LAYERS[layer].c_out * 4 * h * w  # output elements of one path
        step = max(1, _MAX_OUT_ELEMS // per_path)
        for start in range(0, len(parents), step):
            batch = torch.stack(parents[start:start + step]).flatten(0, 1)  # (k*B, C, H, W)
            yield module(batch).unflatten(0, (-1, b))  # (k, B, C', 2H, 2W)

    def expand(self, prefixes: list[Prefix], keep_outputs: bool) -> None:
        """Compute every prefix not yet known; all share one length d >= 1, parents known."""
        todo = [p for p in prefixes if p not in self.erank]
        by_choice: dict[int, list[Prefix]] = {}
        for p in todo:
            by_choice.setdefault(p[-1], []).append(p)
        for choice, group in sorted(by_choice.items()):
            layer = len(group[0]) - 1
            parents = [self.outputs[p[:-1]] if layer else self.root for p in group]
            done = 0
            for acts in self._slices(layer, choice, parents):
                ranks = effective_rank(acts, self.max_positions).tolist()
                if keep_outputs and layer < len(self.skips):
                    acts = torch.relu(acts + self.skips[layer])  # SkipFusion: relu(x+proj(skip))
                for i, rank in enumerate(ranks):
                    self.erank[group[done + i]] = rank
                    if keep_outputs:
                        self.outputs[group[done + i]] = acts[i]
                done += len(ranks)

    def forget_except(self, keep: set[Prefix]) -> None:
        """Drop cached outputs and ranks of prefixes outside ``keep`` (bounds memory)."""
        self.outputs = {p: t for p, t in self.outputs.items() if p in keep}
        self.erank = {p: r for p, r in self.erank.items() if p in keep}


def _score_part(walker_args: tuple[CandidateFn, DecoderHead, list[torch.Tensor], int],
                arr: np.ndarray, order: np.ndarray, step: int, reuse: bool,
                scores: np.ndarray) -> None:
    """Score the architectures ``order`` (indices into ``arr``), writing into ``scores``."""
    with torch.inference_mode():  # thread-local: set in the worker
        walker = PrefixWalker(*walker_args)
        for start in range(0, order.shape[0], step):
            idx = order[start:start + step]
            rows = [tuple(int(c) for c in arr[i]) for i in idx]
            needed = {r[:d] for r in rows for d in range(1, NUM_LAYERS + 1)}
            walker.forget_except(needed if reuse else set())
            for d in range(1, NUM_LAYERS + 1):
                walker.expand(sorted({r[:d] for r in rows}), keep_outputs=d < NUM_LAYERS)
            for i, r in zip(idx, rows, strict=True):
                scores[i] = sum(walker.erank[r[:d]] for d in range(1, NUM_LAYERS + 1))


@contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    """Set torch's intra-op threads for the block, restoring them after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def near_scores(candidate: CandidateFn, head: DecoderHead, feats: list[torch.Tensor],
                choices: np.ndarray, chunk: int = 64, max_positions: int = 64,
                reuse_prefixes: bool = True, workers: int | None = None) -> np.ndarray:
    """NEAR score of each architecture: the sum over the 5 layers of the effective rank of
    its candidate's output on the batch.

    The lexicographically sorted sample is split into ``workers`` contiguous parts scored by
    as many threads, each with one intra-op thread: on a shared 2-core CPU, two independent
    single-threaded streams of small convolutions were up to 7x faster than one stream with
    two OpenMP threads (whose barriers stall whenever a core is taken). Results depend on
    ``workers`` only through float rounding of batched calls.

    Args:
        candidate: ``candidate(layer, choice)`` -> module, already in eval mode.
        head: the decoder head (skip fusions).
        feats: five cached encoder maps of the scoring batch.
        choices: int choices, shape (N, 5).
        chunk: architectures walked together (bounds the cached activations).
        max_positions: see :func:`effective_rank`.
        reuse_prefixes: False computes every architecture alone (the oracle for tests).
        workers: scoring threads; default torch's intra-op thread count.

    Returns:
        float64 scores, shape (N,), in the order of ``choices``.
    """
    arr = np.asarray(choices, dtype=np.int64)
    order = np.lexsort(arr.T[::-1]) if reuse_prefixes else np.arange(arr.shape[0])
    for layer in range(NUM_LAYERS):  # build / switch to eval every module up front, not in threads
        for c in np.unique(arr[:, layer]).tolist():
            candidate(layer, int(c))
    n_workers = max(1, min(workers or torch.get_num_threads(), arr.shape[0]))
    scores = np.empty(arr.shape[0])
    args = (candidate, head, feats, max_positions)
    step = chunk if reuse_prefixes else 1
    parts = np.array_split(order, n_workers)
    with _intra_op_threads(1), ThreadPoolExecutor(n_workers) as pool:
        jobs = [pool.submit(_score_part, args, arr, p, step, reuse_prefixes, scores)
                for p in parts]
        for job in jobs:
            job.result()  # re-raises a worker's exception
    return scores
