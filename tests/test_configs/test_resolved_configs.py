"""Every recipe resolves to plain constructor arguments: no mmengine merge directive is left.

mmengine removes ``_delete_`` only while it merges a child dict into its base's dict. A dict that
is copied elsewhere before that merge (into a list, say) keeps the key, and the class it builds
then fails with ``unexpected keyword argument '_delete_'`` -- for a validation dataloader, only
when the first validation starts, hours into a run.
"""
import glob
import os.path as osp
from typing import Any, Iterator, List

import pytest
from mmengine import Config

from helpers import REPO_ROOT

#: The entries mmengine's Runner builds objects from (helpers such as ``gan_model`` are data).
RUNNER_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator',
               'test_evaluator', 'optim_wrapper', 'param_scheduler', 'default_hooks',
               'custom_hooks', 'visualizer', 'train_cfg', 'val_cfg', 'test_cfg', 'randomness')
RECIPES = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '*.py')) +
                 glob.glob(osp.join(REPO_ROOT, 'configs', 'demo', '*.py')))


def merge_directives(node: Any, path: str = '') -> Iterator[str]:
    """Paths of every ``_delete_`` key below ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f'{path}.{key}' if path else str(key)
            if key == '_delete_':
                yield where
            yield from merge_directives(value, where)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from merge_directives(value, f'{path}[{index}]')


def test_recipes_are_found():
    assert len(RECIPES) >= 30


@pytest.mark.parametrize('path', RECIPES, ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_no_delete_key_reaches_a_constructor(path: str):
    cfg = Config.fromfile(path, import_custom_modules=False)
    built = {key: cfg[key] for key in RUNNER_KEYS if key in cfg}
    assert 'model' in built and 'train_dataloader' in built, 'not a recipe'
    left: List[str] = list(merge_directives(built))
    assert left == [], f'{osp.basename(path)} keeps merge directives at {left}'
