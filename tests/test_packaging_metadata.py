"""Project metadata of every distribution in the repository (fast: reads files, builds nothing).

Each wheel carries the licence text, the same torch range, links to what it implements, and a
long description (its README) that makes sense on a package index, where the repository's
other files do not exist.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    tomllib = pytest.importorskip('tomli')

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = sorted([ROOT, *(p.parent for p in ROOT.glob('plugins/*/pyproject.toml')),
                   *(p.parent for p in ROOT.glob('examples/*/pyproject.toml'))])
IDS = [str(p.relative_to(ROOT)) if p != ROOT else 'core' for p in PROJECTS]
# Every torch release this range admits must be one the code supports: 2.4 brought the
# allowlist for weights_only loading; the development environment runs 2.14.
TORCH_RANGE = SpecifierSet('>=2.4,<3')
TORCH_TESTED = '2.14.1'


def _project(folder: Path) -> dict:
    with open(folder / 'pyproject.toml', 'rb') as f:
        return tomllib.load(f)['project']


def test_all_distributions_are_checked():
    assert len(PROJECTS) >= 9, IDS  # core, seven plugins, the example plugin


def test_repository_has_the_apache_license():
    text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION' in text


@pytest.mark.parametrize('folder', PROJECTS, ids=IDS)
def test_license_is_declared_and_shipped(folder):
    project = _project(folder)
    assert project['license'] == 'Apache-2.0'
    assert project.get('license-files') == ['LICENSE']
    # setuptools refuses '..' in license-files, so each plugin folder holds a copy: identical.
    assert (folder / 'LICENSE').read_bytes() == (ROOT / 'LICENSE').read_bytes(), (
        f'{folder / "LICENSE"} differs from the repository LICENSE')


@pytest.mark.parametrize('folder', PROJECTS, ids=IDS)
def test_torch_range_is_the_same_everywhere(folder):
    torch_reqs = [r for r in map(Requirement, _project(folder)['dependencies'])
                  if r.name == 'torch']
    assert len(torch_reqs) == 1, f'{folder}: one torch requirement expected'
    spec = torch_reqs[0].specifier
    assert spec == TORCH_RANGE, f'{folder}: torch{spec}, expected torch{TORCH_RANGE}'


def test_torch_range_admits_the_tested_torch():
    installed = Version(torch.__version__).base_version  # drop local tags such as +cpu
    assert TORCH_RANGE.contains(TORCH_TESTED) and TORCH_RANGE.contains(installed)
    assert any(s.operator == '<' for s in TORCH_RANGE), 'torch needs an upper bound'


@pytest.mark.parametrize('folder', PROJECTS, ids=IDS)
def test_project_urls(folder):
    urls = _project(folder).get('urls', {})
    assert urls, f'{folder}: no [project.urls]'
    for label, url in urls.items():
        parsed = urlparse(url)
        assert label.strip() and parsed.scheme == 'https' and parsed.netloc, (
            f'{folder}: URL {label!r} = {url!r} is not an https URL')


# A long description is read on a package index, where only absolute links work and the
# repository's other files do not exist.
MARKDOWN_LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*(\S+)|'
                           r'(?:href|src)\s*=\s*["\']([^"\']+)', re.M)
REPO_PATH = re.compile(r'(?<![\w./~-])(?:\.\./|(?:configs|tools|benchmarks|tests|plugins|docs|'
                       r'examples|shared)/)')


def _repo_references(text: str) -> list[str]:
    """Relative link targets and repository-only paths in a Markdown text."""
    found = [target for groups in MARKDOWN_LINK.findall(text) for target in groups
             if target and not target.startswith(('https://', 'http://', '#', 'mailto:'))]
    for number, line in enumerate(text.splitlines(), 1):
        found += [f'line {number}: {line.strip()}' for _ in REPO_PATH.finditer(line)][:1]
    return found


def test_repo_reference_finder_can_fail():
    text = ('[guide](docs/guide.md) ![x](img.png) [ok](https://x.org) [a](#b)\n'
            'run `tools/dist_train.sh configs/x.py 8`\n'
            'kept: `genforce_x/configs/a.py`, `ops/cuda/*.cu`, `~/.cache/x`\n'
            '[ref]: ../README.md\n')
    found = _repo_references(text)
    assert found[:3] == ['docs/guide.md', 'img.png', '../README.md'], found
    assert [f.split(':')[0] for f in found[3:]] == ['line 1', 'line 2', 'line 4'], found


@pytest.mark.parametrize('folder', PROJECTS, ids=IDS)
def test_long_description_stands_alone(folder):
    readme = folder / _project(folder)['readme']
    assert readme.is_file(), f'{readme} (the long description) is missing'
    found = _repo_references(readme.read_text())
    assert not found, f'{readme} points into the repository: {found}'


@pytest.mark.parametrize('folder', PROJECTS, ids=IDS)
def test_build_backend_understands_the_license_keys(folder):
    # `license = "<SPDX>"` and `license-files` (PEP 639) need setuptools 77.
    with open(folder / 'pyproject.toml', 'rb') as f:
        requires = map(Requirement, tomllib.load(f)['build-system']['requires'])
    setuptools = [r for r in requires if r.name == 'setuptools']
    assert setuptools and not setuptools[0].specifier.contains('76.99'), setuptools


def test_test_extra_installs_a_setuptools_that_builds_the_wheels():
    # The wheel tests build without isolation, with the setuptools of the test environment.
    extra = map(Requirement, _project(ROOT)['optional-dependencies']['test'])
    setuptools = [r for r in extra if r.name == 'setuptools']
    assert setuptools and not setuptools[0].specifier.contains('76.99'), setuptools
