"""Packaging of the core and the seven plugins: pyproject contracts and the wheels they build.

The fast tests read the ``pyproject.toml`` files. The slow ones build a wheel of every
distribution with pip (offline: ``--no-deps --no-build-isolation --no-index``) from a copy of its
folder, and read the wheel with :mod:`zipfile`.
"""
from __future__ import annotations

import ast
import configparser
import email.parser
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    tomllib = pytest.importorskip('tomli')

ROOT = Path(__file__).resolve().parents[1]

# entry-point name -> distribution; the import package is always genforce_<entry-point name>.
PLUGINS = {
    'pggan': 'genforce-plugin-pggan',
    'stylegan': 'genforce-plugin-stylegan',
    'stylegan2': 'genforce-plugin-stylegan2',
    'stylegan2ada': 'genforce-plugin-stylegan2ada',
    'stylegan3': 'genforce-plugin-stylegan3',
    'metrics_fid': 'genforce-plugin-metrics-fid',
    'converters': 'genforce-plugin-converters',
    'inversion': 'genforce-plugin-inversion',
}
# Plugins that need a sibling plugin, with the range they must declare.
PLUGIN_DEPENDENCIES = {'stylegan2ada': {'genforce-plugin-stylegan2': '>=0.1,<0.2'},
                       'stylegan3': {'genforce-plugin-stylegan2': '>=0.1,<0.2',
                                     'genforce-plugin-stylegan2ada': '>=0.1,<0.2'}}
CORE_RANGE = '>=0.1,<0.2'
# Package-data globs every plugin declares, and a file each of them must carry into the wheel.
# (for the plugins that ship configs: a configs/ folder in their package).
PACKAGE_DATA = {'configs/*.py': 'configs/_probe.py'}
# Non-Python files a plugin may hold (CUDA sources); each must be matched by a package-data glob.
DATA_SUFFIXES = ('.cu', '.cuh', '.cpp', '.h')


def _data_files(package_dir: Path) -> list[str]:
    """The plugin's CUDA sources and configs, relative to its package folder."""
    return sorted(str(p.relative_to(package_dir)) for p in package_dir.rglob('*')
                  if p.suffix in DATA_SUFFIXES or p.parent.name == 'configs' and p.suffix == '.py')


def _package_data(short: str) -> dict[str, str]:
    configs = ROOT / 'plugins' / short / f'genforce_{short}' / 'configs'
    return PACKAGE_DATA if configs.is_dir() else {}


def _pyproject(path: Path) -> dict:
    with open(path / 'pyproject.toml', 'rb') as f:
        return tomllib.load(f)


def _requirements(project: dict) -> dict[str, Requirement]:
    return {r.name: r for r in map(Requirement, project['project'].get('dependencies', []))}


CORE_VERSION = Version(_pyproject(ROOT)['project']['version'])


# -- pyproject contracts (fast) --------------------------------------------------------------

def test_every_plugin_folder_is_listed():
    found = {p.name for p in (ROOT / 'plugins').iterdir() if (p / 'pyproject.toml').is_file()}
    assert set(PLUGINS) <= found, f'missing plugin folders: {sorted(set(PLUGINS) - found)}'


@pytest.mark.parametrize('short', sorted(PLUGINS))
def test_plugin_pyproject_declares_core_range(short):
    data = _pyproject(ROOT / 'plugins' / short)
    project = data['project']
    assert project['name'] == PLUGINS[short]
    requires = _requirements(data)
    assert 'genforce-core' in requires, f'{short} does not depend on genforce-core'
    spec = requires['genforce-core'].specifier
    operators = {s.operator for s in spec}
    # A range: a lower bound and an upper bound (or a compatible-release clause).
    assert '~=' in operators or ({'>=', '<'} <= operators), (
        f'{short}: genforce-core needs a version range, got {str(spec)!r}')
    assert spec == SpecifierSet(CORE_RANGE)
    assert spec.contains(CORE_VERSION), (
        f'{short} requires genforce-core{spec}, but the core in this checkout is {CORE_VERSION}')
    assert 'torch' in requires and requires['torch'].specifier == SpecifierSet('>=2.4,<3')


