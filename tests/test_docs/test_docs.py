"""The documentation points at things that exist: commands, files and links.

Covers README.md, every Markdown file under docs/, configs/README.md and bench/README.md:

* every ``make <target>`` they name is a target of the Makefile, and README's two commands are
  ``make demo`` and ``make test``;
* every repository path they name (``configs/...``, ``tools/...``, ``docs/...``, ...,
  ``_base_/...`` relative to configs/, and a bare config name ``diffir_*.py``) exists, braces
  (``s{1,2}``) and globs expanded;
* every relative Markdown link resolves to a file, and its ``#anchor`` to a heading there;
* README.md stays at most 150 lines.
"""
from __future__ import annotations

import glob
import os.path as osp
import re
from typing import Iterator, List

import pytest

from helpers import REPO_ROOT

README = osp.join(REPO_ROOT, 'README.md')
DOCS = sorted([README, osp.join(REPO_ROOT, 'configs', 'README.md'),
               osp.join(REPO_ROOT, 'bench', 'README.md')] +
              glob.glob(osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
DOC_IDS = [osp.relpath(p, REPO_ROOT) for p in DOCS]
MAX_README_LINES = 150

#: Top-level folders whose paths the documents name (relative to the repository root).
ROOTS = ('configs', 'tools', 'docs', 'bench', 'tests', 'diffir_mm', 'scripts', 'requirements')
#: A path is checked when it ends in one of these (or in '/', a folder).
EXTENSIONS = ('.py', '.md', '.sh', '.yml', '.txt', '.json')
PATH = re.compile(r'(?<![\w./~-])((?:%s|_base_)/[\w./{},*-]*)' % '|'.join(ROOTS))
BARE_CONFIG = re.compile(r'(?:(?<=\./)|(?<![\w./-]))(diffir_[\w{},-]+\.py)\b')
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
#: ``make X`` as a command: at the start of a line or of a code span.
MAKE = re.compile(r'(?:^|`)make ([a-z][\w-]*)', re.M)


def read(path: str) -> str:
    with open(path, encoding='utf-8') as f:
        return f.read()


def expand_braces(text: str) -> List[str]:
    """``a{1,2}b`` -> ``['a1b', 'a2b']`` (nested and repeated groups too)."""
    match = re.search(r'\{([^{}]*)\}', text)
    if not match:
        return [text]
    head, tail = text[:match.start()], text[match.end():]
    return [out for part in match.group(1).split(',')
            for out in expand_braces(head + part + tail)]


def exists(pattern: str) -> bool:
    """Whether a file or folder matches ``pattern`` (a path, or a glob with ``*`` / ``**``)."""
    return bool(glob.glob(pattern, recursive=True))


def named_paths(text: str) -> Iterator[str]:
    """Repository paths named in ``text``, relative to the root (braces expanded).

    A bare config name (``diffir_sr_s1.py``) may stand anywhere below configs/ or diffir_mm/.
    """
    for raw in PATH.findall(text):
        path = raw.rstrip('.,')
        if not (path.endswith('/') or path.endswith(EXTENSIONS)):
            continue  # a module name, a command-line word, a folder written without '/'
        base = 'configs' if path.startswith('_base_/') else ''
        for one in expand_braces(path):
            yield osp.join(base, one)
    for raw in BARE_CONFIG.findall(text):
        for one in expand_braces(raw):
            yield '{configs,diffir_mm}/**/' + one


def missing_paths(text: str) -> List[str]:
    """The paths named in ``text`` that match nothing in the repository."""
    return sorted({name for name in named_paths(text)
                   if not any(exists(osp.join(REPO_ROOT, one)) for one in expand_braces(name))})


def heading_anchors(text: str) -> set:
    """GitHub's anchors of the Markdown headings of ``text`` (outside code blocks)."""
    anchors, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if line.startswith('```'):
            fenced = not fenced
        if fenced or not re.match(r'#{1,6} ', line):
            continue
        title = line.lstrip('#').strip().lower()
        slug = re.sub(r'[^\w\- ]', '', title).replace(' ', '-')
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f'{slug}-{count}')
    return anchors


def makefile_targets() -> set:
    return set(re.findall(r'^([\w-]+):', read(osp.join(REPO_ROOT, 'Makefile')), re.M))


def test_documents_are_found():
    names = set(DOC_IDS)
    assert {'README.md', 'configs/README.md', 'docs/README.md', 'docs/get_started.md'} <= names
    assert len(names) >= 12


def test_readme_is_short():
    assert len(read(README).splitlines()) <= MAX_README_LINES


def test_readme_two_commands_are_makefile_targets():
    text = read(README)
    section = text[text.index('## The two commands'):]
    block = section[section.index('```'):].split('```')[1]
    assert MAKE.findall(block) == ['demo', 'test']
    assert {'demo', 'test'} <= makefile_targets()


@pytest.mark.parametrize('doc', DOCS, ids=DOC_IDS)
def test_every_make_target_exists(doc):
    missing = sorted(set(MAKE.findall(read(doc))) - makefile_targets())
    assert missing == [], f'{osp.relpath(doc, REPO_ROOT)} names make targets {missing}'


@pytest.mark.parametrize('doc', DOCS, ids=DOC_IDS)
def test_every_named_path_exists(doc):
    missing = missing_paths(read(doc))
    assert missing == [], f'{osp.relpath(doc, REPO_ROOT)} names missing paths {missing}'


def broken_links(doc: str, text: str) -> List[str]:
    """Relative links of ``text`` (the content of ``doc``) to no file or to no heading."""
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z]+:', target):  # http(s), mailto
            continue
        file, _, anchor = target.partition('#')
        if not file:
            if anchor not in heading_anchors(text):
                broken.append(target)
            continue
        path = osp.normpath(osp.join(osp.dirname(doc), file))
        if not osp.exists(path):
            broken.append(target)
        elif anchor and path.endswith('.md') and anchor not in heading_anchors(read(path)):
            broken.append(target)
    return broken


