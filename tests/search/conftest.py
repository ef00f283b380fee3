"""Fixtures shared by the search tests: the real supernet, one intra-op thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def supernet():
    """The real supernet (random encoder weights, seeded, encoder frozen), once per module."""
    from linas.supernet import Supernet

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Supernet(num_classes=3)
    net.freeze_encoder()
    return net


@pytest.fixture
def one_thread() -> None:
    """One intra-op thread (after the root conftest's two), for tests of tiny tensors: two
    threads on a busy machine stall on their barriers (a 0.1 s search took 4 s beside another
    job). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    torch.set_num_threads(1)
