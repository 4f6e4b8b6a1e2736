"""Tests of the training hooks: sample grids, progress lines, kimg checkpoints."""
from __future__ import annotations

import glob
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_core.hooks import KimgCheckpointHook, SampleGridHook, make_grid, save_grid
from genforce_core.hooks._common import format_duration
from genforce_core.hooks.grid import grid_shape

BASE_CFG = osp.abspath(osp.join(
    osp.dirname(__file__), '..', 'examples', 'dcgan_plugin', 'genforce_example_dcgan',
    'configs', 'dcgan_shapes32.py'))
TINY = ['model.generator.base_channels=8', 'model.discriminator.base_channels=8',
        'train_dataloader.batch_size=8', 'default_hooks.checkpoint=None']
# 8 images per iteration, 0.064 kimg = 8 iterations.
SAMPLES = "dict(type='SampleGridHook', interval_kimg=0.032, num_samples=4)"
PROGRESS = "dict(type='GANProgressHook', interval=2)"
CKPT = "dict(type='KimgCheckpointHook', interval_kimg=0.016, max_keep_ckpts=2)"


SUBPROCESS_ENV: dict[str, str] = {}


@pytest.fixture(scope='module', autouse=True)
def example_plugin_on_path(example_plugin_site):
    """The training subprocesses find the example DCGAN plugin, installed as a user would."""
    paths = [str(example_plugin_site), os.environ.get('PYTHONPATH', '')]
    SUBPROCESS_ENV.update(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> str:
    from genforce_core.data.builtin import ensure_builtin_dataset

    return str(ensure_builtin_dataset(tmp_path_factory.mktemp('data'), resolution=32,
                                      num_images=64))


def train(root, name: str, hooks: list[str], dataset: str, total_kimg: float = 0.064,
          work_dir: str | None = None, resume: bool = False) -> tuple[str, str]:
    """Train the tiny DCGAN in a subprocess; return (work dir, output)."""
    cfg = osp.join(str(root), f'{name}.py')
    with open(cfg, 'w') as f:
        f.write(f'_base_ = [{BASE_CFG!r}]\n'
                f'custom_hooks = [{", ".join(hooks)}]\n')
    work_dir = work_dir or osp.join(str(root), f'wd_{name}')
    cmd = [sys.executable, '-m', 'genforce_core.cli.main', 'train', cfg, '--work-dir', work_dir,
           '--cfg-options', f'train_dataloader.dataset.path={dataset}',
           f'train_cfg.total_kimg={total_kimg}', *TINY]
    if resume:
        cmd.append('--resume')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=SUBPROCESS_ENV)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    return work_dir, output


@pytest.fixture(scope='module')
def full_run(tmp_path_factory, dataset):
    """One run with all three hooks."""
    return train(tmp_path_factory.mktemp('full'), 'full', [SAMPLES, PROGRESS, CKPT], dataset)


@pytest.fixture(scope='module')
def baseline_run(tmp_path_factory, dataset):
    """The same run without the sample and progress hooks."""
    return train(tmp_path_factory.mktemp('base'), 'base', [CKPT], dataset)


# -- grid ----------------------------------------------------------------------------------------
@pytest.mark.parametrize('num, shape', [(1, (1, 1)), (4, (2, 2)), (5, (2, 3)), (64, (8, 8)),
                                        (10, (3, 4))])
def test_grid_shape_is_as_square_as_possible(num, shape):
    assert grid_shape(num) == shape


