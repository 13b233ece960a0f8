"""Silence the import-time noise of the OpenMMLab / diffusers stack.

Importing ``mmagic.models`` pulls in diffusers, transformers, lpips, mmcv, tensorboard and friends,
which emit dozens of ``FutureWarning`` / ``UserWarning`` / ``DeprecationWarning`` messages that are
irrelevant to the user (deprecated torch APIs used by those packages, ``pkg_resources`` deprecation,
etc.).

:func:`quiet_mm_import_warnings` installs ``warnings`` filters that are scoped to those third-party
modules *and* to those three categories only, so warnings raised by our own code (``diffir_mm``), by
user code, or of any other category are still shown. It is meant for the command-line entry points
(``tools/*.py``); it never touches ``PYTHONWARNINGS`` or any other global environment setting.

This module only depends on the standard library, so it can be imported before anything heavy.
"""
import contextlib
import re
import warnings
from typing import Iterator, Sequence, Tuple, Type

__all__ = [
    'NOISY_MODULES', 'NOISY_CATEGORIES', 'noisy_module_regex',
    'install_mm_import_filters', 'quiet_mm_import_warnings'
]

#: Top-level packages whose import-time warnings are silenced.
NOISY_MODULES: Tuple[str, ...] = (
    'mmagic',
    'mmengine',
    'mmcv',
    'diffusers',
    'transformers',
    'huggingface_hub',
    'controlnet_aux',
    'timm',
    'lpips',
    'albumentations',
    'albucore',
    'torchvision',
    'torch',
    'tensorboard',
    'google',
    'pkg_resources',
    'setuptools',
    '_distutils_hack',
    'pydantic',
    'scipy',
    'skimage',
    'matplotlib',
    'imageio',
    'mediapipe',
    'facexlib',
    'face_alignment',
)

#: Warning categories that are silenced for :data:`NOISY_MODULES`.
NOISY_CATEGORIES: Tuple[Type[Warning],
                        ...] = (FutureWarning, UserWarning, DeprecationWarning)


def noisy_module_regex(modules: Sequence[str] = NOISY_MODULES) -> str:
    """Build the ``module`` regex used by :func:`warnings.filterwarnings`.

    ``warnings.filterwarnings(module=...)`` matches the ``__name__`` of the module a warning is
    attributed to (after ``stacklevel``), against the start of the string. The regex matches each
    package and its submodules.

    Args:
        modules: Top-level package names.

    Returns:
        A regex such as ``'(?:mmagic|mmengine)(?:\\..*)?$'``.
    """
    names = '|'.join(re.escape(m) for m in modules)
    return rf'(?:{names})(?:\..*)?$'


def install_mm_import_filters(
        modules: Sequence[str] = NOISY_MODULES,
        categories: Sequence[Type[Warning]] = NOISY_CATEGORIES) -> None:
    """Install (without restoring later) the scoped ``ignore`` filters.

    Prefer :func:`quiet_mm_import_warnings`, which restores the previous filters on exit. This
    variant is for entry points whose mm imports are lazy and happen later (e.g. inside
    ``Runner.from_cfg``).

    Args:
        modules: Packages whose warnings are ignored.
        categories: Categories that are ignored.
    """
    regex = noisy_module_regex(modules)
    for category in categories:
        warnings.filterwarnings('ignore', category=category, module=regex)


@contextlib.contextmanager
def quiet_mm_import_warnings(
        modules: Sequence[str] = NOISY_MODULES,
        categories: Sequence[Type[Warning]] = NOISY_CATEGORIES
) -> Iterator[None]:
    """Context manager that hides third-party import-time warnings.

    Inside the ``with`` block, warnings of ``categories`` attributed to any of ``modules`` (or their
    submodules) are ignored. The previous warning filters are restored on exit, so import the heavy
    stack *inside* the block.

    Example:
        >>> with quiet_mm_import_warnings():
        ...     import mmagic.models  # noqa: F401

    Args:
        modules: Packages whose warnings are ignored.
        categories: Categories that are ignored.
    """
    with warnings.catch_warnings():
        install_mm_import_filters(modules, categories)
        yield
