"""Filter design against the values and filters the official constructor derives."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genforce_stylegan3.filters import layer_filters, layer_specs, lowpass_filter

CONFIGS = ('t', 'r')


def _specs(ref, cfg: str):
    kw = ref.meta(cfg)['G_init_kwargs']
    return layer_specs(img_resolution=kw['img_resolution'],
                       img_channels=kw['img_channels'], channel_base=kw['channel_base'],
                       channel_max=kw['channel_max'], conv_kernel=kw['conv_kernel'],
                       use_radial_filters=kw['use_radial_filters'])


def test_reference_checksums(reference):
    ref = reference
    folder = ref.data_dir()
    lines = (folder / 'SHA256SUMS').read_text().splitlines()
    listed = {line.split(maxsplit=1)[1] for line in lines}
    assert listed == set(ref.FILES)
    assert ref.checksums_ok(folder) == []


@pytest.mark.parametrize('cfg', CONFIGS)
def test_layer_values_match_official(reference, cfg):
    ref = reference
    meta = ref.meta(cfg)
    inp, specs = _specs(ref, cfg)
    expected_input = meta['layers']['input']
    assert (inp.channels, [inp.size] * 2, inp.sampling_rate, inp.bandwidth) == (
        expected_input['channels'], expected_input['size'], expected_input['sampling_rate'],
        expected_input['bandwidth'])
    assert [s.name for s in specs] == meta['layer_names']
    for spec in specs:
        expected = meta['layers'][spec.name]
        mine = dataclasses.asdict(spec)
        for key, value in expected.items():
            if key not in mine:
                continue
            got = mine[key]
            if key in ('in_size', 'out_size'):
                got = [got, got]
            if key == 'padding':
                got = list(got)
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-12), (spec.name, key)
            else:
                assert got == value, (spec.name, key)


@pytest.mark.parametrize('cfg', CONFIGS)
def test_filters_match_official(reference, cfg):
    ref = reference
    weights = ref.arrays(cfg, 'G')
    _, specs = _specs(ref, cfg)
    for spec in specs:
        for kind, designed in zip(('up_filter', 'down_filter'), layer_filters(spec)):
            key = f'synthesis.{spec.name}.{kind}'
            if designed is None:
                assert key not in weights
                continue
            official = weights[key]
            assert designed.shape == official.shape, key
            np.testing.assert_allclose(designed.numpy(), official, rtol=0, atol=1e-7,
                                       err_msg=key)


def test_lowpass_properties():
    f = lowpass_filter(12, cutoff=4, width=8, fs=32)
    assert f.shape == (12,) and f.sum().item() == pytest.approx(1, abs=1e-6)
    assert torch.allclose(f, f.flip(0))  # linear phase
    g = lowpass_filter(12, cutoff=4, width=8, fs=32, radial=True)
    assert g.shape == (12, 12) and torch.allclose(g, g.t()) and torch.allclose(g, g.flip(0))
    assert lowpass_filter(1, cutoff=4, width=8, fs=32) is None
    # Stopband: the response beyond cutoff + width is far below the passband.
    freqs = np.fft.rfftfreq(1024, d=1 / 32)
    response = np.abs(np.fft.rfft(f.double().numpy(), 1024))
    assert response[freqs >= 12].max() < 0.02 and response[0] == pytest.approx(1, abs=1e-6)


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match='num_layers'):
        layer_specs(img_resolution=16, img_channels=3, num_layers=2, num_critical=2)