def test_make_grid_layout_and_png(tmp_path):
    imgs = torch.zeros(5, 3, 4, 6, dtype=torch.uint8)
    for i in range(5):
        imgs[i] = i + 1
    grid = make_grid(imgs)
    assert grid.shape == (2 * 4, 3 * 6, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 1 and grid[0, 6, 0] == 2 and grid[0, 12, 0] == 3
    assert grid[4, 0, 0] == 4 and grid[4, 6, 0] == 5 and grid[4, 12, 0] == 0  # empty cell
    assert make_grid(torch.zeros(4, 1, 8, 8, dtype=torch.uint8)).shape == (16, 16, 3)
    with pytest.raises(ValueError):
        make_grid(torch.zeros(4, 3, 8, 8))  # not uint8
    path = tmp_path / 'sub' / 'g.png'
    save_grid(grid, str(path))
    back = np.asarray(Image.open(path))
    np.testing.assert_array_equal(back, grid)
    assert os.listdir(path.parent) == ['g.png']  # no temporary file left


def test_format_duration():
    assert format_duration(93784) == '1d 02:03:04'
    assert format_duration(3723) == '01:02:03'
    assert format_duration(float('inf')) == '?'


# -- SampleGridHook units ------------------------------------------------------------------------
def test_fixed_inputs_are_seeded_privately_and_labels_cycle():
    state = torch.get_rng_state()
    hook = SampleGridHook(num_samples=7, seed=3)
    z, c = hook.fixed_inputs(z_dim=5, c_dim=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(z, torch.randn(7, 5, generator=torch.Generator().manual_seed(3)))
    assert c.argmax(1).tolist() == [0, 1, 2, 0, 1, 2, 0] and torch.equal(c.sum(1), torch.ones(7))
    assert SampleGridHook(num_samples=2).fixed_inputs(4, 0)[1].shape == (2, 0)
    # More classes than samples: spread over all of them, not only the first ones.
    assert SampleGridHook(num_samples=4).fixed_inputs(5, 10)[1].argmax(1).tolist() == [0, 2, 5, 7]


def test_grid_labels_come_from_a_labelled_dataset():
    from genforce_core.hooks.samples import dataset_labels

    class Labelled:  # vector labels (as the built-in shapes' factors): not one-hot
        label_dim = 2

        def __len__(self):
            return 10

        def get_label(self, idx):
            return [float(idx), 1.0]
    labels = dataset_labels(Labelled(), 4)
    assert labels.tolist() == [[0, 1], [2, 1], [5, 1], [7, 1]]
    assert dataset_labels(None, 4) is None
    hook = SampleGridHook(num_samples=4)
    hook._data_labels = labels
    assert torch.equal(hook.fixed_inputs(3, 2)[1], labels)
    other = SampleGridHook(num_samples=4)
    other._data_labels = labels  # a width that does not fit the generator: one-hot instead
    assert other.fixed_inputs(3, 5)[1].argmax(1).tolist() == [0, 1, 2, 3]


class TinyGenerator(torch.nn.Module):
    """G(z, c) with dropout, so that rendering in train mode would consume random numbers."""
    z_dim, c_dim = 8, 0

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 3 * 32 * 32)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, z, c):
        return torch.tanh(self.drop(self.fc(z))).view(-1, 3, 32, 32)


def test_render_keeps_modes_and_rng():
    from genforce_core.models import GAN

    model = GAN(generator=TinyGenerator(), discriminator=torch.nn.Linear(1, 1),
                ema=dict(half_life_kimg=2))
    model.train()
    model.generator_ema.train()
    state = torch.get_rng_state()
    imgs = SampleGridHook(num_samples=20).render(model)
    assert imgs.shape == (20, 3, 32, 32) and imgs.dtype == torch.uint8
    assert model.generator_ema.training and model.generator.training
    assert torch.equal(torch.get_rng_state(), state)


def test_grid_names():
    assert SampleGridHook(interval_kimg=10).grid_name(10016) == 'fakes000010.png'
    assert SampleGridHook(interval_kimg=0.032).grid_name(64) == 'fakes000000_064.png'


