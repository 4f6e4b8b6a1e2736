"""NVIDIA TF pickles of StyleGAN (v1) and PGGAN -> the stylegan / pggan plugins' networks.

The files are written from random-weight networks of those plugins in the official variable
names and layouts (their ``weights`` modules); the converted checkpoint must compute the same
images and scores.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from genforce_converters.converters import get_converter
from genforce_converters.testing import write_tf_family_pickle
from genforce_core import load_generator
from genforce_core.errors import CheckpointError

CASES = {
    'stylegan': dict(
        converter='stylegan_tf',
        G=('StyleGANGenerator', dict(z_dim=16, w_dim=16, img_resolution=32,
                                     mapping_kwargs=dict(num_layers=2, layer_features=16),
                                     synthesis_kwargs=dict(fmap_base=128, fmap_max=16))),
        D=('StyleGANDiscriminator', dict(img_resolution=32, fmap_base=128, fmap_max=16,
                                         mbstd_group_size=2)),
        static=dict(latent_size=16, dlatent_size=16, mapping_layers=2, mapping_fmaps=16,
                    fmap_base=128, fmap_max=16, resolution=32, num_channels=3,
                    mbstd_group_size=2)),
    'pggan': dict(
        converter='pggan_tf',
        G=('PGGANGenerator', dict(z_dim=32, img_resolution=32, fmap_base=256, fmap_max=32)),
        D=('PGGANDiscriminator', dict(img_resolution=32, fmap_base=256, fmap_max=32,
                                      mbstd_group_size=2)),
        static=dict(latent_size=32, fmap_base=256, fmap_max=32, resolution=32,
                    num_channels=3, mbstd_group_size=2)),
}


@pytest.mark.parametrize('family', list(CASES))
def test_converted_networks_compute_the_same(tmp_path, family):
    weights = pytest.importorskip(f'genforce_{family}.weights')
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS

    load_plugins()
    case = CASES[family]
    torch.manual_seed(0)
    G = MODELS.build(dict(type=case['G'][0], **case['G'][1])).eval()
    D = MODELS.build(dict(type=case['D'][0], **case['D'][1])).eval()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(torch.randn_like(p) * 0.05)

    def official(net):
        return {weights.tf_name(k): weights.to_tf(k, v).numpy()
                for k, v in net.state_dict().items()}

    marker = tmp_path / 'build_source_ran'
    src = write_tf_family_pickle(tmp_path / f'karras-{family}.pkl', family, official(G),
                                 official(D), static_kwargs=case['static'], marker=str(marker))
    out = get_converter(case['converter']).convert_file(src, tmp_path / 'out.pth')
    assert not marker.exists()
    G2 = load_generator(out)
    model = get_converter(case['converter']).read(src).build_model().eval()
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        kwargs = dict(noise_mode='const') if family == 'stylegan' else {}
        img = G(z, None, **kwargs)
        assert (G2(z, None, **kwargs) - img).abs().max() < 1e-5
        assert (model.discriminator(img, None) - D(img, None)).abs().max() < 1e-5
    if family == 'stylegan':
        with torch.no_grad():
            assert (G2(z, None, truncation_psi=0.7, noise_mode='const')
                    - G(z, None, truncation_psi=0.7, noise_mode='const')).abs().max() < 1e-5


def test_wrong_family_is_named(tmp_path):
    if importlib.util.find_spec('genforce_pggan') is None:
        pytest.skip('pggan plugin not installed')
    src = write_tf_family_pickle(tmp_path / 'pg.pkl', 'pggan', {'4x4/Dense/weight': [[0.0]]},
                                 None)
    with pytest.raises(CheckpointError, match='G_paper'):
        get_converter('stylegan_tf').read(src)
    with pytest.raises(CheckpointError, match='PGGAN.*pggan_tf'):
        get_converter('stylegan2_tf').read(src)
