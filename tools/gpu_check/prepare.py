"""``tools/gpu_check.sh --prepare [DIR]``: the wheels a GPU machine without network needs.

Run it where pip reaches PyPI. Into DIR (default ``.gpu_wheels``, ignored by git through a
``.gitignore`` inside it) it builds genforce-core and the seven plugins (``pip wheel --no-deps``)
and downloads, for CPython ``--python-version`` (default 3.12) on manylinux x86-64, binary wheels
of the third-party packages that the GPU image may lack: mmengine and its small pure-Python
dependencies, lmdb, pytorch-fid and clean-fid, and a few small fallbacks (pytest, pyyaml, ...),
at the versions installed here when they are. torch, numpy, scipy, opencv, matplotlib and
tensorboard are never carried (large; the GPU image has them). On the GPU machine the ``setup``
step installs genforce's wheels and only those others that are missing there.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Missing from the GPU image (see docs/gpu_check.md; pytorch-fid and clean-fid for the
# side-by-side rows of benchmarks/fid_speed.py), then small fallbacks installed only where an
# image lacks them.
THIRD_PARTY = ['mmengine', 'addict', 'yapf', 'platformdirs', 'termcolor', 'lmdb',
               'pytorch-fid', 'clean-fid',
               'pluggy', 'packaging', 'tqdm', 'rich', 'markdown-it-py', 'mdurl', 'pygments',
               'pyyaml', 'pytest', 'iniconfig']
PLATFORMS = ['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux1_x86_64']
WARN_MIB, MAX_MIB = 50, 60  # the device tool carries 64 MiB in all, repository included


def own_projects(repo: Path = REPO) -> list[str]:
    """genforce-core and the plugins under plugins/ (paths relative to ``repo``)."""
    return ['.', *sorted(str(p.parent.relative_to(repo))
                         for p in repo.glob('plugins/*/pyproject.toml'))]


def pinned(name: str) -> str:
    """``name==<version installed here>``, or ``name`` when it is not installed here."""
    try:
        return f'{name}=={metadata.version(name)}'
    except metadata.PackageNotFoundError:
        return name


def build_command(dest: Path) -> list[str]:
    return [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
            '--disable-pip-version-check', '-q', '-w', str(dest), *own_projects()]


def download_command(dest: Path, python_version: str) -> list[str]:
    platforms = [arg for p in PLATFORMS for arg in ('--platform', p)]
    return [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
            '--python-version', python_version, '--implementation', 'cp', *platforms,
            '--disable-pip-version-check', '-q', '-d', str(dest),
            *[pinned(name) for name in THIRD_PARTY]]


def folder_mib(dest: Path) -> float:
    return sum(p.stat().st_size for p in dest.glob('*.whl')) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='tools/gpu_check.sh --prepare',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('dest', nargs='?', default=str(REPO / '.gpu_wheels'),
                        help='wheel folder (default .gpu_wheels)')
    parser.add_argument('--python-version', default='3.12',
                        help='CPython version of the GPU machine (default %(default)s)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    args = parser.parse_args(argv)
    if not re.fullmatch(r'3\.\d+', args.python_version):
        parser.error(f'--python-version {args.python_version!r}: expected 3.N, e.g. 3.12')

    dest = Path(args.dest).resolve()
    commands = [build_command(dest), download_command(dest, args.python_version)]
    if args.dry_run:
        for cmd in commands:
            print(shlex.join(cmd))
        return 0
    dest.mkdir(parents=True, exist_ok=True)
    (dest / '.gitignore').write_text('# wheels for tools/gpu_check.sh, never committed\n*\n')
    for old in dest.glob('*.whl'):  # one version of each: two would stop the install
        old.unlink()
    for cmd in commands:
        print('$', shlex.join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=REPO)
        if proc.returncode:
            print(f'[prepare] failed ({proc.returncode}): {shlex.join(cmd[:4])} ...; see above',
                  file=sys.stderr)
            return 1
    wheels = sorted(dest.glob('*.whl'))
    size = folder_mib(dest)
    (dest / 'MANIFEST.json').write_text(json.dumps(dict(
        python_version=args.python_version, total_mib=round(size, 2),
        wheels={w.name: w.stat().st_size for w in wheels}), indent=2))
    print(f'[prepare] {len(wheels)} wheels, {size:.1f} MiB in {dest}')
    if size > MAX_MIB:
        print(f'[prepare] too large to carry ({size:.0f} MiB > {MAX_MIB} MiB)', file=sys.stderr)
        return 1
    if size > WARN_MIB:
        print(f'[prepare] warning: {size:.0f} MiB leaves little of the 64 MiB carry limit')
    rel = dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest
    print(f'[prepare] on the GPU machine: bash tools/gpu_check.sh --pack "$OUT" '
          f'(device tool: carry ["{rel}"])')
    return 0


if __name__ == '__main__':
    sys.exit(main())
