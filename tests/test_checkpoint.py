"""Tests of genforce_core.checkpoint: atomic save, safe load, mmengine resume, v1 reader."""
from __future__ import annotations

import collections
import contextlib
import io
import os
import pathlib
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn

from genforce_core import checkpoint as ckpt
from genforce_core.checkpoint import (
    describe_state_dict_mismatch,
    install_mmengine_loader,
    load_checkpoint,
    read_genforce_v1_checkpoint,
    save_checkpoint,
)
from genforce_core.errors import CheckpointError

TORCH_2_6 = tuple(int(p) for p in re.findall(r'\d+', torch.__version__)[:2]) >= (2, 6)


# --------------------------------------------------------------------------- save

def test_save_round_trip_leaves_no_temp_file(tmp_path):
    obj = {'w': torch.arange(4.0), 'meta': {'iter': 3}}
    out = save_checkpoint(obj, tmp_path / 'a.pth')
    assert out == tmp_path / 'a.pth'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.pth']
    loaded = load_checkpoint(out)
    assert torch.equal(loaded['w'], obj['w']) and loaded['meta'] == {'iter': 3}


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError('cannot pickle this')


def test_failed_save_keeps_old_file_and_removes_temp(tmp_path):
    target = save_checkpoint({'version': 1}, tmp_path / 'a.pth')
    with pytest.raises(CheckpointError, match='a.pth'):
        save_checkpoint({'bad': _Unpicklable()}, target)
    assert load_checkpoint(target) == {'version': 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.pth']


def test_interrupt_during_save_keeps_old_file(tmp_path, monkeypatch):
    target = save_checkpoint({'version': 1}, tmp_path / 'a.pth')

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, 'replace', interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'version': 2}, target)
    assert load_checkpoint(target) == {'version': 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.pth']


def test_sigkill_during_save_keeps_old_file(tmp_path):
    """A process killed between writing and renaming must not touch the previous file."""
    target = save_checkpoint({'version': 1}, tmp_path / 'a.pth')
    child = textwrap.dedent(f'''
        import os, sys, time
        from genforce_core import checkpoint
        def stall(fd):  # the data is written; stop right before the rename
            print('ready', flush=True)
            time.sleep(60)
        checkpoint.os.fsync = stall
        checkpoint.save_checkpoint({{'version': 2}}, {str(target)!r})
    ''')
    proc = subprocess.Popen([sys.executable, '-c', child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'ready'
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert load_checkpoint(target) == {'version': 1}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != 'a.pth']
    assert leftovers == [f'.a.pth.tmp-{proc.pid}']  # only the killed writer's temp file


# --------------------------------------------------------------------------- load errors

def test_missing_file_names_path(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / 'nope.pth'))):
        load_checkpoint(tmp_path / 'nope.pth')


@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'legacy'])
@pytest.mark.parametrize('keep', [0.0, 0.1, 0.5, 0.99])
def test_truncated_file_is_reported_as_corrupt(tmp_path, zip_format, keep):
    buffer = io.BytesIO()
    torch.save({'w': torch.randn(256)}, buffer, _use_new_zipfile_serialization=zip_format)
    data = buffer.getvalue()
    path = tmp_path / 'cut.pth'
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match='incomplete or corrupt') as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_non_dict_checkpoint_is_rejected(tmp_path):
    torch.save(torch.zeros(2), tmp_path / 't.pth')
    with pytest.raises(CheckpointError, match='holds a Tensor'):
        load_checkpoint(tmp_path / 't.pth')


