"""Hostile checkpoints from a real training run: a config string that runs code, a
``meta['config']`` that mmengine's resume would execute, a kept-list that points outside the
work dir, a damaged file. None may run code, delete files or load silently."""
from __future__ import annotations

import os
import shutil
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from genforce_core.api import load_generator
from genforce_core.checkpoint import load_checkpoint, verify_checksums
from genforce_core.errors import CheckpointError
from genforce_core.stored_config import parse_literal_config

pytestmark = pytest.mark.slow
HOOK_INFO = 'KimgCheckpointHook.kept'


def payload(marker: Path) -> str:
    return f"_x = __import__('os').system('touch {marker}')"


def rewrite(src: Path, dst: Path, change) -> Path:
    """Load a checkpoint we made ourselves (full pickle is fine here), edit it, save it."""
    checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    change(checkpoint)
    torch.save(checkpoint, dst)
    return dst


@pytest.fixture(scope='module')
def config(tmp_path_factory, example_config) -> Path:
    """The example DCGAN with a kimg checkpoint every 2 iterations of batch 4, keeping 2."""
    path = tmp_path_factory.mktemp('cfg') / 'dcgan_security.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = [{str(example_config)!r}]
        custom_hooks = [dict(type='KimgCheckpointHook', interval_kimg=0.008, max_keep_ckpts=2)]
    '''))
    return path


def train(genforce, config, work_dir, tiny, kimg, *extra, site, check=True):
    return genforce(['train', str(config), '--work-dir', str(work_dir), *extra,
                     '--cfg-options', *tiny, f'train_cfg.total_kimg={kimg}'],
                    pythonpath=[site], check=check)


@pytest.fixture(scope='module')
def run(genforce, config, tmp_path_factory, tiny_dcgan, example_plugin_site) -> Path:
    """A finished 4-iteration run: iter_2.pth and iter_4.pth."""
    work = tmp_path_factory.mktemp('run')
    train(genforce, config, work, tiny_dcgan, 0.016, site=example_plugin_site)
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_2.pth', 'iter_4.pth']
    return work


@pytest.fixture(scope='module')
def straight(genforce, config, tmp_path_factory, tiny_dcgan, example_plugin_site) -> Path:
    """The same run trained for 8 iterations without interruption."""
    work = tmp_path_factory.mktemp('straight')
    train(genforce, config, work, tiny_dcgan, 0.032, site=example_plugin_site)
    return work / 'iter_8.pth'


def copy_run(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst)
    (dst / 'last_checkpoint').write_text(str(dst / 'iter_4.pth'))
    return dst


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a)['state_dict'], load_checkpoint(b)['state_dict']
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --------------------------------------------------------------------------- item 1: meta.cfg

def synthesize(genforce, checkpoint: Path, out: Path, site: Path, check: bool = True):
    return genforce(['synthesize', str(checkpoint), '--seeds', '0-1', '--out', str(out)],
                    pythonpath=[site], check=check)


def test_config_is_stored_as_data(run, tmp_path, genforce, example_plugin_site):
    meta = load_checkpoint(run / 'iter_4.pth')['meta']
    assert isinstance(meta['cfg'], dict) and 'config' not in meta
    assert meta['cfg']['model']['generator']['type'] == 'DCGANGenerator'
    synthesize(genforce, run / 'iter_4.pth', tmp_path, example_plugin_site)
    assert (tmp_path / 'seed0001.png').is_file()


def test_poisoned_config_string_is_refused(run, tmp_path, genforce, example_plugin_site):
    marker = tmp_path / 'PWNED'
    text = Config(load_checkpoint(run / 'iter_4.pth')['meta']['cfg']).pretty_text

    def poison(ckpt):
        ckpt['meta']['cfg'] = text + '\n' + payload(marker) + '\n'

    poisoned = rewrite(run / 'iter_4.pth', tmp_path / 'poisoned.pth', poison)
    with pytest.raises(CheckpointError, match='poisoned.pth.*not plain data.*nothing in it '
                       'was run'):
        load_generator(poisoned)
    proc = synthesize(genforce, poisoned, tmp_path / 'out', example_plugin_site, check=False)
    assert proc.returncode == 1 and 'poisoned.pth' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not marker.exists()


def test_old_checkpoint_with_plain_config_string_loads_and_resaves(run, tmp_path, genforce,
                                                                   example_plugin_site):
    text = Config(load_checkpoint(run / 'iter_4.pth')['meta']['cfg']).pretty_text
    old = rewrite(run / 'iter_4.pth', tmp_path / 'old.pth',
                  lambda ckpt: ckpt['meta'].update(cfg=text))
    synthesize(genforce, run / 'iter_4.pth', tmp_path / 'new_out', example_plugin_site)
    synthesize(genforce, old, tmp_path / 'old_out', example_plugin_site)
    for name in ('seed0000.png', 'seed0001.png'):
        assert (tmp_path / 'old_out' / name).read_bytes() == \
            (tmp_path / 'new_out' / name).read_bytes()
    genforce(['resave-checkpoint', str(old)], pythonpath=[example_plugin_site])
    assert load_checkpoint(old)['meta']['cfg'] == load_checkpoint(run / 'iter_4.pth')['meta'][
        'cfg']


def test_registered_types_only(run, tmp_path):
    marker = tmp_path / 'PWNED'

    def import_path_type(ckpt):
        ckpt['meta']['cfg']['model'] = dict(type='os.system', command=f'touch {marker}')

    evil = rewrite(run / 'iter_4.pth', tmp_path / 'evil.pth', import_path_type)
    with pytest.raises(CheckpointError, match="evil.pth.*model.type='os.system'"):
        load_generator(evil)
    assert not marker.exists()


@pytest.mark.parametrize('line', [
    "x = __import__('os').system('touch M')",
    'import os',
    "x = dict(a=open('M', 'w'))",
    'x = os.environ',
    'x = [i for i in range(3)]',
    'x = dict(**y)',
    "x = f'{y}'",
    'x.y = 1',
])
def test_literal_parser_refuses_anything_but_data(line):
    with pytest.raises(CheckpointError, match='c.pth.*not plain data'):
        parse_literal_config(f'a = 1\n{line}\n', 'c.pth')


def test_literal_parser_reads_mmengine_text():
    cfg = dict(model=dict(type='GAN', generator=dict(z_dim=-3, scale=1e-2, sizes=(4, 8)),
                          names=['a', None, True]), seed=0)
    assert parse_literal_config(Config(cfg).pretty_text) == cfg


# --------------------------------------------------------------------------- item 2: resume

def test_resume_never_executes_meta_config(run, straight, tmp_path, genforce, config,
                                           tiny_dcgan, example_plugin_site):
    marker = tmp_path / 'PWNED'
    work = copy_run(run, tmp_path / 'work')
    rewrite(work / 'iter_4.pth', work / 'iter_4.pth',
            lambda ckpt: ckpt['meta'].update(config=payload(marker) + '\ngpu_ids = [0]\n'))
    for resume in (['--resume'], ['--resume', str(work / 'iter_4.pth')]):
        shutil.rmtree(work / 'resumed', ignore_errors=True)
        proc = train(genforce, config, work, tiny_dcgan, 0.032, *resume,
                     site=example_plugin_site)
        assert 'resumed epoch: 0, iter: 4' in proc.stdout + proc.stderr
        assert not marker.exists()
        assert_same_weights(work / 'iter_8.pth', straight)  # still bit-exact
        rewrite(run / 'iter_4.pth', work / 'iter_4.pth',
                lambda ckpt: ckpt['meta'].update(config=payload(marker)))


# --------------------------------------------------------------------------- item 3: kept list

def test_resume_never_deletes_files_outside_the_work_dir(run, tmp_path, genforce, config,
                                                         tiny_dcgan, example_plugin_site):
    work = copy_run(run, tmp_path / 'runs' / 'work')
    victims = [tmp_path / 'victim.txt', tmp_path / 'runs' / 'victim.txt',
               tmp_path / 'runs' / 'iter_1.pth']
    for victim in victims:
        victim.write_text('keep me')
    (work / 'notes.pth').write_text('keep me too')
    names = [str(victims[0]), '../victim.txt', '../iter_1.pth', 'notes.pth', 'iter_2.pth']

    def traverse(ckpt):
        ckpt['message_hub']['runtime_info'][HOOK_INFO] = names
        ckpt['message_hub']['runtime_info']['KimgCheckpointHook.best_ckpt'] = str(victims[1])

    rewrite(work / 'iter_4.pth', work / 'iter_4.pth', traverse)
    proc = train(genforce, config, work, tiny_dcgan, 0.032, '--resume',
                 site=example_plugin_site)
    assert all(victim.read_text() == 'keep me' for victim in victims)
    assert (work / 'notes.pth').exists()
    assert 'ignoring' in proc.stderr and '../victim.txt' in proc.stderr
    # The hook's own bookkeeping still works: of the restored list only iter_2.pth was valid,
    # and it was pruned when iter_8.pth made it the third (iter_4.pth was never listed).
    assert sorted(p.name for p in work.glob('iter_*.pth')) == [
        'iter_4.pth', 'iter_6.pth', 'iter_8.pth']


# --------------------------------------------------------------------------- item 4: corruption

def flip_middle(path: Path, count: int = 400) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))


def test_damaged_checkpoint_is_refused_and_resume_falls_back(run, tmp_path, genforce, config,
                                                             tiny_dcgan, example_plugin_site):
    work = copy_run(run, tmp_path / 'work')
    flip_middle(work / 'iter_4.pth')
    with pytest.raises(CheckpointError, match=r'iter_4.pth is corrupt'):
        load_checkpoint(work / 'iter_4.pth')
    proc = train(genforce, config, work, tiny_dcgan, 0.032, '--resume', str(work / 'iter_4.pth'),
                 site=example_plugin_site, check=False)
    assert proc.returncode == 1 and 'iter_4.pth is corrupt' in proc.stderr
    assert 'Traceback' not in proc.stderr
    proc = train(genforce, config, work, tiny_dcgan, 0.016 + 0.008, '--resume',
                 site=example_plugin_site)
    output = proc.stdout + proc.stderr
    assert 'skipping' in output and 'resumed epoch: 0, iter: 2' in output
    assert verify_checksums(work / 'iter_6.pth')


def test_checkpoint_without_checksums_loads_with_one_warning(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(2):
            assert torch.equal(load_checkpoint(path)['w'], torch.ones(3))
    messages = [str(w.message) for w in caught if 'checksums' in str(w.message)]
    assert len(messages) == 1 and 'legacy.pth' in messages[0]


def test_every_record_is_checked(tmp_path):
    """A flip anywhere in the payload is caught, not only in the largest tensor."""
    path = tmp_path / 'a.pth'
    torch.save({'a': torch.arange(1000.0), 'b': torch.ones(7), 'meta': {'x': 'y' * 50}}, path)
    size = os.path.getsize(path)
    clean = path.read_bytes()
    caught = 0
    for offset in range(0, size - 400, 97):
        data = bytearray(clean)
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        try:
            verify_checksums(path)
        except CheckpointError:
            caught += 1
            continue
        # Not caught: the byte must be outside every record's data (headers, padding, ...)
        # and then torch must still read the same values.
        loaded = load_checkpoint(path)
        assert torch.equal(loaded['a'], torch.arange(1000.0))
    assert caught > 0.5 * (size - 400) / 97
