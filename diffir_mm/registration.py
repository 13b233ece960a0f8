"""Importing this module registers every diffir_mm class into MMagic's registries."""
from . import engine  # noqa: F401
from . import models  # noqa: F401
from . import datasets  # noqa: F401
from . import evaluation  # noqa: F401
from .apis import register_mmagic_inferencer

register_mmagic_inferencer()  # adds 'diffir' to MMagicInferencer
