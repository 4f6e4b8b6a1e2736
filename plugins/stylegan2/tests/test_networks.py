"""StyleGAN2 generator and discriminator: architectures, conditioning, fp16 fallback, noise,
truncation, state dicts, registration (small models, CPU)."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan2.networks import Discriminator, Generator, MappingNetwork
from genforce_stylegan2.networks.layers import set_cpu_channels_last
from genforce_stylegan2.networks.synthesis import modulated_conv2d

SMALL_G = dict(channel_base=256, channel_max=32, num_fp16_res=0)
SMALL_D = dict(channel_base=256, channel_max=32, num_fp16_res=0)


def make_g(res=16, c_dim=0, arch='skip', **synthesis):
    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(SMALL_G, architecture=arch, **synthesis))
    # Non-zero noise strengths so that the noise modes differ.
    for name, p in G.named_parameters():
        if name.endswith('noise_strength'):
            p.data.fill_(0.3)
    return G


def make_d(res=16, c_dim=0, arch='resnet', **kwargs):
    torch.manual_seed(1)
    return Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=arch,
                         **dict(SMALL_D, **kwargs))


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('res', [16, 32])
def test_generator_architectures(arch, res):
    G = make_g(res, arch=arch).eval()
    assert G.num_ws == G.synthesis.num_ws == 2 * (res.bit_length() - 1) - 2
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (16, 0, 16, res, 3)
    z = torch.randn(3, 16)
    ws = G.mapping(z, None if G.c_dim else torch.zeros(3, 0))
    assert ws.shape == (3, G.num_ws, 16)
    img = G(z, None, noise_mode='const')
    assert img.shape == (3, 3, res, res) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    has_torgb = [hasattr(getattr(G.synthesis, f'b{r}'), 'torgb')
                 for r in G.synthesis.block_resolutions]
    assert all(has_torgb) if arch == 'skip' else has_torgb == [False] * (len(has_torgb) - 1) + [
        True]
    assert hasattr(G.synthesis.b8, 'skip') == (arch == 'resnet')


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
@pytest.mark.parametrize('res', [16, 32])
def test_discriminator_architectures(arch, res):
    D = make_d(res, arch=arch)
    logits = D(torch.randn(4, 3, res, res), None)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters())
    assert hasattr(D.b4, 'fromrgb') == (arch == 'skip')


def test_training_step_gradients_reach_every_generator_parameter():
    G = make_g(16, arch='skip').train()
    img = G(torch.randn(2, 16), None)
    img.square().mean().backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None]
    assert not missing


def test_conditional_models():
    G = make_g(16, c_dim=3).eval()
    D = make_d(16, c_dim=3)
    assert hasattr(G.mapping, 'embed') and hasattr(D, 'mapping')
    assert D.cmap_dim == D.b4.out.out_features == 32
    z = torch.randn(4, 16).repeat(2, 1)
    c = torch.eye(3)[[0, 1, 2, 0, 1, 1, 2, 0]]
    img = G(z, c, noise_mode='const')
    assert img.shape == (8, 3, 16, 16)
    assert not torch.allclose(img[:4], img[4:])  # same z, other labels
    logits = D(img, c)
    assert logits.shape == (8, 1)
    with pytest.raises(ValueError, match='c must have shape'):
        G(torch.randn(2, 16), torch.zeros(2, 5))


def test_fp16_layers_with_clamp_run_in_float32_on_cpu():
    G = make_g(32, num_fp16_res=2, conv_clamp=256).eval()
    assert G.synthesis.b32.use_fp16 and G.synthesis.b16.use_fp16
    assert not G.synthesis.b8.use_fp16
    D = make_d(32, num_fp16_res=2, conv_clamp=256)
    assert D.b32.use_fp16 and not D.b8.use_fp16
    z = torch.randn(2, 16)
    img = G(z, None, noise_mode='const')
    assert img.dtype == torch.float32
    torch.testing.assert_close(img, G(z, None, noise_mode='const', force_fp32=True))
    assert D(img, None).dtype == torch.float32


def test_conv_clamp_limits_activations():
    G = make_g(16, conv_clamp=0.01).eval()
    img = G(torch.randn(2, 16), None, noise_mode='const')
    # Each ToRGB output is clamped to 0.01; upsampling the running sum keeps it bounded.
    assert img.abs().max() <= 0.01 * len(G.synthesis.block_resolutions) + 1e-6


def test_float16_modulated_conv_matches_float32():
    torch.manual_seed(2)
    x = torch.randn(2, 8, 8, 8)
    weight = torch.randn(4, 8, 3, 3)
    styles = torch.randn(2, 8) * 3
    want = modulated_conv2d(x, weight, styles, padding=1)
    try:
        got = modulated_conv2d(x.half(), weight.half(), styles.half(), padding=1)
    except RuntimeError as exc:  # CPU builds without half convolutions
        pytest.skip(f'float16 convolution unavailable on this CPU build: {exc}')
    torch.testing.assert_close(got.float(), want, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
def test_fused_and_unfused_modconv_agree(arch):
    G = make_g(16, arch=arch)
    ws = G.mapping(torch.randn(3, 16), None, update_emas=False)
    fused = G.synthesis(ws, noise_mode='const', fused_modconv=True)
    for mode in (False, 'inference_only', 'auto'):
        torch.testing.assert_close(G.synthesis(ws, noise_mode='const', fused_modconv=mode),
                                   fused, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
def test_cpu_channels_last_changes_only_the_layout(arch):
    # On the CPU the blocks run channels-last by default (faster there); outputs, parameter
    # gradients and the R1 double backward must match the NCHW layout.
    G, D = make_g(16, arch=arch).train(), make_d(16, arch=arch)
    assert all(b.cpu_channels_last for b in [*G.synthesis.children(), *D.children()]
               if hasattr(b, 'cpu_channels_last'))
    z, real = torch.randn(4, 16), torch.randn(4, 3, 16, 16)
    results = []
    for on in (True, False):
        set_cpu_channels_last(G, on)
        set_cpu_channels_last(D, on)
        G.zero_grad()
        D.zero_grad()
        ws = G.mapping(z, None)
        D(G.synthesis(ws, noise_mode='const'), None).sum().backward()
        x = real.detach().requires_grad_(True)
        r1, = torch.autograd.grad(D(x, None).sum(), [x], create_graph=True)
        r1.square().sum().backward()
        grads = [p.grad.clone() for p in (*G.parameters(), *D.parameters())]
        results.append((G.synthesis(ws, noise_mode='const'), r1, grads))
    (img_cl, r1_cl, grads_cl), (img, r1, grads) = results
    torch.testing.assert_close(img_cl, img, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(r1_cl, r1, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads_cl, grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_noise_modes():
    G = make_g(16).eval()
    ws = G.mapping(torch.randn(2, 16), None)
    const = G.synthesis(ws, noise_mode='const')
    torch.testing.assert_close(G.synthesis(ws, noise_mode='const'), const)
    rand1 = G.synthesis(ws, noise_mode='random')
    rand2 = G.synthesis(ws, noise_mode='random')
    none = G.synthesis(ws, noise_mode='none')
    assert not torch.allclose(rand1, rand2)
    assert not torch.allclose(none, const)
    for name, p in G.named_parameters():
        if name.endswith('noise_strength'):
            p.data.zero_()
    torch.testing.assert_close(G.synthesis(ws, noise_mode='random'), none)
    with pytest.raises(ValueError, match='noise_mode'):
        G.synthesis(ws, noise_mode='loud')


def test_no_noise_layers():
    G = make_g(16, use_noise=False).eval()
    assert not any('noise' in k for k in G.state_dict())
    ws = G.mapping(torch.randn(2, 16), None)
    torch.testing.assert_close(G.synthesis(ws, noise_mode='random'),
                               G.synthesis(ws, noise_mode='none'))


def test_truncation_and_cutoff():
    G = make_g(16).eval()
    G.mapping.w_avg.normal_()
    z = torch.randn(3, 16)
    ws = G.mapping(z, None)
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0),
                               G.mapping.w_avg.expand_as(ws))
    cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], G.mapping.w_avg.lerp(ws[:, :2], 0.5))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.5),
                               G.mapping.w_avg.lerp(ws, 0.5))


def test_w_avg_tracking_rules():
    G = make_g(16)
    z = torch.randn(4, 16)
    G.eval()
    G(z, None)
    assert G.mapping.w_avg.abs().max() == 0  # eval: no update
    G.train()
    G(z, None, skip_w_avg_update=True)
    G(z, None, update_emas=False)
    assert G.mapping.w_avg.abs().max() == 0
    G(z, None)  # training mode, StyleGAN2-ADA rule
    with torch.no_grad():
        w = G.mapping.fc1(G.mapping.fc0(z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()))
    torch.testing.assert_close(G.mapping.w_avg, w.mean(0) * (1 - 0.995))
    G.eval()
    G(z, None, update_emas=True)  # explicit flag, any mode
    torch.testing.assert_close(G.mapping.w_avg, w.mean(0) * (1 - 0.995 ** 2))


def test_mapping_without_w_avg():
    mapping = MappingNetwork(z_dim=0, c_dim=3, w_dim=8, num_ws=None, w_avg_beta=None)
    out = mapping(None, torch.eye(3))
    assert out.shape == (3, 8) and not hasattr(mapping, 'w_avg')
    with pytest.raises(ValueError, match='w_avg'):
        mapping(None, torch.eye(3), truncation_psi=0.5)


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
def test_state_dict_round_trip(arch):
    G1, G2 = make_g(16, arch=arch).eval(), make_g(16, arch=arch).eval()
    for p in G2.parameters():
        p.data.normal_()
    D1, D2 = make_d(16, c_dim=2, arch=arch), make_d(16, c_dim=2, arch=arch)
    for p in D2.parameters():
        p.data.normal_()
    G2.load_state_dict(G1.state_dict(), strict=True)
    D2.load_state_dict(D1.state_dict(), strict=True)
    z = torch.randn(2, 16)
    torch.testing.assert_close(G2(z, None, noise_mode='const'), G1(z, None, noise_mode='const'))
    img, c = torch.randn(2, 3, 16, 16), torch.eye(2)
    torch.testing.assert_close(D2(img, c), D1(img, c))


def test_official_key_names():
    keys = set(make_g(16, arch='skip').state_dict())
    for key in ('mapping.fc0.weight', 'mapping.w_avg', 'synthesis.b4.const',
                'synthesis.b4.resample_filter', 'synthesis.b4.conv1.noise_const',
                'synthesis.b4.conv1.noise_strength', 'synthesis.b8.conv0.affine.bias',
                'synthesis.b16.torgb.affine.weight'):
        assert key in keys, key
    keys = set(make_d(16, c_dim=2).state_dict())
    for key in ('b16.fromrgb.weight', 'b16.skip.weight', 'b8.conv1.resample_filter',
                'b4.conv.weight', 'b4.fc.weight', 'b4.out.bias', 'mapping.embed.weight'):
        assert key in keys, key
    assert 'b16.skip.bias' not in keys


def test_minibatch_std_groups_and_errors():
    D = make_d(16, epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=2))
    assert D.b4.conv.in_channels == 32 + 2
    assert D(torch.randn(2, 3, 16, 16)).shape == (2, 1)  # group = min(4, N)
    with pytest.raises(ValueError, match='group size'):
        D(torch.randn(6, 3, 16, 16))
    assert make_d(16, epilogue_kwargs=dict(mbstd_num_channels=0))(
        torch.randn(3, 3, 16, 16)).shape == (3, 1)


def test_freeze_layers_turns_parameters_into_buffers():
    D = make_d(16, block_kwargs=dict(freeze_layers=2))
    frozen = {n for n, _ in D.named_buffers() if n.endswith('weight')}
    assert frozen == {'b16.fromrgb.weight', 'b16.conv0.weight'}
    assert 'b16.conv1.weight' in dict(D.named_parameters())


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match='architecture'):
        make_g(16, arch='unet')
    with pytest.raises(ValueError, match='architecture'):
        make_d(16, arch='unet')
    with pytest.raises(ValueError, match='power of two'):
        Generator(8, 0, 8, 24, 3)
    G = make_g(16)
    with pytest.raises(ValueError, match='ws must have shape'):
        G.synthesis(torch.randn(2, 3, 16))


def test_registered_in_models():
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS

    load_plugins()
    G = MODELS.build(dict(type='StyleGAN2Generator', z_dim=8, c_dim=0, w_dim=8,
                          img_resolution=8, img_channels=3,
                          synthesis_kwargs=dict(channel_base=64, channel_max=8)))
    D = MODELS.build(dict(type='StyleGAN2Discriminator', c_dim=0, img_resolution=8,
                          img_channels=3, channel_base=64, channel_max=8))
    assert isinstance(G, Generator) and isinstance(D, Discriminator)
    assert D(G(torch.randn(2, 8), None), None).shape == (2, 1)
