"""Importing this module registers every diffir_mm class into MMagic's registries."""
from . import engine  # noqa: F401
from . import models  # noqa: F401
