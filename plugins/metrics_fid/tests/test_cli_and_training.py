"""`genforce fid-stats`, evaluation during training (best checkpoint, logs) and `genforce test`.

Uses a random-weight Inception saved in pytorch-fid's format, so the subprocesses run the
full 299x299 network: image counts are kept tiny.
"""
from __future__ import annotations

import textwrap

import pytest
import torch

from genforce_metrics_fid.testing import random_inception


@pytest.fixture(scope='module')
def inception_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('inception') / 'pt_inception-2015-12-05-6726825d.pth'
    net = random_inception(0)
    torch.save(net.state_dict(), path)
    return path


def test_fid_stats_command_caches_and_reuses(inception_file, shapes_zip, tmp_path, capsys,
                                             monkeypatch):
    from genforce_core.cli.main import main

    args = ['fid-stats', str(shapes_zip), '--inception', str(inception_file), '--max-items', '8',
            '--cache-dir', str(tmp_path), '--batch-size', '4', '--num-workers', '0']
    assert main(args) == 0
    first = capsys.readouterr().out
    assert '8 images: statistics in' in first
    from genforce_metrics_fid import stats_cache
    monkeypatch.setattr(stats_cache, 'extract_dataset', lambda *a, **k: pytest.fail('recomputed'))
    assert main(args) == 0
    assert capsys.readouterr().out == first  # the same cache entry, read back
    assert len(list(tmp_path.glob('*.npz'))) == 1


def test_missing_weights_in_the_cli_is_a_clear_error(genforce, shapes_zip, tmp_path):
    proc = genforce(['fid-stats', str(shapes_zip), '--cache-dir', str(tmp_path)],
                    env={'GENFORCE_INCEPTION_WEIGHTS': str(tmp_path / 'nope.pt')}, check=False)
    assert proc.returncode == 1 and 'nope.pt (from the $GENFORCE_INCEPTION_WEIGHTS)' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_eval_during_training_picks_the_best_checkpoint_and_test_reports(
        genforce, tmp_path, example_config, example_plugin_site, tiny_dcgan, shapes_zip,
        inception_file):
    cache = tmp_path / 'cache'
    loader = f'''dict(
        batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ImageDataset', path={str(shapes_zip)!r}, resolution=32),
        collate_fn=dict(type='default_collate'))'''
    opts = f'cache_dir={str(cache)!r}, batch_size=8, num_workers=0, progress=False'
    config = tmp_path / 'eval_dcgan.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(example_config)!r}]
        train_cfg = dict(val_interval=1)  # the hook overrides the loop's own interval
        custom_hooks = [
            dict(type='KimgEvalHook', interval_kimg=0.008),
            dict(type='KimgCheckpointHook', interval_kimg=1, save_best='fid8', rule='less'),
        ]
        val_dataloader = {loader}
        val_cfg = dict(type='GenerativeValLoop')
        val_evaluator = [
            dict(type='FID', name='fid8', inception={str(inception_file)!r}, {opts}),
            dict(type='KID', name='kid8', inception={str(inception_file)!r}, {opts}),
        ]
        test_dataloader = {loader}
        test_cfg = dict(type='GenerativeTestLoop')
        test_evaluator = [dict(type='FID', name='fid8', {opts}),
                          dict(type='IS', name='is10', {opts})]
    '''))
    work = tmp_path / 'work'
    genforce(['train', str(config), '--work-dir', str(work), '--cfg-options', *tiny_dcgan,
              'train_cfg.total_kimg=0.016'], pythonpath=[example_plugin_site])
    # Evaluated at 8 images (the hook) and after the last iteration (the loop), not after
    # every iteration as the loop's val_interval=1 alone would: the best
    # FID is kept as a checkpoint, and both values reach the scalar logs.
    best = list(work.glob('best_fid8_iter_*.pth'))
    assert len(best) == 1, sorted(p.name for p in work.iterdir())
    scalars = ''.join(p.read_text() for p in work.rglob('scalars.json'))
    assert scalars.count('"fid8"') == 2 and scalars.count('"kid8"') == 2
    assert len(list(cache.glob('*.npz'))) == 1  # real statistics computed once

    proc = genforce(['test', str(config), str(work / 'iter_4.pth'), '--work-dir', str(work),
                     '--inception', str(inception_file), '--cfg-options', *tiny_dcgan],
                    pythonpath=[example_plugin_site])
    lines = dict(line.split(': ', 1) for line in proc.stdout.splitlines() if ': ' in line)
    assert {'fid8', 'is10', 'is10_std'} <= set(lines)
    assert float(lines['fid8']) > 0 and float(lines['is10']) >= 1
