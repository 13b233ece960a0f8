"""When and how diffir_mm's classes get registered into MMagic's registries.

* ``import diffir_mm`` imports the mm layer (:mod:`diffir_mm.registration`) at once, which
  registers everything into ``mmagic.registry``.
* ``import diffir_mm.archs`` (or another torch-only subpackage) must not pull in mmagic. In that
  case the mm layer is appended to the lazy ``locations`` of MMagic's registries as soon as
  ``mmagic.registry`` is loaded, so the first ``MODELS.build``/``get`` imports it -- a config with
  ``custom_imports=['diffir_mm']`` keeps working in the same process.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType
from typing import Optional

__all__ = ['register_all_modules', 'register_on_import', 'MM_LAYER_AVAILABLE',
           'TORCH_ONLY_PACKAGES']

#: Subpackages that must stay importable without mmagic / mmcv / mmengine.
TORCH_ONLY_PACKAGES = ('diffir_mm.archs', 'diffir_mm.inference', 'diffir_mm.cli',
                       'diffir_mm.utils')
#: Registries whose first lookup imports the mm layer in deferred mode.
_REGISTRIES = ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'PARAM_SCHEDULERS')
_MM_LAYER = 'diffir_mm.registration'

MM_LAYER_AVAILABLE: bool = importlib.util.find_spec('mmagic') is not None


def register_all_modules() -> None:
    """Import the mm layer: registers every diffir_mm class into MMagic's registries."""
    importlib.import_module(_MM_LAYER)


def _outer_import_target() -> Optional[str]:
    """Name of the module whose import triggered ``import diffir_mm`` (None for a direct one)."""
    targets = []
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == '_find_and_load_unlocked':
            name = frame.f_locals.get('name')
            if isinstance(name, str):
                targets.append(name)
        frame = frame.f_back
    if len(targets) >= 2 and targets[0] == 'diffir_mm':
        return targets[1]
    return None


def _add_registry_locations(registry_module: ModuleType) -> None:
    for attr in _REGISTRIES:
        registry = getattr(registry_module, attr, None)
        locations = getattr(registry, '_locations', None)
        if registry is None or locations is None:
            continue
        if getattr(registry, '_imported', False):
            register_all_modules()
            return
        if _MM_LAYER not in locations:
            locations.append(_MM_LAYER)


def _extend_inferencer(module: ModuleType) -> None:
    from diffir_mm.apis.inferencer import register_mmagic_inferencer
    register_mmagic_inferencer(module.MMagicInferencer)


#: module -> what to do right after it has been loaded (deferred mode)
_POST_IMPORT = {
    'mmagic.registry': _add_registry_locations,
    'mmagic.apis.mmagic_inferencer': _extend_inferencer,
}


class _DeferredRegistration(importlib.abc.MetaPathFinder):
    """Finder that hooks diffir_mm into MMagic modules once they are loaded.

    ``mmagic.registry``: the mm layer joins the registries' lazy ``locations``;
    ``mmagic.apis.mmagic_inferencer``: ``'diffir'`` is added to ``MMagicInferencer``.
    """

    def __init__(self) -> None:
        self.pending = {k: v for k, v in _POST_IMPORT.items() if k not in sys.modules}

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        action = self.pending.pop(fullname, None)
        if action is None:
            return None
        sys.meta_path.remove(self)  # let the other finders locate the real module
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            if self.pending:
                sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_hook(module: ModuleType) -> None:
            exec_module(module)
            action(module)

        spec.loader.exec_module = exec_and_hook  # type: ignore[method-assign]
        return spec


def register_on_import() -> None:
    """Called by ``diffir_mm/__init__``: register now, or defer for torch-only imports."""
    if not MM_LAYER_AVAILABLE:
        return
    # mmagic.datasets imports albumentations, which asks PyPI for a newer version on import;
    # DiffIR never touches the network at run time (an explicit user setting wins).
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    target = _outer_import_target()
    torch_only = target is not None and target.startswith(TORCH_ONLY_PACKAGES)
    if not torch_only:
        register_all_modules()
        return
    for name, action in _POST_IMPORT.items():
        if name in sys.modules:
            action(sys.modules[name])
    if not any(isinstance(f, _DeferredRegistration) for f in sys.meta_path):
        finder = _DeferredRegistration()
        if finder.pending:
            sys.meta_path.insert(0, finder)
