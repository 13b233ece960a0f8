"""The authors' DiffIR networks beside ours: the one importer of the benchmarks and the tests.

It needs no pytest (``bench/gpu_suite.py`` imports it on a GPU machine that has none);
``tests/helpers.py`` re-exports :func:`shared_folder`, :data:`OFFICIAL_PACKAGES` and
:func:`official_network_class`.

Where the authors' code is (:func:`find_reference`, first found):

1. an explicit folder (``--reference`` of ``gpu_suite.py``);
2. ``reference/official_diffir`` of the optional shared folder (:func:`shared_folder`:
   ``$DIFFIR_SHARED``, else ``../shared`` beside the repository);
3. ``.gpu_carry/official_diffir`` in the checkout: a git-ignored copy made by
   ``bench/gpu_suite.py --prepare`` (:func:`prepare_carry`) that travels to machines without
   the shared folder.

It is imported as its README says: a stub ``basicsr.utils.registry`` whose ``register()`` returns
the class unchanged, the task's networks package (``DiffIR.archs``; inpainting: ``archs``) as
bare namespace packages on the folder, and the folder on ``sys.path`` for ``ldm``. Its own
imports are torch, numpy, einops, tqdm and PIL.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Optional, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffir_mm.archs import build_diffir, preset_kwargs  # noqa: E402
from diffir_mm.checkpoint import ours_to_official  # noqa: E402

#: Git-ignored copy of the authors' code that travels with the working tree.
CARRY = ROOT / '.gpu_carry' / 'official_diffir'
#: official folder -> package of its networks.
OFFICIAL_PACKAGES = {'demotionblur': 'DiffIR.archs', 'realsr': 'DiffIR.archs',
                     'inpainting': 'archs'}
#: preset -> official folder.
FOLDERS = {'deblur': 'demotionblur', 'sr_x4': 'realsr', 'sr_x2': 'realsr', 'sr_x1': 'realsr',
           'inpaint': 'inpainting', 'inpaint_big': 'inpainting'}


def shared_folder() -> Path:
    """The optional ``shared`` folder: ``$DIFFIR_SHARED``, else ``<repo>/../shared``.

    It holds the authors' network code (``reference/official_diffir``) and the original
    full-size fixtures; a clone of the repository has none, and what needs it skips.
    """
    return Path(os.environ.get('DIFFIR_SHARED') or ROOT.parent / 'shared')


def find_reference(explicit: Optional[os.PathLike] = None) -> Optional[Path]:
    """The first folder holding the authors' networks (see the module notes), or None."""
    for folder in (explicit, shared_folder() / 'reference' / 'official_diffir', CARRY):
        if folder and (Path(folder) / 'demotionblur' / 'DiffIR' / 'archs').is_dir():
            return Path(folder)
    return None


def official_network_class(folder: str, stage: int, reference: Optional[Path] = None) -> type:
    """Import the authors' ``DiffIRS1`` / ``DiffIRS2`` class of one folder of the reference.

    The stubs and the imported packages are removed from ``sys.modules`` again afterwards (the
    class keeps what it needs).

    Args:
        folder: ``'realsr'``, ``'demotionblur'`` or ``'inpainting'``.
        stage: 1 or 2.
        reference: The ``official_diffir`` folder (default: the shared folder's).

    Raises:
        FileNotFoundError: The reference folder is missing.
    """
    root = (reference or shared_folder() / 'reference' / 'official_diffir') / folder
    package = OFFICIAL_PACKAGES[folder]
    if not root.joinpath(*package.split('.')).is_dir():
        raise FileNotFoundError(f'the official DiffIR code {root} is missing (set DIFFIR_SHARED '
                                'or put the shared folder beside the repository)')
    registry = types.ModuleType('basicsr.utils.registry')
    registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda cls: cls))
    packages = ('DiffIR', 'DiffIR.archs') if package == 'DiffIR.archs' else ('archs',)
    stubs = {name: types.ModuleType(name) for name in ('basicsr', 'basicsr.utils') + packages}
    stubs['basicsr.utils.registry'] = registry
    for name in packages:
        stubs[name].__path__ = [str(root.joinpath(*name.split('.')))]

    def purge() -> None:
        for name in list(sys.modules):
            if name.split('.')[0] in ('DiffIR', 'ldm', 'archs', 'basicsr'):
                del sys.modules[name]

    purge()
    sys.modules.update(stubs)
    sys.path.insert(0, str(root))
    try:
        return getattr(importlib.import_module(f'{package}.S{stage}_arch'), f'DiffIRS{stage}')
    finally:
        sys.path.remove(str(root))
        purge()


def build_pair(preset: str, reference: Optional[Path] = None,
               **overrides: Any) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """(official, ours) stage-2 networks of ``preset`` holding the same random weights.

    Args:
        preset: A released preset (``'deblur'``, ``'sr_x4'``, ``'inpaint'``, ...).
        reference: The authors' code (default: :func:`find_reference`).
        **overrides: Constructor arguments of both (``dim``, ``num_blocks``, ...); ``with_cp``
            applies to ours only.

    Raises:
        FileNotFoundError: No official code found.
    """
    reference = reference or find_reference()
    if reference is None:
        raise FileNotFoundError('the official DiffIR code was not found (bench/official_nets.py)')
    kwargs = preset_kwargs(preset, 2, **overrides)
    official_kwargs = {k: v for k, v in kwargs.items() if k not in ('task', 'scale', 'with_cp')}
    if kwargs['task'] == 'sr':
        official_kwargs['scale'] = kwargs['scale']
    if kwargs['task'] != 'inpaint':
        official_kwargs.pop('inp_channels')
    torch.manual_seed(0)
    ours = build_diffir(preset, 2, **overrides)
    official = official_network_class(FOLDERS[preset], 2, reference)(**official_kwargs)
    missing, unexpected = official.load_state_dict(ours_to_official(ours.state_dict()),
                                                   strict=False)
    assert not unexpected and all(k.startswith('diffusion.') for k in missing), (missing,
                                                                                 unexpected)
    return official, ours


def prepare_carry(source: Path, dest: Path = CARRY) -> int:
    """Copy the authors' code (``*.py``, README, LICENSE) from ``source`` to ``dest``.

    The copy is assembled in a temporary folder beside ``dest`` and moved into place, replacing
    an earlier copy. Returns the bytes copied.
    """
    if not (source / 'demotionblur' / 'DiffIR' / 'archs').is_dir():
        raise FileNotFoundError(f'{source} does not hold the official DiffIR networks')
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix='.official_diffir.', dir=dest.parent))
    try:
        shutil.copytree(source, tmp / 'copy',
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '*.pth', '*.ckpt'))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp / 'copy', dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sum(p.stat().st_size for p in dest.rglob('*') if p.is_file())
