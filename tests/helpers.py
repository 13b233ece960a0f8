"""Shared helpers for the test-suite (no pytest fixtures here).

* :func:`make_paired_images`: tiny paired LQ/GT PNG folders generated on the
  fly from scikit-image's bundled sample photos.
* :func:`run_python` / :func:`run_command`: subprocess runners that use the
  project's virtual-environment interpreter and fail with the output tail.
* :func:`free_port`: a free TCP port for ``torchrun``.
* :func:`write_tiny_config`: a small but complete training/validation/test
  config for ``tools/train.py`` and ``tools/test.py``.
* :func:`official_stage2_class`: the authors' ``DiffIRS2`` network from
  ``../shared/reference/official_diffir`` (side-by-side parity tests only).
* network tests: the official reference fixtures of ``../shared/fixtures``
  (:func:`load_official_fixture`, :func:`load_keys_fixture`, :data:`TOL`); they FAIL when the
  folder is absent (``DIFFIR_ALLOW_MISSING_FIXTURES=1`` skips them instead).
* inference tests: :func:`tiny_net` and its checkpoints in the official / our layout.
"""
import importlib
import json
import os
import os.path as osp
import pprint
import socket
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
RUNTIME_BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')

#: Interpreter for subprocesses: the project venv when present.
VENV_PYTHON = osp.join(REPO_ROOT, '.venv', 'bin', 'python')
PYTHON = VENV_PYTHON if osp.exists(VENV_PYTHON) else sys.executable

#: The authors' network code (``../shared/reference/official_diffir``, see its README).
OFFICIAL_REFERENCE = osp.join(osp.dirname(REPO_ROOT), 'shared', 'reference', 'official_diffir')

#: scikit-image sample photos shipped inside the wheel (no download).
SAMPLE_IMAGES = ('astronaut', 'coffee', 'chelsea', 'rocket',
                 'immunohistochemistry', 'colorwheel')

#: Fine-tuning recipes for a user's own data (docs/user_guides/own_data.md): not official
#: recipes, so the official-table tests leave them out (tests/test_configs/test_finetune_recipes.py).
OWN_DATA_CONFIGS = frozenset({'diffir_deblur_finetune', 'diffir_sr_finetune',
                              'diffir_sisr_finetune', 'diffir_inpaint_finetune'})

#: The smallest DiffIR stage-2 generator (see diffir_mm.archs).
TINY_DIFFIR_S2 = dict(
    type='DiffIRS2Net',
    task='deblur',
    scale=1,
    dim=8,
    num_blocks=[1, 1, 1, 1],
    num_refinement_blocks=1,
    heads=[1, 2, 4, 8],
    ffn_expansion_factor=2.0,
    bias=False,
    LayerNorm_type='WithBias',
    n_encoder_res=1,
    n_denoise_res=1,
    timesteps=4,
    linear_start=0.1,
    linear_end=0.99)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def sample_image(name: str, size: int) -> np.ndarray:
    """Return a centre-cropped, downscaled RGB sample photo.

    Args:
        name (str): A function name of :mod:`skimage.data`.
        size (int): Output side length.

    Returns:
        np.ndarray: ``(size, size, 3)`` uint8 RGB image.
    """
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    h, w = img.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[top:top + side, left:left + side]
    return cv2.resize(
        np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA)


def degrade(gt: np.ndarray, mode: str = 'blur', scale: int = 2) -> np.ndarray:
    """Make a low-quality version of ``gt``.

    Args:
        gt (np.ndarray): HWC uint8 image.
        mode (str): ``'blur'`` (3x3 box + Gaussian blur, same size) or
            ``'downscale'`` (bicubic ``1/scale``).
        scale (int): Downscaling factor for ``'downscale'``.

    Returns:
        np.ndarray: The degraded HWC uint8 image.
    """
    import cv2

    if mode == 'blur':
        return cv2.GaussianBlur(gt, (5, 5), sigmaX=1.5)
    if mode == 'downscale':
        h, w = gt.shape[:2]
        return cv2.resize(
            gt, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)
    raise ValueError(f'unknown degradation {mode!r}')


