"""Utilities for the command-line entry points, file writing and model wrappers.

Submodules:

* :mod:`diffir_mm.utils.warnings` (standard library only): :func:`quiet_mm_import_warnings`.
* :mod:`diffir_mm.utils.atomic` (standard library only): :func:`write_bytes_atomic`.
* :mod:`diffir_mm.utils.wrappers` (torch): :func:`unwrap_model`.
* :mod:`diffir_mm.utils.dist` (torch): :func:`prepare_cpu_distributed`.
* :mod:`diffir_mm.utils.host_memory` (standard library only): :func:`keep_freed_memory`,
  :func:`keep_freed_memory_unless_disabled`.

Names are resolved lazily (PEP 562) so that ``import diffir_mm.utils`` does not import torch or
mmengine.
"""
import importlib
from typing import Any, Dict, List

_LAZY: Dict[str, str] = {
    'quiet_mm_import_warnings': 'warnings',
    'install_mm_import_filters': 'warnings',
    'write_bytes_atomic': 'atomic',
    'unwrap_model': 'wrappers',
    'prepare_cpu_distributed': 'dist',
    'keep_freed_memory': 'host_memory',
    'keep_freed_memory_unless_disabled': 'host_memory',
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access.

    Args:
        name: Attribute name.

    Returns:
        The attribute.

    Raises:
        AttributeError: If ``name`` is not provided by this package.
    """
    if name in _LAZY:
        module = importlib.import_module(f'{__name__}.{_LAZY[name]}')
        return getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__() -> List[str]:
    """List the public names, including the lazy ones.

    Returns:
        Attribute names.
    """
    return sorted(set(globals()) | set(_LAZY))