@pytest.mark.parametrize('short', sorted(PLUGINS))
def test_plugin_pyproject_metadata(short):
    data = _pyproject(ROOT / 'plugins' / short)
    project, package = data['project'], f'genforce_{short}'
    assert project['version'] == '0.1.0'
    assert project['license'] == 'Apache-2.0'
    assert project['requires-python'] == '>=3.10'
    assert project['readme'] == 'README.md'
    assert project['entry-points']['genforce.plugins'] == {short: f'{package}.plugin'}
    backend = data['build-system']
    assert backend['build-backend'] == 'setuptools.build_meta'
    setuptools_req = [Requirement(r) for r in backend['requires'] if r.startswith('setuptools')]
    assert setuptools_req and setuptools_req[0].specifier == SpecifierSet('>=77')
    globs = set(data['tool']['setuptools']['package-data'][package])
    assert set(_package_data(short)) | {'py.typed'} <= globs, f'{short} lacks package data'
    for name in _data_files(ROOT / 'plugins' / short / package):
        assert any(fnmatch.fnmatch(name, g) for g in globs), f'{short}: {name} not package data'


@pytest.mark.parametrize('short', sorted(PLUGIN_DEPENDENCIES))
def test_plugin_declares_sibling_plugin_range(short):
    requires = _requirements(_pyproject(ROOT / 'plugins' / short))
    for dist, spec in PLUGIN_DEPENDENCIES[short].items():
        assert dist in requires, f'{short} must depend on {dist}'
        assert requires[dist].specifier == SpecifierSet(spec)
        sibling = next(s for s, d in PLUGINS.items() if d == dist)
        sibling_version = _pyproject(ROOT / 'plugins' / sibling)['project']['version']
        assert requires[dist].specifier.contains(sibling_version)


@pytest.mark.parametrize('short', sorted(PLUGINS))
def test_plugin_folder_layout(short):
    base, package = ROOT / 'plugins' / short, f'genforce_{short}'
    assert (base / 'README.md').is_file()
    init = ast.parse((base / package / '__init__.py').read_text())
    versions = [node.value.value for node in init.body if isinstance(node, ast.Assign)
                and any(getattr(t, 'id', None) == '__version__' for t in node.targets)]
    assert versions == [_pyproject(base)['project']['version']]
    plugin_src = (base / package / 'plugin.py').read_text()
    assert re.search(r"^GENFORCE_PLUGIN_API = '1\.\d+'$", plugin_src, re.M)
    assert re.search(r'^from genforce_core\.api import .*\bhookimpl\b', plugin_src, re.M)
    assert (base / 'tests' / f'test_plugin_{short}.py').is_file()


def test_plugin_test_files_have_unique_basenames():
    # --import-mode=importlib tolerates repeats, but `pytest plugins/a/tests plugins/b/tests`
    # reports are easier to read, and rootdir-less runs safer, with unique names.
    names = [p.name for p in (ROOT / 'plugins').glob('*/tests/**/test_*.py')]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f'test files share a basename: {duplicates}'


def test_core_never_imports_a_plugin():
    plugin_packages = '|'.join(f'genforce_{short}' for short in PLUGINS)
    pattern = re.compile(rf'^\s*(from|import)\s+({plugin_packages})\b', re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in ('genforce_core', 'genforce')
                 for p in (ROOT / folder).rglob('*.py') if pattern.search(p.read_text())]
    assert not offenders, f'the core imports a plugin in {offenders}'


# -- wheels (slow) ---------------------------------------------------------------------------

_IGNORE_EVERYWHERE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', '.git')
# Top-level folders of the checkout that never belong to the core wheel (and can be big).
_IGNORE_AT_ROOT = {'.venv', '.git', 'build', 'dist', 'work_dirs', 'plugins', 'tests', 'data',
                   'benchmarks', 'examples', '.pytest_cache', '.ruff_cache', '.whl'}


def _copy_project(src: Path, dst: Path) -> Path:
    """Copy a project folder without build leftovers, so a stale ``build/`` can't leak in."""
    def ignore(folder, names):
        ignored = set(_IGNORE_EVERYWHERE(folder, names))
        if Path(folder) == src:
            ignored |= _IGNORE_AT_ROOT & set(names)
        return ignored
    shutil.copytree(src, dst, ignore=ignore)
    return dst


