"""NVIDIA StyleGAN2-ADA / StyleGAN3-repo PyTorch pickles -> genforce checkpoints."""
from __future__ import annotations

import pytest
import torch

from genforce_converters.converters import get_converter
from genforce_converters.testing import flatten_synthesis_kwargs, write_stylegan2ada_pickle
from genforce_core import load_generator
from genforce_core.checkpoint import load_checkpoint
from genforce_core.errors import CheckpointError


def test_reproduces_official_outputs(tmp_path, official, check_official_outputs):
    marker = tmp_path / 'embedded_source_ran'
    src = write_stylegan2ada_pickle(
        tmp_path / 'network-snapshot-000100.pkl', official.G, official.D, official.g_kwargs,
        official.d_kwargs, marker=str(marker),
        training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset',
                                 path='~/datasets/afhqcat.zip', resolution=32, use_labels=False,
                                 xflip=True, max_size=5065), augment_p=0.125)
    converter = get_converter('stylegan2ada_pth')
    out = converter.convert_file(src, tmp_path / 'converted.pth')
    assert not marker.exists()

    G = load_generator(out)
    errs = check_official_outputs(official, G)
    model = converter.read(src).build_model()
    check_official_outputs(official, model.generator_ema, model.discriminator)
    assert max(errs.values()) < 1e-5, errs  # same arithmetic as the reference networks

    ckpt = load_checkpoint(out)
    meta = ckpt['meta']
    assert meta['format'] == 'stylegan2ada_pth' and meta['source'] == str(src)
    assert meta['dataset']['path'] == '~/datasets/afhqcat.zip'
    assert meta['augment_pipe']['p'] == pytest.approx(0.125)
    model = meta['cfg']['model']  # stored as plain data, never as source
    assert model['discriminator']['type'] == 'StyleGAN2Discriminator' and model['ema']
    assert any(k.startswith('discriminator.b32.') for k in ckpt['state_dict'])


def test_flattened_synthesis_kwargs_stylegan3_repo(tmp_path, official, check_official_outputs):
    """StyleGAN3's repo records ``Generator(..., mapping_kwargs, **synthesis_kwargs)``."""
    flat = flatten_synthesis_kwargs(official.g_kwargs)
    assert 'channel_base' in flat and 'synthesis_kwargs' not in flat
    src = write_stylegan2ada_pickle(tmp_path / 'sg3repo.pkl', official.G, None, flat, None)
    converted = get_converter('stylegan2ada_pth').read(src)
    assert converted.g_kwargs['synthesis_kwargs']['channel_base'] == 1024
    assert converted.discriminator is None
    check_official_outputs(official, load_generator(converted.save(tmp_path / 'o.pth')))


def test_conditional_model(tmp_path):
    from genforce_stylegan2.networks import Discriminator, Generator

    torch.manual_seed(1)
    g_kwargs = dict(z_dim=16, c_dim=3, w_dim=16, img_resolution=16, img_channels=3,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0))
    d_kwargs = dict(c_dim=3, img_resolution=16, img_channels=3, channel_base=256,
                    channel_max=32, num_fp16_res=0, mapping_kwargs=dict(num_layers=1))
    G, D = Generator(**g_kwargs).eval(), Discriminator(**d_kwargs).eval()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    src = write_stylegan2ada_pickle(tmp_path / 'cond.pkl', G, D, g_kwargs, d_kwargs)
    model = get_converter('stylegan2ada_pth').read(src).build_model()
    z, c = torch.randn(4, 16), torch.eye(3)[[0, 1, 2, 0]]
    with torch.no_grad():
        img = model.generator_ema(z, c, truncation_psi=0.5, noise_mode='const')
        assert (img - G(z, c, truncation_psi=0.5, noise_mode='const')).abs().max() < 1e-6
        assert (model.discriminator(img, c) - D(img, c)).abs().max() < 1e-6
    assert model.generator_ema.c_dim == 3 and model.discriminator.c_dim == 3


def test_wrong_inputs_are_named(tmp_path, official):
    import pickle

    path = tmp_path / 'other.pkl'
    path.write_bytes(pickle.dumps({'model': 1}))
    with pytest.raises(CheckpointError, match=r'other\.pkl.*expected the keys G, D, G_ema'):
        get_converter('stylegan2ada_pth').read(path)
    with pytest.raises(CheckpointError, match='unknown converter.*stylegan2ada_pth'):
        get_converter('nope')


def test_stylegan3_generator_is_rejected(tmp_path, official):
    src = write_stylegan2ada_pickle(tmp_path / 'sg3.pkl', official.G, None, official.g_kwargs,
                                    None)
    data = src.read_bytes().replace(b'class Generator: pass',
                                    b'class SynthesisInput:')
    src.write_bytes(data)
    with pytest.raises(CheckpointError, match='StyleGAN3'):
        get_converter('stylegan2ada_pth').read(src)