def test_reals_grid_collects_images_over_batches(tmp_path):
    hook = SampleGridHook(interval_kimg=10, num_samples=6)
    runner = SimpleNamespace(work_dir=str(tmp_path), model=SimpleNamespace(
        images_seen=torch.tensor(0)))
    batches = [torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8) for _ in range(3)]
    hook.after_train_iter(runner, 0, data_batch=dict(img=batches[0]))
    assert not (tmp_path / 'samples' / 'reals.png').exists()  # 4 of 6 so far
    hook.after_train_iter(runner, 1, data_batch=dict(img=batches[1]))
    want = make_grid(torch.cat(batches[:2])[:6])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'samples' / 'reals.png')),
                                  want)
    os.remove(tmp_path / 'samples' / 'reals.png')
    hook.after_train_iter(runner, 2, data_batch=dict(img=batches[2]))  # written once only
    assert not (tmp_path / 'samples' / 'reals.png').exists()


# -- KimgCheckpointHook units (fake runner) ------------------------------------------------------
class FakeHub:
    def __init__(self):
        self.info = {}

    def update_info(self, key, value, resumed=True):
        self.info[key] = value

    def get_info(self, key, default=None):
        return self.info.get(key, default)


def fake_runner(work_dir: str, hub: FakeHub | None = None):
    runner = SimpleNamespace(work_dir=work_dir, iter=0, max_iters=100,
                             model=SimpleNamespace(images_seen=torch.tensor(0)),
                             message_hub=hub or FakeHub(),
                             logger=logging.getLogger('test_hooks'), saved=[])

    def save_checkpoint(out_dir, filename, meta=None, by_epoch=True):
        # every checkpoint kept so far is still there while the new one is written
        for name in kept_now(runner)[:-1]:
            assert osp.isfile(osp.join(out_dir, name))
        with open(osp.join(out_dir, filename), 'w') as f:
            f.write(str(meta))
        runner.saved.append(filename)

    runner.save_checkpoint = save_checkpoint
    return runner


def kept_now(runner) -> list[str]:
    return runner.message_hub.get_info('KimgCheckpointHook.kept', [])


def step(hook, runner, images: int) -> None:
    runner.model.images_seen += images
    hook.after_train_iter(runner, runner.iter)
    runner.iter += 1


def test_kimg_checkpoints_prune_after_saving_and_survive_resume(tmp_path):
    runner = fake_runner(str(tmp_path))
    hook = KimgCheckpointHook(interval_kimg=0.1, max_keep_ckpts=2)
    hook.before_train(runner)
    for _ in range(10):
        step(hook, runner, 32)  # crosses 100, 200, 300 images at iterations 4, 7, 10
    assert runner.saved == ['iter_4.pth', 'iter_7.pth', 'iter_10.pth']
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth')) == [
        'iter_10.pth', 'iter_7.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_10.pth')
    assert kept_now(runner) == ['iter_7.pth', 'iter_10.pth']

    # resume: a new hook finds its bookkeeping in the message hub
    resumed = fake_runner(str(tmp_path), runner.message_hub)
    resumed.iter, resumed.model.images_seen = runner.iter, runner.model.images_seen.clone()
    hook2 = KimgCheckpointHook(interval_kimg=0.1, max_keep_ckpts=2)
    hook2.before_train(resumed)
    step(hook2, resumed, 32)  # 352: no crossing
    assert resumed.saved == []
    step(hook2, resumed, 64)  # 416: crosses 400
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth')) == [
        'iter_10.pth', 'iter_12.pth']


def test_kimg_checkpoint_save_last(tmp_path):
    runner = fake_runner(str(tmp_path))
    runner.max_iters = 3
    hook = KimgCheckpointHook(interval_kimg=50)
    hook.before_train(runner)
    for _ in range(3):
        step(hook, runner, 8)
    assert runner.saved == ['iter_3.pth']


@pytest.mark.parametrize('rule, scores, best', [('greater', [0.5, 0.7, 0.6], 2),
                                                ('less', [9.0, 7.0, 8.0], 2)])