class _TouchPayload:
    """Unpickling this creates ``marker`` — what an attacker's checkpoint would do."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class _SystemPayload(_TouchPayload):
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def _write(payload, path: pathlib.Path, zip_format: bool) -> None:
    if zip_format:
        torch.save({'state_dict': {}, 'x': payload}, path)
    else:  # a raw pickle file, as older tools wrote
        path.write_bytes(pickle.dumps({'state_dict': {}, 'x': payload}))


@pytest.mark.filterwarnings('ignore:Detected pickle protocol:UserWarning')
@pytest.mark.parametrize('zip_format', [True, False], ids=['torch-zip', 'raw-pickle'])
@pytest.mark.parametrize('payload, offender', [(_TouchPayload, 'pathlib'),
                                               (_SystemPayload, 'system')])
def test_malicious_checkpoint_is_refused_without_running_code(tmp_path, zip_format, payload,
                                                             offender):
    marker = tmp_path / 'MARKER'
    path = tmp_path / 'evil.pth'
    _write(payload(marker), path, zip_format)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and 'refused' in message and offender in message
    assert 'genforce convert' in message
    assert not marker.exists()


def test_touch_payload_is_real(tmp_path):
    """Guard for the test above: a plain unpickle of the same file does run the payload."""
    marker = tmp_path / 'MARKER'
    _write(_TouchPayload(marker), tmp_path / 'evil.pkl', zip_format=False)
    pickle.loads((tmp_path / 'evil.pkl').read_bytes())
    assert marker.exists()


def test_getattr_stand_in_only_serves_history_buffer_methods(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    torch.save({'x': Sneaky()}, tmp_path / 'g.pth')
    with pytest.raises(CheckpointError, match=r'refused.*getattr\(HistoryBuffer'):
        load_checkpoint(tmp_path / 'g.pth')


# --------------------------------------------------------------------------- allowlist

def test_numpy_random_and_containers_round_trip(tmp_path):
    obj = {
        'array': np.arange(6, dtype=np.float32).reshape(2, 3),
        'ints': np.array([1, 2], dtype=np.uint8),
        'scalars': [np.float64(0.5), np.int64(3), np.bool_(True)],
        'dtype': np.dtype('float16'),
        'np_random': np.random.get_state(),
        'py_random': random.getstate(),
        'torch_rng': torch.get_rng_state(),
        'ordered': collections.OrderedDict(a=1, b=2),
        'size': torch.Size([3, 4]),
    }
    loaded = load_checkpoint(save_checkpoint(obj, tmp_path / 'n.pth'))
    np.testing.assert_array_equal(loaded['array'], obj['array'])
    assert loaded['array'].dtype == np.float32 and loaded['ints'].dtype == np.uint8
    assert loaded['scalars'] == obj['scalars'] and loaded['dtype'] == obj['dtype']
    np.testing.assert_array_equal(loaded['np_random'][1], obj['np_random'][1])
    assert loaded['py_random'] == obj['py_random']
    assert isinstance(loaded['ordered'], collections.OrderedDict)
    assert loaded['size'] == torch.Size([3, 4])


@pytest.mark.skipif(not ckpt._NAMED_GLOBALS, reason='needs torch >= 2.6 named safe globals')
def test_numpy_1x_names_are_accepted(tmp_path):
    """A file written under numpy 1.x names numpy.core.multiarray instead of numpy._core."""
    buffer = io.BytesIO()
    torch.save({'a': np.arange(3.0), 's': np.float32(2)}, buffer,
               _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    if b'numpy._core.multiarray' in data:
        data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray' in data
    (tmp_path / 'old.pth').write_bytes(data)
    loaded = load_checkpoint(tmp_path / 'old.pth')
    np.testing.assert_array_equal(loaded['a'], np.arange(3.0))
    assert loaded['s'] == np.float32(2)


# --------------------------------------------------------------------------- mmengine

def _build_runner(work_dir, max_iters: int, resume: bool = False):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.lin(inputs)
            return {'loss': out.pow(2).mean()} if mode == 'loss' else out

    dataset = [dict(inputs=torch.randn(2)) for _ in range(8)]
    return Runner(
        model=Toy(), work_dir=str(work_dir), experiment_name=f'ckpt-{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=dataset, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, by_epoch=False, end=10),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        resume=resume, randomness=dict(seed=0), log_level='WARNING')


@contextlib.contextmanager
def _mmengine_globals_restored():
    """Runner creates global DefaultScope/MessageHub/... instances; drop ours afterwards
    so that later tests do not run under this Runner's default scope."""
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer

    managers = (DefaultScope, MessageHub, MMLogger, Visualizer)
    before = {cls: list(cls._instance_dict) for cls in managers}
    try:
        yield
    finally:
        for cls in managers:
            for name in [n for n in cls._instance_dict if n not in before[cls]]:
                cls._instance_dict.pop(name)


