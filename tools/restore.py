#!/usr/bin/env python
"""Restore images with DiffIR from a source checkout (same as the ``diffir-restore`` command).

Usage: ``python tools/restore.py INPUT [INPUT ...] -o OUT_DIR --task deblur --checkpoint CKPT``
(see ``python tools/restore.py -h`` and :mod:`diffir_mm.cli.restore`).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diffir_mm.cli.restore import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