def test_best_checkpoint_follows_the_metric(tmp_path, rule, scores, best):
    runner = fake_runner(str(tmp_path))
    hook = KimgCheckpointHook(save_best='fid/score', rule=rule)
    hook.before_train(runner)
    for i, score in enumerate(scores, start=1):
        runner.iter = i
        hook.after_val_epoch(runner, {'fid/score': score, 'other': 1.0})
    hook.after_val_epoch(runner, {'other': 1.0})  # metric missing: nothing happens
    assert runner.saved == ['best_fid_score_iter_1.pth', 'best_fid_score_iter_2.pth']
    assert os.listdir(tmp_path) == [f'best_fid_score_iter_{best}.pth']
    assert runner.message_hub.get_info('KimgCheckpointHook.best_score') == scores[1]
    with pytest.raises(ValueError):
        KimgCheckpointHook(rule='bigger')


# -- end to end ----------------------------------------------------------------------------------
def test_sample_grids_written(full_run):
    work_dir, _ = full_run
    samples = osp.join(work_dir, 'samples')
    # start, crossing 32 images, and the end (64 images: the crossing and the end coincide)
    assert sorted(os.listdir(samples)) == ['fakes000000_000.png', 'fakes000000_032.png',
                                           'fakes000000_064.png', 'reals.png']
    for name in os.listdir(samples):
        img = Image.open(osp.join(samples, name))
        assert img.size == (64, 64) and img.mode == 'RGB'  # 4 samples of 32x32 as 2x2


def test_tensorboard_gets_grids(full_run):
    work_dir, _ = full_run
    events = glob.glob(osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(events[0], size_guidance={'images': 0})
    acc.Reload()
    assert 'fakes' in acc.Tags()['images']
    assert len(acc.Images('fakes')) == 3


def test_progress_is_logged(full_run):
    work_dir, output = full_run
    assert 'global batch 8 (8 per process x 1 processes), 0.064 kimg = 8 iterations' in output
    # Every `interval` iterations to the log file (the console shows its own display, see
    # tests/test_console.py).
    (log_file,) = glob.glob(osp.join(work_dir, '*', '*.log'))
    with open(log_file) as f:
        log = f.read()
    lines = re.findall(r'kimg (0\.\d{3})/0\.064  img/s [\d.]+  sec/kimg [\d.]+  '
                       r'ETA \d\d:\d\d:\d\d', log)
    assert lines == ['0.016', '0.032', '0.048', '0.064']
    assert 'img_per_s' in log and 'sec_per_kimg' in log  # in LoggerHook's line too


def test_kimg_checkpoints_end_to_end(full_run):
    work_dir, output = full_run
    for n in (2, 4, 6, 8):
        assert f'saved iter_{n}.pth at {n * 8 / 1000:.3f} kimg' in output
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == [
        'iter_6.pth', 'iter_8.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'iter_8.pth')
    ckpt = torch.load(osp.join(work_dir, 'iter_8.pth'), weights_only=False)
    assert ckpt['meta']['kimg'] == 0.064 and int(ckpt['state_dict']['images_seen']) == 64
    # saved before pruning: a run killed before the prune cleans up after resuming
    assert ckpt['message_hub']['runtime_info']['KimgCheckpointHook.kept'] == [
        'iter_4.pth', 'iter_6.pth', 'iter_8.pth']


def test_hooks_do_not_change_training(full_run, baseline_run):
    with_hooks = torch.load(osp.join(full_run[0], 'iter_8.pth'), weights_only=False)
    without = torch.load(osp.join(baseline_run[0], 'iter_8.pth'), weights_only=False)
    assert with_hooks['state_dict'].keys() == without['state_dict'].keys()
    for key, value in without['state_dict'].items():
        assert torch.equal(with_hooks['state_dict'][key], value), key


def test_resume_continues_checkpoints_and_grids(full_run, dataset, tmp_path):
    work_dir = str(tmp_path / 'resumed')
    shutil.copytree(full_run[0], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_8.pth'))
    _, output = train(tmp_path, 'full', [SAMPLES, PROGRESS, CKPT], dataset,
                      total_kimg=0.096, work_dir=work_dir, resume=True)
    assert 'resumed epoch: 0, iter: 8' in output
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == [
        'iter_10.pth', 'iter_12.pth']
    assert 'fakes000000_096.png' in os.listdir(osp.join(work_dir, 'samples'))
