"""DiffIR editors (MMagic models that own losses and training steps)."""
from .diffir_inpaint import DiffIRInpaintS1, DiffIRInpaintS2
from .diffir_s1 import DiffIRS1
from .diffir_s2 import DiffIRS2
from .diffir_s2_gan import DiffIRS2GAN

__all__ = ['DiffIRS1', 'DiffIRS2', 'DiffIRS2GAN', 'DiffIRInpaintS1', 'DiffIRInpaintS2']
