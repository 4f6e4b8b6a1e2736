"""Configs belong to their plugins: found by name and as PACKAGE::PATH, inherited across
packages, one copy only (configs/ in the clone links to the packaged files), and the core's GAN
base refused no more than it must."""
from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from genforce_core import config as config_module
from genforce_core.cli.main import main
from genforce_core.config import load_config, packaged_configs, resolve_config
from genforce_core.errors import ConfigError
from genforce_core.validate import validate_config

REPO = Path(__file__).resolve().parents[1]
# The config folder of every first-party package, and the plugin that owns it.
PACKAGE_DIRS = {
    'genforce_core': REPO / 'genforce_core' / 'configs',
    **{f'genforce_{short}': REPO / 'plugins' / short / f'genforce_{short}' / 'configs'
       for short in ('inversion', 'pggan', 'stylegan', 'stylegan2', 'stylegan2ada',
                     'stylegan3')},
}
REPO_CONFIGS = sorted((REPO / 'configs').rglob('*.py'))
GAN_BASE = "genforce_core::_base_/gan.py"


def _plain(cfg) -> dict:
    return json.loads(json.dumps(cfg.to_dict(), default=repr, sort_keys=True))


# -- one copy --------------------------------------------------------------------------------

def test_repo_configs_are_links_into_the_packages():
    assert len(REPO_CONFIGS) >= 20
    packaged = [d.resolve() for d in PACKAGE_DIRS.values()]
    for path in REPO_CONFIGS:
        assert path.is_symlink(), f'{path.relative_to(REPO)} is a copy, not a link'
        target = path.resolve()
        assert target.is_file(), f'{path.relative_to(REPO)} links to nothing'
        assert any(target.is_relative_to(d) for d in packaged), target
        assert not os.path.isabs(os.readlink(path)), 'links must be relative to work in clones'


@pytest.mark.parametrize('path', [p for p in REPO_CONFIGS if '_base_' not in p.parts],
                         ids=lambda p: p.stem)
def test_repo_path_name_and_reference_load_the_same_config(path):
    by_path = _plain(load_config(str(path)))
    [entry] = [c for c in packaged_configs() if c.name == path.stem]
    assert entry.path.resolve() == path.resolve()
    assert _plain(load_config(path.stem)) == by_path
    assert _plain(load_config(entry.reference)) == by_path
    assert _plain(load_config(entry.reference[:-3])) == by_path  # '.py' may be left out


def test_every_packaged_config_is_listed_once_with_its_plugin(capsys):
    assert main(['configs', '--json']) == 0
    listed = json.loads(capsys.readouterr().out)
    names = [c['name'] for c in listed]
    assert len(names) == len(set(names))
    expected = {p.stem for p in REPO_CONFIGS if '_base_' not in p.parts}
    assert expected <= set(names)
    by_name = {c['name']: c for c in listed}
    assert by_name['stylegan2ada_cifar10']['plugin'] == 'stylegan2ada'
    assert by_name['stylegan2ada_cifar10']['reference'] == \
        'genforce_stylegan2ada::stylegan2ada_cifar10.py'
    assert by_name['demo']['plugin'] == 'stylegan2'
    assert by_name['pggan_celebahq1024']['plugin'] == 'pggan'
    assert by_name['stylegan2_ffhq256_encoder']['plugin'] == 'inversion'
    assert not any('_base_' in c['path'] for c in listed), 'bases are parts, not configs'
    for entry in listed:
        assert Path(entry['path']).is_file()
    assert main(['configs']) == 0
    text = capsys.readouterr().out
    assert 'stylegan2ada_cifar10' in text and 'stylegan2ada' in text


# -- names and references ------------------------------------------------------------------

@pytest.mark.parametrize('reference, message', [
    ('stylegan2ada_cifar1', "Did you mean 'stylegan2ada_cifar10'?"),
    ('configs/no_such_config.py', 'config file configs/no_such_config.py does not exist'),
    ('other/stylegan2_ffhq.py', "the packaged config 'stylegan2_ffhq' has a similar name"),
    ('genforce_stylegan2ada::nope.py', 'package genforce_stylegan2ada has no config nope.py'),
    ('genforce_stylegan2adaa::x.py', "Did you mean 'genforce_stylegan2ada'?"),
    ('genforce_core::../config.py', 'is not PACKAGE::PATH'),
    ('genforce_core::/etc/passwd', 'is not PACKAGE::PATH'),
    ('os.path::x.py', 'is not PACKAGE::PATH'),
    ('genforce_stylegan2::', 'is not PACKAGE::PATH'),
])
def test_bad_references_are_one_line_errors(reference, message):
    with pytest.raises(ConfigError, match='^[^\n]*$') as info:
        resolve_config(reference)
    assert message in str(info.value)


