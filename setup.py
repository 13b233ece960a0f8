"""Packaging for diffir-mm (DiffIR as an MMagic plugin)."""
from setuptools import find_packages, setup

setup(
    name='diffir-mm',
    version='0.1.0',
    description='DiffIR (ICCV 2023) image restoration as an OpenMMLab / MMagic plugin',
    packages=find_packages(include=['diffir_mm', 'diffir_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.0'],
    extras_require={'mm': ['mmengine==0.10.7', 'mmcv==2.1.0', 'mmagic==1.2.0']},
    entry_points={'console_scripts': ['diffir-restore=diffir_mm.cli.restore:main']},
    include_package_data=True,
)
