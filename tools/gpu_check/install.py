"""GPU check step ``setup``: install the carried wheels, then record the environment.

With a wheel folder (``tools/gpu_check.sh --prepare``): genforce's own wheels are always
installed, the third-party ones only when this interpreter lacks that distribution (so the
machine's torch, numpy, ... stay), all with ``pip install --no-index --no-deps --target SITE``
(the orchestrator puts SITE first on every step's PYTHONPATH; a ``--target`` folder also works
where python3 is itself a virtual environment, which a ``--system-site-packages`` venv would
not see through). When this checkout's sources differ from the installed wheels (built from
older code), genforce is built and installed from the checkout instead (``pip install
--no-build-isolation``, with the machine's setuptools); if that fails too, the step fails
saying to rerun ``--prepare``. Without a wheel folder, the environment must already have
genforce installed.

Then it checks that genforce and every plugin import, and writes versions, the GPU, nvcc and the
plugins' op status to the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import own_projects  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OWN_PREFIX = 'genforce'
VERIFY = r'''
import json, sys
import torch, mmengine, lmdb, numpy
import genforce_core
info = dict(python=sys.version.split()[0], torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), mmengine=mmengine.__version__,
            numpy=numpy.__version__, lmdb=lmdb.__version__, genforce_core=genforce_core.__file__)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info['gpu'] = dict(name=p.name, capability=f'{p.major}.{p.minor}',
                       memory_gib=round(p.total_memory / 2**30, 1), count=torch.cuda.device_count(),
                       torch=torch.__version__, cuda=torch.version.cuda)
print('GPU_CHECK_ENV ' + json.dumps(info))
'''


def dist_name(wheel: Path) -> str:
    """The normalized distribution name of a wheel file (``mmengine-0.10.7-py3-none-any.whl``
    -> ``mmengine``)."""
    return re.sub(r'[-_.]+', '-', wheel.name.split('-')[0]).lower()


def is_installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def choose_wheels(wheels: list[Path], installed=is_installed) -> tuple[list[Path], list[str]]:
    """(wheels to install, names already present): ours always, others only when missing."""
    chosen, present = [], []
    for wheel in sorted(wheels):
        name = dist_name(wheel)
        if name.startswith(OWN_PREFIX) or not installed(name):
            chosen.append(wheel)
        else:
            present.append(name)
    return chosen, present


SOURCE_SUFFIXES = {'.py', '.cu', '.cpp', '.h', '.cuh'}


def stale_files(site: Path, repo: Path = REPO) -> list[str]:
    """Source files of this checkout that the installed genforce packages in ``site`` lack or
    hold in another version: wheels built from older code (rerun ``--prepare``)."""
    stale = []
    for installed in sorted(site.glob('genforce*/')):
        sources = [repo / installed.name, *repo.glob(f'plugins/*/{installed.name}')]
        source = next((d for d in sources if d.is_dir()), None)
        if source is None:
            continue
        for path in sorted(source.rglob('*')):
            if path.suffix not in SOURCE_SUFFIXES or '__pycache__' in path.parts:
                continue
            copy = installed / path.relative_to(source)
            if not copy.is_file() or copy.read_bytes() != path.read_bytes():
                stale.append(str(path.relative_to(repo)))
    return stale


def pip_install(items: list, site: Path, *extra: str) -> bool:
    """``pip install --no-index --no-deps --target site ITEMS`` (wheels or project folders)."""
    site.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, '-m', 'pip', 'install', '--no-index', '--no-deps', '--no-compile',
           '--disable-pip-version-check', '--no-cache-dir', '--upgrade', *extra,
           '--target', str(site), *map(str, items)]
    print('$', ' '.join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO).returncode == 0


def run_text(cmd: list[str], env: dict | None = None, timeout: float = 120,
             cwd: Path | None = None) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return proc.returncode, proc.stdout + proc.stderr


def environment(site: Path) -> tuple[dict, list[str]]:
    """Versions, GPU, nvcc, plugins (through a fresh interpreter with ``site`` on the path,
    run outside the repository so that the installed packages are checked), and the problems
    found."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(site), env.get('PYTHONPATH', '')) if p)
    problems: list[str] = []
    site.mkdir(parents=True, exist_ok=True)
    code, text = run_text([sys.executable, '-c', VERIFY], env, cwd=site)
    line = next((x for x in text.splitlines() if x.startswith('GPU_CHECK_ENV ')), None)
    info: dict = json.loads(line.split(' ', 1)[1]) if line else {}
    if code or not line:
        problems.append(f'imports failed: {text.strip().splitlines()[-1:]}')
    code, text = run_text([sys.executable, '-m', 'genforce_core.cli.main', 'plugins', '--json'],
                          env, cwd=site)
    try:
        plugins = json.loads(text[text.index('['):])
    except ValueError:
        plugins = []
        problems.append(f'genforce plugins --json failed ({code}): {text.strip()[-300:]}')
    info['plugins'] = {p['name']: dict(version=p.get('version'), status=p.get('status'),
                                       error=p.get('error'), ops=p.get('ops'))
                       for p in plugins}
    problems += [f'plugin {name}: {p["status"]} {p["error"] or ""}'.strip()
                 for name, p in info['plugins'].items() if p['status'] != 'loaded']
    _, info['nvcc'] = run_text(['nvcc', '--version'])
    info['nvcc'] = info['nvcc'].strip().splitlines()[-1:] or None
    _, smi = run_text(['nvidia-smi', '--query-gpu=name,driver_version,memory.total,clocks.max.sm',
                       '--format=csv,noheader'])
    info['nvidia_smi'] = smi.strip()
    return info, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--wheels', type=Path, required=True)
    parser.add_argument('--site', type=Path, required=True)
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--rehearse', action='store_true', help='(no effect: same on the CPU)')
    args = parser.parse_args(argv)

    result: dict = dict(wheels_dir=str(args.wheels), site=str(args.site))
    wheels = sorted(args.wheels.glob('*.whl')) if args.wheels.is_dir() else []
    if wheels:
        chosen, present = choose_wheels(wheels)
        print(f'[setup] installing {len(chosen)} wheel(s) into {args.site}; already present: '
              f'{", ".join(present) or "-"}', flush=True)
        if not pip_install(chosen, args.site):
            print('[setup] installing the wheels failed', flush=True)
            return 1
        result.update(installed=[w.name for w in chosen], already_present=present)
        stale = stale_files(args.site)
        if stale:
            print(f'[setup] {len(stale)} source file(s) differ from the wheels (e.g. '
                  f'{stale[0]}): building genforce from this checkout', flush=True)
            result['built_from_checkout'] = pip_install(own_projects(), args.site,
                                                        '--no-build-isolation')
            stale = stale_files(args.site)
        result['stale_sources'] = stale
    else:
        stale = []
        print(f'[setup] no wheels in {args.wheels}: using the environment as it is', flush=True)
        result['installed'] = []
    info, problems = environment(args.site)
    if stale:
        problems.insert(0, f'the wheels in {args.wheels} are older than this checkout '
                        f'({len(stale)} file(s) differ, e.g. {", ".join(stale[:3])}) and '
                        'building from the checkout failed: rerun `tools/gpu_check.sh '
                        '--prepare` and carry the folder again')
    result.update(info, problems=problems, note='; '.join(problems))
    if problems and not wheels:
        problems.append(f'genforce is not installed here and there are no wheels in '
                        f'{args.wheels}: run `tools/gpu_check.sh --prepare` on a machine with '
                        'network and carry that folder')
        result['note'] = '; '.join(problems)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    for problem in problems:
        print(f'[setup] problem: {problem}', flush=True)
    print(json.dumps({k: v for k, v in info.items() if k != 'plugins'}, indent=2))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
