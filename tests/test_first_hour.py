"""A newcomer's mistakes end in one named line and exit code 2, before anything is built; a
new run never mixes with an old one in a work dir; the built-in dataset needs no set-up."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def tiny(tiny_dcgan, example_plugin_site):
    return dict(options=tiny_dcgan, site=example_plugin_site)


def train(genforce, example_config, work: Path, tiny, *options, extra=(), check=False,
          env=None):
    return genforce(['train', str(example_config), '--work-dir', str(work), *extra,
                     '--cfg-options', *tiny['options'], *options],
                    pythonpath=[tiny['site']], check=check, env=env)


def assert_usage_error(proc, *expected: str) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert len(errors) == 1, proc.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    assert 'Environment' not in proc.stdout  # failed before the runner printed anything
    return errors[0]


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """``cli(*args)`` runs ``genforce train configs/demo.py ARGS`` in this process (mistakes
    are caught before anything is built) and returns a CompletedProcess-like result."""
    from genforce_core.cli.main import main

    monkeypatch.setattr(os, 'environ', dict(os.environ))

    def run(*args: str):
        try:
            code = main(['train', str(REPO / 'configs' / 'demo.py'), '--work-dir',
                         str(tmp_path / 'w'), *args])
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


@pytest.mark.parametrize('option, expected', [
    ('model.generator.z_dimm=8', ['model.generator.z_dimm', 'StyleGAN2Generator',
                                  "Did you mean 'z_dim'"]),
    ('train_cfg.total_kimgg=5', ['train_cfg.total_kimgg', "Did you mean 'total_kimg'"]),
    ('train_dataloader.dataset.path=None', ['train_dataloader.dataset.path', 'None',
                                            'prepare-dataset', 'builtin:shapes32']),
    ('train_dataloader.dataset.path=/no/such.zip', ['/no/such.zip', 'does not exist']),
    ('train_dataloader.dataset.path=builtin:circles7', ['builtin:circles7',
                                                        'builtin:shapes32']),
    ('train_dataloader.batch_size=0', ['train_dataloader.batch_size', 'positive', '0']),
    ('train_dataloader.batch_size=-4', ['train_dataloader.batch_size', '-4']),
    ('model.generator.img_resolution=48', ['model.generator.img_resolution', 'power of two',
                                           '48']),
    ('train_cfg.total_kimg=-1', ['train_cfg.total_kimg', 'positive', '-1']),
])
def test_config_mistakes_are_one_line(cli, tmp_path, option, expected):
    proc = cli('--cfg-options', option)
    assert_usage_error(proc, 'demo.py', *expected)
    assert not (tmp_path / 'w').exists()  # nothing was started


@pytest.mark.parametrize('options, expected', [
    (['train_dataloader.dataset.use_labels=False'], ['no labels', 'model.generator.c_dim is 15']),
    (['model.generator.c_dim=0', 'model.discriminator.c_dim=0'],
     ['labels 15 wide', 'model.generator.c_dim is 0']),
    (['model.discriminator.c_dim=3'], ['labels 15 wide', 'model.discriminator.c_dim is 3']),
])
def test_labels_that_do_not_fit_the_model_stop_before_the_first_step(tmp_path, options,
                                                                    expected):
    # A fresh interpreter: the runner is built before the check, and mmengine's logger would
    # keep this test's captured stream for the tests after it.
    from conftest import run_genforce
    proc = run_genforce(['train', str(REPO / 'configs' / 'demo.py'), '--work-dir',
                         str(tmp_path / 'w'), '--cfg-options', 'train_cfg.total_kimg=1',
                         *options], check=False, timeout=300)
    assert_usage_error(proc, 'train_dataloader.dataset', 'shapes32.zip', 'use_labels', *expected)


@pytest.mark.parametrize('option', ['foo', '=1', '1abc=2'])
def test_malformed_cfg_options(cli, option):
    proc = cli('--cfg-options', option)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'{option!r}' in proc.stderr
    assert 'KEY=VALUE' in proc.stderr or 'is not a config key' in proc.stderr


def test_launcher_without_its_environment(cli, monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delitem(os.environ, name, raising=False)
    proc = cli('--launcher', 'pytorch', '--cfg-options', 'train_cfg.total_kimg=1')
    assert_usage_error(proc, '--launcher pytorch', 'MASTER_ADDR', 'dist_train.sh')


def test_debug_shows_the_traceback(cli):
    proc = cli('--debug', '--cfg-options', 'train_dataloader.batch_size=0')
    assert proc.returncode == 2 and 'Traceback' in proc.stderr


# --------------------------------------------------------------------------- work dirs

@pytest.mark.slow
def test_a_used_work_dir_is_protected(genforce, example_config, tmp_path, tiny):
    work = tmp_path / 'w'
    train(genforce, example_config, work, tiny, 'train_cfg.total_kimg=0.008', check=True)
    first = sorted(p.name for p in work.glob('iter_*.pth'))
    assert first == ['iter_2.pth']
    before = (work / 'iter_2.pth').read_bytes()

    proc = train(genforce, example_config, work, tiny, 'train_cfg.total_kimg=0.008')
    assert_usage_error(proc, str(work), 'iter_2.pth', '--resume', '--overwrite')
    assert (work / 'iter_2.pth').read_bytes() == before

    train(genforce, example_config, work, tiny, 'train_cfg.total_kimg=0.004', 'randomness.seed=5',
          extra=['--overwrite'], check=True)
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_1.pth']


@pytest.mark.slow
def test_resume_follows_last_checkpoint_not_a_stale_file(genforce, example_config, tmp_path,
                                                         tiny):
    work = tmp_path / 'w'
    train(genforce, example_config, work, tiny, 'train_cfg.total_kimg=0.008', check=True)
    # A stale, valid checkpoint with a larger number from some other run, and a stray name.
    shutil.copy(work / 'iter_2.pth', work / 'iter_20.pth')
    (work / 'iter_best.pth').write_bytes(b'not mine')
    proc = train(genforce, example_config, work, tiny, 'train_cfg.total_kimg=0.016',
                 extra=['--resume'], check=True)
    assert 'resumed epoch: 0, iter: 2' in proc.stdout + proc.stderr
    assert (work / 'iter_4.pth').is_file()


# --------------------------------------------------------------------------- built-in data

@pytest.mark.slow
def test_builtin_dataset_needs_no_setup(genforce, example_config, tmp_path, tiny):
    cache = tmp_path / 'cache'
    proc = train(genforce, example_config, tmp_path / 'w', tiny, 'train_cfg.total_kimg=0.004',
                 'train_dataloader.dataset.path=builtin:shapes32', check=True,
                 env={'GENFORCE_CACHE_DIR': str(cache)})
    assert (cache / 'builtin' / 'shapes32.zip').is_file()
    assert (tmp_path / 'w' / 'iter_1.pth').is_file(), proc.stdout[-2000:]