@pytest.mark.parametrize('doc', DOCS, ids=DOC_IDS)
def test_relative_links_resolve(doc):
    broken = broken_links(doc, read(doc))
    assert broken == [], f'{osp.relpath(doc, REPO_ROOT)}: broken links {broken}'


def test_the_checks_can_fail():
    """The path, link and anchor rules reject what does not exist."""
    text = ('see `configs/diffir_nope_s1.py`, `_base_/datasets/nope.py`, `diffir_nope.py`, '
            "tools/{train,nope}.py and _base_ = ['./diffir_s2-gan_x4.py']")
    assert missing_paths(text) == ['configs/_base_/datasets/nope.py',
                                   'configs/diffir_nope_s1.py', 'tools/nope.py',
                                   '{configs,diffir_mm}/**/diffir_nope.py',
                                   '{configs,diffir_mm}/**/diffir_s2-gan_x4.py']
    assert missing_paths('`configs/diffir_sr_s{1,2}.py`, `diffir_sr_x2_s1.py`, tools/') == []
    assert heading_anchors('## 4.3 The GAN stage (SR)\n# `bench_onnx.py` — x\n') == {
        '43-the-gan-stage-sr', 'bench_onnxpy--x'}
    assert 'the-demo' not in heading_anchors('```\n## The demo\n```\n')
    doc = osp.join(REPO_ROOT, 'docs', 'new.md')
    text = ('## Here\n[a](get_started.md#the-demo) [b](#here) [c](https://x.org/y.md) '
            '[d](nope.md) [e](get_started.md#nope) [f](#nope) [g](../Makefile)\n')
    assert broken_links(doc, text) == ['nope.md', 'get_started.md#nope', '#nope']
    assert expand_braces('a_s{1,2}_{x,y}.py') == ['a_s1_x.py', 'a_s1_y.py', 'a_s2_x.py',
                                                  'a_s2_y.py']
