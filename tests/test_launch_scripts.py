"""The launch scripts in tools/: arguments, environment and the command they start.

Nothing here trains: ``PYTHON`` points at a fake interpreter that records its argv and
environment, and a fake ``srun`` (first on ``PATH``) records its options and runs the command
once per task with the ``SLURM_*`` variables a real srun sets.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / 'tools'
SCRIPTS = {  # script -> its positional arguments
    'dist_train.sh': ['CONFIG', 'GPUS'],
    'dist_test.sh': ['CONFIG', 'CHECKPOINT', 'GPUS'],
    'slurm_train.sh': ['PARTITION', 'JOB_NAME', 'CONFIG', 'WORK_DIR'],
    'slurm_test.sh': ['PARTITION', 'JOB_NAME', 'CONFIG', 'CHECKPOINT'],
}
# Variables the scripts read: the tests set them explicitly or rely on the defaults.
SCRIPT_ENV = ('NNODES', 'NODE_RANK', 'PORT', 'MASTER_ADDR', 'GPUS', 'GPUS_PER_NODE',
              'CPUS_PER_TASK', 'SRUN_ARGS', 'PYTHON')

pytestmark = pytest.mark.skipif(shutil.which('bash') is None, reason='the scripts need bash')

FAKE_PYTHON = f'''#!{sys.executable}
"""Records how it was called instead of running anything."""
import json, os, sys
record = {{
    'argv': sys.argv[1:],
    'cwd': os.getcwd(),
    'env': {{k: v for k, v in os.environ.items()
            if k.startswith('SLURM_') or k == 'PYTHONPATH'}},
}}
path = os.path.join(os.environ['RECORD_DIR'],
                    'python-%s-%d.json' % (os.environ.get('SLURM_PROCID', 'x'), os.getpid()))
with open(path, 'w') as f:
    json.dump(record, f)
'''

FAKE_SRUN = f'''#!{sys.executable}
"""Records its options, then runs the command once per task like srun does."""
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.path.join(os.environ['RECORD_DIR'], 'srun.json'), 'w') as f:
    json.dump(args, f)
options, i = {{}}, 0
while i < len(args) and args[i].startswith('-'):
    if args[i] in ('-p', '-J', '-N', '-n', '-w', '-x'):  # short options take the next word
        options[args[i]] = args[i + 1]
        i += 2
    else:
        key, _, value = args[i].partition('=')
        options[key] = value
        i += 1
command = args[i:]
ntasks = int(options.get('--ntasks', 1))
per_node = int(options.get('--ntasks-per-node', ntasks))
nodes = (ntasks + per_node - 1) // per_node
status = 0
for rank in range(ntasks):
    env = dict(os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
               SLURM_LOCALID=str(rank % per_node), SLURM_NODEID=str(rank // per_node),
               SLURM_NODELIST='node[0-%d]' % (nodes - 1) if nodes > 1 else 'node0',
               SLURM_JOB_NAME=options.get('--job-name', ''))
    status = status or subprocess.call(command, env=env)
sys.exit(status)
'''


@pytest.fixture
def fakes(tmp_path):
    """A record folder, a fake python and a fake srun; returns (env, record_dir, python)."""
    record_dir = tmp_path / 'records'
    bin_dir = tmp_path / 'bin'
    record_dir.mkdir()
    bin_dir.mkdir()
    python = bin_dir / 'fake-python'
    python.write_text(FAKE_PYTHON)
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    for exe in (python, bin_dir / 'srun'):
        exe.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in SCRIPT_ENV and not k.startswith('SLURM_')}
    env.update(RECORD_DIR=str(record_dir), PYTHON=str(python),
               PATH=f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}',
               PYTHONPATH='/some/where')
    return env, record_dir, python


def run_script(name, args, env, cwd=None):
    return subprocess.run([str(TOOLS / name), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def python_calls(record_dir):
    calls = [json.loads(p.read_text()) for p in sorted(record_dir.glob('python-*.json'))]
    return sorted(calls, key=lambda c: int(c['env'].get('SLURM_PROCID', 0)))


def option(argv, name):
    """The value of ``name=value`` in ``argv`` (None when absent)."""
    values = [a.split('=', 1)[1] for a in argv if a.startswith(name + '=')]
    assert len(values) <= 1, (name, argv)
    return values[0] if values else None


# -- (a) usage ---------------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_script_is_executable_bash(name):
    path = TOOLS / name
    assert os.access(path, os.X_OK), f'chmod +x tools/{name}'
    assert path.read_text().startswith('#!/usr/bin/env bash\n')


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_too_few_arguments_print_usage_and_exit_2(name, fakes):
    env, record_dir, _ = fakes
    needed = SCRIPTS[name]
    for count in (0, len(needed) - 1):
        result = run_script(name, needed[:count], env)
        assert result.returncode == 2, result
        assert 'usage:' in result.stderr and ' '.join(needed) in result.stderr
    assert not list(record_dir.iterdir()), 'nothing may run without all arguments'


@pytest.mark.parametrize('name,args', [
    ('dist_train.sh', ['cfg.py', 'two']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '0']),
])
def test_dist_scripts_reject_a_bad_gpu_count(name, args, fakes):
    env, record_dir, _ = fakes
    result = run_script(name, args, env)
    assert result.returncode == 2
    assert 'GPUS must be a positive integer' in result.stderr
    assert not list(record_dir.iterdir())


def test_slurm_script_rejects_a_bad_gpu_count(fakes):
    env, record_dir, _ = fakes
    result = run_script('slurm_train.sh', ['p', 'j', 'cfg.py', 'wd'], {**env, 'GPUS': 'all'})
    assert result.returncode == 2 and 'GPUS must be a positive integer' in result.stderr
    assert not list(record_dir.iterdir())


# -- (b) torchrun ------------------------------------------------------------------------------

def test_dist_train_defaults(fakes, tmp_path):
    env, record_dir, _ = fakes
    result = run_script('dist_train.sh', ['configs/x.py', '4', '--amp', '--cfg-options', 'a=1'],
                        env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (call,) = python_calls(record_dir)
    argv = call['argv']
    assert argv[:2] == ['-m', 'torch.distributed.run']
    assert option(argv, '--nproc_per_node') == '4'
    assert option(argv, '--master_port') == '29500'
    assert option(argv, '--nnodes') == '1'
    assert option(argv, '--node_rank') == '0'
    assert option(argv, '--master_addr') == '127.0.0.1'
    script = argv.index(str(TOOLS / 'train.py'))  # script-relative: works from any cwd
    assert argv[script + 1:] == ['configs/x.py', '--launcher', 'pytorch',
                                 '--amp', '--cfg-options', 'a=1']
    assert call['cwd'] == str(tmp_path)  # relative config paths stay the caller's
    assert call['env']['PYTHONPATH'].split(os.pathsep) == [str(TOOLS / '..'), '/some/where']


def test_dist_train_honours_the_environment(fakes):
    env, record_dir, _ = fakes
    env.update(NNODES='2', NODE_RANK='1', MASTER_ADDR='10.1.2.3', PORT='29611')
    env.pop('PYTHONPATH')
    result = run_script('dist_train.sh', ['cfg.py', '8'], env)
    assert result.returncode == 0, result.stderr
    (call,) = python_calls(record_dir)
    argv = call['argv']
    assert option(argv, '--nnodes') == '2'
    assert option(argv, '--node_rank') == '1'
    assert option(argv, '--master_addr') == '10.1.2.3'
    assert option(argv, '--master_port') == '29611'
    assert option(argv, '--nproc_per_node') == '8'
    assert argv[-3:] == ['cfg.py', '--launcher', 'pytorch']
    # No trailing empty entry (which would put the cwd on sys.path).
    assert call['env']['PYTHONPATH'] == str(TOOLS / '..')


def test_dist_test_passes_config_checkpoint_and_extra_args(fakes):
    env, record_dir, _ = fakes
    env['PORT'] = '29777'
    result = run_script('dist_test.sh', ['cfg.py', 'ckpt.pth', '2', '--out', 'r.json'], env)
    assert result.returncode == 0, result.stderr
    (call,) = python_calls(record_dir)
    argv = call['argv']
    assert option(argv, '--nproc_per_node') == '2'
    assert option(argv, '--master_port') == '29777'
    script = argv.index(str(TOOLS / 'test.py'))
    assert argv[script + 1:] == ['cfg.py', 'ckpt.pth', '--launcher', 'pytorch',
                                 '--out', 'r.json']


def test_python_may_carry_interpreter_options(fakes):
    env, record_dir, python = fakes
    env['PYTHON'] = f'{python} -X faulthandler'
    assert run_script('dist_train.sh', ['cfg.py', '1'], env).returncode == 0
    (call,) = python_calls(record_dir)
    assert call['argv'][:4] == ['-X', 'faulthandler', '-m', 'torch.distributed.run']


# -- (c) slurm ---------------------------------------------------------------------------------

def test_slurm_train_under_srun(fakes):
    env, record_dir, python = fakes
    env.update(GPUS='4', GPUS_PER_NODE='2', CPUS_PER_TASK='3',
               SRUN_ARGS='--quotatype=reserved --exclusive')
    result = run_script('slurm_train.sh',
                        ['gpu-part', 'sg2-ffhq', 'cfg.py', 'work_dirs/run1', '--resume'], env)
    assert result.returncode == 0, result.stderr

    srun = json.loads((record_dir / 'srun.json').read_text())
    assert srun[:2] == ['-p', 'gpu-part']
    assert option(srun, '--job-name') == 'sg2-ffhq'
    assert option(srun, '--ntasks') == '4'
    assert option(srun, '--ntasks-per-node') == '2'
    assert option(srun, '--gres') == 'gpu:2'
    assert option(srun, '--cpus-per-task') == '3'
    assert option(srun, '--kill-on-bad-exit') == '1'
    command = srun.index(str(python))
    assert {'--quotatype=reserved', '--exclusive'} <= set(srun[:command])

    calls = python_calls(record_dir)
    assert len(calls) == 4  # one task per GPU
    for rank, call in enumerate(calls):
        assert call['argv'] == ['-u', str(TOOLS / 'train.py'), 'cfg.py',
                                '--work-dir=work_dirs/run1', '--launcher', 'slurm', '--resume']
        assert call['env']['SLURM_PROCID'] == str(rank)
        assert call['env']['SLURM_NTASKS'] == '4'
        assert call['env']['SLURM_LOCALID'] == str(rank % 2)
        assert call['env']['SLURM_NODELIST'] == 'node[0-1]'
        assert call['env']['PYTHONPATH'].split(os.pathsep) == [str(TOOLS / '..'), '/some/where']


def test_slurm_train_defaults_and_small_jobs(fakes):
    env, record_dir, _ = fakes
    assert run_script('slurm_train.sh', ['p', 'j', 'cfg.py', 'wd'], env).returncode == 0
    srun = json.loads((record_dir / 'srun.json').read_text())
    assert option(srun, '--ntasks') == '8'
    assert option(srun, '--gres') == 'gpu:8'
    assert option(srun, '--ntasks-per-node') == '8'
    assert option(srun, '--cpus-per-task') == '5'
    assert len(python_calls(record_dir)) == 8

    for path in record_dir.iterdir():
        path.unlink()
    env['GPUS'] = '2'  # fewer GPUs than a node has: ask for those only
    assert run_script('slurm_train.sh', ['p', 'j', 'cfg.py', 'wd'], env).returncode == 0
    srun = json.loads((record_dir / 'srun.json').read_text())
    assert option(srun, '--ntasks') == '2'
    assert option(srun, '--gres') == 'gpu:2'
    assert option(srun, '--ntasks-per-node') == '2'


def test_slurm_test_under_srun(fakes):
    env, record_dir, _ = fakes
    env['GPUS'] = '1'
    result = run_script('slurm_test.sh', ['p', 'eval', 'cfg.py', 'ckpt.pth', '--out', 'r.json'],
                        env)
    assert result.returncode == 0, result.stderr
    srun = json.loads((record_dir / 'srun.json').read_text())
    assert option(srun, '--job-name') == 'eval' and option(srun, '--ntasks') == '1'
    (call,) = python_calls(record_dir)
    assert call['argv'] == ['-u', str(TOOLS / 'test.py'), 'cfg.py', 'ckpt.pth',
                            '--launcher', 'slurm', '--out', 'r.json']


def test_a_failing_task_fails_the_script(fakes, tmp_path):
    env, _, _ = fakes
    failing = tmp_path / 'bin' / 'failing-python'
    failing.write_text('#!/bin/sh\nexit 3\n')
    failing.chmod(0o755)
    env.update(PYTHON=str(failing), GPUS='2')
    assert run_script('dist_train.sh', ['cfg.py', '2'], env).returncode == 3
    assert run_script('slurm_train.sh', ['p', 'j', 'cfg.py', 'wd'], env).returncode == 3
