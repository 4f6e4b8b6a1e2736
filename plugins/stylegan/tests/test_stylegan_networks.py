"""StyleGAN networks: official variable names and shapes, fade-in continuity, the fused
resampling convolutions, truncation, noise, call signature."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genforce_stylegan.layers import Conv, minibatch_stddev
from genforce_stylegan.networks import StyleGANDiscriminator, StyleGANGenerator
from genforce_stylegan.weights import load_official, official_shapes, tf_name, to_tf, torch_key

TINY_G = dict(z_dim=16, w_dim=16, img_resolution=32,
              mapping_kwargs=dict(num_layers=2, layer_features=16),
              synthesis_kwargs=dict(fmap_base=128, fmap_max=16))
TINY_D = dict(img_resolution=32, fmap_base=128, fmap_max=16, mbstd_group_size=2)


def tiny_pair(seed: int = 0):
    torch.manual_seed(seed)
    G, D = StyleGANGenerator(**TINY_G), StyleGANDiscriminator(**TINY_D)
    for net in (G, D):  # non-trivial biases and noise strengths
        for name, p in net.named_parameters():
            if name.endswith('bias') or 'Noise' in name:
                p.data.normal_(0, 0.5)
    return G, D


def test_official_variable_names_and_shapes_at_1024():
    g = official_shapes(StyleGANGenerator())
    d = official_shapes(StyleGANDiscriminator())
    expected_g = {
        'dlatent_avg': (512,), 'G_mapping/Dense0/weight': (512, 512),
        'G_mapping/Dense0/bias': (512,), 'G_mapping/Dense7/weight': (512, 512),
        'G_synthesis/lod': (), 'G_synthesis/noise0': (1, 1, 4, 4),
        'G_synthesis/noise17': (1, 1, 1024, 1024),
        'G_synthesis/4x4/Const/const': (1, 512, 4, 4), 'G_synthesis/4x4/Const/bias': (512,),
        'G_synthesis/4x4/Const/Noise/weight': (512,),
        'G_synthesis/4x4/Const/StyleMod/weight': (512, 1024),
        'G_synthesis/4x4/Const/StyleMod/bias': (1024,),
        'G_synthesis/4x4/Conv/weight': (3, 3, 512, 512),
        'G_synthesis/8x8/Conv0_up/weight': (3, 3, 512, 512),
        'G_synthesis/128x128/Conv0_up/weight': (3, 3, 256, 128),
        'G_synthesis/1024x1024/Conv1/StyleMod/weight': (512, 32),
        'G_synthesis/ToRGB_lod0/weight': (1, 1, 16, 3),
        'G_synthesis/ToRGB_lod8/weight': (1, 1, 512, 3), 'G_synthesis/ToRGB_lod8/bias': (3,)}
    expected_d = {
        'lod': (), 'FromRGB_lod0/weight': (1, 1, 3, 16), 'FromRGB_lod8/weight': (1, 1, 3, 512),
        '1024x1024/Conv0/weight': (3, 3, 16, 16), '1024x1024/Conv1_down/weight': (3, 3, 16, 32),
        '4x4/Conv/weight': (3, 3, 513, 512), '4x4/Dense0/weight': (8192, 512),
        '4x4/Dense1/weight': (512, 1), '4x4/Dense1/bias': (1,)}
    assert {k: g[k] for k in expected_g} == expected_g
    assert {k: d[k] for k in expected_d} == expected_d
    # Mapping 8 x 2 + dlatent_avg; synthesis lod + 18 noises + 18 layers x 5 + 9 ToRGB x 2.
    assert len(g) == 17 + 1 + 18 + 90 + 18
    assert len(d) == 1 + 9 * 2 + 8 * 4 + 6
    # Parameter counts of the paper (26.2M generator, 23.1M discriminator).
    assert round(sum(p.numel() for p in StyleGANGenerator().parameters()) / 1e6, 1) == 26.2
    assert round(sum(p.numel() for p in StyleGANDiscriminator().parameters()) / 1e6, 1) == 23.1


def test_name_mapping_round_trips_and_loads():
    G, D = tiny_pair()
    for net in (G, D):
        variables = {tf_name(k): to_tf(k, v) for k, v in net.state_dict().items()}
        assert all(torch_key(tf_name(k)) == k for k in net.state_dict())
        other = type(net)(**(TINY_G if net is G else TINY_D))
        load_official(other, variables)
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                      other.state_dict().values()))
    variables = {tf_name(k): to_tf(k, v) for k, v in G.state_dict().items()}
    del variables['dlatent_avg']
    with pytest.raises(KeyError, match=r"1 missing \['dlatent_avg'\]"):
        load_official(G, variables)


def test_fused_resampling_equals_the_separate_ops():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    up_fused, up = Conv(4, 5, resample='up', fused=True), Conv(4, 5, resample='up')
    up.weight.data = up_fused.weight.data.flip([2, 3])  # the transposed conv flips the kernel
    assert torch.allclose(up_fused(x), up(x), atol=1e-5)
    assert up(x).shape == (2, 5, 16, 16)
    down_fused, down = Conv(4, 5, resample='down', fused=True), Conv(4, 5, resample='down')
    down.weight.data = down_fused.weight.data.clone()
    assert torch.allclose(down_fused(x), down(x), atol=1e-5)
    assert down(x).shape == (2, 5, 4, 4)


def test_generator_fade_in_is_continuous():
    G, _ = tiny_pair()
    z = torch.randn(3, 16)
    ws = G.mapping(z, None)
    S = G.synthesis
    with torch.no_grad():
        for level in (1, 2):
            at = S(ws, noise_mode='const', lod=level)
            small = F.avg_pool2d(at, 2 ** level)
            assert torch.allclose(F.interpolate(small, scale_factor=2 ** level), at)
            assert torch.allclose(S(ws, noise_mode='const', lod=level - 1e-6), at, atol=1e-4)
            assert torch.allclose(S(ws, noise_mode='const', lod=level - 0.25),
                                  torch.lerp(S(ws, noise_mode='const', lod=level - 1), at,
                                             0.75), atol=1e-5)
        S.lod.fill_(1.5)
        assert torch.equal(S(ws, noise_mode='const'), S(ws, noise_mode='const', lod=1.5))


def test_discriminator_fade_in_is_continuous():
    _, D = tiny_pair()
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        for level in (1, 2):
            assert torch.allclose(D(img, lod=level - 1e-6), D(img, lod=level), atol=1e-4)
            assert torch.allclose(D(img, lod=level + 1e-6), D(img, lod=level), atol=1e-4)
        pooled = F.interpolate(F.avg_pool2d(img, 4), scale_factor=4)
        assert torch.allclose(D(img, lod=2), D(pooled, lod=2), atol=1e-5)


def test_truncation_noise_modes_and_w_avg():
    G, _ = tiny_pair()
    G.eval()
    z = torch.randn(4, 16)
    G.mapping.dlatent_avg.normal_()
    ws = G.mapping(z, None)
    assert ws.shape == (4, G.num_ws, 16) == (4, 8, 16)
    cut = G.mapping(z, None, truncation_psi=0.5)  # the default cutoff is 8 = all 8 layers here
    assert torch.allclose(cut, G.mapping.dlatent_avg.lerp(ws, 0.5))
    cut3 = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(cut3[:, :3], cut[:, :3]) and torch.equal(cut3[:, 3:], ws[:, 3:])
    assert torch.equal(G(z, None, noise_mode='const'), G(z, None, noise_mode='const'))
    assert not torch.equal(G(z, None, noise_mode='random'), G(z, None, noise_mode='random'))
    assert torch.equal(G(z, None, noise_mode='none'), G(z, None, noise_mode='none'))
    with pytest.raises(ValueError, match='noise_mode'):
        G(z, None, noise_mode='fixed')
    before = G.mapping.dlatent_avg.clone()
    G.train()
    w = G.mapping(z, None)[:, 0]
    assert torch.allclose(G.mapping.dlatent_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)
    G.mapping(z, None, skip_w_avg_update=True)
    assert torch.allclose(G.mapping.dlatent_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)


def test_conditional_networks_and_minibatch_stddev():
    G = StyleGANGenerator(**dict(TINY_G, c_dim=3))
    D = StyleGANDiscriminator(**dict(TINY_D, c_dim=3))
    assert official_shapes(G)['G_mapping/LabelConcat/weight'] == (3, 16)
    c = torch.eye(3)[[0, 1]]
    img = G(torch.randn(2, 16), c)
    assert img.shape == (2, 3, 32, 32) and D(img, c).shape == (2, 1)
    assert official_shapes(D)['4x4/Dense1/weight'] == (16, 3)
    with pytest.raises(ValueError, match='labels'):
        D(img, None)
    x = torch.randn(4, 6, 2, 2)
    y = minibatch_stddev(x, 2, num_features=2)
    assert y.shape == (4, 8, 2, 2)
    expected = torch.stack([x[1], x[3]]).std(dim=0, unbiased=False)[3:].mean()
    assert torch.allclose(y[1, 7], expected.expand(2, 2), atol=1e-4)
