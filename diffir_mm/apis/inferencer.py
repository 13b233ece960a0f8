"""Make ``MMagicInferencer('diffir', ...)`` work without touching installed files.

MMagic 1.2.0 only serves model names from a hard-coded list whose metafiles live inside the
mmagic package, and it re-roots every config path into that package. Importing
:mod:`diffir_mm.registration` calls :func:`register_mmagic_inferencer` (idempotent), which

1. appends ``'diffir'`` to ``MMagicInferencer.inference_supported_models`` with the settings of
   our ``configs/metafile.yml`` (after MMagic has read its own metafiles), and
2. wraps ``MMagicInferencer._get_inferencer_kwargs`` so that, for DiffIR, config paths resolve
   in :func:`config_root` (the source checkout, or the copy packaged in ``diffir_mm/.mim``)
   and checkpoints are validated and -- when they are official BasicSR / LaMa files --
   converted once (cached next to the file's hash) to our format;
3. serves inpainting configs (generator ``task='inpaint'``) with
   :class:`~diffir_mm.apis.inpainting_inferencer.DiffIRInpaintingInferencer`
   (``infer(img=..., mask=...)``, the official predictor's padding and hole rule);
4. runs the DiffIR editors it serves in ``precision='auto'`` (bf16 on CUDA, fp32 on the CPU;
   :func:`serve_in_auto_precision`) unless the config's ``model.test_cfg`` names a precision;
   ``tools/test.py`` and validation keep the editors' fp32 default.

Other model names go through MMagic's original code unchanged. The task of our first metafile
entry is ``Image Restoration``, which MMagic serves with its ``ImageSuperResolutionInferencer``.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
from functools import wraps
from typing import Any, Dict, List, Optional

import yaml

from diffir_mm.checkpoint import (CheckpointMismatchError, read_components, require,
                                  write_checkpoint)

__all__ = ['DIFFIR_MODEL_NAME', 'register_mmagic_inferencer', 'diffir_settings',
           'prepare_checkpoint', 'config_root', 'serve_in_auto_precision']

DIFFIR_MODEL_NAME = 'diffir'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The source checkout holding the package (when diffir_mm runs from one).
REPO_ROOT = osp.dirname(PACKAGE_DIR)
#: The configs copied into the package at build time (``setup.py``), like MMagic's ``.mim``.
PACKAGED_ROOT = osp.join(PACKAGE_DIR, '.mim')
CACHE_DIR = osp.join(osp.expanduser(os.environ.get('DIFFIR_CACHE', '~/.cache/diffir_mm')),
                     'converted')


def config_root() -> str:
    """Folder whose ``configs/`` the metafile paths are relative to.

    The source checkout when diffir_mm runs from one (so edits take effect), else the copy that a
    (non-editable) ``pip install`` put into ``diffir_mm/.mim``.
    """
    for root in (REPO_ROOT, PACKAGED_ROOT):
        if osp.isfile(osp.join(root, 'configs', 'metafile.yml')) and \
                osp.isdir(osp.join(root, 'configs', '_base_')):
            return root
    raise FileNotFoundError(f'DiffIR configs not found in {REPO_ROOT} or {PACKAGED_ROOT}; '
                            'reinstall diffir-mm (pip install .)')


def diffir_settings() -> Dict[str, Any]:
    """``{'task', 'settings'}`` for ``'diffir'`` read from our ``configs/metafile.yml``."""
    with open(osp.join(config_root(), 'configs', 'metafile.yml'), encoding='utf-8') as f:
        meta = yaml.safe_load(f)
    models = meta['Models']
    return {'task': models[0]['Results'][0]['Task'], 'settings': models}


def _resolve_config(path: str) -> str:
    if osp.isabs(path) and osp.isfile(path):
        return path
    root = config_root()
    candidate = osp.join(root, path)
    if osp.isfile(candidate):
        return candidate
    raise FileNotFoundError(f'DiffIR config not found: {path} (looked in {root})')


def _generator_cfg(config: str) -> Dict[str, Any]:
    from mmengine import Config
    return dict(Config.fromfile(config).model.generator)


def _is_diffir_config(config: str) -> bool:
    try:
        return str(_generator_cfg(config).get('type', '')).startswith('DiffIR')
    except Exception:  # noqa: BLE001 - not readable as a DiffIR config: let MMagic decide
        return False


def prepare_checkpoint(ckpt: str, config: str) -> str:
    """Validate ``ckpt`` against ``config``; convert official files to our format (cached).

    Returns:
        A path mmengine's ``load_checkpoint`` loads into the config's model.

    Raises:
        FileNotFoundError / CheckpointMismatchError: with a one-line reason.
    """
    components = read_components(ckpt)
    gen = _generator_cfg(config)
    stage = 2 if gen['type'] == 'DiffIRS2Net' else 1
    networks = {name: require(components[name], stage=stage, task=gen.get('task'),
                              scale=gen.get('scale', 4), needed_by=osp.basename(config))
                for name in ('generator', 'generator_ema') if name in components}
    if not networks:
        raise CheckpointMismatchError(f'{ckpt} holds no generator network')
    if next(iter(networks.values())).file_format == 'mmengine':
        return ckpt  # already ours
    with open(ckpt, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    # '-v2': files cached before params / params_ema were kept apart are not reused
    out = osp.join(CACHE_DIR, f'{digest}-v2.pth')
    if not osp.isfile(out):
        write_checkpoint(out, networks, dict(converted_from=osp.basename(ckpt)), overwrite=True)
    return out


def _task_of(config: str, default: str) -> str:
    """The inferencer task of a DiffIR config: ours for inpainting networks, else ``default``."""
    if _generator_cfg(config).get('task') == 'inpaint':
        from .inpainting_inferencer import DIFFIR_INPAINTING_TASK
        return DIFFIR_INPAINTING_TASK
    return default


def serve_in_auto_precision(inferencer: Any) -> None:
    """Make the DiffIR editor of ``inferencer`` infer in ``precision='auto'`` unless its
    ``test_cfg`` names a precision (see :func:`diffir_mm.models.editors.common.stage2_inference`).
    Models of other packages are left alone."""
    model = getattr(inferencer, 'model', None)
    if model is None or not type(model).__module__.startswith('diffir_mm.'):
        return
    test_cfg = dict(model.test_cfg or {})
    test_cfg.setdefault('precision', 'auto')
    model.test_cfg = test_cfg


def _register_inpainting_dispatch() -> None:
    """Serve :data:`~.inpainting_inferencer.DIFFIR_INPAINTING_TASK` with our inferencer.

    MMagic maps task names to inferencer classes in ``Inferencers.__init__``; the class that
    ``MMagicInferencer`` instantiates is replaced by a subclass that knows our task name and
    hands every other one to MMagic's code.
    """
    from mmagic.apis import mmagic_inferencer
    from mmagic.apis.inferencers import Inferencers

    class DiffIRInferencers(Inferencers):
        """MMagic's ``Inferencers`` plus DiffIR inpainting."""

        def __init__(self, task: Optional[str] = None, config: Any = None,
                     ckpt: Optional[str] = None, device: Any = None,
                     extra_parameters: Optional[Dict] = None, seed: int = 2022) -> None:
            from .inpainting_inferencer import DIFFIR_INPAINTING_TASK, DiffIRInpaintingInferencer
            if task != DIFFIR_INPAINTING_TASK:
                super().__init__(task, config, ckpt, device, extra_parameters, seed)
            else:
                self.task = task
                self.inferencer = DiffIRInpaintingInferencer(config, ckpt, device,
                                                             extra_parameters, seed=seed)
            serve_in_auto_precision(self.inferencer)

    if mmagic_inferencer.Inferencers is Inferencers:
        mmagic_inferencer.Inferencers = DiffIRInferencers


