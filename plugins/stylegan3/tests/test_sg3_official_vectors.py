"""The StyleGAN3 generators (T and R) against the official reference vectors.

The official state dicts load with strict key matching; the tolerances are the reference
README's suggestions (a few hundred times the official code's own float32 noise floor).
"""
from __future__ import annotations

import copy

import pytest
import torch

from genforce_stylegan2.weights import load_official_npz
from genforce_stylegan3.networks import Generator

CONFIGS = ('t', 'r')
ATOL_W = 1e-5
ATOL_ACT = 1e-4


@pytest.fixture(scope='module', params=CONFIGS)
def case(request, reference):
    cfg = request.param
    meta = reference.meta(cfg)
    torch.manual_seed(0)  # freqs/phases differ from the official ones until loaded
    G = Generator(**meta['G_init_kwargs']).eval()
    G.load_state_dict(load_official_npz(reference.data_dir() / cfg / 'G.npz'), strict=True)
    io = {k: torch.from_numpy(v) for k, v in reference.arrays(cfg, 'io').items()}
    return cfg, meta, G, io


def _close(got, expected, atol, name):
    diff = (got - expected).abs().max().item()
    assert got.shape == expected.shape and diff <= atol, f'{name}: max |diff| {diff:.3g}'


def test_layer_names_are_official(case):
    _, meta, G, _ = case
    assert G.synthesis.layer_names == meta['layer_names']
    assert G.num_ws == meta['num_ws']


def test_mapping(case):
    _, _, G, io = case
    with torch.no_grad():
        _close(G.mapping(io['z'], None), io['ws'], ATOL_W, 'ws')
        _close(G.mapping(io['z'], None, truncation_psi=0.7), io['ws_psi0.7'], ATOL_W, 'ws_psi0.7')


def test_images_and_intermediates(case):
    _, meta, G, io = case
    outputs = {}
    names = ['input'] + meta['layer_names']
    hooks = [getattr(G.synthesis, name).register_forward_hook(
        lambda _m, _i, out, name=name: outputs.__setitem__(name, out)) for name in names]
    try:
        with torch.no_grad():
            img = G.synthesis(io['ws'])
    finally:
        for hook in hooks:
            hook.remove()
    _close(img, io['img'], ATOL_ACT, 'img')
    _close(outputs['input'][:1], io['act_input'], ATOL_ACT, 'act_input')
    _close(outputs[names[1]][:1], io['act_L0'], ATOL_ACT, 'act_L0')
    _close(outputs[names[2]][:1], io['act_L1'], ATOL_ACT, 'act_L1')
    meansq = []
    for idx, name in enumerate(names):
        key = 'chanmean_input' if idx == 0 else f'chanmean_L{idx - 1}'
        _close(outputs[name].mean(dim=[2, 3]), io[key], ATOL_ACT, key)
        meansq.append(outputs[name].square().mean(dim=[1, 2, 3]))
    _close(torch.stack(meansq, dim=1), io['act_meansq'], ATOL_ACT, 'act_meansq')


def test_truncated_images(case):
    _, _, G, io = case
    few = slice(0, 3)  # samples are independent in eval mode; three keep the test fast
    with torch.no_grad():
        _close(G.synthesis(io['ws_psi0.7'][few]), io['img_psi0.7'][few], ATOL_ACT, 'img_psi0.7')


def test_input_transform_with_zoom(case):
    cfg, _, G, io = case
    if 'transform_zoom' not in io:
        assert cfg == 'r'  # the reference has the zoom vector for T only
        return
    G = copy.deepcopy(G)
    G.synthesis.input.transform.copy_(io['transform_zoom'])
    with torch.no_grad():
        _close(G.synthesis.input(io['ws'][:1, 0]), io['act_input_zoom'], ATOL_ACT,
               'act_input_zoom')


def test_ema_updates(case):
    _, meta, G, io = case
    G = copy.deepcopy(G).train()
    layers = [getattr(G.synthesis, name) for name in meta['layer_names']]
    before = torch.stack([layer.magnitude_ema for layer in layers])
    _close(before, io['magnitude_ema_before'], 0, 'magnitude_ema_before')
    with torch.no_grad():
        ws = G.mapping(io['z'], None, update_emas=True)
        img = G.synthesis(ws, update_emas=True)
    _close(G.mapping.w_avg, io['w_avg_after_update'], ATOL_W, 'w_avg_after_update')
    after = torch.stack([layer.magnitude_ema for layer in layers])
    _close(after, io['magnitude_ema_after_update'], ATOL_W, 'magnitude_ema_after_update')
    _close(img, io['img_update_emas'], ATOL_ACT, 'img_update_emas')


def test_gradient_wrt_ws(case):
    _, _, G, io = case
    few = slice(0, 3)  # samples are independent in eval mode; three keep the test fast
    ws = io['ws'][few].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((G.synthesis(ws) * io['pl_noise'][few]).sum(), ws)
    expected = io['grad_ws'][few]
    rel_l2 = ((grad - expected).norm() / expected.norm()).item()
    assert rel_l2 <= 1e-3, f'grad_ws: relative L2 {rel_l2:.3g}'
    _close(grad, expected, 1e-3 * expected.abs().max().item(), 'grad_ws')
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    _close(lengths, io['pl_lengths'][few], 1e-3 * io['pl_lengths'].abs().max().item(),
           'pl_lengths')
