"""The training console: quiet by default (start-up chatter only in the log file), a short
header, a live progress display (bar on a terminal, timed lines otherwise), ``GENFORCE_VERBOSE``
for everything."""
from __future__ import annotations

import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import mmengine
import pytest

from genforce_core.engine.console import (
    CONSOLE_ONLY,
    FILE_ONLY,
    Console,
    ProgressBar,
    ProgressLines,
    RateMeter,
    config_types,
    format_progress,
    loss_values,
    verbose_requested,
)

MMENGINE = os.path.dirname(mmengine.__file__)
PROGRESS = re.compile(r'kimg (0\.\d{3})/0\.016  img/s [\d.]+  sec/kimg [\d.]+  ETA \d\d:\d\d:\d\d'
                      r'  loss_g [\d.]+')


# -- units -----------------------------------------------------------------------------------
def test_format_progress():
    line = format_progress(1.2, 25.0, 90.0, {'loss_g': 0.69314, 'loss_d': 1.38629})
    # 23.8 kimg left at 11.11 s/kimg = 264 s
    assert line == ('kimg 1.2/25.0  img/s 90.0  sec/kimg 11.11  ETA 00:04:24  '
                    'loss_g 0.693  loss_d 1.39')
    assert format_progress(0.0, 0.5, 0.0) == 'kimg 0.0/0.500  img/s 0.0  sec/kimg inf  ETA ?'


def test_loss_values_keeps_scalar_losses_only():
    import torch

    outputs = {'loss_g': torch.tensor(0.5), 'ema_beta': 0.9, 'kimg': 0.1,
               'loss_map': torch.ones(2), 'loss_r1': 2}
    assert {k: float(v) for k, v in loss_values(outputs).items()} == {'loss_g': 0.5, 'loss_r1': 2}
    assert loss_values(None) == {}


def test_rate_meter_measures_a_recent_window():
    meter = RateMeter(window_s=10)
    assert meter.img_per_s() == 0
    meter.add(0, 0)
    meter.add(1, 100)  # a slow start ...
    assert meter.img_per_s() == 100
    for t in range(2, 30):
        meter.add(t, 100 + (t - 1) * 10)  # ... then 10 img/s
    assert meter.img_per_s() == pytest.approx(10)
    meter.exclude(60)  # a minute without training (an evaluation) ...
    meter.add(90, 100 + 28 * 10 + 10)  # ... then one more second at 10 img/s
    assert meter.img_per_s() == pytest.approx(10)


def test_verbose_requested(monkeypatch):
    monkeypatch.delenv('GENFORCE_VERBOSE', raising=False)
    assert not verbose_requested('INFO')
    assert verbose_requested('DEBUG') and verbose_requested(logging.DEBUG)
    monkeypatch.setenv('GENFORCE_VERBOSE', '1')
    assert verbose_requested('INFO')
    monkeypatch.setenv('GENFORCE_VERBOSE', '0')
    assert not verbose_requested('INFO')


def test_config_types_finds_nested_types():
    cfg = dict(runner_type='GenforceRunner', model=dict(type='GAN', generator=dict(
        type='DCGANGenerator')), custom_hooks=[dict(type='GANProgressHook')],
        other=dict(type=dict))  # a class, not a name
    assert config_types(cfg) == {'GenforceRunner', 'GAN', 'DCGANGenerator', 'GANProgressHook'}


def record(msg, level=logging.INFO, path='/src/genforce_core/hooks/x.py', func='f', **extra):
    rec = logging.LogRecord('mmengine', level, path, 1, msg, None, None, func)
    rec.__dict__.update(extra)
    return rec


def test_quiet_console_decides_what_shows():
    console = Console(stream=io.StringIO())
    env = record('\nSystem environment: ...', path=f'{MMENGINE}/runner/runner.py')
    resumed = record('resumed epoch: 0, iter: 4', path=f'{MMENGINE}/runner/runner.py')
    train_line = record('Iter(train) [4/8] loss_g: 0.7', path=f'{MMENGINE}/hooks/logger_hook.py',
                        func='after_train_iter')
    test_line = record('Epoch(test) [8/8] count: 64', path=f'{MMENGINE}/hooks/logger_hook.py',
                       func='after_test_epoch')
    noise = record('"FileClient" will be deprecated in future.', logging.WARNING,
                   path=f'{MMENGINE}/logging/logger.py')
    warning = record('skipping iter_6.pth', logging.WARNING, path=f'{MMENGINE}/logging/logger.py')
    ours = record('saved iter_8.pth at 0.032 kimg')
    # while the run starts, mmengine's INFO messages stay in the log file, except resuming
    assert not console.shows(env) and console.shows(resumed)
    assert not console.shows(test_line)
    assert console.shows(ours) and console.shows(warning) and not console.shows(noise)
    assert console.shows(record('x', **CONSOLE_ONLY))
    assert not console.shows(record('x', **FILE_ONLY))
    console.starting = False
    assert console.shows(test_line) and console.shows(train_line)
    console.progress_active = True  # the progress display replaces LoggerHook's train lines
    assert not console.shows(train_line) and console.shows(test_line)
    assert console.shows(record('boom', logging.ERROR, path=f'{MMENGINE}/x.py'))
    verbose = Console(verbose=True, stream=io.StringIO())
    assert all(verbose.shows(r) for r in (env, train_line, noise, record('x', **FILE_ONLY)))


