"""Dataset layouts of ``tools/prepare_data.py``: the paper's datasets and a user's own folders.

One module per family, all built on :mod:`.common` (outputs never inside inputs, atomic and
resumable writes, a summary) and on :mod:`diffir_mm.datasets.file_checks` (the data checker):

* :mod:`.gopro` -- GoPro -> 512 x 512 training crops and whole test pairs (deblurring);
* :mod:`.df2k` -- DF2K (+ OST) -> multiscale set, 400 x 400 sub-images and meta file (real SR);
* :mod:`.lama` -- CelebA-HQ and Places2 -> LaMa's layouts (inpainting);
* :mod:`.own_data` -- ``images`` and ``pairs`` folders -> a checked, seeded train / val split.
"""
from .common import PrepareError, Summary
from .df2k import prepare_df2k
from .gopro import prepare_gopro
from .lama import EvalMaskWriter, prepare_celebahq, prepare_places
from .own_data import prepare_images, prepare_pairs

__all__ = ['PrepareError', 'Summary', 'EvalMaskWriter', 'prepare_df2k', 'prepare_gopro',
           'prepare_celebahq', 'prepare_places', 'prepare_images', 'prepare_pairs']
