"""Data: the synthetic sealer generator, dataset loaders by name, and seeded splits.

Importing this package registers the ``folder``, ``mvtec`` and ``cityscapes`` loaders.
"""

from linas.data.cityscapes import CITYSCAPES_CLASSES, cityscapes_label_map, load_cityscapes
from linas.data.datasets import (
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
from linas.data.splits import SPLIT_NAMES, load_tensors, split_indices
from linas.data.synth import CLASSES as SEALER_CLASSES
from linas.data.synth import generate_sealer_dataset, render_sample

__all__ = [
    "CITYSCAPES_CLASSES",
    "FeatureSet",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MVTEC_CLASSES",
    "SEALER_CLASSES",
    "SPLIT_NAMES",
    "SegmentationDataset",
    "available_datasets",
    "cache_features",
    "cityscapes_label_map",
    "generate_sealer_dataset",
    "load_cityscapes",
    "load_dataset",
    "load_folder",
    "load_mvtec",
    "mvtec_label_map",
    "register_loader",
    "render_sample",
    "split_indices",
    "load_tensors",
]
