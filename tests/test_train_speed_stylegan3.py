"""benchmarks/train_speed.py times StyleGAN3 T and R (tiny networks here; no timing asserted),
and the benchmark's R config is the T CIFAR-10 config changed as the official R changes T."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
R_CONFIG = REPO / 'benchmarks' / 'configs' / 'stylegan3r_cifar10.py'
TINY = ['model.generator.z_dim=16', 'model.generator.w_dim=16', 'model.generator.channel_base=128',
        'model.generator.channel_max=8', 'model.generator.num_layers=4',
        'model.generator.num_critical=1', 'model.generator.margin_size=2',
        'model.discriminator.channel_base=256', 'model.discriminator.channel_max=16']


@pytest.fixture(scope='module')
def train_speed():
    pytest.importorskip('genforce_stylegan3')
    spec = importlib.util.spec_from_file_location('train_speed',
                                                  REPO / 'benchmarks' / 'train_speed.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('size', ['cifar10', 'shapes32'])
def test_the_r_configs_are_the_t_ones_with_the_r_generator(train_speed, size):
    from genforce_core.config import load_config

    t = load_config(str(REPO / 'configs' / f'stylegan3t_{size}.py')).model
    r = load_config(str(REPO / 'benchmarks' / 'configs' / f'stylegan3r_{size}.py')).model
    assert (r.generator.conv_kernel, r.generator.use_radial_filters) == (1, True)
    assert (r.generator.channel_base, r.generator.channel_max) == (
        2 * t.generator.channel_base, 2 * t.generator.channel_max)
    assert (t.blur_init_sigma, r.blur_init_sigma) == (0, 10)
    assert r.discriminator == t.discriminator and r.generator.c_dim == t.generator.c_dim
    assert {k: v for k, v in r.generator.items() if k not in (
        'conv_kernel', 'use_radial_filters', 'channel_base', 'channel_max')} == {
        k: v for k, v in t.generator.items() if k not in (
            'conv_kernel', 'use_radial_filters', 'channel_base', 'channel_max')}


def test_train_speed_times_stylegan3_t_and_r(train_speed, tmp_path, capsys):
    out = tmp_path / 'speed.json'
    assert train_speed.main([str(REPO / 'configs' / 'stylegan3t_cifar10.py'), str(R_CONFIG),
                             '--resolution', '16', '--batch', '4', '--iters', '1', '--warmup',
                             '1', '--device', 'cpu', '--ops', 'ref', '--precision', 'fp32',
                             'fp16', '--cfg-options', *TINY, '--note', 'tiny networks',
                             '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'skipped stylegan3r_cifar10.py ops=ref fp16' in printed
    result = json.loads(out.read_text())
    assert result['note'] == 'tiny networks'
    assert [(r['config'], r['ops'], r['precision'], r['resolution'], r['batch'])
            for r in result['results']] == [('stylegan3t_cifar10.py', 'ref', 'fp32', 16, 4),
                                            ('stylegan3r_cifar10.py', 'ref', 'fp32', 16, 4)]
    assert all(r['img_per_s'] > 0 for r in result['results'])
