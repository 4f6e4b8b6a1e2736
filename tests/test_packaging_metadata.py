"""Project metadata of every distribution in the repository (fast: reads files, builds nothing).

Each wheel carries the licence text, the same torch range, links to what it implements, and a
long description (its README) that makes sense on a package index, where the repository's
other files do not exist.
"""
from __future__ import annotations

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
