"""Datasets side of diffir_mm.

MMagic's ``BasicImageDataset`` covers the DiffIR datasets (paired folders, GT-only folders,
LR-only folders); added here are transforms (:mod:`diffir_mm.datasets.transforms`), LaMa's
evaluation-sample rule (:mod:`.lama_eval`), the dataset that leaves out the images LaMa leaves
out (:mod:`.lama_eval_dataset`) and the writer of LaMa-style mask folders
(:mod:`.eval_mask_folder`). Importing this package registers them into MMagic's registries.
"""
from .eval_mask_folder import write_eval_mask_folder
from .transforms.lama_eval import LamaEvalRule
from .lama_eval_dataset import LamaEvalDataset
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms_all

__all__ = list(_transforms_all) + ['LamaEvalDataset', 'LamaEvalRule', 'write_eval_mask_folder']
