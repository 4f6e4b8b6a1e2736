"""``genforce synthesize`` (deterministic per seed, grid, zoo names, FID hand-off) and
``genforce convert`` / ``tools/convert_model.py`` (test images, comparison with the original)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_converters.testing import write_stylegan2ada_pickle
from genforce_core import zoo
from genforce_core.cli.main import main
from genforce_core.cli.synthesize import parse_seeds

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope='module')
def converted(tmp_path_factory, official):
    tmp = tmp_path_factory.mktemp('conv')
    src = write_stylegan2ada_pickle(tmp / 'snap.pkl', official.G, official.D, official.g_kwargs,
                                    official.d_kwargs,
                                    training_set_kwargs=dict(path=str(tmp / 'data.zip'),
                                                             resolution=32))
    out = tmp / 'snap.pth'
    assert main(['convert', 'stylegan2ada_pth', '--source_model_path', str(src),
                 '--output', str(out)]) == 0
    return out


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_parse_seeds():
    assert parse_seeds('0-3,7') == [0, 1, 2, 3, 7]
    assert parse_seeds('5') == [5]


def test_synthesis_is_deterministic_per_seed(converted, tmp_path, official):
    def run(name, seeds, *extra):
        assert main(['synthesize', str(converted), '--seeds', seeds, '--out',
                     str(tmp_path / name), '--device', 'cpu', *extra]) == 0

    run('a', '0-4', '--grid')
    run('b', '3,4')
    run('c', '0-4', '--batch', '3')
    run('d', '0-4', '--batch', '3')
    names = sorted(p.name for p in (tmp_path / 'a').iterdir())
    assert names == ['grid.png'] + [f'seed{s:04d}.png' for s in range(5)]
    for seed in range(5):
        a, c = (_png(tmp_path / x / f'seed{seed:04d}.png') for x in 'ac')
        if seed >= 3:  # the same image whatever the other seeds
            assert np.array_equal(a, _png(tmp_path / 'b' / f'seed{seed:04d}.png'))
        assert np.array_equal(c, _png(tmp_path / 'd' / f'seed{seed:04d}.png'))
        assert np.abs(a.astype(int) - c).max() <= 1  # batching only changes rounding
    # seed -> z exactly as NVIDIA's generate.py, through the official network.
    z = torch.from_numpy(np.random.RandomState(2).randn(1, 64)).float()
    with torch.no_grad():
        ref = (official.G(z, None, noise_mode='const') * 127.5 + 128).clamp(0, 255)
    ref = ref.to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(_png(tmp_path / 'a' / 'seed0002.png').astype(int) - ref).max() <= 1
    assert _png(tmp_path / 'a' / 'grid.png').shape == (64, 96, 3)  # 2 rows of 3 (32x32)


def test_random_noise_is_seeded_too(converted, tmp_path):
    for name, batch in (('a', '4'), ('b', '1')):
        assert main(['synthesize', str(converted), '--num', '2', '--batch', batch,
                     '--noise-mode', 'random', '--truncation-psi', '0.5', '--out',
                     str(tmp_path / name), '--device', 'cpu']) == 0
    assert np.array_equal(_png(tmp_path / 'a' / 'seed0001.png'),
                          _png(tmp_path / 'b' / 'seed0001.png'))


def test_fid_needs_the_metrics_plugin(converted, tmp_path, monkeypatch, capsys):
    from genforce_core.api import METRICS, load_plugins

    load_plugins()
    monkeypatch.delitem(METRICS._module_dict, 'FID', raising=False)  # no plugin provides it
    assert main(['synthesize', str(converted), '--num', '1', '--fid-num', '10', '--out',
                 str(tmp_path), '--device', 'cpu']) == 1
    assert 'needs a plugin that registers the FID metric' in capsys.readouterr().err


def test_fid_is_found_through_the_metrics_registry(converted, tmp_path, monkeypatch, capsys):
    from genforce_core.api import METRICS, load_plugins

    calls = []

    class FakeFID:
        def __init__(self, *, name, dataset, batch_size):
            calls.append(dict(name=name, dataset=dataset, batch_size=batch_size))

        def evaluate_model(self, model, device=None):
            calls.append(dict(device=device, z_dim=model.z_dim))
            return {'fid100_full': 12.5}

    load_plugins()
    monkeypatch.setitem(METRICS._module_dict, 'FID', FakeFID)
    assert main(['synthesize', str(converted), '--num', '1', '--fid-num', '100', '--batch', '4',
                 '--out', str(tmp_path), '--device', 'cpu']) == 0
    assert calls == [dict(name='fid100_full', dataset=str(converted.parent / 'data.zip'),
                          batch_size=4),
                     dict(device='cpu', z_dim=64)]
    assert 'fid100_full: 12.5' in capsys.readouterr().out
    assert json.loads((tmp_path / 'metrics.json').read_text()) == {'fid100_full': 12.5}


def test_the_metrics_plugins_fid_fits_what_synthesize_builds():
    from genforce_core.api import METRICS, load_plugins

    load_plugins()
    fid_type = METRICS.get('FID')
    if fid_type is None:
        pytest.skip('the metrics plugin is not installed')
    metric = fid_type(name='fid100_full', dataset='data.zip', batch_size=4)
    assert callable(metric.evaluate_model)


def test_synthesize_zoo_name_downloads_and_converts(tmp_path, monkeypatch, official):
    src = write_stylegan2ada_pickle(tmp_path / 'tiny.pkl', official.G, None, official.g_kwargs,
                                    None)
    entry = dict(name='tiny', family='stylegan2ada', resolution=32, dataset='test',
                 url=src.as_uri(), sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
                 converter='stylegan2ada_pth', fid=None)
    monkeypatch.setattr(zoo, 'list_entries', lambda: [entry])
    monkeypatch.setenv('GENFORCE_ZOO_CACHE', str(tmp_path / 'cache'))
    assert main(['synthesize', 'tiny', '--seeds', '7', '--out', str(tmp_path / 'o'),
                 '--device', 'cpu']) == 0
    assert (tmp_path / 'cache' / 'tiny.pth').is_file()
    assert (tmp_path / 'o' / 'seed0007.png').is_file()


def test_convert_reports_difference_to_the_original(tmp_path, monkeypatch, official, capsys):
    """With NVIDIA's code importable (here: stand-in ``legacy`` / ``dnnlib`` modules that
    return the reference network) and --trust-original-code, --test_num compares and
    --save_test_image writes pairs."""
    src = write_stylegan2ada_pickle(tmp_path / 'snap.pkl', official.G, None, official.g_kwargs,
                                    None)
    fake = tmp_path / 'nvidia_repo'
    (fake / 'dnnlib').mkdir(parents=True)
    (fake / 'dnnlib' / '__init__.py').write_text('')
    (fake / 'legacy.py').write_text('REFERENCE = None\n\ndef load_network_pkl(f):\n'
                                    "    return {'G_ema': REFERENCE}\n")
    monkeypatch.syspath_prepend(str(fake))
    import legacy
    legacy.REFERENCE = official.G
    out = tmp_path / 'out.pth'
    assert main(['convert', 'stylegan2ada_pth', '--source_model_path', str(src), '--output',
                 str(out), '--test_num', '3', '--save_test_image', '--trust-original-code']) == 0
    text = capsys.readouterr().out
    diff = float(text.split('Max difference to the original over 3 images: ')[1].split()[0])
    assert diff < 1e-4
    pair = _png(tmp_path / 'out_test0002.png')
    assert pair.shape == (32, 64, 3)
    assert np.abs(pair[:, :32].astype(int) - pair[:, 32:]).max() <= 1
    sys.modules.pop('legacy', None)
    sys.modules.pop('dnnlib', None)


def test_tools_convert_model_script(tmp_path, official):
    src = write_stylegan2ada_pickle(tmp_path / 'snap.pkl', official.G, None, official.g_kwargs,
                                    None)
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'convert_model.py'), 'stylegan2ada_pth',
         '--source_model_path', str(src), '--output', str(tmp_path / 'o.pth'), '--test_num', '2'],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Generated 2 test images' in proc.stdout and (tmp_path / 'o.pth').is_file()
