"""The wheels carry what the packages need at run time, and a pip-only user can train.

* Every package-data glob of every pyproject matches a real file (fast).
* The built wheels hold every config (``_base_`` folders included) and every CUDA source of
  their package (slow).
* A fresh virtual environment with only genforce-core, genforce-plugin-stylegan2ada and what it
  declares (genforce-plugin-stylegan2), installed from the wheels with ``pip --no-index
  --find-links``, lists the packaged configs and trains one from an empty directory (slow).

The fresh environment is honest and offline: ``python -m venv`` without system site packages;
the third-party dependencies (torch, mmengine, ...) come from this environment through a folder
of links that leaves out every genforce distribution (editable or not), so the genforce code
it runs can only come from the wheels.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip('tomli')

ROOT = Path(__file__).resolve().parents[1]
# distribution -> (project folder, import package)
PROJECTS = {'genforce-core': (ROOT, 'genforce_core')}
PROJECTS.update({f'genforce-plugin-{p.name.replace("_", "-")}': (p, f'genforce_{p.name}')
                 for p in sorted((ROOT / 'plugins').iterdir()) if (p / 'pyproject.toml').is_file()})
DATA_SUFFIXES = ('.cu', '.cuh', '.cpp', '.h')
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', '.git', 'build', 'dist')
# Top-level folders of the checkout that are no part of the core wheel.
_NOT_CORE = {'.venv', 'plugins', 'tests', 'data', 'benchmarks', 'examples', 'work_dirs',
             'configs', 'tools', '.pytest_cache', '.ruff_cache'}  # docs: the long description


def _package_data(project: Path, package: str) -> list[str]:
    with open(project / 'pyproject.toml', 'rb') as f:
        data = tomllib.load(f)
    return data.get('tool', {}).get('setuptools', {}).get('package-data', {}).get(package, [])


def _runtime_files(package_dir: Path) -> list[str]:
    """Configs and CUDA sources of a package, relative to it."""
    return sorted(p.relative_to(package_dir).as_posix() for p in package_dir.rglob('*')
                  if p.is_file() and (p.suffix in DATA_SUFFIXES or 'configs' in
                                      p.relative_to(package_dir).parts and p.suffix == '.py'))


@pytest.mark.parametrize('dist', sorted(PROJECTS))
def test_package_data_globs_match_real_files(dist):
    project, package = PROJECTS[dist]
    globs = _package_data(project, package)
    files = [p.relative_to(project / package).as_posix() for p in (project / package).rglob('*')
             if p.is_file() and '__pycache__' not in p.parts]
    for pattern in globs:
        assert any(fnmatch.fnmatch(f, pattern) and f.count('/') == pattern.count('/')
                   for f in files), f'{dist}: package-data {pattern!r} matches no file'
    for name in _runtime_files(project / package):
        assert any(fnmatch.fnmatch(name, g) and name.count('/') == g.count('/') for g in globs), \
            f'{dist}: {name} is not package data, so no wheel would carry it'


# -- wheels (slow) ---------------------------------------------------------------------------

def _copy_project(dist: str, dst: Path) -> Path:
    project, _ = PROJECTS[dist]

    def ignore(folder, names):
        ignored = set(_IGNORE(folder, names))
        if Path(folder) == ROOT:
            ignored |= _NOT_CORE & set(names)
        return ignored
    shutil.copytree(project, dst, ignore=ignore)
    return dst


@pytest.fixture(scope='module')
def wheel_dir(tmp_path_factory) -> Path:
    """A wheel of the core and of every plugin, built offline from copies of their folders."""
    out = tmp_path_factory.mktemp('wheels')
    src = tmp_path_factory.mktemp('src')
    env = {**os.environ, 'PIP_DISABLE_PIP_VERSION_CHECK': '1', 'PIP_NO_INPUT': '1'}
    projects = [str(_copy_project(dist, src / dist)) for dist in sorted(PROJECTS)]
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                             '--no-build-isolation', '--no-index', '-q', '-w', str(out),
                             *projects], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f'pip wheel failed:\n{result.stdout}\n{result.stderr}'
    return out


def _wheel(wheel_dir: Path, dist: str) -> Path:
    [wheel] = wheel_dir.glob(f'{dist.replace("-", "_")}-*.whl')
    return wheel


@pytest.mark.slow
@pytest.mark.parametrize('dist', sorted(PROJECTS))
def test_wheel_carries_configs_and_cuda_sources(wheel_dir, dist):
    project, package = PROJECTS[dist]
    with zipfile.ZipFile(_wheel(wheel_dir, dist)) as zf:
        names = set(zf.namelist())
    expected = _runtime_files(project / package)
    missing = [n for n in expected if f'{package}/{n}' not in names]
    assert not missing, f'{dist} wheel lacks {missing}'
    if dist == 'genforce-core':
        assert {'_base_/gan.py', '_base_/default_runtime.py',
                '_base_/datasets/image_dataset.py'} <= {n.removeprefix('configs/')
                                                        for n in expected}
    if dist in ('genforce-plugin-stylegan2', 'genforce-plugin-stylegan2ada'):
        assert any(n.startswith('configs/') for n in expected)
    if dist in ('genforce-plugin-stylegan2', 'genforce-plugin-stylegan'):
        assert any(n.endswith('.cu') for n in expected)


def _dependency_links(target: Path) -> Path:
    """A folder of links to this environment's site-packages without any genforce
    distribution (package, dist-info, editable finder or .pth)."""
    target.mkdir()
    sites = {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']}
    for site in sites:
        for entry in Path(site).iterdir():
            name = entry.name.lower()
            if (name.startswith(('genforce', '__editable__', '_genforce')) or name.endswith(
                    ('.pth', '.egg-link')) or (target / entry.name).exists()):
                continue
            (target / entry.name).symlink_to(entry)
    return target


@pytest.fixture(scope='module')
def fresh_env(wheel_dir, tmp_path_factory) -> dict:
    """A new venv with genforce-plugin-stylegan2ada installed from the wheels only."""
    base = tmp_path_factory.mktemp('fresh')
    venv = base / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True,
                   timeout=300)
    python = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; '
                                'print(sysconfig.get_paths()["purelib"])'], check=True,
                               capture_output=True, text=True).stdout.strip())
    deps = _dependency_links(base / 'deps')
    (site / 'third_party_deps.pth').write_text(f'{deps}\n')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PYTHON', 'GENFORCE_', 'VIRTUAL_ENV', 'PIP_'))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1',
               PATH=f'{venv / "bin"}{os.pathsep}{env.get("PATH", "")}')
    install = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', str(python), 'install', '--no-index',
         '--find-links', str(wheel_dir), 'genforce-plugin-stylegan2ada'],
        capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, f'{install.stdout}\n{install.stderr}'
    return dict(venv=venv, python=python, env=env, install=install.stdout)


def _run(fresh_env: dict, args: list[str], cwd: Path, timeout: float = 600):
    proc = subprocess.run(args, cwd=cwd, env=fresh_env['env'], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


@pytest.mark.slow
def test_fresh_install_has_only_what_was_asked_for(fresh_env, tmp_path):
    installed = json.loads(_run(fresh_env, [
        str(fresh_env['python']), '-c',
        'import importlib.metadata as m, json; print(json.dumps(sorted({d.metadata["Name"] for '
        'd in m.distributions() if d.metadata["Name"].startswith("genforce")})))'],
        tmp_path).stdout)
    assert installed == ['genforce-core', 'genforce-plugin-stylegan2',
                         'genforce-plugin-stylegan2ada']
    where = _run(fresh_env, [str(fresh_env['python']), '-c',
                             'import genforce_core, genforce_stylegan2ada; '
                             'print(genforce_core.__file__, genforce_stylegan2ada.__file__)'],
                 tmp_path).stdout.split()
    assert all(Path(w).is_relative_to(fresh_env['venv']) for w in where), where


@pytest.mark.slow
def test_pip_only_user_lists_and_trains_a_packaged_config(fresh_env, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    genforce = str(fresh_env['venv'] / 'bin' / 'genforce')
    listed = json.loads(_run(fresh_env, [genforce, 'configs', '--json'], empty).stdout)
    by_name = {c['name']: c for c in listed}
    assert by_name['stylegan2ada_cifar10']['plugin'] == 'stylegan2ada'
    assert by_name['stylegan2_ffhq']['plugin'] == 'stylegan2'
    assert all(Path(c['path']).is_relative_to(fresh_env['venv']) for c in listed)
    assert 'pggan_celebahq1024' not in by_name  # its plugin is not installed

    tiny = ['train_dataloader.dataset.path=builtin:shapes32',
            'train_dataloader.dataset.use_labels=False', 'model.generator.c_dim=0',
            'model.discriminator.c_dim=0', 'model.generator.z_dim=16', 'model.generator.w_dim=16',
            'model.generator.synthesis_kwargs.channel_base=256',
            'model.generator.synthesis_kwargs.channel_max=16',
            'model.discriminator.channel_base=256', 'model.discriminator.channel_max=16',
            'model.discriminator.epilogue_kwargs.mbstd_group_size=2',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False']
    _run(fresh_env, [genforce, 'train', 'stylegan2ada_cifar10', '--kimg', '0.004',
                     '--cfg-options', *tiny], empty)
    work = empty / 'work_dirs' / 'stylegan2ada_cifar10'
    assert (work / 'iter_2.pth').is_file(), sorted(p.name for p in work.iterdir())

    # The auto config generator inherits the packaged config: it works without a checkout.
    _run(fresh_env, [str(fresh_env['python']), '-m', 'genforce_stylegan2ada.auto',
                     '--resolution', '64', '--gpus', '1', '--out', 'auto64.py'], empty)
    loaded = _run(fresh_env, [str(fresh_env['python']), '-c',
                              'from genforce_core.config import load_config; '
                              'c = load_config("auto64.py"); '
                              'print(c.model.type, c.model.generator.img_resolution); '
                              'd = load_config("genforce_stylegan2ada::stylegan2ada_cifar10.py");'
                              ' print(d.model.type)'], empty).stdout.split()
    assert loaded == ['StyleGAN2ADA', '64', 'StyleGAN2ADA']
