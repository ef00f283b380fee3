"""Named config profiles: dotted-key defaults laid under the user's file and ``--set``."""

from __future__ import annotations

from typing import Any

# A smoke test in seconds, not the real demo: tiny synthetic data, one epoch per phase, few
# timing repeats. The data size is left alone (LUT files must match it). Unit tests cover the
# soft phase; the quick profile skips it for time.
QUICK: dict[str, Any] = {
    "data.n_images": 24,
    "search.warmup_epochs": 1,
    "search.search_epochs": 2,
    "search.soft_epochs": 0,  # hard epochs only: a soft epoch computes every candidate
    "search.batch_size": 8,
    "pareto.n_candidates": 60,
    "pareto.n_evaluate": 8,
    "pareto.n_sample": 200,
    "pareto.n_prefilter": 40,
    "final.epochs": 1,
    "final.batch_size": 8,
    "devices.*.measure.warmup": 1,
    "devices.*.measure.repeat": 3,
    "devices.*.measure.fit_archs": 12,
    "devices.*.measure.e2e_warmup": 1,
    "devices.*.measure.e2e_repeat": 3,
    "devices.*.measure.throughput_batches": [1, 8],  # 2 of the 5 sizes, on 16 images
    "devices.*.measure.throughput_images": 16,  # (100 at 2 sizes: half of a quick run)
}
