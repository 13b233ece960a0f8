#!/usr/bin/env python
"""Export a stage-2 DiffIR model to ONNX (see :mod:`diffir_mm.deploy.export_cli`).

Usage: ``python tools/export_onnx.py CONFIG_OR_CHECKPOINT OUT.onnx [--task ...] [--scale N]
[--big] [--opset N] [--fp16] [--random-init]`` (``-h`` for all options).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diffir_mm.deploy.export_cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