def _build_wheel(project: Path, out: Path) -> Path:
    env = {**os.environ, 'PIP_DISABLE_PIP_VERSION_CHECK': '1', 'PIP_NO_INPUT': '1'}
    cmd = [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
           '--no-index', '-q', '-w', str(out), str(project)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f'pip wheel failed:\n{result.stdout}\n{result.stderr}'
    wheels = list(out.glob('*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


class Wheel:
    def __init__(self, path: Path):
        self.path = path
        with zipfile.ZipFile(path) as zf:
            self.names = set(zf.namelist())
            dist_info = {n.split('/')[0] for n in self.names if n.split('/')[0].endswith(
                '.dist-info')}
            assert len(dist_info) == 1, dist_info
            self.dist_info = dist_info.pop()
            self.metadata = email.parser.Parser().parsestr(
                zf.read(f'{self.dist_info}/METADATA').decode())
            entry_points = f'{self.dist_info}/entry_points.txt'
            self.entry_points = configparser.ConfigParser(delimiters=('=',))
            self.entry_points.optionxform = str  # entry-point names are case-sensitive
            if entry_points in self.names:
                self.entry_points.read_string(zf.read(entry_points).decode())

    def requirements(self) -> dict[str, Requirement]:
        reqs = map(Requirement, self.metadata.get_all('Requires-Dist') or [])
        return {r.name: r for r in reqs if r.marker is None}  # extras carry markers

    def group(self, name: str) -> dict[str, str]:
        return dict(self.entry_points[name]) if self.entry_points.has_section(name) else {}


def _check_common_metadata(wheel: Wheel, name: str) -> None:
    assert wheel.metadata['Name'] == name
    assert wheel.metadata['Version'] == '0.1.0'
    assert wheel.metadata['Requires-Python'] == '>=3.10'
    assert wheel.metadata['License-Expression'] == 'Apache-2.0'
    assert 'torch' in wheel.requirements()
    assert not any(n.startswith(('tests/', 'plugins/')) for n in wheel.names), sorted(wheel.names)


@pytest.mark.slow
@pytest.mark.parametrize('short', sorted(PLUGINS))
def test_plugin_wheel(short, tmp_path):
    package = f'genforce_{short}'
    src = _copy_project(ROOT / 'plugins' / short, tmp_path / 'src')
    # Configs a plugin may ship later must land in the wheel (its CUDA sources are checked too).
    for probe in _package_data(short).values():
        path = src / package / probe
        path.parent.mkdir(exist_ok=True)
        path.write_text('x = 1\n' if probe.endswith('.py') else '// probe\n')
    wheel = Wheel(_build_wheel(src, tmp_path / 'wheels'))

    _check_common_metadata(wheel, PLUGINS[short])
    requires = wheel.requirements()
    assert requires['genforce-core'].specifier == SpecifierSet(CORE_RANGE)
    for dist, spec in PLUGIN_DEPENDENCIES.get(short, {}).items():
        assert requires[dist].specifier == SpecifierSet(spec)
    assert wheel.group('genforce.plugins') == {short: f'{package}.plugin'}
    members = ('__init__.py', 'plugin.py', 'py.typed', *_package_data(short).values(),
               *_data_files(src / package))
    for member in members:
        assert f'{package}/{member}' in wheel.names, f'{member} is missing from {wheel.path.name}'
    top_level = {n.split('/')[0] for n in wheel.names} - {wheel.dist_info}
    assert top_level == {package}


@pytest.mark.slow
def test_core_wheel(tmp_path):
    src = _copy_project(ROOT, tmp_path / 'src')
    wheel = Wheel(_build_wheel(src, tmp_path / 'wheels'))

    _check_common_metadata(wheel, 'genforce-core')
    assert {'genforce_core/__init__.py', 'genforce_core/py.typed',
            'genforce_core/hookspecs.py', 'genforce_core/plugins.py',
            'genforce/__init__.py', 'genforce/registry.py'} <= wheel.names
    assert wheel.group('console_scripts').get('genforce') == 'genforce_core.cli.main:main'
    top_level = {n.split('/')[0] for n in wheel.names} - {wheel.dist_info}
    assert top_level == {'genforce_core', 'genforce'}, top_level
