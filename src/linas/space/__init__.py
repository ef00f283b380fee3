"""Search space: op registry names, :class:`Arch`, :class:`SearchSpace`."""

from linas.space.arch import LAYERS, NUM_LAYERS, Arch, LayerSpec, choices_to_ids, ids_to_choices
from linas.space.ops import (
    CHOICE_KEYS,
    NUM_CHOICES,
    OPS,
    WIDTH_TAGS,
    WIDTHS,
    choice_index,
    choice_key,
    key_index,
    parse_choice,
)
from linas.space.space import SearchSpace

__all__ = [
    "Arch",
    "CHOICE_KEYS",
    "LAYERS",
    "LayerSpec",
    "NUM_CHOICES",
    "NUM_LAYERS",
    "OPS",
    "SearchSpace",
    "WIDTHS",
    "WIDTH_TAGS",
    "choice_index",
    "choice_key",
    "choices_to_ids",
    "ids_to_choices",
    "key_index",
    "parse_choice",
]
