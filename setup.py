"""Packaging for diffir-mm (DiffIR as an MMagic plugin).

Like MMagic, the wheel ships the configs inside the package: the build copies ``configs/`` and
``model-index.yml`` to ``diffir_mm/.mim/``, so that a non-editable ``pip install .`` serves
``MMagicInferencer('diffir', ...)`` (see ``diffir_mm.apis.inferencer.config_root``). Editable
installs read the checkout's ``configs/`` directly.
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
MIM_FILES = ('configs', 'model-index.yml')


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies the configs into ``<build>/diffir_mm/.mim``."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = os.path.join(self.build_lib, 'diffir_mm', '.mim')
        for name in MIM_FILES:
            src, dst = os.path.join(HERE, name), os.path.join(mim, name)
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            os.makedirs(mim, exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(src, dst)


setup(
    name='diffir-mm',
    version='0.1.0',
    description='DiffIR (ICCV 2023) image restoration as an OpenMMLab / MMagic plugin',
    packages=find_packages(include=['diffir_mm', 'diffir_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.0'],
    extras_require={
        'mm': ['mmengine==0.10.7', 'mmcv==2.1.0', 'mmagic==1.2.0'],
        # ONNX export (tools/export_onnx.py) and diffir-restore --backend onnxruntime;
        # ml_dtypes is pinned to the last release that keeps numpy 1.26 (mmagic 1.2 needs it)
        'onnx': ['onnx==1.23.2', 'onnxruntime==1.32.0', 'onnxscript==0.7.2', 'ml_dtypes==0.5.4'],
        # the web app (diffir-app); 5.14.0 is the last Gradio that keeps huggingface_hub 0.25
        'app': ['gradio==5.14.0'],
        # diffir_mm.spandrel: DiffIR in spandrel hosts (ComfyUI, chaiNNer, InvokeAI, ...)
        'spandrel': ['spandrel==0.4.2', 'safetensors'],
    },
    entry_points={'console_scripts': ['diffir-restore=diffir_mm.cli.restore:main',
                                      'diffir-app=diffir_mm.app.launch:main']},
    cmdclass={'build_py': BuildPyWithConfigs},
)
