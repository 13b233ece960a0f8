"""``configs/README.md``'s results table is the one ``tools/gen_results_table.py`` generates
from ``configs/metafile.yml``, so the metafile stays the one home of weights and numbers."""
from __future__ import annotations

import os.path as osp
import subprocess
import sys
from types import ModuleType

import pytest
import yaml

from helpers import REPO_ROOT, import_tool

TOOL = osp.join(REPO_ROOT, 'tools', 'gen_results_table.py')


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    return import_tool('gen_results_table')


def test_committed_table_is_the_generated_one(tool):
    with open(tool.README, encoding='utf-8') as f:
        committed = f.read()
    assert committed == tool.generated_readme(), \
        'configs/README.md is stale: run python tools/gen_results_table.py'


def test_every_metafile_number_and_file_is_in_the_table(tool):
    with open(tool.METAFILE, encoding='utf-8') as f:
        models = yaml.safe_load(f)['Models']
    with open(tool.README, encoding='utf-8') as f:
        table = f.read().split(tool.BEGIN)[1].split(tool.END)[0]
    rows = table.strip().splitlines()[2:]
    assert len(rows) == sum(len(m['Results']) for m in models)
    for model in models:
        assert f'[{model["Name"]}](./{osp.basename(model["Config"])})' in table
        assert osp.isfile(osp.join(REPO_ROOT, model['Config']))
        for value in (model.get('Metadata') or {}).values():
            assert value in table
        for result in model['Results']:
            for name, number in (result.get('Metrics') or {}).items():
                assert f'{name} {number}' in table


def test_an_edited_metafile_changes_the_table(tool, tmp_path):
    with open(tool.METAFILE, encoding='utf-8') as f:
        meta = yaml.safe_load(f)
    meta['Models'][0]['Results'][0]['Metrics']['PSNR'] = 12.34
    edited = tmp_path / 'metafile.yml'
    edited.write_text(yaml.safe_dump(meta, sort_keys=False), encoding='utf-8')
    text = tool.generated_readme(metafile=str(edited))
    assert 'PSNR 12.34' in text and text != tool.generated_readme()


def test_missing_markers_are_one_line_errors(tool, tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# no table here\n', encoding='utf-8')
    with pytest.raises(ValueError, match='markers'):
        tool.generated_readme(readme=str(readme))


def test_check_flag_exit_code():
    proc = subprocess.run([sys.executable, TOOL, '--check'], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'up to date' in proc.stdout
