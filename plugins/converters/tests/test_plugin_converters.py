"""The converters plugin is found through its entry point and loads cleanly."""
from __future__ import annotations

import importlib.metadata as importlib_metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

DIST = 'genforce-plugin-converters'
NAME = 'converters'
PACKAGE = 'genforce_converters'

try:
    importlib_metadata.distribution(DIST)
except importlib_metadata.PackageNotFoundError:
    pytest.skip(f'{DIST} is not installed: pip install -e plugins/{NAME}',
                allow_module_level=True)

import genforce_converters as package  # noqa: E402
from genforce_converters import plugin  # noqa: E402
from genforce_core.plugins import load_plugins  # noqa: E402


def test_converters_plugin_is_discovered_and_loaded():
    manager = load_plugins()
    info = manager.plugins[NAME]
    assert info.status == 'loaded', info.error
    assert info.distribution == DIST
    assert info.version == importlib_metadata.version(DIST) == package.__version__
    assert info.module == f'{PACKAGE}.plugin'
    assert info.api_version == plugin.GENFORCE_PLUGIN_API == '1.0'
    assert manager.pm.get_plugin(NAME) is plugin


def test_converters_requires_a_core_version_range():
    requires = [Requirement(r) for r in importlib_metadata.requires(DIST) or []]
    core = [r for r in requires if r.name == 'genforce-core']
    assert core and core[0].specifier == SpecifierSet('>=0.1,<0.2')
