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
  weights.
* inference tests: :func:`tiny_net` and its checkpoints in the official / our layout.
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
