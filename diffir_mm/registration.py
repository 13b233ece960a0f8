"""Register every diffir_mm class into MMagic's registries (the plugin's mm layer).

Importing this module imports the submodules whose classes carry ``@MODELS.register_module()``
and friends (editors, generators, losses, transforms, metrics, hooks, schedulers) and adds the
model name ``'diffir'`` to ``mmagic.apis.MMagicInferencer``. Configs name it in
``custom_imports``; scripts call :func:`register_all_modules`, the counterpart of
``mmagic.utils.register_all_modules``.
"""
import os

# mmagic.datasets imports albumentations, which asks PyPI for a newer version on import; DiffIR
# never touches the network at run time (an explicit user setting wins). Set before mmagic loads.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

from . import datasets  # noqa: E402,F401
from . import engine  # noqa: E402,F401
from . import evaluation  # noqa: E402,F401
from . import models  # noqa: E402,F401
from .apis import register_mmagic_inferencer  # noqa: E402

__all__ = ['register_all_modules']

register_mmagic_inferencer()  # adds 'diffir' to MMagicInferencer


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register MMagic's and diffir_mm's modules (ours are registered by importing this module).

    Args:
        init_default_scope: Also make ``'mmagic'`` the default registry scope, as
            ``mmagic.utils.register_all_modules`` does.
    """
    from mmagic.utils import register_all_modules as register_mmagic_modules
    register_mmagic_modules(init_default_scope=init_default_scope)