def register_mmagic_inferencer() -> None:
    """Teach ``mmagic.apis.MMagicInferencer`` the model name ``'diffir'`` (idempotent)."""
    from mmagic.apis import MMagicInferencer
    if getattr(MMagicInferencer, '_diffir_registered', False):
        return
    original_init = MMagicInferencer.init_inference_supported_models_cfg
    original_kwargs = MMagicInferencer._get_inferencer_kwargs

    def init_cfg() -> None:
        original_init()  # reads mmagic's own metafiles first ('diffir' is not there)
        if DIFFIR_MODEL_NAME not in MMagicInferencer.inference_supported_models:
            MMagicInferencer.inference_supported_models.append(DIFFIR_MODEL_NAME)
        MMagicInferencer.inference_supported_models_cfg[DIFFIR_MODEL_NAME] = diffir_settings()

    @wraps(original_kwargs)
    def get_kwargs(self, model_name: Optional[str], model_setting: Optional[int],
                   config_name: Optional[str], model_config: Optional[str],
                   model_ckpt: Optional[str], extra_parameters: Optional[Dict]) -> Dict:
        if model_name is None and model_config and _is_diffir_config(model_config):
            model_name = DIFFIR_MODEL_NAME  # config + checkpoint only, no name needed
        if model_name != DIFFIR_MODEL_NAME:
            return original_kwargs(self, model_name, model_setting, config_name, model_config,
                                   model_ckpt, extra_parameters)
        cfgs = self.get_model_config(model_name)
        settings: List[Dict[str, Any]] = cfgs['settings']
        chosen = settings[model_setting or 0]
        if config_name:
            named = [s for s in settings if s['Name'] == config_name]
            if not named:
                raise ValueError(f'unknown DiffIR config_name {config_name!r}; choose from '
                                 f'{[s["Name"] for s in settings]}')
            chosen = named[0]
        config = _resolve_config(model_config or chosen['Config'])
        ckpt = model_ckpt
        if not ckpt:
            where = f' (the official file is linked from {chosen["Weights"]})' \
                if chosen.get('Weights') else ''
            raise ValueError(f'DiffIR downloads nothing: pass model_ckpt= for setting '
                             f'{chosen["Name"]!r}, a local file (ours or the official '
                             f'release){where}')
        kwargs = {'task': _task_of(config, cfgs['task']), 'config': config,
                  'ckpt': prepare_checkpoint(ckpt, config)}
        if extra_parameters is not None:
            kwargs['extra_parameters'] = extra_parameters
        return kwargs

    _register_inpainting_dispatch()
    MMagicInferencer.init_inference_supported_models_cfg = staticmethod(init_cfg)
    MMagicInferencer._get_inferencer_kwargs = get_kwargs
    MMagicInferencer._diffir_registered = True
    if MMagicInferencer.inference_supported_models_cfg_inited:
        init_cfg()
