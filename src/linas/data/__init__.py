"""Data: the synthetic sealer generator, dataset loaders by name, sizes, and seeded splits.

Importing this package registers the ``folder``, ``mvtec``, ``cityscapes`` and ``synthetic``
dataset kinds in :data:`DATASETS`. A run calls :func:`build_dataset` (its ``data`` section) or
:func:`load_dataset` (kind, root, size, fit, options), then :func:`make_splits`;
:func:`ensure_synthetic` writes or reuses synthetic data.
"""

from linas.data.build import DataSpec, build_dataset
from linas.data.cityscapes import CITYSCAPES_CLASSES, cityscapes_label_map, load_cityscapes
from linas.data.datasets import (
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SegmentationDataset,
    available_datasets,
    load_dataset,
    register_loader,
)
from linas.data.features import FeatureSet, cache_features
from linas.data.folder import load_folder
from linas.data.mvtec import MVTEC_CLASSES, load_mvtec, mvtec_label_map
from linas.data.sizing import FITS, NETWORK_STRIDE, check_network_size
from linas.data.splits import SPLIT_NAMES, load_tensors, make_splits, split_indices
from linas.data.synth import CLASSES as SEALER_CLASSES
from linas.data.synth import generate_sealer_dataset, render_sample
from linas.data.synthetic import ensure_synthetic, load_synthetic

__all__ = [
    "CITYSCAPES_CLASSES",
    "DATASETS",
    "DataSpec",
    "FITS",
    "FeatureSet",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MVTEC_CLASSES",
    "NETWORK_STRIDE",
    "SEALER_CLASSES",
    "SPLIT_NAMES",
    "SegmentationDataset",
    "available_datasets",
    "build_dataset",
    "cache_features",
    "check_network_size",
    "cityscapes_label_map",
    "ensure_synthetic",
    "generate_sealer_dataset",
    "load_cityscapes",
    "load_dataset",
    "load_folder",
    "load_mvtec",
    "load_synthetic",
    "load_tensors",
    "make_splits",
    "mvtec_label_map",
    "register_loader",
    "render_sample",
    "split_indices",
]