@pytest.fixture(scope='module')
def mmengine_work_dir(tmp_path_factory):
    """A work_dir after 2 iterations of a tiny mmengine Runner (checkpoints iter_1, iter_2)."""
    work_dir = tmp_path_factory.mktemp('mmengine_run')
    with _mmengine_globals_restored():
        _build_runner(work_dir, max_iters=2).train()
    return work_dir


@pytest.mark.slow
def test_real_mmengine_checkpoint_loads(mmengine_work_dir):
    from mmengine.logging.history_buffer import HistoryBuffer

    path = mmengine_work_dir / 'iter_2.pth'
    checkpoint = load_checkpoint(path)
    assert checkpoint['meta']['iter'] == 2
    assert {'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(checkpoint)
    buffers = checkpoint['message_hub']['log_scalars']
    assert buffers and all(isinstance(b, HistoryBuffer) for b in buffers.values())
    assert np.isfinite(buffers['train/loss'].mean())  # the restored statistics methods work
    if TORCH_2_6:  # why the allowlist is needed: torch's default refuses mmengine's types
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)


def test_allowlist_without_named_globals_still_loads_mmengine(mmengine_work_dir, monkeypatch):
    """torch 2.4/2.5 accept no ``(obj, name)`` pairs; the fallback allowlist must still work."""
    monkeypatch.setattr(ckpt, '_NAMED_GLOBALS', False)
    safe_globals = ckpt._build_safe_globals()
    assert not any(isinstance(entry, tuple) for entry in safe_globals)
    monkeypatch.setattr(ckpt, 'SAFE_GLOBALS', safe_globals)
    checkpoint = load_checkpoint(mmengine_work_dir / 'iter_2.pth')
    assert np.isfinite(checkpoint['message_hub']['log_scalars']['train/loss'].mean())


@pytest.mark.slow
def test_mmengine_resume_uses_safe_loader(mmengine_work_dir, tmp_path):
    from mmengine.runner.checkpoint import load_from_local

    work_dir = tmp_path / 'run'
    shutil.copytree(mmengine_work_dir, work_dir)
    if TORCH_2_6:  # mmengine's own loader cannot read its own checkpoint any more
        with pytest.raises(pickle.UnpicklingError):
            load_from_local(str(work_dir / 'iter_2.pth'), 'cpu')
    with _mmengine_globals_restored():
        runner = _build_runner(work_dir, max_iters=4, resume=True)
        runner.train()
    assert runner.iter == 4
    assert load_checkpoint(work_dir / 'iter_4.pth')['meta']['iter'] == 4


