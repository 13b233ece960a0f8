"""diffir-mm: DiffIR as an MMagic plugin."""
__version__ = '0.1.0'
