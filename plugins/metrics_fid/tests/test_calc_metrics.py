"""`genforce metrics CHECKPOINT`: NVIDIA's calc_metrics flow and metric-<name>.jsonl lines,
the metrics in the generative loops, and 2 processes giving the numbers of one."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from genforce_core.checkpoint import save_checkpoint
from genforce_core.registry import METRICS
from genforce_core.stored_config import config_to_data
from genforce_metrics_fid import vgg16 as V
from genforce_metrics_fid.calc_metrics import format_time
from genforce_metrics_fid.vgg16_testing import write_nvidia_style_vgg16

pytest.importorskip('genforce_stylegan2')

NVIDIA_KEYS = ['results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl',
               'timestamp']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A tiny StyleGAN2 (32x32) saved as a genforce checkpoint, config stored as data."""
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS
    load_plugins()
    cfg = dict(type='StyleGAN2', discriminator=None, ema=None, generator=dict(
        type='StyleGAN2Generator', z_dim=8, c_dim=0, w_dim=8, img_resolution=32,
        img_channels=3, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=8)))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    path = tmp_path_factory.mktemp('run') / 'network-snapshot-000004.pth'
    save_checkpoint({'meta': {'cfg': config_to_data(Config(dict(model=cfg)))},
                     'state_dict': model.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    """NVIDIA-style vgg16.pt of a tiny random VGG16 (precision/recall and LPIPS in one)."""
    path = tmp_path_factory.mktemp('vgg') / V.NVIDIA_FILE
    write_nvidia_style_vgg16(V.random_vgg16(0, widths=(4, 4, 8, 8, 8), fc_dim=16, lpips=True),
                             path)
    return path


def common_args(shapes_zip, vgg_file, tmp_path) -> list[str]:
    return ['--data', str(shapes_zip), '--vgg16', str(vgg_file), '--num', '6',
            '--batch-size', '4', '--num-workers', '0', '--no-progress',
            '--cache-dir', str(tmp_path / 'cache')]


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_format_time():
    assert [format_time(s) for s in (0.4, 59.6, 184, 7509, 93784)] == [
        '0s', '1m 00s', '3m 04s', '2h 05m 09s', '1d 02h 03m']


def test_metrics_command_appends_nvidia_lines(checkpoint, vgg_file, shapes_zip, tmp_path,
                                              capsys):
    from genforce_core.cli.main import main

    args = ['metrics', str(checkpoint), '--metrics', 'pr50k3_full,ppl2_wend',
            *common_args(shapes_zip, vgg_file, tmp_path)]
    assert main(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    run = checkpoint.parent
    pr_lines = read_lines(run / 'metric-pr50k3_full.jsonl')
    ppl_lines = read_lines(run / 'metric-ppl2_wend.jsonl')
    assert printed == pr_lines + ppl_lines
    for line in printed:
        assert list(line) == NVIDIA_KEYS + ['num_override']
        assert line['num_gpus'] == 1 and line['num_override'] == 6
        assert line['snapshot_pkl'] == checkpoint.name  # relative to the run folder
        assert line['total_time_str'] == format_time(line['total_time'])
    assert set(pr_lines[0]['results']) == {'pr50k3_full_precision', 'pr50k3_full_recall'}
    assert ppl_lines[0]['results']['ppl2_wend'] > 0

    # The same numbers as the metrics computed directly on the loaded generator.
    from genforce_core import load_generator
    from genforce_metrics_fid.pr_ppl import PPL, PR
    G = load_generator(checkpoint)
    vgg = V.load_vgg16(vgg_file, download=False)
    direct = PR('pr50k3_full', vgg16=vgg, num_gen=6, batch_size=4, num_workers=0,
                progress=False, cache_dir=str(tmp_path / 'cache')).evaluate_model(
                    G, str(shapes_zip))
    assert pr_lines[0]['results'] == direct
    lpips_vgg = V.load_vgg16(vgg_file, lpips=True, classifier=False, download=False)
    direct = PPL('ppl2_wend', vgg16=lpips_vgg, num_samples=6, progress=False).evaluate_model(G)
    assert ppl_lines[0]['results'] == direct

    # A second run appends; --run-dir puts the file elsewhere with the snapshot relative to it.
    assert main(args[:-2] + ['--metrics', 'pr50k3_full', '--run-dir',
                             str(tmp_path / 'elsewhere')]) == 0
    other = read_lines(tmp_path / 'elsewhere' / 'metric-pr50k3_full.jsonl')
    assert other[0]['snapshot_pkl'] == os.path.relpath(checkpoint, tmp_path / 'elsewhere')
    assert other[0]['results'] == pr_lines[0]['results']
    assert main(args) == 0
    assert len(read_lines(run / 'metric-pr50k3_full.jsonl')) == 2


def test_metrics_command_errors(checkpoint, vgg_file, shapes_zip, tmp_path, capsys):
    from genforce_core.cli.main import main

    common = common_args(shapes_zip, vgg_file, tmp_path)
    assert main(['metrics', str(checkpoint), '--metrics', 'fid50k_full,prc', *common]) == 2
    assert "unknown metric 'prc'" in capsys.readouterr().err
    assert main(['metrics', str(tmp_path / 'none.pth'), *common]) == 2
    assert 'none.pth does not exist' in capsys.readouterr().err
    no_data = [a for a in common if a != str(shapes_zip) and a != '--data']
    assert main(['metrics', str(checkpoint), '--metrics', 'pr50k3_full', *no_data]) == 1
    assert 'pr50k3_full needs real images' in capsys.readouterr().err
    missing = [str(tmp_path / 'vgg16.pt') if a == str(vgg_file) else a for a in common]
    assert main(['metrics', str(checkpoint), '--metrics', 'ppl2_wend', *missing]) == 1
    err = capsys.readouterr().err
    assert f'VGG16 weights {tmp_path / "vgg16.pt"} (from the argument) does not exist' in err
    assert '--vgg16 PATH' in err and '$GENFORCE_VGG16_WEIGHTS' in err and 'Traceback' not in err
    assert not list(checkpoint.parent.glob('metric-fid*.jsonl'))


def test_pr_and_ppl_run_in_the_generative_loop(checkpoint, vgg_file, shapes_zip):
    """The loop behind KimgEvalHook / `genforce test` computes them and hands the values to
    the after_val_epoch hooks (LoggerHook → log and TensorBoard, save_best)."""
    from genforce_core import load_generator
    from genforce_metrics_fid.loops import run_generative_evaluation
    from genforce_metrics_fid.stats_cache import build_dataset

    metrics = [METRICS.build(dict(type='PR', name='pr6_3_full', vgg16=str(vgg_file),
                                  batch_size=4, num_workers=0, progress=False)),
               METRICS.build(dict(type='PPL', name='ppl_zend', vgg16=str(vgg_file),
                                  num_samples=4, progress=False))]
    hooks = []
    model = SimpleNamespace(eval=lambda: None, generator=load_generator(checkpoint))
    runner = SimpleNamespace(model=model, call_hook=lambda name, **kw: hooks.append((name, kw)),
                             logger=SimpleNamespace(info=lambda msg: None))
    loop = SimpleNamespace(runner=runner, evaluator=SimpleNamespace(metrics=metrics),
                           dataloader=SimpleNamespace(dataset=build_dataset(str(shapes_zip))))
    results = run_generative_evaluation(loop, 'val_step', 'val')
    assert set(results) == {'pr6_3_full_precision', 'pr6_3_full_recall', 'ppl_zend'}
    assert ('after_val_epoch', {'metrics': results}) in hooks


@pytest.mark.slow
def test_inception_metrics_keep_nvidia_names(checkpoint, shapes_zip, tmp_path):
    from genforce_core.cli.main import main
    from genforce_metrics_fid.testing import random_inception

    inception = tmp_path / 'pt_inception-2015-12-05-6726825d.pth'
    torch.save(random_inception(0).state_dict(), inception)
    assert main(['metrics', str(checkpoint), '--metrics', 'is50k,fid50k', '--data',
                 str(shapes_zip), '--inception', str(inception), '--num', '10', '--batch-size',
                 '10', '--num-workers', '0', '--no-progress', '--cache-dir', str(tmp_path),
                 '--run-dir', str(tmp_path)]) == 0
    line = read_lines(tmp_path / 'metric-is50k.jsonl')[0]
    assert set(line['results']) == {'is50k_mean', 'is50k_std'} and line['results'][
        'is50k_mean'] >= 1
    # fid50k with --num 10: 10 generated images against 10 real ones, reported as fid50k.
    line = read_lines(tmp_path / 'metric-fid50k.jsonl')[0]
    assert list(line['results']) == ['fid50k'] and line['num_override'] == 10


@pytest.mark.slow
def test_two_processes_give_the_numbers_of_one(genforce, checkpoint, vgg_file, shapes_zip,
                                               tmp_path):
    args = ['metrics', str(checkpoint), '--metrics', 'pr50k3_full,ppl_wfull',
            *common_args(shapes_zip, vgg_file, tmp_path)]
    from genforce_core.cli.main import main
    assert main(args + ['--run-dir', str(tmp_path / 'one')]) == 0
    proc = genforce(args + ['--gpus', '2', '--run-dir', str(tmp_path / 'two')],
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.stdout.count('"metric"') == 2  # rank 0 reports, once per metric
    for name in ('pr50k3_full', 'ppl_wfull'):
        one = read_lines(tmp_path / 'one' / f'metric-{name}.jsonl')
        two = read_lines(tmp_path / 'two' / f'metric-{name}.jsonl')
        assert len(one) == len(two) == 1
        assert (one[0]['num_gpus'], two[0]['num_gpus']) == (1, 2)
        # PPL divides float32 image differences by eps^2 = 1e-8: thread counts that differ
        # between the runs move it by a few 1e-4 relative; PR counts are exact.
        rel = 1e-3 if name.startswith('ppl') else 1e-5
        assert two[0]['results'] == pytest.approx(one[0]['results'], rel=rel)
