"""tools/gpu_check.sh without a GPU: the clean skip, step selection, the orchestration (timeouts,
failures that do not stop the others, the time budget, summary and packing), the helpers'
parsing, the --prepare commands, and (slow) a rehearsal of real steps on the CPU."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'tools' / 'gpu_check.sh'
no_gpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason='checks the no-GPU skip')


def load(name: str):
    """A module of tools/gpu_check/ (not a package)."""
    spec = importlib.util.spec_from_file_location(f'gpu_check_{name}',
                                                  REPO / 'tools' / 'gpu_check' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


run_mod = load('run')


def gpu_check(*args: str, python: str = sys.executable, timeout: float = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != 'OUT'}
    full_env.update(PYTHON=python, **(env or {}))
    return subprocess.run(['bash', str(SCRIPT), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO)


# ------------------------------------------------------------------------------ skip without GPU

@no_gpu_only
def test_skips_cleanly_without_a_gpu(tmp_path):
    proc = gpu_check(str(tmp_path / 'out'), '--only', 'tests,speed')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('[gpu_check] skipped: no CUDA GPU visible')
    assert 'torch.cuda.is_available() is False' in lines[0]
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['status'] == 'skipped'
    assert 'no CUDA GPU visible' in summary['reason']
    assert [(s['name'], s['status']) for s in summary['steps']] == [
        ('setup', 'skipped'), ('tests', 'skipped'), ('speed', 'skipped')]
    assert '# GPU check: skipped' in (tmp_path / 'out' / 'summary.md').read_text()


def test_skips_when_torch_cannot_be_imported(tmp_path):
    # An interpreter without site-packages: no torch, only the standard library.
    wrapper = tmp_path / 'bare_python'
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    wrapper.chmod(0o755)
    proc = gpu_check(env={'OUT': str(tmp_path / 'from_env')}, python=str(wrapper))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('[gpu_check] skipped: torch cannot be imported')
    summary = json.loads((tmp_path / 'from_env' / 'summary.json').read_text())  # $OUT used
    assert summary['status'] == 'skipped'
    assert len(summary['steps']) == len(run_mod.STEPS)


# ----------------------------------------------------------------------------- step selection

def test_step_selection():
    names = lambda steps: [s.name for s in steps]  # noqa: E731
    assert names(run_mod.select_steps()) == run_mod.STEP_NAMES
    # Fixed order whatever the order asked, setup always first.
    assert names(run_mod.select_steps('tests,compile')) == ['setup', 'compile', 'tests']
    assert names(run_mod.select_steps(None, 'speed, fid')) == [
        'setup', 'compile', 'tests', 'train_fp16', 'train_amp']
    assert names(run_mod.select_steps('tests', 'setup')) == ['tests']
    with pytest.raises(run_mod.GpuCheckError, match='unknown step bogus: choose from setup,'):
        run_mod.select_steps('tests,bogus')
    with pytest.raises(run_mod.GpuCheckError, match='no step left'):
        run_mod.select_steps('setup')
    assert run_mod.parse_timeouts(['speed=300', 'fid=1.5']) == {'speed': 300.0, 'fid': 1.5}
    for bad in ('speed', 'speed=0', 'speed=x', 'nope=3', '=3'):
        with pytest.raises(run_mod.GpuCheckError):
            run_mod.parse_timeouts([bad])


def test_dry_run_and_usage_errors(tmp_path):
    proc = gpu_check(str(tmp_path), '--dry-run', '--only', 'fid,compile', '--timeout', 'fid=77')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ['setup', 'compile', 'fid']
    assert 'fid (timeout 77 s):' in lines[2] and 'tools/gpu_check/fid_step.py' in lines[2]
    assert not list(tmp_path.iterdir())  # a dry run writes nothing
    proc = gpu_check(str(tmp_path), '--only', 'tests,bogus')
    assert proc.returncode == 2
    assert 'unknown step bogus' in proc.stderr
    proc = gpu_check('--list')
    assert proc.returncode == 0 and proc.stdout.split()[0] == 'setup'
    assert [line.split()[0] for line in proc.stdout.splitlines()] == run_mod.STEP_NAMES


# ------------------------------------------------------------------------------ orchestration

def fake_step(name: str, code: str, timeout: float = 30, required: bool = False):
    """A step running ``code`` in Python; ``JSON`` in it is the path of its result file."""
    def argv(ctx, seconds):
        return [sys.executable, '-c', f'JSON = {str(ctx.json_path(name))!r}\n' + code]
    return run_mod.Step(name, f'fake {name}', timeout, argv, required)


def context(tmp_path):
    return run_mod.Context(python=sys.executable, out=tmp_path / 'out',
                           steps_dir=tmp_path / 'steps', scratch=tmp_path / 'scratch',
                           wheels=tmp_path / 'none')


WRITE_JSON = 'import json; json.dump(dict(value=42, note="forty-two"), open(JSON, "w"))'


def test_failures_and_timeouts_do_not_stop_the_other_steps(tmp_path):
    ctx = context(tmp_path)
    ctx.steps_dir.mkdir()
    steps = [fake_step('ok', WRITE_JSON + '; print("hello")'),
             fake_step('crash', 'import sys; print("boom"); sys.exit(3)'),
             fake_step('hang', 'import time; time.sleep(60)', timeout=1),
             fake_step('after', WRITE_JSON)]
    seen = []
    start = time.monotonic()
    results = run_mod.run_all(steps, ctx, dict(os.environ), budget_s=120,
                              on_result=lambda rs: seen.append([r.status for r in rs]))
    assert time.monotonic() - start < 30  # the hung step was killed at its timeout
    assert [(r.name, r.status, r.returncode) for r in results] == [
        ('ok', 'passed', 0), ('crash', 'failed', 3), ('hang', 'timeout', None),
        ('after', 'passed', 0)]
    assert results[0].result == dict(value=42, note='forty-two')
    assert results[0].note == 'forty-two'
    assert results[1].note == 'exit code 3'
    assert 'killed after 1 s' in results[2].note
    assert seen[-1] == ['passed', 'failed', 'timeout', 'passed'] and len(seen) == 4
    log = (ctx.steps_dir / 'ok.log').read_text()
    assert log.startswith('$ ') and 'hello' in log and '[gpu_check] ok: passed' in log
    assert 'boom' in (ctx.steps_dir / 'crash.log').read_text()
    assert run_mod.overall_status(results) == 'failed'


def test_budget_and_failed_setup_skip_later_steps(tmp_path, monkeypatch):
    ctx = context(tmp_path)
    ctx.steps_dir.mkdir()
    monkeypatch.setattr(run_mod, 'MIN_STEP_S', 0.5)
    steps = [fake_step('slow', 'import time; time.sleep(60)', timeout=60),
             fake_step('next', WRITE_JSON)]
    results = run_mod.run_all(steps, ctx, dict(os.environ), budget_s=1.5)
    assert [r.status for r in results] == ['timeout', 'skipped']  # cut to the budget
    assert results[0].timeout_s == pytest.approx(1.5, abs=0.2)
    assert 'time budget of 2 s used up' in results[1].note
    # A step that needs more than the minimum (speed: one measurement) is skipped, not
    # started to fail: the second GPU run had 15 s left for it and reported 'failed'.
    needy = fake_step('needy', WRITE_JSON)
    needy.min_s = 30
    assert run_mod.run_all([needy], ctx, dict(os.environ), budget_s=20)[0].status == 'skipped'
    assert next(s for s in run_mod.STEPS if s.name == 'speed').min_s >= 60

    steps = [fake_step('setup', 'import sys; sys.exit(1)', required=True),
             fake_step('next', WRITE_JSON)]
    results = run_mod.run_all(steps, ctx, dict(os.environ), budget_s=60)
    assert [(r.status, r.note) for r in results] == [('failed', 'exit code 1'),
                                                     ('skipped', 'setup failed')]


def test_summary_tables_and_pack(tmp_path):
    speed = dict(results=[
        dict(setting='auto', resolution=256, batch=16, ops='cuda', ops_used='cuda',
             precision='fp16', img_per_s=80.0, sec_per_kimg=12.5, peak_mem_mb=4500.4),
        dict(setting='paper256', batch=64, ops='ref', precision='fp32', error='OOM'),
        dict(setting='sg3t256', resolution=256, batch=16, ops='cuda', ops_used='cuda',
             filtered_lrelu='reference (no kernel | x)', precision='fp16', img_per_s=20.0,
             sec_per_kimg=50.0, peak_mem_mb=9000.0)])
    fid = dict(overlap_check=dict(max_abs_diff=0.0, ok=True),
               speed=dict(extraction=[dict(batch=64, images_per_s=1234.5)],
                          side_by_side=dict(batch=64, rows=[dict(name='pytorch-fid',
                                                                 images_per_s=999.0)])))
    train = dict(iterations=16, seconds=[20.0, 18.5], checks={'losses finite': True,
                                                              'resumed': False})
    results = [run_mod.StepResult('speed', 'passed', 100.0, 240, 0, result=speed),
               run_mod.StepResult('fid', 'passed', 30.0, 120, 0, result=fid),
               run_mod.StepResult('train_fp16', 'failed', 40.0, 150, 1, 'exit code 1',
                                  result=train),
               run_mod.StepResult('tests', 'skipped', note='time budget of 480 s used up')]
    summary = run_mod.summary_dict(results, budget_s=480, extra=dict(
        gpu=dict(name='NVIDIA H200', capability='9.0', torch='2.11', cuda='13.0')))
    assert summary['status'] == 'failed'
    assert summary['counts'] == dict(passed=2, failed=1, timeout=0, skipped=1)
    assert summary['total_s'] == 170.0
    out = tmp_path / 'out'
    run_mod.write_summary(out, summary)
    assert json.loads((out / 'summary.json').read_text())['steps'][0]['result'] == speed
    md = (out / 'summary.md').read_text()
    assert 'GPU: NVIDIA H200 (capability 9.0), torch 2.11, CUDA 13.0' in md
    assert '| train_fp16 | failed | 40.0 | 150 | exit code 1 |' in md
    assert '| auto | 256 | 16 | cuda | fp16 | 80.0 | 12.50 | 4500 |' in md
    assert '| paper256 | - | 64 | ref | fp32 | error: OOM | | |' in md
    assert ('| sg3t256 | 256 | 16 | cuda, filtered_lrelu reference (no kernel / x) | fp16 | '
            '20.0 | 50.00 | 9000 |') in md
    assert '| 64 | 1234.5 |' in md and 'max |diff| of features 0.0 (ok)' in md
    assert '| pytorch-fid | 999.0 |' in md
    assert 'checks FAILED: resumed' in md

    steps = tmp_path / 'steps'
    steps.mkdir()
    (steps / 'a.log').write_text('log')
    (steps / 'a.json').write_text('{}')
    packed = run_mod.pack_steps(steps, out)
    with tarfile.open(packed) as tar:
        assert sorted(tar.getnames()) == ['steps/a.json', 'steps/a.log']
    assert sorted(p.name for p in out.iterdir()) == ['steps.tar.gz', 'summary.json',
                                                     'summary.md']


# ---------------------------------------------------------------------------------- helpers

def test_tests_step_finds_cuda_tests_and_counts_junit(tmp_path):
    tests_step = load('tests_step')
    files = tests_step.cuda_test_files()
    assert 'plugins/stylegan2/tests/test_ops_cuda.py' in files
    assert 'plugins/stylegan/tests/test_ops_blur2d.py' in files
    assert 'tests/test_gpu_check.py' not in files
    (tmp_path / 'test_sample.py').write_text(textwrap.dedent('''
        import pytest
        def test_ok(): pass
        def test_bad(): assert 1 == 2, 'wrong'
        @pytest.mark.skipif(True, reason='needs a CUDA device')
        def test_gpu(): pass
    '''))
    junit = tmp_path / 'junit.xml'
    subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    str(tmp_path / 'test_sample.py'), f'--junitxml={junit}',
                    '-o', 'junit_family=xunit2'], cwd=tmp_path, capture_output=True)
    counts = tests_step.junit_counts(junit)
    assert (counts['passed'], counts['failed'], counts['skipped']) == (1, 1, 1)
    assert counts['failures'][0]['test'].endswith('::test_bad')
    assert 'wrong' in counts['failures'][0]['message']
    assert counts['skip_reasons'] == {'needs a CUDA device': 1}
    assert tests_step.skipped_for_want_of_cuda('needs a CUDA device')
    # The first GPU run failed this step on the one test that checks the no-GPU behaviour.
    assert not tests_step.skipped_for_want_of_cuda('checks the behaviour without a CUDA device')


def test_setup_installs_own_wheels_and_only_missing_others(tmp_path):
    install = load('install')
    names = ['genforce_core-0.1.0-py3-none-any.whl', 'mmengine-0.10.7-py3-none-any.whl',
             'markdown_it_py-4.3.0-py3-none-any.whl', 'PyYAML-6.0-cp312-cp312-x.whl',
             'lmdb-3.0.0-cp312-cp312-manylinux2014_x86_64.whl']
    wheels = [tmp_path / n for n in names]
    assert [install.dist_name(w) for w in wheels] == [
        'genforce-core', 'mmengine', 'markdown-it-py', 'pyyaml', 'lmdb']
    present = {'genforce-core', 'pyyaml', 'markdown-it-py'}
    chosen, skipped = install.choose_wheels(wheels, installed=lambda n: n in present)
    assert sorted(w.name for w in chosen) == sorted(
        [names[0], names[1], names[4]])  # ours always, others when missing
    assert sorted(skipped) == ['markdown-it-py', 'pyyaml']
    assert install.is_installed('pytest') and not install.is_installed('no-such-dist-xyz')


def test_setup_refuses_wheels_older_than_the_checkout(tmp_path):
    install = load('install')
    repo, site = tmp_path / 'repo', tmp_path / 'site'
    files = {'genforce_core/api.py': 'x = 1\n', 'genforce_core/cli/new.py': 'y = 2\n',
             'plugins/p/genforce_p/ops/k.cu': '// kernel v2\n',
             'plugins/p/genforce_p/README.txt': 'not a source file\n'}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    for rel, text in {'genforce_core/api.py': 'x = 1\n', 'genforce_p/ops/k.cu': '// v1\n',
                      'mmengine/__init__.py': ''}.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    assert install.stale_files(site, repo) == ['genforce_core/cli/new.py',
                                               'plugins/p/genforce_p/ops/k.cu']
    (site / 'genforce_core/cli').mkdir()
    (site / 'genforce_core/cli/new.py').write_text('y = 2\n')
    (site / 'genforce_p/ops/k.cu').write_text('// kernel v2\n')
    assert install.stale_files(site, repo) == []


def test_setup_builds_from_the_checkout_when_the_wheels_are_stale(tmp_path, monkeypatch):
    install = load('install')
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    (wheels / 'genforce_core-0.1.0-py3-none-any.whl').write_bytes(b'')
    calls, stale = [], [['genforce_core/api.py'], []]
    monkeypatch.setattr(install, 'pip_install', lambda items, site, *extra: calls.append(
        ([str(i) for i in items], extra)) or True)
    monkeypatch.setattr(install, 'stale_files', lambda site: stale.pop(0))
    monkeypatch.setattr(install, 'environment', lambda site: ({'torch': 'x'}, []))
    out = tmp_path / 'setup.json'
    assert install.main(['--wheels', str(wheels), '--site', str(tmp_path / 'site'),
                         '--json', str(out)]) == 0
    assert calls[0] == ([str(wheels / 'genforce_core-0.1.0-py3-none-any.whl')], ())
    assert calls[1][1] == ('--no-build-isolation',)
    assert calls[1][0][0] == '.' and 'plugins/stylegan2' in calls[1][0]
    result = json.loads(out.read_text())
    assert result['built_from_checkout'] is True and result['stale_sources'] == []


def test_prepare_dry_run_and_bad_arguments(tmp_path):
    dest = tmp_path / 'wheels'
    proc = gpu_check('--prepare', str(dest), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    build, download = proc.stdout.strip().splitlines()
    assert ' -m pip wheel --no-deps ' in build and f'-w {dest} ' in build
    for own in ('plugins/stylegan2 ', 'plugins/inversion', 'plugins/metrics_fid'):
        assert own in build + ' '
    assert ' -m pip download --no-deps --only-binary=:all: --python-version 3.12 ' in download
    assert '--platform manylinux2014_x86_64' in download
    from importlib.metadata import version
    assert f'mmengine=={version("mmengine")}' in download and 'lmdb==' in download
    assert 'torch' not in download.split() and 'numpy' not in download
    assert not dest.exists()
    proc = gpu_check('--prepare', str(dest), '--python-version', 'py3', '--dry-run')
    assert proc.returncode == 2 and "expected 3.N" in proc.stderr


def test_speed_plan_names_existing_configs_and_stylegan3_rows_measure(capsys):
    pytest.importorskip('genforce_stylegan3')
    speed = load('speed')
    assert all(speed.CONFIGS[setting].is_file() for setting, *_ in speed.PLAN)
    assert [p for p in speed.PLAN if p[0] in speed.STYLEGAN3] == [
        ('sg3t256', 16, 'cuda', 'fp16'), ('sg3r256', 16, 'cuda', 'fp16')]
    bench = speed.load_train_speed()
    for setting in speed.STYLEGAN3:  # toy networks at 16x16: the same code path, in seconds
        row = speed.measure_one(bench, setting, 2, 'ref', 'fp32', resolution=16, iters=1,
                                warmup=1, device='cpu', tiny=True)
        assert 'error' not in row, row
        assert row['config'] == speed.CONFIGS[setting].name and row['resolution'] == 16
        assert row['filtered_lrelu'] == 'ref' and row['img_per_s'] > 0


# ------------------------------------------------------------------------------ rehearsal

@pytest.mark.slow
def test_rehearsal_runs_real_steps_on_the_cpu(tmp_path):
    out = tmp_path / 'out'
    proc = gpu_check(str(out), '--rehearse', '--pack', '--only', 'train_fp16,speed',
                     '--wheels', str(tmp_path / 'no_wheels'), '--scratch',
                     str(tmp_path / 'scratch'), '--budget', '900',
                     env={'OMP_NUM_THREADS': '1'})
    summary = json.loads((out / 'summary.json').read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [(s['name'], s['status']) for s in summary['steps']] == [
        ('setup', 'passed'), ('train_fp16', 'passed'), ('speed', 'passed')]
    setup, train, speed = (s['result'] for s in summary['steps'])
    assert setup['installed'] == [] and setup['plugins']['stylegan2']['status'] == 'loaded'
    assert all(train['checks'].values()) and train['checkpoint']['iter'] == 8
    assert [(r['setting'], r['ops_used']) for r in speed['results']] == [
        ('auto', 'ref'), ('paper256', 'ref'), ('sg3t256', 'ref'), ('sg3r256', 'ref')]
    assert all(r['img_per_s'] > 0 for r in speed['results'])
    assert sorted(p.name for p in out.iterdir()) == ['steps.tar.gz', 'summary.json',
                                                     'summary.md']
    with tarfile.open(out / 'steps.tar.gz') as tar:
        assert {'steps/setup.log', 'steps/train_fp16.json', 'steps/speed.json'} <= set(
            tar.getnames())
    assert 'Rehearsal on the CPU' in (out / 'summary.md').read_text()
