"""A folder of evaluation images from which LaMa's rule leaves some out (Places protocol).

LaMa's ``bin/gen_mask_dataset.py`` writes no sample for an image whose every mask variant covers
more than half of its crop (:mod:`diffir_mm.datasets.lama_eval`), so LaMa's evaluation sets
are slightly smaller than their image folders. :class:`LamaEvalDataset` is MMagic's
``BasicImageDataset`` that leaves the same images out when it is built: it asks the
:class:`~diffir_mm.datasets.transforms.LamaEvalSample` step of its own pipeline about each
image (file name and size from the image header, no decoding) and records the images it left
out in its ``metainfo['dropped_images']``, which metrics see as ``dataset_meta`` (``ImageCount``
reports their number).
"""
from __future__ import annotations

import os.path as osp
from typing import List

from mmagic.datasets import BasicImageDataset
from mmagic.registry import DATASETS
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

from .transforms.lama_eval import LamaEvalSample
from .transforms.masks import sample_path

__all__ = ['LamaEvalDataset']


@DATASETS.register_module()
class LamaEvalDataset(BasicImageDataset):
    """``BasicImageDataset`` without the images that LaMa's evaluation rule leaves out.

    Takes ``BasicImageDataset``'s arguments; the pipeline must contain a ``LamaEvalSample``
    step. Load images with ``color_type='color_ignore_orientation'`` and
    ``imdecode_backend='pillow'`` (LaMa decodes them with PIL, which ignores EXIF rotation), so
    that the header size used here is the decoded size.
    """

    def filter_data(self) -> List[dict]:
        """The images that keep a sample; the others go to ``metainfo['dropped_images']``."""
        steps = [t for t in getattr(self.pipeline, 'transforms', [])
                 if isinstance(t, LamaEvalSample)]
        if len(steps) != 1:
            raise ValueError(f'LamaEvalDataset needs exactly one LamaEvalSample step in its '
                             f'pipeline, found {len(steps)}')
        step = steps[0]
        kept, dropped = [], []
        bar = ProgressBar(len(self.data_list)) if is_main_process() and self.data_list else None
        for info in self.data_list:
            path = sample_path(info, step.path_keys)
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except OSError as err:
                raise ValueError(f'cannot read the image {path}: {err}') from None
            if step.rule.sample_source(osp.basename(path), height, width):
                kept.append(info)
            else:
                dropped.append(path)
            if bar is not None:
                bar.update()
        self._metainfo['dropped_images'] = dropped
        print_log(f'{type(self).__name__} ({step.rule}): {len(kept)} of {len(self.data_list)} '
                  f'images kept, {len(dropped)} left out as LaMa does (every mask variant '
                  f'covers more than {step.rule.sampler.max_coverage} of its crop)',
                  logger='current')
        return kept
