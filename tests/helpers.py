"""Shared helpers for the test-suite (no pytest fixtures here).

* :func:`make_paired_images`: tiny paired LQ/GT PNG folders generated on the
  fly from scikit-image's bundled sample photos.
* :func:`run_python` / :func:`run_command`: subprocess runners that use the
  project's virtual-environment interpreter and fail with the output tail.
* :func:`free_port`: a free TCP port for ``torchrun``.
* :func:`write_tiny_config`: a small but complete training/validation/test
  config for ``tools/train.py`` and ``tools/test.py``.
* the optional ``shared`` folder beside the repository (:func:`shared_folder`,
  :func:`require_shared`) and the authors' networks in it (:func:`official_network_class`, from
  ``bench/official_nets.py``); tests that need it skip without it.
* network tests: the official-parity fixtures of ``tests/fixtures/official`` (in the repository,
  see its README): :func:`load_official_fixture`, :func:`load_keys_fixture`,
  :func:`load_cli_fixture`, :data:`TOL`, and :func:`synthetic_state_dict`, which rebuilds their
  weights (:func:`released_weights_spec`: weights of the full-size released layouts).
* inference tests: :func:`tiny_net` and its checkpoints in the official / our layout.
* web-app tests: :func:`start_app` (``tools/app.py`` in a subprocess, waited for) and
  :func:`start_browser` (headless Debian chromium through Selenium; :func:`browser_missing`
  says why the browser tests skip).
* recipes with tiny networks: :func:`tiny_recipe` and a batch of its pipelines,
  :func:`recipe_batch` (device audit, mixed-precision training).
"""
import functools
import gzip
import hashlib
import importlib
import importlib.util
import json
import os
import os.path as osp
import pprint
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The shared folder's location and the importer of the authors' networks live in
# bench/official_nets.py, shared with the benchmarks and free of pytest (the GPU machine has none).
sys.path.insert(0, osp.join(REPO_ROOT, 'bench'))
from official_nets import OFFICIAL_PACKAGES, official_network_class, shared_folder  # noqa: E402,F401

TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
RUNTIME_BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')

#: Interpreter for subprocesses: the project venv when present.
VENV_PYTHON = osp.join(REPO_ROOT, '.venv', 'bin', 'python')
PYTHON = VENV_PYTHON if osp.exists(VENV_PYTHON) else sys.executable

#: scikit-image sample photos shipped inside the wheel (no download).
SAMPLE_IMAGES = ('astronaut', 'coffee', 'chelsea', 'rocket',
                 'immunohistochemistry', 'colorwheel')

#: Fine-tuning recipes for a user's own data (docs/user_guides/own_data.md): not official
#: recipes, so the official-table tests leave them out (test_configs/test_finetune_recipes.py).
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


def import_tool(name: str) -> types.ModuleType:
    """``tools/<name>.py`` imported as a module (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS_DIR, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


#: The DIRformer width of the tiny deblurring recipes (:func:`tiny_deblur_config_text`).
TINY_DEBLUR = 'dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1'


def tiny_deblur_config_text(root, base: str, extra_model: str = '') -> str:
    """A real deblurring recipe (``configs/<base>``) shrunk: tiny network, progressive patches
    32 -> 16 (mini-batches 2 -> 1, phase boundary at iteration 3), photo pairs of
    ``<root>/train/{lq,gt}`` and ``<root>/test/{lq,gt}``, 6 iterations, validation and
    checkpoints every 2; everything else is the recipe's.

    Args:
        root: Data folder (:func:`make_paired_images` of ``train`` and ``test``).
        base: ``'diffir_deblur_s1.py'`` or ``'diffir_deblur_s2.py'``.
        extra_model: More ``model`` entries, ending with a comma (e.g. the stage-1 checkpoint).
    """
    return f"""
_base_ = ['{REPO_ROOT}/configs/{base}']
model = dict(generator=dict({TINY_DEBLUR}), {extra_model}
             train_cfg=dict(progressive=dict(iters=[3, 3], mini_batch_sizes=[2, 1],
                                             gt_sizes=[32, 16])))