def test_install_routes_records_to_console_and_file(tmp_path):
    logger = logging.Logger('console-test')
    out = io.StringIO()
    logger.addHandler(logging.StreamHandler(out))
    logger.addHandler(logging.FileHandler(tmp_path / 'run.log'))
    Console(stream=out).install(logger)
    logger.handle(record('Config:\nmodel = dict()', path=f'{MMENGINE}/runner/runner.py'))
    logger.info('header line', extra=CONSOLE_ONLY)
    logger.info('interval line', extra=FILE_ONLY)
    logger.warning('look out')
    for handler in logger.handlers:
        handler.close()
    console, log = out.getvalue(), (tmp_path / 'run.log').read_text()
    assert log == 'Config:\nmodel = dict()\ninterval line\nlook out\n'
    assert re.fullmatch(r'\d\d:\d\d:\d\d header line\n\d\d:\d\d:\d\d WARNING look out\n',
                        console), console


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_progress_lines_first_after_one_iteration_then_by_time():
    logger, clock = logging.Logger('lines'), FakeClock()
    out = io.StringIO()
    logger.addHandler(logging.StreamHandler(out))
    lines = ProgressLines(logger, total_images=1000, start_images=0, interval_s=30, clock=clock)
    clock.t += 2
    lines.update(10, {'loss_g': 0.5})
    assert out.getvalue() == ('kimg 0.010/1.0  img/s 5.0  sec/kimg 200.00  ETA 00:03:18  '
                              'loss_g 0.5\n')
    for _ in range(5):
        clock.t += 5
        lines.update(lines.images + 50)  # 10 img/s; nothing shown within 30 s
    assert out.getvalue().count('\n') == 1
    clock.t += 5
    lines.update(lines.images + 50, {'loss_g': 0.25})
    assert out.getvalue().splitlines()[1].startswith('kimg 0.310/1.0  img/s 10.0')
    assert out.getvalue().splitlines()[1].endswith('loss_g 0.25')
    clock.t += 1
    lines.update(lines.images + 10)
    lines.close()  # the last state (not shown yet) and a summary
    last, summary = out.getvalue().splitlines()[2:]
    assert last.startswith('kimg 0.320/1.0')
    assert summary == 'finished at 0.320 kimg: 0.320 kimg in 00:00:33 (9.7 img/s)'


def test_an_evaluation_pause_does_not_count_in_the_rate_or_the_eta():
    logger, clock = logging.Logger('paused'), FakeClock()
    out = io.StringIO()
    logger.addHandler(logging.StreamHandler(out))
    lines = ProgressLines(logger, total_images=1000, start_images=0, interval_s=30, clock=clock)
    for _ in range(6):
        clock.t += 5
        lines.update(lines.images + 50)  # 10 img/s
    lines.pause()
    clock.t += 120  # two minutes of evaluation
    lines.resume()
    clock.t += 5
    lines.update(lines.images + 50)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith('kimg 0.350/1.0  img/s 10.0  sec/kimg 100.00  ETA 00:01:05'), last
    lines.close()  # the summary is wall-clock time, the pause included
    assert out.getvalue().splitlines()[-1].endswith('0.350 kimg in 00:02:35 (2.3 img/s)')


