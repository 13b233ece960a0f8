"""``python -m diffir_mm.cli.restore``: the same as the ``diffir-restore`` command."""
import sys

from .command import main

sys.exit(main())
