"""The sandwich rule with in-place distillation: train mode ``sandwich`` (after BigNAS,
once-for-all and AttentiveNAS).

Each weight step trains ``2 + n`` subnets of the supernet and takes one optimizer step:

* the **largest** subnet (per layer the candidate of most FLOPs: ``Conv7x7_w100``, choice 8)
  with the segmentation CE against the labels;
* the **smallest** subnet (fewest FLOPs: ``DWSep3x3_w50``, choice 9; it ties
  ``DilatedDWSep_w50`` in FLOPs and #params, the lower choice index wins) and ``n`` random
  subnets (:data:`SANDWICH_RANDOM_PATHS`), each with :func:`inplace_kd`: the KL divergence
  from the largest subnet's softmax, detached, to the subnet's softmax per labelled pixel
  (temperature 1). The teacher is trained in the same step; no gradient flows through its
  soft labels.

The random paths take the search's seeded generator: uniform in warm-up, then the search's
path sampler (``uniform`` by default; ``gumbel`` draws them from the strategy's architecture
logits, as ``single-path`` mode does). The step itself is
:meth:`linas.search.base.SupernetSearch._sandwich_step`, so every strategy gets it.

``n`` is a module constant rather than a :class:`~linas.search.SearchConfig` field: a new
field would make every existing checkpoint unresumable (a checkpoint's config must match key
by key).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from linas.search.complexity import ComplexityTable, complexity_table
from linas.search.fair import PATH_SAMPLERS

SANDWICH_RANDOM_PATHS = 2  # n: random subnets per weight step besides the largest and smallest

# generator -> one choice per layer (5,)
PathDraw = Callable[[torch.Generator], list[int]]


def extreme_paths(table: ComplexityTable | None = None) -> tuple[list[int], list[int]]:
    """The largest and the smallest subnet of the space by FLOPs, per layer.

    Args:
        table: complexity table (default :func:`complexity_table`; the order of FLOPs within a
            layer does not depend on the input size).

    Returns:
        (largest, smallest) choice lists (5,); a tie goes to the lower choice index.
    """
    table = table if table is not None else complexity_table()
    return table.flops.argmax(axis=1).tolist(), table.flops.argmin(axis=1).tolist()


def uniform_draw(generator: torch.Generator) -> list[int]:
    """One uniform path (5,) from ``generator`` (the ``uniform`` path sampler)."""
    return PATH_SAMPLERS.get("uniform").draw(None, 1.0, generator)


def sandwich_paths(generator: torch.Generator, n: int = SANDWICH_RANDOM_PATHS,
                   draw: PathDraw | None = None,
                   table: ComplexityTable | None = None) -> list[list[int]]:
    """The paths of one sandwich step: largest, smallest, then ``n`` random ones.

    Args:
        generator: the search's seeded generator (the random paths' only randomness).
        n: how many random paths (0 or more).
        draw: one random path from ``generator`` (default :func:`uniform_draw`).
        table: complexity table for :func:`extreme_paths`.

    Returns:
        ``2 + n`` choice lists, the largest (the teacher) first.

    Raises:
        ValueError: a negative ``n``.
    """
    if n < 0:
        raise ValueError(f"sandwich: n = {n} random paths; expected 0 or more")
    largest, smallest = extreme_paths(table)
    draw = draw if draw is not None else uniform_draw
    return [largest, smallest, *(draw(generator) for _ in range(n))]


def inplace_kd(student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor, share: float,
               ignore_index: int = 255) -> torch.Tensor:
    """This rank's part of the in-place distillation loss of one subnet:
    ``KL(softmax(teacher) || softmax(student))`` over classes, mean over the labelled pixels,
    times ``share``.

    Args:
        student: the subnet's logits (B, C, H, W).
        teacher: the largest subnet's logits (B, C, H, W); detached here.
        masks: labels (B, H, W); pixels equal to ``ignore_index`` are left out, as in the CE.
        share: this rank's share of the global batch.
        ignore_index: the label left out.

    Returns:
        A scalar; a zero carrying the student's graph when no pixel is labelled (an empty
        shard under torchrun).
    """
    valid = masks != ignore_index  # (B, H, W)
    if not bool(valid.any()):
        return student.sum() * 0.0
    log_s = F.log_softmax(student.float(), dim=1)  # (B, C, H, W)
    log_t = F.log_softmax(teacher.detach().float(), dim=1)  # (B, C, H, W)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1)  # (B, H, W)
    return kl[valid].mean() * share
