"""rosinality's stylegan2-pytorch checkpoints and original GenForce (v1) checkpoints."""
from __future__ import annotations

import pytest
import torch

from genforce_converters.converters import get_converter
from genforce_converters.genforce_v1 import v1_to_tf_name
from genforce_converters.rosinality import generator_key
from genforce_converters.testing import official_to_v1_generator, write_rosinality_checkpoint
from genforce_core import load_generator
from genforce_core.checkpoint import load_checkpoint
from genforce_core.errors import CheckpointError


def test_rosinality_reproduces_official_outputs(tmp_path, official, check_official_outputs):
    src = write_rosinality_checkpoint(tmp_path / '550000.pt', official.G.state_dict(),
                                      official.D.state_dict())
    converter = get_converter('stylegan2_rosinality')
    check_official_outputs(official, load_generator(converter.convert_file(src, tmp_path / 'o')))
    model = converter.read(src).build_model()
    check_official_outputs(official, model.generator, model.discriminator)


def test_rosinality_names():
    assert generator_key('convs.0.conv.weight') == 'synthesis.b8.conv0.weight'
    assert generator_key('convs.3.activate.bias') == 'synthesis.b16.conv1.bias'
    assert generator_key('to_rgbs.1.conv.modulation.bias') == 'synthesis.b16.torgb.affine.bias'
    assert generator_key('noises.noise_3') == 'synthesis.b16.conv0.noise_const'
    assert generator_key('style.1.weight') == 'mapping.fc0.weight'


def test_rosinality_without_latent_avg_estimates_it(tmp_path, official):
    """His training checkpoints do not store the mean w: it is estimated from the mapping."""
    src = write_rosinality_checkpoint(tmp_path / 'train.pt', official.G.state_dict(), None,
                                      with_latent_avg=False)
    converted = get_converter('stylegan2_rosinality').read(src)
    assert converted.meta['w_avg_estimated'] and converted.discriminator is None
    G = converted.inference_generator()
    z = torch.randn(4096, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean_w = G.mapping(z, None if G.c_dim else torch.zeros(4096, 0))[:, 0].mean(0)
    assert (G.mapping.w_avg - mean_w).abs().max() < 0.1 * mean_w.abs().max()
    io = official.io
    with torch.no_grad():  # without truncation the images do not depend on w_avg
        assert (G(io['z'], io['c'], noise_mode='const') - io['img']).abs().max() < 1e-4


def test_genforce_v1_stylegan2(tmp_path, official, check_official_outputs):
    v1 = official_to_v1_generator(official.G.state_dict())
    assert v1['synthesis.early_layer.const'].shape == (1, 64, 4, 4)
    assert v1['synthesis.layer1.weight'].shape == (64, 64, 3, 3)
    assert v1_to_tf_name('synthesis.layer1.weight') == ('synthesis/8x8/Conv0_up/weight', 'conv')
    assert v1_to_tf_name('synthesis.output3.style.bias') == ('synthesis/32x32/ToRGB/mod_bias',
                                                             'id')
    path = tmp_path / 'checkpoint_iter100000.pth'
    torch.save(dict(models=dict(generator=v1, generator_smooth=v1,
                                discriminator={'some.v1.key': torch.zeros(1)}),
                    running_metadata=dict(iter=100000, seen_img=3200000),
                    optimizers={}, learning_rates={}), path)
    converter = get_converter('genforce_v1')
    converted = converter.read(path)
    assert converted.meta['discriminator_dropped'] and converted.discriminator is None
    assert converted.meta['running_metadata']['iter'] == 100000
    out = converter.convert_file(path, tmp_path / 'out.pth')
    check_official_outputs(official, load_generator(out))
    assert {k.split('.')[0] for k in load_checkpoint(out)['state_dict']} >= {
        'generator', 'generator_ema'}


def test_genforce_v1_with_official_names_and_errors(tmp_path, official, check_official_outputs):
    path = tmp_path / 'v1_official_names.pth'
    torch.save(dict(models=dict(generator_smooth=official.G.state_dict(),
                                discriminator=official.D.state_dict())), path)
    model = get_converter('genforce_v1').read(path).build_model()
    check_official_outputs(official, model.generator, model.discriminator)
    bad = tmp_path / 'pggan_v1.pth'
    torch.save(dict(models=dict(generator_smooth={'layer0.weight': torch.zeros(1)})), bad)
    with pytest.raises(CheckpointError, match='not a StyleGAN2 generator'):
        get_converter('genforce_v1').read(bad)
