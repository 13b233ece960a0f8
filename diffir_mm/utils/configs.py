"""Where the DiffIR configs and ``configs/metafile.yml`` are: the checkout, or the packaged copy.

A source checkout serves its own ``configs/`` (edits take effect); a non-editable
``pip install .`` serves the copy that ``setup.py`` puts into ``diffir_mm/.mim`` (as MMagic
does). MMagic's inferencer (:mod:`diffir_mm.apis.inferencer`) and the model cards of
:func:`diffir_mm.checkpoint.write_model_folder` read the metafile through here.

Standard library only.
"""
from __future__ import annotations

import os.path as osp

__all__ = ['PACKAGE_DIR', 'REPO_ROOT', 'PACKAGED_ROOT', 'config_root', 'metafile_path']

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The source checkout holding the package (when diffir_mm runs from one).
REPO_ROOT = osp.dirname(PACKAGE_DIR)
#: The configs copied into the package at build time (``setup.py``), like MMagic's ``.mim``.
PACKAGED_ROOT = osp.join(PACKAGE_DIR, '.mim')


def config_root() -> str:
    """Folder whose ``configs/`` the metafile paths are relative to.

    The source checkout when diffir_mm runs from one (so edits take effect), else the copy that a
    (non-editable) ``pip install`` put into ``diffir_mm/.mim``.

    Raises:
        FileNotFoundError: Neither holds the configs.
    """
    for root in (REPO_ROOT, PACKAGED_ROOT):
        if osp.isfile(osp.join(root, 'configs', 'metafile.yml')) and \
                osp.isdir(osp.join(root, 'configs', '_base_')):
            return root
    raise FileNotFoundError(f'DiffIR configs not found in {REPO_ROOT} or {PACKAGED_ROOT}; '
                            'reinstall diffir-mm (pip install .)')


def metafile_path() -> str:
    """``configs/metafile.yml``: the home of the released weights and the paper's numbers."""
    return osp.join(config_root(), 'configs', 'metafile.yml')