def make_paired_images(root: str,
                       num: int = 4,
                       size: int = 32,
                       mode: str = 'blur',
                       scale: int = 2,
                       names: Sequence[str] = SAMPLE_IMAGES) -> Dict[str, str]:
    """Write ``num`` paired images to ``root/gt`` and ``root/lq`` (PNG).

    Args:
        root (str): Output folder.
        num (int): Number of pairs (at most ``len(names)``).
        size (int): GT side length.
        mode (str): Degradation, see :func:`degrade`.
        scale (int): Downscaling factor for ``mode='downscale'``.
        names (Sequence[str]): Sample photo names to draw from.

    Returns:
        dict: ``{'root': root, 'gt': gt_dir, 'lq': lq_dir}``.
    """
    import cv2

    assert num <= len(names), f'at most {len(names)} sample images'
    gt_dir, lq_dir = osp.join(root, 'gt'), osp.join(root, 'lq')
    os.makedirs(gt_dir, exist_ok=True)
    os.makedirs(lq_dir, exist_ok=True)
    for name in names[:num]:
        gt = sample_image(name, size)
        lq = degrade(gt, mode, scale)
        # cv2 writes BGR; the pipelines load with channel_order='rgb'.
        cv2.imwrite(osp.join(gt_dir, f'{name}.png'), gt[..., ::-1])
        cv2.imwrite(osp.join(lq_dir, f'{name}.png'), lq[..., ::-1])
    return dict(root=root, gt=gt_dir, lq=lq_dir)


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
def free_port() -> int:
    """Return a currently free TCP port on localhost.

    Returns:
        int: The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def subprocess_env(
    extra: Optional[Dict[str, str]] = None,
    pythonpath: Sequence[str] = ()
) -> Dict[str, str]:
    """Environment for tool subprocesses.

    Single-threaded BLAS/OpenMP keeps two concurrent processes from
    oversubscribing the two cores; ``PYTHONPATH`` gets ``pythonpath``
    prepended.

    Args:
        extra (dict, optional): Variables to add or override.
        pythonpath (Sequence[str]): Folders to prepend to ``PYTHONPATH``.

    Returns:
        dict: The environment.
    """
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('MKL_NUM_THREADS', '1')
    env['PYTHON'] = PYTHON
    env['PYTHONUNBUFFERED'] = '1'
    # Never rely on the unsafe-load escape hatch in tests.
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)
    if pythonpath:
        parts = list(pythonpath)
        if env.get('PYTHONPATH'):
            parts.append(env['PYTHONPATH'])
        env['PYTHONPATH'] = os.pathsep.join(parts)
    if extra:
        env.update(extra)
    return env


def run_command(cmd: List[str],
                env: Optional[Dict[str, str]] = None,
                cwd: Optional[str] = None,
                timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` and return the completed process (stdout+stderr merged).

    Args:
        cmd (List[str]): The command.
        env (dict, optional): Environment; :func:`subprocess_env` if None.
        cwd (str, optional): Working directory (the repository root if None).
        timeout (float): Seconds before the process is killed.
        check (bool): Raise ``AssertionError`` with the output tail when the
            exit status is non-zero.

    Returns:
        subprocess.CompletedProcess: With ``stdout`` holding the text output.
    """
    proc = subprocess.run(
        cmd,
        env=subprocess_env() if env is None else env,
        cwd=cwd or REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    if check and proc.returncode != 0:
        tail = '\n'.join(proc.stdout.splitlines()[-80:])
        raise AssertionError(f'command failed with exit status '
                             f'{proc.returncode}: {" ".join(cmd)}\n{tail}')
    return proc


def run_python(args: List[str], **kwargs) -> subprocess.CompletedProcess:
    """Run the venv Python with ``args`` (see :func:`run_command`).

    Args:
        args (List[str]): Arguments after the interpreter.
        **kwargs: Passed to :func:`run_command`.

    Returns:
        subprocess.CompletedProcess: The finished process.
    """
    return run_command([PYTHON] + list(args), **kwargs)


# ---------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------
def tiny_config_text(data_root: str,
                     generator: Optional[dict] = None,
                     extra_imports: Sequence[str] = (),
                     max_iters: int = 4,
                     interval: int = 2,
                     batch_size: int = 2,
                     crop: int = 16,
                     seed: int = 2024,
                     num_workers: int = 0) -> str:
    """Return the text of a tiny restoration config.

    It inherits the repository's runtime base by absolute path, builds
    ``BaseEditModel`` with ``generator`` (default :data:`TINY_DIFFIR_S2`),
    trains on random crops + flips of ``data_root/{lq,gt}`` with
    ``BasicImageDataset``, validates/tests with PSNR and SSIM under
    ``MultiValLoop`` / ``MultiTestLoop`` and checkpoints every ``interval``
    iterations.

    Args:
        data_root (str): Folder with ``lq/`` and ``gt/`` sub-folders.
        generator (dict, optional): Generator config.
        extra_imports (Sequence[str]): Modules added to ``custom_imports``.
        max_iters (int): Training iterations.
        interval (int): Validation and checkpoint interval.
        batch_size (int): Training batch size per process.
        crop (int): Training patch size (a multiple of 8).
        seed (int): Random seed (``deterministic=True``).
        num_workers (int): Training dataloader workers.

    Returns:
        str: Python source of the config.
    """
    generator = dict(TINY_DIFFIR_S2 if generator is None else generator)
    imports = ['diffir_mm.registration'] + list(extra_imports)
    return f'''\
_base_ = [{RUNTIME_BASE!r}]
custom_imports = dict(imports={imports!r}, allow_failed_imports=False)
experiment_name = 'tiny_diffir'

model = dict(
    type='BaseEditModel',
    generator={pprint.pformat(generator, indent=4)},
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    data_preprocessor=dict(
        type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

train_pipeline = [
    dict(type='LoadImageFromFile', key='img', color_type='color',
         channel_order='rgb', imdecode_backend='cv2'),
    dict(type='LoadImageFromFile', key='gt', color_type='color',
         channel_order='rgb', imdecode_backend='cv2'),
    dict(type='SetValues', dictionary=dict(scale=1)),
    dict(type='PairedRandomCrop', gt_patch_size={crop}),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5,
         direction='horizontal'),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile', key='img', color_type='color',
         channel_order='rgb', imdecode_backend='cv2'),
    dict(type='LoadImageFromFile', key='gt', color_type='color',
         channel_order='rgb', imdecode_backend='cv2'),
    dict(type='PackInputs'),
]
dataset = dict(
    type='BasicImageDataset',
    data_root={data_root!r},
    data_prefix=dict(img='lq', gt='gt'))

train_dataloader = dict(
    num_workers={num_workers},
    batch_size={batch_size},
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PSNR', prefix='tiny'),
    dict(type='SSIM', prefix='tiny'),
]
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={interval})
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999)))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.5)
auto_scale_lr = dict(enable=False, base_batch_size={batch_size})

default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(
        interval={interval},
        max_keep_ckpts=100,
        save_best='tiny/PSNR',
        rule='greater'))
randomness = dict(seed={seed}, deterministic=True)
'''


def write_tiny_config(path: str, data_root: str, **kwargs) -> str:
    """Write :func:`tiny_config_text` to ``path``.

    Args:
        path (str): Destination ``.py`` file.
        data_root (str): Folder with ``lq/`` and ``gt/``.
        **kwargs: Passed to :func:`tiny_config_text`.

    Returns:
        str: ``path``.
    """
    with open(path, 'w', encoding='utf-8') as f:
        f.write(tiny_config_text(data_root, **kwargs))
    return path


#: Config lines that switch validation and testing off (training-only runs).
NO_EVAL_CONFIG_LINES = """\
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
"""


# ---------------------------------------------------------------------------
# the official networks
# ---------------------------------------------------------------------------
def official_stage2_class(folder: str) -> type:
    """Import the official ``DiffIRS2`` class of one folder of the reference.

    As the reference README describes: a stub ``basicsr.utils.registry`` whose
    ``ARCH_REGISTRY.register()`` returns the class unchanged, ``DiffIR`` /
    ``DiffIR.archs`` as bare namespace packages on the folder, and the folder
    on ``sys.path`` for ``ldm``. The stubs and the imported packages are
    removed from ``sys.modules`` again afterwards.

    The inpainting folder keeps its networks in a top-level ``archs`` package
    (``import archs.common``), which is stubbed the same way.

    Args:
        folder (str): ``'realsr'``, ``'demotionblur'`` or ``'inpainting'``.

    Returns:
        type: The official ``DiffIRS2`` network class.

    Raises:
        FileNotFoundError: The reference folder is missing.
    """
    root = osp.join(OFFICIAL_REFERENCE, folder)
    package = 'archs' if folder == 'inpainting' else 'DiffIR.archs'
    if not osp.isdir(osp.join(root, *package.split('.'))):
        raise FileNotFoundError(f'official reference {root} is missing')

    class _Registry:

        def register(self, *args, **kwargs):
            return lambda cls: cls

    packages = ('archs',) if folder == 'inpainting' else ('DiffIR', 'DiffIR.archs')
    stubs = {name: types.ModuleType(name)
             for name in ('basicsr', 'basicsr.utils', 'basicsr.utils.registry') + packages}
    stubs['basicsr.utils.registry'].ARCH_REGISTRY = _Registry()
    for name in packages:
        stubs[name].__path__ = [osp.join(root, *name.split('.'))]

    def purge():
        for name in list(sys.modules):
            if name.split('.')[0] in ('DiffIR', 'ldm', 'archs', 'basicsr'):
                del sys.modules[name]

    purge()
    sys.modules.update(stubs)
    sys.path.insert(0, root)
    try:
        return importlib.import_module(f'{package}.S2_arch').DiffIRS2
    finally:
        sys.path.remove(root)
        purge()


# ---------------------------------------------------------------------------
# network tests: official reference fixtures (``../shared/fixtures``, see its README):
# ``official/official_<variant>.pt`` are outputs of the authors' code on tiny random networks,
# ``official_keys/keys_<task>_S<stage>.json`` the full-size key layouts of every release.
# ---------------------------------------------------------------------------
#: ``<repo>/../shared/fixtures``.
FIXTURES = Path(REPO_ROOT).parent / 'shared' / 'fixtures'
OFFICIAL_DIR = FIXTURES / 'official'
KEYS_DIR = FIXTURES / 'official_keys'

#: fixture variant -> (task, scale) of ``load_official``.
OFFICIAL_VARIANTS: Dict[str, tuple] = {
    'sr_x4': ('sr', 4),
    'deblur': ('deblur', 1),
    'inpaint': ('inpaint', 1),
}

#: Float32 tolerance against the float64 references of the official code: the README's claim.
#: Measured: at most 1.02e-6 over every fixture output (the stage-1 prior of SR x4, values up to
#: 3.5, i.e. ~4 float32 ulps; 8.4e-7 with another build of the same environment); the official
#: code itself run in float32: up to 4.8e-7 (``official_float32_max_abs_dev``).
TOL = 2e-6


def missing_fixture(path: Path) -> None:
    """Fail (or, with ``DIFFIR_ALLOW_MISSING_FIXTURES=1``, skip) a test whose fixture is absent."""
    message = (f'reference fixture {path} is missing: the parity tests need ../shared/fixtures '
               '(set DIFFIR_ALLOW_MISSING_FIXTURES=1 to skip them instead)')
    if os.environ.get('DIFFIR_ALLOW_MISSING_FIXTURES') == '1':
        pytest.skip(message)
    pytest.fail(message)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element difference, computed in float64."""
    assert a.shape == b.shape, f'shape {tuple(a.shape)} != {tuple(b.shape)}'
    return (a.double() - b.double()).abs().max().item()


def load_official_fixture(variant: str) -> Dict[str, Any]:
    """Load ``official_<variant>.pt`` (:func:`missing_fixture` if it is not available)."""
    path = OFFICIAL_DIR / f'official_{variant}.pt'
    if not path.is_file():
        missing_fixture(path)
    return torch.load(path, map_location='cpu', weights_only=True)


def load_keys_fixture(name: str, stage: int) -> Dict[str, list]:
    """``{key: shape}`` of ``keys_<name>_S<stage>.json`` (:func:`missing_fixture` if absent)."""
    path = KEYS_DIR / f'keys_{name}_S{stage}.json'
    if not path.is_file():
        missing_fixture(path)
    with open(path) as f:
        data = json.load(f)
    assert data['stage'] in (stage, f'S{stage}', str(stage)), data['stage']
    return {k: list(v) for k, v in data['keys'].items()}


def arch_kwargs(data: Dict[str, Any]) -> Dict[str, Any]:
    """The fixture's official constructor arguments, without ``scale`` (given separately)."""
    return {k: v for k, v in data['official_kwargs'].items() if k != 'scale'}


def net_input(data: Dict[str, Any]) -> torch.Tensor:
    """The network input of a fixture (inpainting: ``cat(img * (1 - mask), mask)``)."""
    inputs = data['inputs']
    return inputs['net_input'] if 'net_input' in inputs else inputs['lq']


# ---------------------------------------------------------------------------
# inference tests: tiny random networks and their checkpoint layouts
# ---------------------------------------------------------------------------
TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], n_encoder_res=1)


