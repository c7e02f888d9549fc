"""Data pipeline: dataset readers, top-down crops and augmentation, heatmap targets, loaders.

See docs/data.md for formats, visibility and coordinate conventions and the split protocol.
"""

from .dataset import PoseDataset, record_problem
from .images import check_image_file, load_image
from .loader import EpochSampler, build_loader
from .mixed import MixedDataset
from .readers import (
    DATASET_KINDS,
    LSP_SPLITS,
    READERS,
    LSPET_SPLITS,
    lsp_split,
    lspet_split,
    lspet_split_images,
    read_coco,
    read_dataset,
    read_jsonfile,
    read_lsp,
    read_lspet,
    read_mpii,
    reader_spec,
)
from .records import PersonRecord, box_from_joints, box_to_square, torso_norm, whole_image_box
from .splits import joint_set_for, read_split
from .transforms import (
    AugmentConfig,
    Augmentation,
    crop_person,
    denormalize_image,
    normalize_image,
    sample_augmentation,
)
from .unlabeled import unlabeled_records

__all__ = [
    "PersonRecord", "box_from_joints", "torso_norm", "read_lsp", "read_lspet", "lsp_split", "lspet_split",
    "lspet_split_images", "LSP_SPLITS", "LSPET_SPLITS", "read_mpii", "read_coco", "read_jsonfile", "read_dataset",
    "DATASET_KINDS",
    "AugmentConfig", "Augmentation", "normalize_image", "denormalize_image",
    "crop_person", "sample_augmentation", "PoseDataset", "record_problem", "build_loader", "EpochSampler",
    "check_image_file", "load_image", "READERS", "reader_spec", "read_split", "joint_set_for", "MixedDataset",
    "unlabeled_records", "box_to_square", "whole_image_box",
]
