"""The search space as a whole: size, sampling, enumeration."""

from __future__ import annotations

import numpy as np

from linas.space.arch import LAYERS, NUM_LAYERS, Arch, LayerSpec, ids_to_choices
from linas.space.ops import CHOICE_KEYS, NUM_CHOICES


class SearchSpace:
    """The fixed decoder space of SPEC.md section 2: 5 layers x 21 choices."""

    layers: tuple[LayerSpec, ...] = LAYERS
    num_layers: int = NUM_LAYERS
    num_choices: int = NUM_CHOICES
    choice_keys: tuple[str, ...] = CHOICE_KEYS

    @property
    def size(self) -> int:
        """Number of architectures: 21**5 = 4,084,101."""
        return int(self.num_choices**self.num_layers)

    def sample(self, n: int, seed: int) -> list[Arch]:
        """``n`` architectures drawn uniformly (with replacement) from a seeded generator."""
        rng = np.random.default_rng(seed)
        return [Arch(tuple(row)) for row in self.sample_choices(n, rng)]

    def sample_choices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform choice indices, shape (n, 5)."""
        return rng.integers(0, self.num_choices, size=(n, self.num_layers))

    def sample_unique(self, n: int, seed: int) -> list[Arch]:
        """``n`` distinct architectures, uniform without replacement, seeded."""
        rng = np.random.default_rng(seed)
        n = min(n, self.size)
        ids = rng.choice(self.size, size=n, replace=False)
        return [Arch(tuple(row)) for row in ids_to_choices(ids)]

    def all_choices(self) -> np.ndarray:
        """Every architecture's choice indices, shape (4084101, 5), int8."""
        grids = np.meshgrid(*[np.arange(self.num_choices, dtype=np.int8)] * self.num_layers,
                            indexing="ij")
        return np.stack([g.reshape(-1) for g in grids], axis=1)