def tiny_net(preset: str, seed: int = 0):
    """A tiny random stage-2 network of ``preset`` in eval mode."""
    from diffir_mm.archs import build_diffir

    torch.manual_seed(seed)
    refine = 0 if preset.startswith('inpaint') else 1
    return build_diffir(preset, stage=2, num_refinement_blocks=refine, **TINY).eval()


def official_checkpoint(net) -> dict:
    """The net in the released BasicSR layout (``params_ema``, with the diffusion duplicates)."""
    from diffir_mm.archs import ours_to_official

    return {'params_ema': ours_to_official(net.state_dict(), with_duplicates=True, net=net)}


def mmengine_checkpoint(net, ema_net=None) -> dict:
    """The net as one of our mmengine checkpoints (``generator.*`` [+ ``generator_ema.*``])."""
    sd = {f'generator.{k}': v for k, v in net.state_dict().items()}
    if ema_net is not None:
        sd.update({f'generator_ema.{k}': v for k, v in ema_net.state_dict().items()})
    return {'state_dict': sd, 'meta': {'iter': 1}}


def write(path, array) -> str:
    """cv2.imwrite that fails loudly."""
    import cv2

    path = os.fspath(path)
    assert cv2.imwrite(path, array), path
    return path


def file_bytes(path) -> bytes:
    """The contents of ``path``."""
    with open(path, 'rb') as fh:
        return fh.read()


