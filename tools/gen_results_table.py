"""Write the results table of ``configs/README.md`` from ``configs/metafile.yml``.

The metafile is the one home of the released weights and the paper's numbers; the README shows
them as a table between two marker lines, which only this script writes. A test fails when the
committed table differs from the generated one (``tests/test_docs/test_results_table.py``)::

    python tools/gen_results_table.py           # rewrite the table after editing the metafile
    python tools/gen_results_table.py --check   # exit 1 if the committed table is stale
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Any, Dict, List

import yaml

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffir_mm.inference.io import write_bytes_atomic  # noqa: E402

METAFILE = osp.join(REPO_ROOT, 'configs', 'metafile.yml')
README = osp.join(REPO_ROOT, 'configs', 'README.md')
BEGIN = ('<!-- results table: generated from configs/metafile.yml by '
         'tools/gen_results_table.py; do not edit by hand -->')
END = '<!-- end of the results table -->'
HEADER = ('| Config | Test set | Paper (not re-measured) | Official file | Stage-1 teacher |\n'
          '|---|---|---|---|---|')


def format_metrics(metrics: Dict[str, Any]) -> str:
    """``PSNR 33.2, SSIM 0.963``; a dash where the paper gives no number."""
    return ', '.join(f'{name} {value}' for name, value in metrics.items()) or '—'


def render_table(models: List[Dict[str, Any]]) -> str:
    """One row per (config, test set) of the metafile's ``Models``, as a Markdown table."""
    rows = [HEADER]
    for model in models:
        config = osp.relpath(model['Config'], 'configs')
        meta = model.get('Metadata') or {}
        for index, result in enumerate(model['Results']):
            first = index == 0
            cells = [f'[{model["Name"]}](./{config})' if first else '',
                     result['Dataset'],
                     format_metrics(result.get('Metrics') or {}),
                     meta.get('Official file', '') if first else '',
                     meta.get('Official teacher', '') if first else '']
            rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or \
            readme.index(BEGIN) > readme.index(END):
        raise ValueError(f'{README} needs exactly one pair of results-table markers')
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f'{head}{BEGIN}\n{table}\n{END}{tail}'


def generated_readme(metafile: str = METAFILE, readme: str = README) -> str:
    """The README text with the table generated from ``metafile``."""
    with open(metafile, encoding='utf-8') as f:
        models = yaml.safe_load(f)['Models']
    with open(readme, encoding='utf-8') as f:
        return with_table(f.read(), render_table(models))


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='only compare; exit 1 when configs/README.md is stale')
    args = parser.parse_args(argv)
    try:
        text = generated_readme()
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        print(f'error: {err}')
        return 1
    with open(README, encoding='utf-8') as f:
        current = f.read()
    if args.check:
        if current != text:
            print('error: configs/README.md results table is stale: run '
                  'python tools/gen_results_table.py')
            return 1
        print('configs/README.md results table is up to date')
        return 0
    if current != text:
        write_bytes_atomic(README, text.encode('utf-8'))
    print(f'wrote the results table of {osp.relpath(README, REPO_ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
