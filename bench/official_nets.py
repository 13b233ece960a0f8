"""The official DiffIR stage-2 networks beside ours, for benchmarks (never imported by the package).

The authors' network code is looked up in this order (:func:`find_reference`):

1. an explicit folder (``--reference`` of the scripts, or ``$DIFFIR_OFFICIAL_REFERENCE``);
2. ``.gpu_carry/official_diffir`` in the checkout: a git-ignored copy made by
   ``bench/gpu_suite.py --prepare`` so that it travels to machines without ``../shared``;
3. ``../shared/reference/official_diffir`` beside the checkout.

It is imported as its README says: a stub ``basicsr.utils.registry`` whose ``register()`` returns
the class unchanged, the task's ``DiffIR.archs`` (inpainting: ``archs``) as a bare namespace
package on the folder, and the folder on ``sys.path`` for ``ldm``. Its own imports are torch,
numpy, einops, tqdm and PIL.
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

from diffir_mm.archs import build_diffir, ours_to_official, preset_kwargs  # noqa: E402

#: Git-ignored copy that travels with the working tree (``gpu_suite.py --prepare``).
CARRY = ROOT / '.gpu_carry' / 'official_diffir'
#: The reference beside the checkout.
SHARED = ROOT.parent / 'shared' / 'reference' / 'official_diffir'
#: Environment variable naming the reference folder explicitly.
ENV = 'DIFFIR_OFFICIAL_REFERENCE'
#: preset -> official folder.
FOLDERS = {'deblur': 'demotionblur', 'sr_x4': 'realsr', 'sr_x2': 'realsr', 'sr_x1': 'realsr',
           'inpaint': 'inpainting', 'inpaint_big': 'inpainting'}


def find_reference(explicit: Optional[os.PathLike] = None) -> Optional[Path]:
    """The first folder holding the official networks (see the module notes), or None."""
    candidates = [explicit, os.environ.get(ENV), CARRY, SHARED]
    for folder in candidates:
        if folder and (Path(folder) / 'demotionblur' / 'DiffIR' / 'archs').is_dir():
            return Path(folder)
    return None


def official_class(preset: str, reference: Path):
    """The official ``DiffIRS2`` class of ``preset``'s folder in ``reference``."""
    folder = reference / FOLDERS[preset]
    for name in list(sys.modules):
        if name.split('.')[0] in ('DiffIR', 'ldm', 'archs'):
            del sys.modules[name]
    registry = types.ModuleType('basicsr.utils.registry')
    registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda cls: cls))
    for name in ('basicsr', 'basicsr.utils'):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules['basicsr.utils.registry'] = registry
    package = 'archs' if FOLDERS[preset] == 'inpainting' else 'DiffIR.archs'
    if package == 'DiffIR.archs':
        sys.modules['DiffIR'] = types.ModuleType('DiffIR')
        sys.modules['DiffIR'].__path__ = [str(folder / 'DiffIR')]
        archs_dir = folder / 'DiffIR' / 'archs'
    else:
        archs_dir = folder / 'archs'
    module = types.ModuleType(package)
    module.__path__ = [str(archs_dir)]
    sys.modules[package] = module
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(f'{package}.S2_arch').DiffIRS2
    finally:
        sys.path.remove(str(folder))


def build_pair(preset: str, reference: Optional[Path] = None,
               **overrides: Any) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """(official, ours) stage-2 networks of ``preset`` holding the same random weights.

    Args:
        preset: A released preset (``'deblur'``, ``'sr_x4'``, ``'inpaint'``, ...).
        reference: The official code (default: :func:`find_reference`).
        **overrides: Constructor arguments of both (``dim``, ``num_blocks``, ...); ``with_cp``
            applies to ours only.

    Raises:
        FileNotFoundError: No official code found.
    """
    reference = reference or find_reference()
    if reference is None:
        raise FileNotFoundError('official reference not found (bench/official_nets.py)')
    kwargs = preset_kwargs(preset, 2, **overrides)
    official_kwargs = {k: v for k, v in kwargs.items() if k not in ('task', 'scale', 'with_cp')}
    if kwargs['task'] == 'sr':
        official_kwargs['scale'] = kwargs['scale']
    if kwargs['task'] != 'inpaint':
        official_kwargs.pop('inp_channels')
    torch.manual_seed(0)
    ours = build_diffir(preset, 2, **overrides)
    official = official_class(preset, reference)(**official_kwargs)
    missing, unexpected = official.load_state_dict(ours_to_official(ours.state_dict()),
                                                   strict=False)
    assert not unexpected and all(k.startswith('diffusion.') for k in missing), (missing,
                                                                                 unexpected)
    return official, ours


def prepare_carry(source: Path, dest: Path = CARRY) -> int:
    """Copy the official code (``*.py``, README, LICENSE) from ``source`` to ``dest``.

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
