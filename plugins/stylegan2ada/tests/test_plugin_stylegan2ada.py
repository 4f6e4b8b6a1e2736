"""The stylegan2ada plugin is found through its entry point and loads cleanly."""
from __future__ import annotations

import importlib.metadata as importlib_metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

DIST = 'genforce-plugin-stylegan2ada'
NAME = 'stylegan2ada'
PACKAGE = 'genforce_stylegan2ada'

ZOO_KEYS = {'name', 'family', 'resolution', 'dataset', 'url', 'sha256', 'converter'}

try:
    importlib_metadata.distribution(DIST)
except importlib_metadata.PackageNotFoundError:
    pytest.skip(f'{DIST} is not installed: pip install -e plugins/{NAME}',
                allow_module_level=True)

import genforce_stylegan2ada as package  # noqa: E402
from genforce_core.plugins import load_plugins  # noqa: E402
from genforce_stylegan2ada import plugin  # noqa: E402


def test_stylegan2ada_plugin_is_discovered_and_loaded():
    manager = load_plugins()
    info = manager.plugins[NAME]
    assert info.status == 'loaded', info.error
    assert info.distribution == DIST
    assert info.version == importlib_metadata.version(DIST) == package.__version__
    assert info.module == f'{PACKAGE}.plugin'
    assert info.api_version == plugin.GENFORCE_PLUGIN_API == '1.0'
    assert manager.pm.get_plugin(NAME) is plugin


def test_stylegan2ada_requires_a_core_version_range():
    requires = [Requirement(r) for r in importlib_metadata.requires(DIST) or []]
    core = [r for r in requires if r.name == 'genforce-core']
    assert core and core[0].specifier == SpecifierSet('>=0.1,<0.2')


def test_stylegan2ada_model_zoo_entries_are_complete():
    for entry in plugin.genforce_model_zoo():
        missing = ZOO_KEYS - set(entry)
        assert not missing, f'zoo entry {entry.get("name")} lacks {sorted(missing)}'


def test_stylegan2ada_op_status_is_a_str_mapping():
    status = plugin.genforce_op_status()
    assert isinstance(status, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in status.items())


def test_stylegan2ada_depends_on_stylegan2():
    requires = [Requirement(r) for r in importlib_metadata.requires(DIST) or []]
    by_name = {r.name: r for r in requires}
    assert 'genforce-plugin-stylegan2' in by_name
    assert by_name['genforce-plugin-stylegan2'].specifier == SpecifierSet('>=0.1,<0.2')