# ---------------------------------------------------------------------------
# data tools: broken files as users find them
# ---------------------------------------------------------------------------
def write_broken_images(folder, names: Sequence[str] = ('truncated', 'empty', 'text'),
                        size: int = 48) -> Dict[str, str]:
    """Write image files that cannot be decoded into ``folder``.

    ``truncated``: the first half of a valid PNG (an interrupted copy); ``empty``: zero bytes;
    ``text``: a text file named ``.png``; ``jpeg``: a JPEG cut before its end marker.

    Returns:
        ``{kind: path}``.
    """
    import cv2

    os.makedirs(folder, exist_ok=True)
    img = np.ascontiguousarray(sample_image('astronaut', size)[..., ::-1])
    paths = {}
    for kind in names:
        path = osp.join(os.fspath(folder), f'{kind}.{"jpg" if kind == "jpeg" else "png"}')
        if kind == 'truncated':
            data = cv2.imencode('.png', img)[1].tobytes()
            data = data[:len(data) // 2]
        elif kind == 'jpeg':
            data = cv2.imencode('.jpg', img)[1].tobytes()
            data = data[:len(data) * 2 // 3]
        elif kind == 'empty':
            data = b''
        elif kind == 'text':
            data = b'this is not an image\n'
        else:
            raise ValueError(f'unknown broken file kind {kind!r}')
        with open(path, 'wb') as fh:
            fh.write(data)
        paths[kind] = path
    return paths
