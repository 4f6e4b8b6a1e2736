"""The import contracts of ``.importlinter`` hold, match the plugins' declared dependencies,
and really fail when a package breaks them.

``lint-imports`` (import-linter, a test extra) checks: the core never imports a plugin, plugins
import the core only through ``genforce_core.api`` and no private core module, a plugin imports
only the plugins its pyproject.toml depends on, and genforce_core has no import cycles.
"""
from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip('tomli')

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(REPO.glob('plugins/*/pyproject.toml')) + [
    REPO / 'examples' / 'dcgan_plugin' / 'pyproject.toml']


def lint_imports(*pythonpath: Path, config: Path = REPO / '.importlinter'
                 ) -> subprocess.CompletedProcess:
    """``lint-imports`` on ``config`` (default: the repository's), with ``pythonpath`` first
    on the path, then every plugin folder (a plugin need not be installed to be checked)."""
    script = Path(sys.executable).with_name('lint-imports')
    if not script.exists():
        pytest.fail('lint-imports is missing: pip install -e ".[test]" (import-linter)')
    env = dict(os.environ)
    path = [*map(str, pythonpath), *(str(p.parent) for p in PLUGIN_DIRS)]
    env['PYTHONPATH'] = os.pathsep.join(path + [env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    return subprocess.run([str(script), '--no-cache', '--no-logo', str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / '.importlinter')
    return parser


def modules(section: configparser.SectionProxy, key: str) -> set[str]:
    return set(section.get(key, '').split())


def plugin_packages() -> dict[str, tuple[str, set[str]]]:
    """``{distribution: (top-level package, distributions of the plugins it depends on)}``."""
    found = {}
    for pyproject in PLUGIN_DIRS:
        project = tomllib.loads(pyproject.read_text())['project']
        entry_points = project['entry-points']['genforce.plugins']
        (module,) = entry_points.values()
        deps = {re.split(r'[<>=!~;\[ ]', dep, maxsplit=1)[0] for dep in project['dependencies']}
        found[project['name']] = (module.split('.')[0],
                                  {d for d in deps if d.startswith('genforce-plugin-')})
    return found


def test_the_import_contracts_hold():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert ' 0 broken' in result.stdout


def test_contracts_cover_every_plugin_and_its_declared_dependencies():
    config = contracts()
    plugins = plugin_packages()
    packages = {package for package, _ in plugins.values()}
    assert len(packages) == len(PLUGIN_DIRS) >= 8  # first-party plugins and the example
    assert packages <= modules(config['importlinter'], 'root_packages')
    assert modules(config['importlinter:contract:core-imports-no-plugin'],
                   'forbidden_modules') == packages
    assert modules(config['importlinter:contract:plugins-use-the-public-api'],
                   'source_modules') == packages
    for distribution, (package, declared) in plugins.items():
        allowed = {package} | {plugins[d][0] for d in declared}
        section = config[f'importlinter:contract:deps-{package.removeprefix("genforce_")}']
        assert modules(section, 'source_modules') == {package}
        assert modules(section, 'forbidden_modules') == packages - allowed, (
            f'{distribution} declares {sorted(declared) or "no plugins"}: its contract must '
            'forbid exactly the plugins it does not declare')


def test_a_violating_plugin_and_core_are_caught(tmp_path):
    # A package that breaks every plugin contract, in place of the example plugin (not
    # installed, only on the path, where this one comes first), and a core package that
    # imports a plugin, added to the core's sources in a copy of the real contracts (the
    # installed core cannot be shadowed).
    plugin = tmp_path / 'genforce_example_dcgan'
    plugin.mkdir()
    (plugin / '__init__.py').write_text('')
    (plugin / 'uses_private.py').write_text(
        'from genforce_core.hooks._common import images_seen\n')
    (plugin / 'uses_root.py').write_text('from genforce_core import hookimpl\n')
    (plugin / 'uses_undeclared.py').write_text('import genforce_pggan\n')
    core = tmp_path / 'genforce_core_part'
    core.mkdir()
    (core / '__init__.py').write_text('')
    (core / 'synthesize.py').write_text('from genforce_metrics_fid import evaluate_generator\n')
    config = contracts()
    for section, key in (('importlinter', 'root_packages'),
                         ('importlinter:contract:core-imports-no-plugin', 'source_modules')):
        config[section][key] += '\ngenforce_core_part'
    with open(tmp_path / 'contracts.ini', 'w') as f:
        config.write(f)

    result = lint_imports(tmp_path, config=tmp_path / 'contracts.ini')
    out = result.stdout
    assert result.returncode != 0, out
    for broken in ('The core never imports a plugin BROKEN',
                   'Plugins import the core only through genforce_core.api BROKEN',
                   'Private core modules are imported only inside their own package BROKEN',
                   'genforce_example_dcgan imports no other plugin BROKEN'):
        assert broken in out, out
    for culprit in ('genforce_core_part.synthesize -> genforce_metrics_fid',
                    'genforce_example_dcgan.uses_private -> genforce_core.hooks._common',
                    'genforce_example_dcgan.uses_root -> genforce_core',
                    'genforce_example_dcgan.uses_undeclared -> genforce_pggan'):
        assert culprit in out, out
    assert 'No import cycles inside genforce_core KEPT' in out


def test_the_public_api_names_exist_and_are_documented():
    import genforce_core.api as api

    for name in api.__all__:
        value = getattr(api, name)
        if callable(value) and not isinstance(value, type(api)):
            assert getattr(value, '__doc__', None), f'genforce_core.api.{name} has no docstring'
    with pytest.raises(AttributeError, match='no attribute'):
        api.not_a_public_name  # noqa: B018
