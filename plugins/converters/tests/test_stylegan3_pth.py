"""NVIDIA StyleGAN3 pickles -> genforce checkpoints (converter ``stylegan3_pth``).

The pickles are written like the real ones (persistence records with the official constructor
arguments and the official networks' weights, from the StyleGAN3 plugin's reference vectors)
and carry embedded source that must never run.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genforce_converters.converters import get_converter
from genforce_converters.testing import write_stylegan2ada_pickle
from genforce_core import load_generator
from genforce_core.checkpoint import load_checkpoint
from genforce_core.errors import CheckpointError
from genforce_core.testing import find_testdata

REPO = Path(__file__).resolve().parents[3]
SG3_ROOT = REPO / 'plugins' / 'stylegan3'
SG3_FILES = ('meta.json', 'D.npz', 't/meta.json', 't/G.npz', 't/io.npz', 'r/meta.json',
             'r/G.npz', 'r/io.npz')


def _official(cfg: str):
    """The official StyleGAN3-``cfg`` generator and discriminator (official weights), their
    recorded constructor arguments and the official outputs."""
    from genforce_stylegan2.networks import Discriminator
    from genforce_stylegan2.weights import load_official_npz
    from genforce_stylegan3.networks import Generator

    data = find_testdata('stylegan3_official_A', SG3_ROOT, SG3_FILES)
    meta = json.loads((data / cfg / 'meta.json').read_text())
    d_meta = json.loads((data / 'meta.json').read_text())
    G = Generator(**meta['G_init_kwargs']).eval()
    G.load_state_dict(load_official_npz(data / cfg / 'G.npz'))
    d_kwargs = d_meta.get('D_init_kwargs') or meta['D_init_kwargs']
    D = Discriminator(**d_kwargs).eval()
    D.load_state_dict(load_official_npz(data / 'D.npz'))
    io = {k: torch.from_numpy(v) for k, v in np.load(data / cfg / 'io.npz').items()}
    return G, D, dict(meta['G_init_kwargs']), dict(d_kwargs), io


@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_reproduces_the_official_generator_without_running_the_file(tmp_path, cfg):
    G, D, g_kwargs, d_kwargs, io = _official(cfg)
    g_kwargs['num_fp16_res'] = 4  # as the published pickles record it: converted to float32
    marker = tmp_path / 'embedded_source_ran'
    src = write_stylegan2ada_pickle(
        tmp_path / f'stylegan3-{cfg}.pkl', G, D, g_kwargs, d_kwargs, marker=str(marker),
        training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset',
                                 path='~/datasets/afhqv2.zip', resolution=32), augment_p=0.25)
    out = get_converter('stylegan3_pth').convert_file(src, tmp_path / 'converted.pth')
    assert not marker.exists()

    converted = load_generator(out)
    assert type(converted).__name__ == 'Generator' and converted.num_ws == G.num_ws
    few = slice(0, 2)
    with torch.no_grad():
        ws = converted.mapping(io['z'][few], None)
        img = converted.synthesis(ws)
    assert (ws - io['ws'][few]).abs().max() < 1e-5
    assert (img - io['img'][few]).abs().max() < 1e-4  # the official images

    ckpt = load_checkpoint(out)
    meta = ckpt['meta']
    assert meta['format'] == 'stylegan3_pth' and meta['family'] == 'stylegan3'
    assert meta['num_fp16_res'] == 4 and meta['augment_pipe']['p'] == pytest.approx(0.25)
    assert meta['dataset']['path'] == '~/datasets/afhqv2.zip'
    model_cfg = meta['cfg']['model']
    assert model_cfg['type'] == 'StyleGAN3'
    assert model_cfg['generator']['type'] == 'StyleGAN3Generator'
    assert model_cfg['generator']['num_fp16_res'] == 0
    assert model_cfg['generator']['conv_kernel'] == (3 if cfg == 't' else 1)
    assert model_cfg['discriminator']['type'] == 'StyleGAN2Discriminator'
    model = get_converter('stylegan3_pth').read(src).build_model()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.discriminator(img, None), D(img, None))


def test_stylegan2_pickles_and_other_files_are_named(tmp_path):
    from genforce_stylegan2.networks import Generator

    g_kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                    mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
    src = write_stylegan2ada_pickle(tmp_path / 'sg2.pkl', Generator(**g_kwargs), None,
                                    g_kwargs, None)
    with pytest.raises(CheckpointError, match=r'sg2\.pkl.*no StyleGAN3 generator.*'
                                              'stylegan2ada_pth'):
        get_converter('stylegan3_pth').read(src)
    other = tmp_path / 'other.pkl'
    import pickle

    other.write_bytes(pickle.dumps({'model': 1}))
    with pytest.raises(CheckpointError, match=r'other\.pkl.*expected the keys G, D, G_ema'):
        get_converter('stylegan3_pth').read(other)


def test_the_stylegan2_converter_points_to_this_one(tmp_path):
    G, _, g_kwargs, _, _ = _official('t')
    src = write_stylegan2ada_pickle(tmp_path / 'sg3.pkl', G, None, g_kwargs, None)
    with pytest.raises(CheckpointError, match='stylegan3_pth'):
        get_converter('stylegan2ada_pth').read(src)
    converted = get_converter('stylegan3_pth').read(src)
    assert converted.discriminator is None and converted.model_type == 'StyleGAN3'


def test_convert_test_num_and_the_opt_in_comparison(tmp_path, monkeypatch, capsys):
    import sys

    from genforce_core.cli.main import main

    G, _, g_kwargs, _, _ = _official('r')
    embedded = tmp_path / 'embedded_source_ran'
    src = write_stylegan2ada_pickle(tmp_path / 'r.pkl', G, None, g_kwargs, None,
                                    marker=str(embedded))
    marker = tmp_path / 'legacy_ran'
    repo = tmp_path / 'nvidia_stylegan3'
    (repo / 'dnnlib').mkdir(parents=True)
    (repo / 'dnnlib' / '__init__.py').write_text('')
    (repo / 'legacy.py').write_text(  # a stand-in for NVIDIA's loader: says that it ran
        'import pathlib\nREFERENCE = None\n\ndef load_network_pkl(f):\n'
        f'    pathlib.Path({str(marker)!r}).write_text("legacy ran")\n'
        "    return {'G_ema': REFERENCE}\n")
    for name in ('legacy', 'dnnlib'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(repo))
    args = ['convert', 'stylegan3_pth', '--source_model_path', str(src), '--test_num', '2']
    assert main([*args, '--output', str(tmp_path / 'a.pth')]) == 0
    assert 'skipped' in capsys.readouterr().out
    assert not marker.exists() and not embedded.exists()

    import legacy
    legacy.REFERENCE = G
    try:
        assert main([*args, '--output', str(tmp_path / 'b.pth'), '--trust-original-code']) == 0
    finally:
        for name in ('legacy', 'dnnlib'):
            sys.modules.pop(name, None)
    out = capsys.readouterr().out
    assert marker.exists()
    diff = float(out.split('Max difference to the original over 2 images: ')[1].split()[0])
    assert diff < 1e-5


def test_a_stylegan3_zoo_entry_converts_its_file(tmp_path, monkeypatch, capsys):
    from genforce_core.cli.main import main

    G, D, g_kwargs, d_kwargs, io = _official('r')
    src = write_stylegan2ada_pickle(tmp_path / 'stylegan3-r-ffhqu-256x256.pkl', G, D, g_kwargs,
                                    d_kwargs)
    monkeypatch.setenv('GENFORCE_ZOO_CACHE', str(tmp_path / 'cache'))
    assert main(['zoo', 'download', 'stylegan3r-ffhqu256', '--from', str(src),
                 '--no-verify']) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and load_checkpoint(out)['meta']['format'] == 'stylegan3_pth'
    with torch.no_grad():
        img = load_generator(out).synthesis(io['ws'][:1])
    assert (img - io['img'][:1]).abs().max() < 1e-4
