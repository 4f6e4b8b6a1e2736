"""``input_transform`` against the transforms stored with the official reference vectors."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan3.transforms import input_transform


def test_matches_the_reference_transforms(reference):
    # README of the vectors: the stored buffer is "rotate by 12 degrees, then translate by
    # (0.11, -0.07)"; the zoom vector "rotate -20 degrees + translate (-0.05, 0.13)", with the
    # 2x2 part then multiplied by 1.75.
    stored = torch.from_numpy(reference.arrays('t', 'G')['synthesis.input.transform'])
    assert torch.allclose(input_transform((0.11, -0.07), 12), stored, atol=1e-6)
    zoom = input_transform((-0.05, 0.13), -20)
    zoom[:2, :2] *= 1.75
    expected = torch.from_numpy(reference.arrays('t', 'io')['transform_zoom'])
    assert torch.allclose(zoom, expected, atol=1e-6)


def test_identity_and_composition():
    assert torch.equal(input_transform(), torch.eye(3))
    # Two quarter turns are a half turn; translations add up when there is no rotation.
    quarter = input_transform(rotate=90)
    assert torch.allclose(quarter @ quarter, input_transform(rotate=180), atol=1e-6)
    assert torch.allclose(input_transform((0.1, 0.2)) @ input_transform((0.3, -0.1)),
                          input_transform((0.4, 0.1)), atol=1e-6)


@pytest.mark.parametrize('translate,rotate', [((1, 2, 3), 0), ((0, float('nan')), 0),
                                              ((0, 0), float('inf'))])
def test_bad_values_are_refused(translate, rotate):
    with pytest.raises(ValueError, match='translate'):
        input_transform(translate, rotate)


@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_whole_pixel_translation_moves_the_image(reference, cfg):
    # Alias-free synthesis is translation equivariant: translating the input by whole output
    # pixels moves the image by those pixels (up to the small residual aliasing), away from
    # the borders where new content enters.
    from genforce_stylegan2.weights import load_official_npz
    from genforce_stylegan3.networks import Generator

    G = Generator(**reference.meta(cfg)['G_init_kwargs']).eval()
    G.load_state_dict(load_official_npz(reference.data_dir() / cfg / 'G.npz'), strict=True)
    ws = torch.from_numpy(reference.arrays(cfg, 'io')['ws'][:1])
    images = []
    for translate in ((0, 0), (1 / 32, 0), (0, 2 / 32)):
        G.synthesis.input.transform.copy_(input_transform(translate))
        with torch.no_grad():
            images.append(G.synthesis(ws))
    base, right, down = images
    inner = slice(6, -6)
    moved_right = (right[..., inner, 7:-5] - base[..., inner, inner]).abs().max()
    moved_down = (down[..., 8:-4, inner] - base[..., inner, inner]).abs().max()
    not_moved = (right - base)[..., inner, inner].abs().max()
    assert moved_right < 2e-3 and moved_down < 3e-3
    assert not_moved > 20 * max(moved_right, moved_down)
