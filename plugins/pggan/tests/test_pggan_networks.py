"""PGGAN networks: official variable names and shapes, fade-in continuity, layers, loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genforce_core.plugins import load_plugins
from genforce_pggan.layers import minibatch_stddev, pixel_norm
from genforce_pggan.losses import WGANGPLoss
from genforce_pggan.networks import PGGANDiscriminator, PGGANGenerator
from genforce_pggan.weights import from_tf, load_official, official_shapes, to_tf

TINY = dict(img_resolution=32, fmap_base=256, fmap_max=32)


def tiny_pair(seed: int = 0):
    torch.manual_seed(seed)
    G = PGGANGenerator(z_dim=32, **TINY)
    D = PGGANDiscriminator(mbstd_group_size=2, **TINY)
    for net in (G, D):  # random biases, so that the tests also check them
        for name, p in net.named_parameters():
            if name.endswith('bias'):
                p.data.normal_()
    return G, D


def test_official_variable_names_and_shapes_at_1024():
    # celebahq 1024 G_paper / D_paper: fmap_base 8192, fmap_max 512, latent 512.
    g = official_shapes(PGGANGenerator())
    d = official_shapes(PGGANDiscriminator())
    expected_g = {
        'lod': (), '4x4/Dense/weight': (512, 8192), '4x4/Dense/bias': (512,),
        '4x4/Conv/weight': (3, 3, 512, 512), '4x4/Conv/bias': (512,),
        '8x8/Conv0/weight': (3, 3, 512, 512), '64x64/Conv0/weight': (3, 3, 512, 256),
        '1024x1024/Conv0/weight': (3, 3, 32, 16), '1024x1024/Conv1/weight': (3, 3, 16, 16),
        'ToRGB_lod0/weight': (1, 1, 16, 3), 'ToRGB_lod0/bias': (3,),
        'ToRGB_lod8/weight': (1, 1, 512, 3)}
    expected_d = {
        'lod': (), 'FromRGB_lod0/weight': (1, 1, 3, 16), 'FromRGB_lod8/weight': (1, 1, 3, 512),
        '1024x1024/Conv0/weight': (3, 3, 16, 16), '1024x1024/Conv1/weight': (3, 3, 16, 32),
        '8x8/Conv1/weight': (3, 3, 512, 512), '4x4/Conv/weight': (3, 3, 513, 512),
        '4x4/Dense0/weight': (8192, 512), '4x4/Dense1/weight': (512, 1),
        '4x4/Dense1/bias': (1,)}
    assert {k: g[k] for k in expected_g} == expected_g
    assert {k: d[k] for k in expected_d} == expected_d
    # 9 ToRGB + 4x4 (Dense, Conv) + 8 blocks x 2 convs, weight and bias each, + lod.
    assert len(g) == 2 * (9 + 2 + 16) + 1 and len(d) == 2 * (9 + 16 + 3) + 1
    # Parameter counts of the paper's Table 2: 23.1M each.
    G, D = PGGANGenerator(), PGGANDiscriminator()
    assert round(sum(p.numel() for p in G.parameters()) / 1e6, 1) == 23.1
    assert round(sum(p.numel() for p in D.parameters()) / 1e6, 1) == 23.1


def test_official_layout_round_trip_and_load():
    G, _ = tiny_pair()
    variables = {k.replace('.', '/'): to_tf(k, v) for k, v in G.state_dict().items()}
    assert variables['8x8/Conv0/weight'].shape == (3, 3, 32, 32)
    other = PGGANGenerator(z_dim=32, **TINY)
    load_official(other, variables)
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(),
                                                  other.state_dict().values()))
    w = torch.randn(3, 3, 5, 7)
    assert torch.equal(to_tf('x.weight', from_tf('x.weight', w)), w)
    with pytest.raises(KeyError, match='missing'):
        load_official(other, {k: v for k, v in variables.items() if k != 'lod'})
    bad = dict(variables, **{'4x4/Conv/weight': torch.zeros(3, 3, 32, 31)})
    with pytest.raises(ValueError, match='4x4/Conv/weight'):
        load_official(other, bad)


def lod_plus_one(key: str) -> str:
    """``ToRGB_lod<i>`` of a network of half the resolution is ``ToRGB_lod<i+1>`` here."""
    if not key.startswith('ToRGB_lod'):
        return key
    lod, rest = key.removeprefix('ToRGB_lod').split('.', 1)
    return f'ToRGB_lod{int(lod) + 1}.{rest}'


def test_generator_fade_in_is_continuous_and_starts_at_the_upsampled_level_below():
    G, _ = tiny_pair()
    z = torch.randn(3, 32)
    with torch.no_grad():
        for level in (1, 2):  # 16x16 and 8x8 levels of a 32x32 network
            at = G(z, lod=level)
            # The output at an integer lod is an image of 2**(5 - level) pixels, upsampled.
            small = F.avg_pool2d(at, 2 ** level)
            assert torch.allclose(F.interpolate(small, scale_factor=2 ** level), at)
            # Alpha = 0 of the next level's fade-in is exactly this output; continuity.
            assert torch.allclose(G(z, lod=level - 1e-6), at, atol=1e-4)
            assert torch.allclose(G(z, lod=level - 0.5),
                                  torch.lerp(G(z, lod=level - 1), at, 0.5), atol=1e-5)
        # The 16x16 output equals a 16x16 generator with the same weights, upsampled.
        G16 = PGGANGenerator(z_dim=32, img_resolution=16, fmap_base=256, fmap_max=32)
        state = G.state_dict()
        G16.load_state_dict({k: state[lod_plus_one(k)] for k in G16.state_dict()})
        assert torch.allclose(G(z, lod=1), F.interpolate(G16(z, lod=0), scale_factor=2),
                              atol=1e-6)


def test_discriminator_fade_in_is_continuous():
    _, D = tiny_pair()
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        for level in (1, 2):
            assert torch.allclose(D(img, lod=level - 1e-6), D(img, lod=level), atol=1e-4)
            assert torch.allclose(D(img, lod=level + 1e-6), D(img, lod=level), atol=1e-4)
        # At lod 1 the discriminator only sees the 2x average-pooled image.
        pooled = F.interpolate(F.avg_pool2d(img, 2), scale_factor=2)
        assert torch.allclose(D(img, lod=1), D(pooled, lod=1), atol=1e-5)
        assert not torch.allclose(D(img, lod=0), D(pooled, lod=0), atol=1e-5)
        # The buffer is used when no lod is given.
        D.lod.fill_(1.5)
        assert torch.equal(D(img), D(img, lod=1.5))


def test_layers():
    x = torch.randn(4, 8, 3, 3) * 5
    assert torch.allclose(pixel_norm(x).square().mean(dim=1), torch.ones(4, 3, 3), atol=1e-4)
    y = minibatch_stddev(x, 2)
    assert y.shape == (4, 9, 3, 3)
    # Groups are samples (0, 2) and (1, 3).
    expected = torch.stack([x[0], x[2]]).std(dim=0, unbiased=False).mean()
    assert torch.allclose(y[0, 8], expected.expand(3, 3), atol=1e-4)
    assert torch.equal(y[0, 8], y[2, 8])
    with pytest.raises(ValueError, match='divisible'):
        minibatch_stddev(torch.randn(6, 2, 2, 2), 4)


def test_wgan_gp_loss_terms():
    load_plugins()
    loss = WGANGPLoss(gamma=10, target=1, drift=0.001)
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [-2.0]])
    d = loss.d_loss(real, fake)
    assert float(d['loss_d_wgan']) == pytest.approx(-3.0)
    assert float(d['loss_d_drift']) == pytest.approx(0.001 * 5)
    assert float(loss.g_loss(fake)['loss_g']) == pytest.approx(1.0)

    class Linear:  # D(x) = sum(w * x): the gradient norm is ||w|| everywhere
        w = torch.full((1, 3, 4, 4), 0.5)

        def discriminate(self, img, c):
            return (img * self.w).sum(dim=[1, 2, 3])[:, None]

    gp = loss.gradient_penalty(Linear(), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4),
                               torch.zeros(2, 0))
    norm = 0.5 * 48 ** 0.5
    assert float(gp['loss_gp']) == pytest.approx(10 * (norm - 1) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match='target'):
        WGANGPLoss(target=0)


def test_generator_call_signature():
    G, _ = tiny_pair()
    img = G(torch.randn(2, 32), None, truncation_psi=1, noise_mode='const')
    assert img.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match='truncation_psi'):
        G(torch.randn(2, 32), None, truncation_psi=0.7)
    Gc = PGGANGenerator(z_dim=8, c_dim=2, **TINY)
    assert Gc(torch.randn(2, 8), torch.eye(2)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match='labels'):
        Gc(torch.randn(2, 8), None)


def test_fused_scale_layers_match_the_separate_ones():
    torch.manual_seed(0)
    G = PGGANGenerator(z_dim=32, fused_scale=True, **TINY)
    D = PGGANDiscriminator(mbstd_group_size=2, fused_scale=True, **TINY)
    g, d = official_shapes(G), official_shapes(D)
    assert g['16x16/Conv0_up/weight'] == (3, 3, 32, 32) and '16x16/Conv0/weight' not in g
    assert d['16x16/Conv1_down/weight'] == (3, 3, 32, 32) and '16x16/Conv1/weight' not in d
    G_sep = PGGANGenerator(z_dim=32, **TINY)
    D_sep = PGGANDiscriminator(mbstd_group_size=2, **TINY)
    # Fused up-sampling = nearest up-sampling + conv with the spatially flipped kernel, so the
    # generators agree. Fused down-sampling = conv + average pooling (the official D_paper
    # applies the activation before the pooling in the separate form, so only the layers agree).
    G_sep.load_state_dict({k.replace('Conv0_up', 'Conv0'):
                           v.flip([2, 3]) if 'Conv0_up.weight' in k else v
                           for k, v in G.state_dict().items()})
    D_sep.load_state_dict({k.replace('Conv1_down', 'Conv1'): v
                           for k, v in D.state_dict().items()})
    z, x = torch.randn(4, 32), torch.randn(4, 32, 16, 16)
    with torch.no_grad():
        for lod in (0, 0.5, 2):
            assert torch.allclose(G(z, lod=lod), G_sep(z, lod=lod), atol=1e-5)
        fused = getattr(D, '16x16').Conv1_down(x)
        separate = F.avg_pool2d(getattr(D_sep, '16x16').Conv1(x), 2)
        assert fused.shape == (4, 32, 8, 8) and torch.allclose(fused, separate, atol=1e-5)
        assert D(torch.randn(4, 3, 32, 32), lod=0.5).shape == (4, 1)
