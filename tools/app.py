#!/usr/bin/env python
"""Start the DiffIR web app from a source checkout (same as the ``diffir-app`` command).

Usage: ``python tools/app.py [--checkpoint CKPT] [--host 127.0.0.1] [--port 7860] [--share]``
(see ``python tools/app.py -h`` and :mod:`diffir_mm.app.launch`).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diffir_mm.app.launch import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
