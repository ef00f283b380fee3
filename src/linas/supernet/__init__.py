"""Supernet: encoder, candidate ops, MixedOp decoder, extraction of static models."""

from linas.supernet.decoder import DecoderHead, SkipFusion
from linas.supernet.encoder import (
    DenseNetEncoder,
    imagenet_cache_path,
    load_encoder,
    save_encoder,
)
from linas.supernet.ops import OP_BUILDERS, Candidate, EdgeConv, build_candidate, build_op
from linas.supernet.supernet import FixedPart, MixedOp, SegmentationModel, Supernet

__all__ = [
    "Candidate",
    "DecoderHead",
    "DenseNetEncoder",
    "EdgeConv",
    "FixedPart",
    "MixedOp",
    "OP_BUILDERS",
    "SegmentationModel",
    "SkipFusion",
    "Supernet",
    "build_candidate",
    "build_op",
    "imagenet_cache_path",
    "load_encoder",
    "save_encoder",
]