def test_install_mmengine_loader_is_idempotent(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader

    http_loader = CheckpointLoader._get_checkpoint_loader('https://example.com/a.pth')
    install_mmengine_loader()
    install_mmengine_loader()
    assert CheckpointLoader._get_checkpoint_loader('a.pth') is ckpt.load_from_local_safe
    assert CheckpointLoader._get_checkpoint_loader('https://example.com/a.pth') is http_loader
    assert list(CheckpointLoader._schemes).count('') == 1
    with pytest.raises(FileNotFoundError):  # same contract as mmengine's load_from_local
        CheckpointLoader.load_checkpoint(str(tmp_path / 'missing.pth'))
    save_checkpoint({'state_dict': {'w': torch.ones(1)}}, tmp_path / 'ok.pth')
    loaded = CheckpointLoader.load_checkpoint(str(tmp_path / 'ok.pth'), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(1))


# --------------------------------------------------------------------------- GenForce v1

def _v1_checkpoint() -> dict:
    return {
        'models': {'generator': {'w': torch.ones(2)}, 'discriminator': {'w': torch.zeros(2)},
                   'generator_smooth': {'w': torch.full((2,), 0.5)}},
        'running_metadata': {'iter': 1000, 'seen_img': 32000},
        'optimizers': {'generator': {'state': {}, 'param_groups': []}},
        'learning_rates': {'generator': {'last_epoch': 5}},
    }


def test_read_genforce_v1_checkpoint(tmp_path):
    path = save_checkpoint(_v1_checkpoint(), tmp_path / 'v1.pth')
    result = read_genforce_v1_checkpoint(path)
    assert torch.equal(result['generator']['w'], torch.ones(2))
    assert torch.equal(result['discriminator']['w'], torch.zeros(2))
    assert torch.equal(result['generator_ema']['w'], torch.full((2,), 0.5))
    assert result['meta'] == {'iter': 1000, 'seen_img': 32000}
    assert result['optimizers']['generator']['param_groups'] == []
    assert result['learning_rates'] == {'generator': {'last_epoch': 5}}


def test_read_genforce_v1_models_only(tmp_path):
    path = save_checkpoint({'models': {'generator_smooth': {'w': torch.ones(1)}}},
                           tmp_path / 'v1.pth')
    result = read_genforce_v1_checkpoint(path)
    assert set(result) == {'generator_ema', 'meta', 'optimizers', 'learning_rates'}
    assert result['meta'] == {} and result['optimizers'] == {}


def test_read_genforce_v1_rejects_other_layouts(tmp_path):
    path = save_checkpoint({'meta': {}, 'state_dict': {}}, tmp_path / 'mm.pth')
    with pytest.raises(CheckpointError, match=r"not an original GenForce.*'meta', 'state_dict'"):
        read_genforce_v1_checkpoint(path)
    path = save_checkpoint({'models': {'encoder': {}}}, tmp_path / 'enc.pth')
    with pytest.raises(CheckpointError, match='encoder'):
        read_genforce_v1_checkpoint(path)


def test_read_genforce_v1_is_safe(tmp_path):
    marker = tmp_path / 'MARKER'
    v1 = _v1_checkpoint()
    v1['running_metadata']['x'] = _TouchPayload(marker)
    torch.save(v1, tmp_path / 'v1.pth')
    with pytest.raises(CheckpointError, match='refused'):
        read_genforce_v1_checkpoint(tmp_path / 'v1.pth')
    assert not marker.exists()


# --------------------------------------------------------------------------- mismatch

def test_state_dict_mismatch_none_when_equal():
    sd = nn.Linear(2, 3).state_dict()
    assert describe_state_dict_mismatch(sd, nn.Linear(2, 3).state_dict()) is None
    shapes = {k: v.shape for k, v in sd.items()}
    assert describe_state_dict_mismatch(shapes, sd) is None


def test_state_dict_mismatch_lists_keys_and_shapes():
    expected = {'a': torch.zeros(2), 'b': torch.Size([3, 4]), 'c': torch.zeros(1)}
    got = {'a': torch.zeros(5), 'b': torch.zeros(3, 4), 'd': torch.zeros(1)}
    message = describe_state_dict_mismatch(expected, got)
    assert 'missing keys (1): c' in message
    assert 'unexpected keys (1): d' in message
    assert 'shape mismatches (1): a: expected [2], got [5]' in message


def test_state_dict_mismatch_truncates_long_lists():
    expected = {f'k{i}': torch.zeros(1) for i in range(25)}
    message = describe_state_dict_mismatch(expected, {})
    assert 'missing keys (25)' in message and '(15 more)' in message
    assert 'k9' in message and 'k10' not in message