train_pipeline = _base_.train_pipeline
for _step in train_pipeline:
    if _step['type'] == 'PairedRandomCrop':
        _step['gt_patch_size'] = 48
val_pipeline = _base_.val_pipeline
for _step in val_pipeline:
    if _step['type'] == 'Crop':
        _step['crop_size'] = (32, 32)
del _step
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(img='train/lq', gt='train/gt'), pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(img='test/lq', gt='test/gt'), pipeline=val_pipeline))
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(max_iters=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=10))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(deterministic=True)
"""


# ---------------------------------------------------------------------------
# the optional shared folder: the authors' code, the original fixtures
# ---------------------------------------------------------------------------
def require_shared(*parts: str) -> Path:
    """``shared_folder() / parts``, or skip the calling test with the reason when it is absent."""
    path = shared_folder().joinpath(*parts)
    if not path.exists():
        pytest.skip(f'{path} is absent: this check needs the optional shared folder beside the '
                    'repository (or DIFFIR_SHARED=<folder>)')
    return path


# ---------------------------------------------------------------------------
# network tests: the official-parity fixtures (``tests/fixtures/official``, see its README):
# ``official_<variant>.pt`` are outputs of the authors' code on tiny networks,
# ``cli_<task>.pt`` (+ PNGs) the authors' inference pipelines on one image each,
# ``keys.json.gz`` the full-size key layouts of every release. Regenerate them with
# ``tests/fixtures/make_official_fixtures.py`` (needs the shared folder).
# ---------------------------------------------------------------------------
FIXTURES = Path(REPO_ROOT) / 'tests' / 'fixtures' / 'official'

#: fixture variant -> (task, scale) of ``load_official``.
OFFICIAL_VARIANTS: Dict[str, tuple] = {
    'sr_x4': ('sr', 4),
    'deblur': ('deblur', 1),
    'inpaint': ('inpaint', 1),
}

#: Float32 tolerance against the float64 references of the official code (fidelity.md's claim).
#: Measured on the fixtures here: at most 7.2e-7 over every output (the stage-1 prior of SR x4,
#: values up to 2.1, ~3 float32 ulps); the official code itself run in float32: up to 7.1e-7
#: (``official_float32_max_abs_dev``). The earlier full-size fixtures of the shared folder
#: (``test_official_fixtures.py``): 1.02e-6 and 4.8e-7 (the SR x4 prior, values up to 3.5).
TOL = 2e-6


#: bf16 vs fp32 network output, relative error ``|a - b| / |b|`` (:func:`rel_error`): the
#: tolerance diffir_mm/inference/precision.py documents. Measured on the tiny random networks of
#: the tests: 4e-4 .. 4e-3.
BF16_REL_TOL = 1e-2


def rel_error(a, b) -> float:
    """``|a - b| / |b|`` (Frobenius norms, float64) of two tensors or arrays."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element difference, computed in float64."""
    assert a.shape == b.shape, f'shape {tuple(a.shape)} != {tuple(b.shape)}'
    return (a.double() - b.double()).abs().max().item()


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 output function of ``z`` (uint64 array; wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def counter_uniform(seed: int, stream: int, count: int) -> np.ndarray:
    """``count`` float64 values in [-1, 1): a pure function of ``(seed, stream, index)``.

    Counter-based (splitmix64 of ``stream * 2**32 + index`` keyed by ``seed``), so the values are
    the same on every platform and every torch / numpy version, unlike a library RNG stream.
    """
    key = _splitmix64(np.array([seed], dtype=np.uint64))
    counter = np.arange(count, dtype=np.uint64) + np.uint64(stream << 32)
    bits = _splitmix64(counter ^ key) >> np.uint64(11)  # 53 random bits
    return bits.astype(np.float64) * (2.0 / 2 ** 53) - 1.0


def synthetic_state_dict(spec: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """Rebuild the state dict a fixture describes (its weights cost no space in the repository).

    ``spec['entries']`` lists ``(key, entry)`` in the state dict's order; an entry is
    ``{'shape', 'offset', 'width'}`` (float32 values ``offset + width * u``, ``u`` =
    :func:`counter_uniform` of ``spec['seed']`` and the entry's position), ``{'same_as': key}``
    (the same tensor under a second name, as the official stage 2 stores ``diffusion.model.*``)
    or ``{'tensor': t}`` (stored as it is: the diffusion schedule).
    """
    state: Dict[str, torch.Tensor] = {}
    for stream, (key, entry) in enumerate(spec['entries']):
        if 'tensor' in entry:
            state[key] = entry['tensor'].clone()
        elif 'same_as' in entry:
            state[key] = state[entry['same_as']]
        else:
            shape = tuple(entry['shape'])
            values = entry['offset'] + entry['width'] * counter_uniform(
                spec['seed'], stream, int(np.prod(shape, dtype=np.int64)))
            state[key] = torch.from_numpy(values.reshape(shape)).float()
    return state


def load_official_fixture(variant: str) -> Dict[str, Any]:
    """``official_<variant>.pt`` with its ``s1_state_dict`` / ``s2_state_dict`` rebuilt."""
    data = torch.load(FIXTURES / f'official_{variant}.pt', map_location='cpu', weights_only=True)
    for stage in (1, 2):
        data[f's{stage}_state_dict'] = synthetic_state_dict(data.pop(f's{stage}_weights'))
    return data


def load_cli_fixture(task: str) -> Dict[str, Any]:
    """``cli_<task>.pt`` with its ``state_dict`` rebuilt and its PNGs as paths (``<role>_png``)."""
    data = torch.load(FIXTURES / f'cli_{task}.pt', map_location='cpu', weights_only=True)
    data['state_dict'] = synthetic_state_dict(data.pop('weights'))
    for role in data.pop('images'):
        data[f'{role}_png'] = str(FIXTURES / f'cli_{task}_{role}.png')
    return data


def row_digests(image: np.ndarray, left_out: np.ndarray) -> List[str]:
    """SHA-256 (first 16 bytes, hex) of each row of an HWC uint8 image whose flat positions
    ``left_out`` are zeroed first: a compact stand-in for an image that must be matched exactly
    everywhere else."""
    image = np.array(image, dtype=np.uint8, order='C')  # a copy
    image.reshape(-1)[left_out] = 0
    return [hashlib.sha256(row.tobytes()).hexdigest()[:32] for row in image]


@functools.lru_cache(maxsize=1)
def _key_layouts() -> Dict[str, Any]:
    with gzip.open(FIXTURES / 'keys.json.gz', 'rt', encoding='utf-8') as f:
        return json.load(f)


def load_keys_fixture(name: str, stage: int) -> Dict[str, list]:
    """``{key: shape}`` of the released layout ``keys_<name>_S<stage>`` (``keys.json.gz``)."""
    data = _key_layouts()[f'keys_{name}_S{stage}']
    assert data['stage'] in (stage, f'S{stage}', str(stage)), data['stage']
    return {k: list(v) for k, v in data['keys'].items()}


#: Released key layouts of ``keys.json.gz`` -> the ``(task, scale, big)`` that names them.
RELEASED_LAYOUTS: Dict[str, tuple] = {
    'deblur': ('deblur', 1, False), 'sr_x4': ('sr', 4, False), 'sr_x2': ('sr', 2, False),
    'sr_x1': ('sr', 1, False), 'inp': ('inpaint', 1, False), 'inpbig': ('inpaint', 1, True),
}
_DUPLICATE_PREFIXES = {'diffusion.model.': 'denoise.', 'diffusion.condition.': 'condition.'}


def released_weights_spec(name: str, stage: int, seed: int = 0) -> Dict[str, Any]:
    """A :func:`synthetic_state_dict` spec of the full-size layout ``keys_<name>_S<stage>``.

    Built from the keys and shapes alone, with the widths of the fixtures' README: weights of two
    or more dimensions ``+- 1 / sqrt(fan_in)``; norm weights and attention temperatures
    ``1 +- 0.1``; other vectors ``+- 0.1``. The stage-2 duplicates ``diffusion.model.*`` /
    ``diffusion.condition.*`` are the same tensors as their originals and the 12 schedule buffers
    are the released schedule (4 steps, betas 0.1 .. 0.99), as in the released files.
    """
    from diffir_mm.archs.ipr_diffusion import IPRDiffusion
    from diffir_mm.checkpoint.naming import official_schedule

    keys = load_keys_fixture(name, stage)
    schedule = official_schedule(types.SimpleNamespace(diffusion=IPRDiffusion()))
    entries = []
    for key in sorted(keys, key=lambda k: k.startswith('diffusion.')):  # originals first
        shape = keys[key]
        duplicate = next((d for d in _DUPLICATE_PREFIXES if key.startswith(d)), None)
        if duplicate is not None:
            original = _DUPLICATE_PREFIXES[duplicate] + key[len(duplicate):]
            entries.append((key, {'same_as': original}))
        elif key.startswith('diffusion.'):
            entries.append((key, {'tensor': schedule[key[len('diffusion.'):]]}))
        elif key.endswith('temperature') or (len(shape) == 1 and key.endswith('.weight')):
            entries.append((key, {'shape': shape, 'offset': 1.0, 'width': 0.1}))
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            entries.append((key, {'shape': shape, 'offset': 0.0, 'width': fan_in ** -0.5}))
        else:
            entries.append((key, {'shape': shape, 'offset': 0.0, 'width': 0.1}))
    return {'seed': seed, 'entries': entries}


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


def write_tiny_inference_config(path, mean=(0., 0., 0.), std=(255., 255., 255.)) -> str:
    """An inference-only mmengine config of ``tiny_net('deblur')`` (its ``model.generator``)
    with a data preprocessor of ``mean`` / ``std``; returns ``path``."""
    path = os.fspath(path)
    with open(path, 'w', encoding='utf-8') as fh:
        fh.write(
            "custom_imports = dict(imports=['diffir_mm.registration'], "
            "allow_failed_imports=False)\n"
            "model = dict(type='BaseEditModel',\n"
            "    generator=dict(type='DiffIRS2Net', task='deblur', scale=1, dim=8,\n"
            "        num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8],\n"
            "        ffn_expansion_factor=2.0, bias=False, LayerNorm_type='WithBias',\n"
            "        n_encoder_res=1),\n"
            f"    data_preprocessor=dict(type='DataPreprocessor', mean={list(mean)},\n"
            f"        std={list(std)}))\n")
    return path


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
# training runs with injected faults (tests/test_tools/test_train_reliability.py)
# ---------------------------------------------------------------------------
#: Where a save is interrupted (a process death, as SIGKILL: no clean-up of any kind).
SAVE_FAULTS = ('during_write', 'after_rename', 'during_pointer', 'after_pointer', 'after_delete')
_TESTS_DIR = osp.dirname(osp.abspath(__file__))


def _die() -> None:
    os._exit(137)


def _read_text(path: str) -> str:
    with open(path, encoding='utf-8', errors='replace') as fh:
        return fh.read()


def install_save_fault(kind: str, iteration: int) -> None:
    """Make this process die at step ``kind`` of the save of ``iter_<iteration>.pth``.

    ``during_write``: half of the checkpoint is in its temporary file; ``after_rename``: the
    checkpoint is complete, the pointer still names the previous one; ``during_pointer``: the
    pointer's temporary file is written, not renamed; ``after_pointer``: the pointer names the
    new checkpoint, the rotation has not deleted anything; ``after_delete``: the first
    checkpoint the rotation deletes at or after ``iteration`` is gone. ``enospc_during_write``:
    the checkpoint write fails with ``ENOSPC`` half-way (the disk-full test without a tmpfs).
    Patches ``os`` of this process: for forked test runs only.
    """
    import errno
    import re

    import diffir_mm.checkpoint.writing as writing_module
    import diffir_mm.engine.checkpoint_hook as hook_module
    from diffir_mm.utils import atomic

    name = f'iter_{iteration}.pth'
    periodic = re.compile(r'^iter_(\d+)\.pth$')
    real_write, real_replace, real_remove = atomic.write_bytes_atomic, os.replace, os.remove
    state = dict(saved=False)

    def write(path, data):
        if osp.basename(path) == name and kind == 'during_write':
            fd = os.open(atomic.temp_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data[:len(data) // 2])
            os.fsync(fd)
            _die()
        if osp.basename(path) == name and kind == 'enospc_during_write':
            tmp = atomic.temp_path(path)
            with open(tmp, 'wb') as fh:
                fh.write(data[:len(data) // 2])
            os.unlink(tmp)  # what write_bytes_atomic does on a failed write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(path, data)

    def replace(src, dst):
        base = osp.basename(dst)
        pointer = base == 'last_checkpoint'
        if kind == 'during_pointer' and pointer and _read_text(src).endswith(name):
            _die()
        real_replace(src, dst)
        if kind == 'after_rename' and base == name:
            _die()
        if kind == 'after_pointer' and pointer and _read_text(dst).endswith(name):
            _die()
        match = periodic.match(base)
        if match and int(match.group(1)) >= iteration:
            state['saved'] = True

    def remove(path):
        real_remove(path)
        if kind == 'after_delete' and state['saved'] and periodic.match(osp.basename(path)):
            _die()

    # the checkpoint (diffir_mm.checkpoint.write_serialized) and the pointer (the hook)
    writing_module.write_bytes_atomic = hook_module.write_bytes_atomic = write
    os.replace, os.remove = replace, remove


def register_test_hooks() -> None:
    """Register the test-only hooks ``InjectNonFiniteHook`` and ``UndoIterationHook``.

    * ``InjectNonFiniteHook(iteration, rank=None)``: at 1-based ``iteration`` (on ``rank`` only,
      or every rank) the data preprocessor's ``inputs`` are multiplied by ``nan``, so every loss
      of that step is non-finite (activations too: BatchNorm statistics see it).
    * ``UndoIterationHook(iteration)``: the reference of a skipped batch: after ``iteration``
      (and its EMA update) the model (parameters, buffers, EMA) and the optimizers are put back
      as they were before it; data, random streams and the LR schedule moved on.

    A config names a module that calls this in ``custom_imports`` (see
    :func:`write_test_hooks_module`).
    """
    import copy

    from mmagic.registry import HOOKS
    from mmengine.hooks import Hook

    from diffir_mm.utils.wrappers import unwrap_model

    class InjectNonFiniteHook(Hook):
        priority = 'NORMAL'

        def __init__(self, iteration: int, rank: Optional[int] = None) -> None:
            self.iteration, self.rank, self._handle = iteration, rank, None

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter + 1 != self.iteration or self.rank not in (None, runner.rank):
                return

            def poison(module, args, output):
                output['inputs'] = output['inputs'] * float('nan')
                return output

            model = unwrap_model(runner.model)
            self._handle = model.data_preprocessor.register_forward_hook(poison)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if self._handle is not None:
                self._handle.remove()
                self._handle = None

    class UndoIterationHook(Hook):
        priority = 'BELOW_NORMAL'  # after the EMA (NORMAL), before the LR scheduler (LOW)

        def __init__(self, iteration: int) -> None:
            self.iteration, self._saved = iteration, None

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter + 1 == self.iteration:
                self._saved = (copy.deepcopy(unwrap_model(runner.model).state_dict()),
                               copy.deepcopy(runner.optim_wrapper.state_dict()))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if self._saved is not None:
                model_state, optim_state = self._saved
                unwrap_model(runner.model).load_state_dict(model_state)
                runner.optim_wrapper.load_state_dict(optim_state)
                self._saved = None

    for cls in (InjectNonFiniteHook, UndoIterationHook):
        HOOKS.register_module(module=cls, force=True)


def write_test_hooks_module(folder: str) -> str:
    """Write ``<folder>/reliability_test_hooks.py`` (registers :func:`register_test_hooks` on
    import) and return its module name, for ``custom_imports`` with ``folder`` and ``tests/`` on
    ``PYTHONPATH`` (:func:`hooks_env`)."""
    with open(osp.join(folder, 'reliability_test_hooks.py'), 'w', encoding='utf-8') as fh:
        fh.write('from helpers import register_test_hooks\n\nregister_test_hooks()\n')
    return 'reliability_test_hooks'


def hooks_env(folder: str, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """:func:`subprocess_env` with ``folder`` (see :func:`write_test_hooks_module`) and
    ``tests/`` on ``PYTHONPATH``."""
    return subprocess_env(extra, pythonpath=[folder, _TESTS_DIR])


def train_in_forks(runs: Sequence[Dict[str, Any]], hooks_folder: str,
                   timeout: float = 1800) -> List[Dict[str, Any]]:
    """Run ``tools/train.py``'s ``main(argv)`` once per run, each in a fork of one interpreter.

    The interpreter imports the mm stack once (on this machine it costs more than a tiny
    training run); every run is a fresh child process with its own output. Each run is a dict:
    ``argv`` (the command line after ``train.py``), optionally ``fault`` (``(kind, iteration)``
    of :func:`install_save_fault`), ``kill_when`` (a glob: the child gets SIGKILL as soon as
    a matching path appears, i.e. in the middle of that write), ``copytree`` (``[src, dst]``
    copied before the run) and ``truncate`` (``[[path, size], ...]`` cut before the run).

    Returns:
        Per run: ``rc`` (exit status; ``-9`` when killed), ``stdout``, ``stderr``, ``files``
        (the names in the run's ``--work-dir`` afterwards) and ``pointer`` (its
        ``last_checkpoint``, None when absent).
    """
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        spec = osp.join(tmp, 'runs.json')
        with open(spec, 'w', encoding='utf-8') as fh:
            json.dump(list(runs), fh)
        run_python(['-c', f'import helpers; helpers._fork_driver({spec!r})'],
                   env=hooks_env(hooks_folder), timeout=timeout)
        with open(spec + '.results', encoding='utf-8') as fh:
            return json.load(fh)


def _fork_driver(spec: str) -> None:
    """The interpreter of :func:`train_in_forks`."""
    import glob
    import json
    import signal
    import time
    import traceback

    with open(spec, encoding='utf-8') as fh:
        runs = json.load(fh)
    train = import_tool('train')
    from diffir_mm.utils.warnings import quiet_mm_import_warnings
    with quiet_mm_import_warnings():
        from mmengine.runner import Runner  # noqa: F401
        from diffir_mm.registration import register_all_modules
        register_all_modules(init_default_scope=False)
    results = []
    for index, run in enumerate(runs):
        out, err = f'{spec}.{index}.out', f'{spec}.{index}.err'
        if run.get('copytree'):
            shutil.copytree(*run['copytree'])
        for path, size in run.get('truncate', ()):
            os.truncate(path, size)
        existing = set(glob.glob(run['kill_when'])) if run.get('kill_when') else set()
        pid = os.fork()
        if pid == 0:  # the child: one training run, then exit without clean-up
            code = 1
            try:
                for stream, path in ((1, out), (2, err)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.dup2(fd, stream)
                if run.get('fault'):
                    install_save_fault(*run['fault'])
                code = train.main(run['argv'])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported in the run's stderr
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code or 0)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG if run.get('kill_when') else 0)
            if done:
                break
            if run.get('kill_when') and set(glob.glob(run['kill_when'])) - existing:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        work_dir = run['argv'][run['argv'].index('--work-dir') + 1]
        pointer = osp.join(work_dir, 'last_checkpoint')
        results.append(dict(rc=os.waitstatus_to_exitcode(status), stdout=_read_text(out),
                            stderr=_read_text(err), files=sorted(os.listdir(work_dir)),
                            pointer=_read_text(pointer) if osp.exists(pointer) else None))
    with open(spec + '.results', 'w', encoding='utf-8') as fh:
        json.dump(results, fh)


def assert_same_training_state(a: str, b: str) -> None:
    """Two checkpoint files hold bit-identical weights, optimizer state and schedules."""
    from diffir_mm.checkpoint import read_checkpoint

    ca, cb = read_checkpoint(a), read_checkpoint(b)
    assert ca['meta']['iter'] == cb['meta']['iter']
    assert ca['state_dict'].keys() == cb['state_dict'].keys()
    differ = [k for k, v in ca['state_dict'].items() if not torch.equal(v, cb['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ: {differ[:5]}'

    def leaves(tree, prefix=''):
        if isinstance(tree, dict):
            for key, value in tree.items():
                yield from leaves(value, f'{prefix}.{key}')
        elif isinstance(tree, (list, tuple)):
            for index, value in enumerate(tree):
                yield from leaves(value, f'{prefix}.{index}')
        else:
            yield prefix, tree

    opt_a, opt_b = dict(leaves(ca['optimizer'])), dict(leaves(cb['optimizer']))
    assert opt_a.keys() == opt_b.keys()
    for key, value in opt_a.items():
        same = torch.equal(value, opt_b[key]) if isinstance(value, torch.Tensor) \
            else value == opt_b[key]
        assert same, f'optimizer{key} differs'
    assert ca.get('param_schedulers') == cb.get('param_schedulers')


# web-app tests: the server in a subprocess, a headless browser
# ---------------------------------------------------------------------------
#: Chromium flags for a closed network: no background connections, a throw-away profile.
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage')


def browser_missing() -> Optional[str]:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed (pip install -r requirements/tests.txt)'
    if not shutil.which('chromedriver') or not (shutil.which('chromium')
                                                 or shutil.which('chromium-browser')):
        return ('no chromium + chromedriver: `make setup` installs them as root with apt '
                '(apt-get install chromium chromium-driver)')
    return None


def start_browser(download_dir: str, width: int = 1280, height: int = 1000):
    """Headless chromium driven by Selenium, downloading into ``download_dir``.

    The Debian ``chromedriver`` is named explicitly, so Selenium Manager (which would download
    a driver) never runs; the network log (``goog:loggingPrefs``) records every request.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium') or shutil.which('chromium-browser')
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix='chromium-')
    options.add_argument(f'--user-data-dir={profile}')
    options.add_argument(f'--window-size={width},{height}')
    options.add_experimental_option('prefs', {'download.default_directory': download_dir,
                                              'download.prompt_for_download': False})
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=options)
    # a busy shared machine can stall the browser for minutes (software WebGL, for one)
    driver.command_executor.client_config.timeout = 900
    driver.set_page_load_timeout(900)
    driver.set_script_timeout(900)
    driver.profile_dir = profile  # for stop_browser
    return driver


def stop_browser(driver) -> None:
    """Quit the browser; then end any of its processes left behind (an unresponsive browser
    does not quit, and its processes would spin on): those started with its own profile."""
    try:
        driver.quit()
    except Exception:  # noqa: BLE001 - cleaned up below
        pass
    marker = f'--user-data-dir={driver.profile_dir}'.encode()
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as fh:
                if marker in fh.read().split(b'\0'):
                    os.kill(int(pid), 9)
        except OSError:
            pass
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def requested_hosts(driver) -> List[str]:
    """The hosts of every http(s) request the page made (from the performance log)."""
    hosts = set()
    for entry in driver.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            url = message['params']['request']['url']
            if url.startswith(('http://', 'https://')):
                hosts.add(url.split('/')[2])
    return sorted(hosts)


#: Run as ``python -c NETWORK_GUARD SCRIPT ARGS``: SCRIPT with every connection or name lookup
#: outside the loopback refused (ENETUNREACH) and recorded, one line each, in the file named by
#: ``$DIFFIR_NET_LOG``.
NETWORK_GUARD = """
import errno, ipaddress, os, runpy, socket, sys
LOG = os.environ['DIFFIR_NET_LOG']
def local(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ('localhost', '')
def refuse(what):
    with open(LOG, 'a') as fh:
        fh.write(what + '\\n')
    raise OSError(errno.ENETUNREACH, 'network blocked by the test: ' + what)
connect, connect_ex, lookup = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def guarded(real):
    def call(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            refuse(f'connect {address[0]}:{address[1]}')
        return real(self, address)
    return call
def getaddrinfo(host, *args, **kwargs):
    if host is not None and not local(host if isinstance(host, str) else host.decode()):
        refuse(f'lookup {host}')
    return lookup(host, *args, **kwargs)
socket.socket.connect, socket.socket.connect_ex = guarded(connect), guarded(connect_ex)
socket.getaddrinfo = getaddrinfo
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def start_app(args: Sequence[str], port: int, log_path: str, net_log: Optional[str] = None,
              timeout: float = 180) -> subprocess.Popen:
    """Start ``tools/app.py ARGS --port PORT`` (one thread) and wait until it serves its page.

    Args:
        args: Options of ``tools/app.py``.
        port: Where it listens (on 127.0.0.1).
        log_path: Its output.
        net_log: Run it under :data:`NETWORK_GUARD`, recording blocked connections here.
        timeout: Seconds to wait for the page.

    Raises:
        AssertionError: the server exited or did not answer within ``timeout`` (log tail).
    """
    log = open(log_path, 'w', encoding='utf-8')
    env = subprocess_env({'OMP_NUM_THREADS': '1'})
    guard: List[str] = []
    if net_log:
        env['DIFFIR_NET_LOG'] = net_log
        guard = ['-c', NETWORK_GUARD]
    proc = subprocess.Popen([PYTHON, *guard, osp.join(TOOLS_DIR, 'app.py'), *args, '--port',
                             str(port), '--threads', '1'], cwd=REPO_ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=5) as reply:
                if reply.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_process(proc)
    with open(log_path, encoding='utf-8') as fh:
        tail = fh.read()[-3000:]
    raise AssertionError(f'the app did not start (exit status {proc.returncode}):\n{tail}')


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate ``proc`` (then kill it) and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


# ---------------------------------------------------------------------------
# recipes with tiny networks (device audit, mixed-precision training)
# ---------------------------------------------------------------------------
def tiny_recipe(name: str, **model: Any):
    """``configs/<name>.py`` with tiny networks, random loss networks and no stage-1 file.

    The recipe keeps its editor, data preprocessor, losses and optimizer wrappers; ``model``
    updates ``cfg.model`` last.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', f'{name}.py'))
    m = cfg.model
    refine = 0 if m.generator.get('task') == 'inpaint' else 1
    for net in (m.generator, m.get('teacher')):
        if net:
            net.update(TINY, num_refinement_blocks=refine)
    disc = m.get('discriminator')
    if disc and 'mid_channels' in disc:
        disc.mid_channels = 8
    elif disc:
        disc.update(ndf=8, n_layers=2)
    if m.get('perceptual_loss'):
        m.perceptual_loss.update(vgg_path=None, allow_random_weights=True)
    if m.get('resnet_pl_loss'):
        m.resnet_pl_loss.update(weights_path=None, allow_random_weights=True)
    if 'stage1_checkpoint' in m:
        m.stage1_checkpoint = None
    m.update(model)
    return cfg


def _loaded(key: str, img: np.ndarray) -> Dict[str, Any]:
    """What ``LoadImageFromFile(key=key, channel_order='rgb')`` puts into the results."""
    return {key: img, f'{key}_path': f'{key}.png', f'ori_{key}_shape': img.shape,
            f'{key}_channel_order': 'rgb', f'{key}_color_type': 'color'}


def recipe_batch(cfg, split: str = 'train', size: int = 512, num: int = 2) -> dict:
    """A collated batch of the recipe's ``train`` / ``val`` pipeline on sample photos.

    The loading steps are replaced by photos in memory (``gt``; ``img`` is the GT downscaled by
    the recipe's SR scale), everything after them runs as configured.
    """
    import copy as _copy

    from mmengine.dataset import Compose, pseudo_collate

    loader = cfg[f'{split}_dataloader']
    loader = loader[0] if isinstance(loader, (list, tuple)) else loader
    dataset = loader.dataset
    pipeline = dataset.get('pipeline') or dataset.dataset.pipeline
    steps = Compose([s for s in _copy.deepcopy(pipeline)  # MMagic's and CheckedLoadImageFromFile
                     if not s['type'].endswith('LoadImageFromFile')])
    gen = cfg.model.generator
    scale = int(gen.get('scale', 1)) if gen.get('task') == 'sr' else 1
    items = []
    for name in SAMPLE_IMAGES[:num]:
        gt = sample_image(name, size)
        results = _loaded('gt', gt)
        results.update(_loaded('img', np.ascontiguousarray(gt[::scale, ::scale])))
        items.append(steps(results))
    return pseudo_collate(items)

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