def test_a_name_two_plugins_ship_must_be_qualified(tmp_path, monkeypatch):
    folders = []
    for package in ('pkg_a', 'pkg_b'):
        (tmp_path / package).mkdir()
        (tmp_path / package / 'same.py').write_text('x = 1\n')
        folders.append(config_module._ConfigFolder(package, package, tmp_path / package))
    monkeypatch.setattr(config_module, 'config_dirs', lambda: folders)
    with pytest.raises(ConfigError, match='pkg_a::same.py, pkg_b::same.py'):
        resolve_config('same')
    assert resolve_config('pkg_b::same.py') == str(tmp_path / 'pkg_b' / 'same.py')


def test_a_failing_hook_leaves_the_other_plugins_configs(monkeypatch):
    from genforce_core.plugins import PluginWarning, load_plugins

    manager = load_plugins()

    def broken():
        raise RuntimeError('boom')

    info = manager.plugins['pggan']
    monkeypatch.setattr(info, 'error', info.error)  # the report sets it: restore it after
    impl = next(i for i in manager.pm.hook.genforce_config_dirs.get_hookimpls()
                if i.plugin_name == 'pggan')
    monkeypatch.setattr(impl, 'function', broken)
    monkeypatch.delenv('GENFORCE_STRICT_PLUGINS', raising=False)
    with pytest.warns(PluginWarning, match='boom'):
        names = {c.name for c in packaged_configs()}
    assert 'stylegan2_ffhq' in names and 'pggan_celebahq1024' not in names



def test_a_hook_returning_one_folder_instead_of_a_list(monkeypatch):
    from genforce_core.plugins import load_plugins

    impl = next(i for i in load_plugins().pm.hook.genforce_config_dirs.get_hookimpls()
                if i.plugin_name == 'pggan')
    monkeypatch.setattr(impl, 'function', lambda: str(PACKAGE_DIRS['genforce_pggan']))
    pggan = [c.name for c in packaged_configs() if c.plugin == 'pggan']
    assert sorted(pggan) == ['pggan_celebahq1024', 'pggan_lsun_bedroom256']

# -- inheritance across packages -----------------------------------------------------------

def test_user_config_inherits_packaged_configs_by_reference(tmp_path):
    config = tmp_path / 'mine.py'
    config.write_text(textwrap.dedent('''
        _base_ = ['genforce_stylegan2ada::stylegan2ada_cifar10.py']
        train_dataloader = dict(batch_size=2)
    '''))
    cfg = load_config(str(config))
    assert cfg.model.type == 'StyleGAN2ADA' and cfg.model.generator.c_dim == 10
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.sampler.type == 'ResumableInfiniteSampler'  # the core base


def test_a_bad_base_reference_names_the_file_that_has_it(tmp_path):
    config = tmp_path / 'mine.py'
    config.write_text("_base_ = ['genforce_stylegan2::no_such.py']\n")
    with pytest.raises(ConfigError, match=f'^{config}: _base_ .*has no config no_such.py'):
        load_config(str(config))


def test_a_config_reached_by_a_link_inherits_its_own_siblings(tmp_path):
    # configs/stylegan2ada_afhqdog512.py inherits 'stylegan2ada_afhqcat512.py' next to the real
    # file; a link elsewhere must not look for it next to the link.
    link = tmp_path / 'dog.py'
    link.symlink_to(PACKAGE_DIRS['genforce_stylegan2ada'] / 'stylegan2ada_afhqdog512.py')
    cfg = load_config(str(link))
    assert cfg.model.type == 'StyleGAN2ADA'
    assert cfg.train_dataloader.dataset.path == 'data/afhq/afhqdog512.zip'


def test_work_dir_is_named_after_the_config_file(tmp_path, monkeypatch):
    import argparse

    from genforce_core.cli.common import prepare_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')
    args = argparse.Namespace(config='genforce_stylegan2ada::stylegan2ada_cifar10.py',
                              cfg_options=None, launcher='none', work_dir=None, local_rank=0,
                              command='test')
    assert prepare_config(args).work_dir == os.path.join('work_dirs', 'stylegan2ada_cifar10')


# -- the core's GAN base and what validation refuses ----------------------------------------

def _gan_config(tmp_path: Path, body: str) -> dict:
    """The GAN base with a StyleGAN2 model and the built-in data, plus ``body``."""
    config = tmp_path / 'third_party.py'
    config.write_text(f"_base_ = ['{GAN_BASE}']\n" + textwrap.dedent('''
        model = dict(type='StyleGAN2',
                     generator=dict(type='StyleGAN2Generator', z_dim=8, c_dim=0, w_dim=8,
                                    img_resolution=8, img_channels=3),
                     discriminator=dict(type='StyleGAN2Discriminator', c_dim=0,
                                        img_resolution=8, img_channels=3))
        train_dataloader = dict(dataset=dict(path='builtin:shapes32', resolution=8))
    ''') + textwrap.dedent(body))
    return load_config(str(config)).to_dict()


