"""A config with ``custom_imports`` registers (and builds) every diffir_mm type.

Runs in a fresh interpreter, so nothing but the config's ``custom_imports`` can have registered
the classes.
"""
import json
import os.path as osp
import re

from helpers import REPO_ROOT, run_python, write_tiny_config

REGISTRIES = ('MODELS', 'METRICS', 'TRANSFORMS', 'HOOKS', 'PARAM_SCHEDULERS')


def readme_registered_names():
    """The names listed under 'Registered names' in the documentation index."""
    with open(osp.join(REPO_ROOT, 'docs', 'README.md'), encoding='utf-8') as f:
        text = f.read()
    paragraph = text[text.index('Registered names'):].split('\n\n')[0]
    return set(re.findall(r'`(\w+)`', paragraph))


PROBE = '''
import json, sys
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
cfg = Config.fromfile(sys.argv[1])
init_default_scope(cfg.default_scope)
import mmagic.registry as reg
ours = {}
for registry in %r:
    for name, cls in getattr(reg, registry).module_dict.items():
        if cls.__module__.startswith('diffir_mm.'):
            ours[name] = registry
gen = reg.MODELS.build(cfg.model.generator).eval()
with torch.no_grad():
    out = gen(torch.rand(1, 3, 16, 24))
model = reg.MODELS.build(cfg.model)
print('RESULT', json.dumps(dict(ours=ours, out=list(out.shape), gen=type(gen).__name__,
                                model=type(model.generator).__name__)))
''' % (REGISTRIES,)


def test_custom_imports_registers_every_readme_name(tmp_path, tiny_pairs):
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    probe = tmp_path / 'probe.py'
    probe.write_text(PROBE)
    proc = run_python([str(probe), cfg], timeout=600)
    result = json.loads(proc.stdout.split('RESULT ', 1)[1])
    assert set(result['ours']) == readme_registered_names()
    assert result['gen'] == result['model'] == 'DiffIRS2Net'
    assert result['out'] == [1, 3, 16, 24]


def test_tiny_config_without_custom_imports_cannot_build(tmp_path, tiny_pairs):
    """The registration really comes from ``custom_imports`` (the probe fails without it)."""
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    with open(cfg, encoding='utf-8') as f:
        text = f.read()
    with open(cfg, 'w', encoding='utf-8') as f:
        f.write(text.replace("custom_imports = dict(imports=['diffir_mm.registration'], "
                             'allow_failed_imports=False)', 'custom_imports = None'))
    probe = tmp_path / 'probe.py'
    probe.write_text(PROBE)
    proc = run_python([str(probe), cfg], timeout=600, check=False)
    assert proc.returncode != 0 and 'DiffIRS2Net is not in the' in proc.stdout