def test_the_progress_hook_leaves_evaluations_out_of_its_log_line(monkeypatch):
    from types import SimpleNamespace

    import torch

    from genforce_core.hooks import progress

    now = [0.0]
    monkeypatch.setattr(progress.time, 'perf_counter', lambda: now[0])
    model = SimpleNamespace(images_seen=torch.tensor(0))
    logged = []
    runner = SimpleNamespace(
        model=model, max_iters=100, train_loop=SimpleNamespace(global_batch_size=10),
        logger=SimpleNamespace(info=lambda line, **kw: logged.append(line)),
        message_hub=mmengine.logging.MessageHub.get_instance('progress_hook_test'))
    hook = progress.GANProgressHook(interval=10)
    hook.before_train(runner)
    now[0], model.images_seen = 10.0, torch.tensor(100)
    hook.before_val(runner)
    now[0] = 70.0  # one minute of evaluation
    hook.after_val(runner)
    now[0] = 80.0
    model.images_seen = torch.tensor(200)
    hook._report(runner)
    assert logged[-1].startswith('kimg 0.200/1.0  img/s 10.0  sec/kimg 100.00  ETA 00:01:20')


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal():
    term = FakeTerminal()
    logger = logging.Logger('bar')
    logger.addHandler(logging.StreamHandler(term))
    console = Console(stream=term)
    console.install(logger)
    bar = console.progress(logger, total_images=16, start_images=0, interval_s=30)
    assert isinstance(bar, ProgressBar) and console.progress_active
    bar.update(8, {'loss_g': 0.5})
    logger.info('saved iter_2.pth')  # printed above the bar, which is then redrawn
    bar.update(16)
    bar.close()
    text = term.getvalue()
    assert '\r' in text and '%|' in text and 'kimg 0.016/0.016' in text
    assert text.index('saved iter_2.pth') < text.rindex('100%|')
    assert re.search(r'\d\d:\d\d:\d\d finished at 0.016 kimg: 0.016 kimg in ', text)
    assert Console(verbose=True, stream=term).progress(logger, 16, 0, 30) is None


def test_a_failed_run_ends_the_bar_line():
    term = FakeTerminal()
    console = Console(stream=term)
    console.progress(logging.Logger('failed'), total_images=16, start_images=0,
                     interval_s=30).update(8)
    assert not term.getvalue().endswith('\n')
    console.abandon_progress()  # GenforceRunner.train calls this when training raises
    assert term.getvalue().endswith('\n') and 'finished' not in term.getvalue()


# -- the real CLI ----------------------------------------------------------------------------
def train_args(config, work, tiny):
    return ['train', str(config), '--work-dir', str(work), '--cfg-options', *tiny,
            'train_cfg.total_kimg=0.016', 'default_hooks.checkpoint=None']


def log_file(work: Path) -> str:
    (path,) = work.glob('*/*.log')
    return path.read_text()


@pytest.mark.slow
def test_quiet_console_of_a_short_run(genforce, example_config, example_plugin_site, tiny_dcgan,
                                      tmp_path, monkeypatch):
    monkeypatch.delenv('GENFORCE_VERBOSE', raising=False)
    work = tmp_path / 'run'
    proc = genforce(train_args(example_config, work, tiny_dcgan), pythonpath=[example_plugin_site])
    out = proc.stdout + proc.stderr
    for chatter in ('System environment', 'Config:', 'Hooks will be executed', 'Iter(train)',
                    'FileClient', 'pin_memory'):  # torch warns of pinning without a GPU
        assert chatter not in out
    assert len(out.splitlines()) <= 25, out
    assert f'config   : {example_config}' in out and f'work dir : {work}' in out
    assert re.search(r'plugins  : example_dcgan \d', out)
    assert 'global batch 4 (4 per process x 1 processes), 0.016 kimg = 4 iterations' in out
    kimgs = PROGRESS.findall(out)
    assert kimgs[0] == '0.004' and kimgs[-1] == '0.016'  # after the first iteration, and last
    assert 'finished at 0.016 kimg' in out and '\r' not in out
    # The log file keeps everything (but the console's own lines).
    log = log_file(work)
    for kept in ('System environment', 'Config:', 'Hooks will be executed', 'Iter(train)',
                 'global batch 4'):
        assert kept in log
    assert 'plugins  :' not in log and 'finished at' not in log


@pytest.mark.slow
def test_verbose_console_shows_everything(genforce, example_config, example_plugin_site,
                                          tiny_dcgan, tmp_path):
    proc = genforce(train_args(example_config, tmp_path / 'run', tiny_dcgan),
                    pythonpath=[example_plugin_site], env={'GENFORCE_VERBOSE': '1'})
    out = proc.stdout + proc.stderr
    for shown in ('System environment', 'Config:', 'Hooks will be executed', 'Iter(train)',
                  'global batch 4'):
        assert shown in out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux') or not shutil.which('script'),
                    reason="needs util-linux's script for a pseudo-terminal")
def test_progress_bar_in_a_terminal(example_config, example_plugin_site, tiny_dcgan, tmp_path):
    cmd = [sys.executable, '-m', 'genforce_core.cli.main',
           *train_args(example_config, tmp_path / 'run', tiny_dcgan)]
    paths = [str(example_plugin_site), os.environ.get('PYTHONPATH', '')]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    env.pop('GENFORCE_VERBOSE', None)
    proc = subprocess.run(['script', '-q', '-e', '-c', shlex.join(cmd), '/dev/null'], env=env,
                          capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode(errors='replace')
    assert proc.returncode == 0, out[-3000:]
    assert '%|' in out and '\r' in out and 'System environment' not in out
    assert 'kimg 0.016/0.016  img/s' in out and 'finished at 0.016 kimg' in out