def test_a_model_and_a_dataset_on_the_gan_base_is_a_complete_config(tmp_path):
    cfg = _gan_config(tmp_path, '')
    validate_config(cfg, 'third_party.py', train=True)
    assert cfg['train_dataloader']['sampler'] == dict(type='ResumableInfiniteSampler',
                                                      shuffle=True)
    assert cfg['train_dataloader']['collate_fn'] == dict(type='default_collate')
    assert cfg['optim_wrapper']['constructor'] == 'GANOptimWrapperConstructor'
    assert set(cfg['optim_wrapper']) == {'constructor', 'generator', 'discriminator'}
    assert cfg['train_cfg']['type'] == 'GANTrainLoop'
    assert cfg['log_processor']['by_epoch'] is False
    assert cfg['default_hooks']['checkpoint'] is None
    hooks = {h['type'] for h in cfg['custom_hooks']}
    assert {'SampleGridHook', 'GANProgressHook', 'KimgCheckpointHook'} <= hooks


@pytest.mark.parametrize('body, message', [
    ("train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', "
     'shuffle=False))', 'does not shuffle'),
    ("train_dataloader = dict(sampler=dict(_delete_=True, type='SequentialSampler'))",
     'does not shuffle'),
    ('train_dataloader = dict(sampler=dict(shuffle=False))', 'does not shuffle'),
    ('train_dataloader = dict(sampler=None)', 'train_dataloader.sampler is missing'),
    ('', None),  # collate_fn removed below: a config cannot delete an inherited key
    ("train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=10)",
     'epoch-based loop'),
    ('train_cfg = dict(_delete_=True, by_epoch=True, max_epochs=10)', 'epoch-based loop'),
    ('log_processor = dict(by_epoch=True)', 'log_processor logs by epoch'),
    ("default_hooks = dict(checkpoint=dict(_delete_=True, type='CheckpointHook', interval=1))",
     'epoch-based CheckpointHook'),
    ('train_dataloader = dict(num_workers=0)', 'persistent_workers=True needs num_workers'),
])
def test_training_that_would_go_silently_wrong_is_refused(tmp_path, body, message):
    cfg = _gan_config(tmp_path, body)
    if message is None:
        del cfg['train_dataloader']['collate_fn']
        message = 'collate_fn is missing'
    with pytest.raises(ConfigError, match='^[^\n]*$') as info:
        validate_config(cfg, 'third_party.py', train=True)
    assert message in str(info.value)
    assert GAN_BASE in str(info.value) or 'num_workers' in message
    validate_config(cfg, 'third_party.py', train=False)  # evaluation does not train


def test_without_log_or_checkpoint_settings_mmengine_would_count_epochs(tmp_path):
    cfg = _gan_config(tmp_path, '')
    for key, message in (('log_processor', 'logs by epoch'),
                         ('default_hooks', 'epoch-based CheckpointHook')):
        broken = {k: v for k, v in cfg.items() if k != key}
        with pytest.raises(ConfigError, match=message):
            validate_config(broken, 'third_party.py', train=True)


def test_every_packaged_config_passes_the_training_checks():
    for entry in packaged_configs():
        cfg = load_config(entry.name, {'train_dataloader.dataset.path': 'builtin:shapes32'})
        validate_config(cfg, entry.name, train=True)


def test_the_example_plugin_config_is_model_and_dataset_only():
    text = (REPO / 'examples' / 'dcgan_plugin' / 'genforce_example_dcgan' / 'configs' /
            'dcgan_shapes32.py').read_text()
    code = '\n'.join(line.split('#')[0] for line in text.splitlines())
    assert f"_base_ = ['{GAN_BASE}']" in code
    for boilerplate in ('sampler', 'collate_fn', 'constructor', 'GANTrainLoop', 'custom_hooks',
                        'log_processor', 'runner_type', 'default_hooks'):
        assert boilerplate not in code, boilerplate


@pytest.mark.slow
def test_launch_script_resolves_a_name_in_every_process(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, 'PYTHON': sys.executable, 'PORT': '29517'}
    proc = subprocess.run(['bash', str(REPO / 'tools' / 'dist_train.sh'), 'stylegan2ada_cifar1',
                           '1'], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "Did you mean 'stylegan2ada_cifar10'?" in proc.stderr, proc.stderr[-2000:]
