"""Register the torch-only DiffIR networks as MMagic generators.

Registered names (``mmagic.registry.MODELS``): ``DiffIRS1Net``, ``DiffIRS2Net`` (full networks,
constructor arguments use the official names), ``DIRformer``, ``DiffIRCPEN``, ``IPRDenoiser``.
"""
from mmagic.registry import MODELS

from diffir_mm.archs import CPEN, DIRformer, DiffIRS1Net, DiffIRS2Net, IPRDenoiser

DIFFIR_GENERATORS = {
    'DiffIRS1Net': DiffIRS1Net,
    'DiffIRS2Net': DiffIRS2Net,
    'DIRformer': DIRformer,
    'DiffIRCPEN': CPEN,
    'IPRDenoiser': IPRDenoiser,
}
for _name, _cls in DIFFIR_GENERATORS.items():
    MODELS.register_module(name=_name, module=_cls)
