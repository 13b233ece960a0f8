"""Fixtures of the deployment tests: tiny networks exported once per session."""
import pytest
import torch
from helpers import tiny_net

# Tiny models gain nothing from threads (see tests/test_inference/conftest.py).
torch.set_num_threads(1)

#: Every released task/scale (the big inpainting preset has the same tiny shape as 'inpaint').
PRESETS = ('deblur', 'sr_x4', 'sr_x2', 'sr_x1', 'inpaint')


@pytest.fixture(scope='session')
def exports(tmp_path_factory):
    """``{preset: (X.onnx path, sidecar dict)}`` of ``tiny_net(preset)`` exported (torchscript)."""
    from diffir_mm.deploy.onnx_export import export_onnx

    root = tmp_path_factory.mktemp('onnx')
    done = {}

    def get(preset):
        if preset not in done:
            path = str(root / preset / 'model.onnx')
            done[preset] = (path, export_onnx(tiny_net(preset), path))
        return done[preset]
    return get
