"""Precision/recall against a direct O(N^2) computation, the VGG16 feature network and its
weight files (torchvision state dict, NVIDIA-style TorchScript archive, missing files)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genforce_metrics_fid import vgg16 as V
from genforce_metrics_fid.pr_ppl import PR, parse_pr_name
from genforce_metrics_fid.precision_recall import (
    generator_features,
    manifold_radii,
    precision_recall,
)
from genforce_metrics_fid.scores import MetricError
from genforce_metrics_fid.testing import TinyGenerator
from genforce_metrics_fid.vgg16_testing import write_nvidia_style_vgg16

TINY = dict(widths=(4, 4, 8, 8, 8), fc_dim=16)


def direct_precision_recall(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, on the whole distance matrices (squared, float64 or exact integers)."""
    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    def coverage(probes, manifold):
        radius = np.sort(sq(manifold, manifold), axis=1)[:, k]  # k+1-th smallest, self incl.
        return float((sq(probes, manifold) <= radius[None]).any(axis=1).mean())

    return coverage(gen, real), coverage(real, gen)


@pytest.mark.parametrize('rows, cols', [(10000, 10000), (7, 5), (1, 3), (4, 100)])
def test_matches_direct_computation_for_any_batching(rows, cols):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(37, 6))
    gen = rng.normal(0.3, 1.2, size=(29, 6))
    expected = direct_precision_recall(real, gen, 3)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1  # a case where both can go wrong
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(gen), 3,
                           row_batch_size=rows, col_batch_size=cols)
    assert got == expected


@pytest.mark.parametrize('k', [1, 3, 5])
def test_ties_and_duplicates_are_counted_inside(k):
    # Small integer features: every distance is exact, many are equal, points repeat.
    rng = np.random.default_rng(k)
    real = rng.integers(0, 3, size=(30, 3)).astype(np.float64)
    gen = np.concatenate([real[:7], rng.integers(0, 4, size=(20, 3))]).astype(np.float64)
    expected = direct_precision_recall(real, gen, k)
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(gen), k,
                           row_batch_size=4, col_batch_size=6)
    assert got == expected


def test_hand_computed_example():
    # On a line, k=1: real 0, 1, 2, 10 have radii 1, 1, 1, 8.
    real = torch.tensor([[0.], [1.], [2.], [10.]])
    assert manifold_radii(real, k=1).tolist() == [1., 1., 1., 64.]  # squared
    # Generated 0.5 and 2.5 inside, 3 on the border of 2 (inside), 18.5 beyond 10's radius.
    # Their radii 2, 0.5, 15.5, 0.5 cover every real point (10 is 8.5 from 18.5).
    gen = torch.tensor([[0.5], [3.], [18.5], [2.5]])
    assert precision_recall(real, gen, k=1) == (0.75, 1.0)
    # Generated 0, 0.25, 0.5, 0.625 (radii 0.25, 0.25, 0.125, 0.125): only real 0 is covered.
    gen = torch.tensor([[0.], [0.25], [0.5], [0.625]])
    assert precision_recall(real, gen, k=1) == (1.0, 0.25)
    far = torch.tensor([[100.], [101.], [103.]])
    assert precision_recall(real, far, k=1) == (0.0, 0.0)


def test_identical_sets_and_errors():
    feats = torch.randn(12, 5)
    assert precision_recall(feats, feats.clone(), 3) == (1.0, 1.0)
    with pytest.raises(MetricError, match='at least 4 feature vectors'):
        precision_recall(feats[:3], feats, 3)
    with pytest.raises(MetricError, match='of one width'):
        precision_recall(feats, torch.randn(12, 4), 3)


def test_metric_names():
    spec = parse_pr_name('pr50k3_full')
    assert (spec.num_gen, spec.k, spec.max_real, spec.full) == (50000, 3, 200000, True)
    spec = parse_pr_name('pr50k3')
    assert (spec.num_gen, spec.k, spec.max_real) == (50000, 3, 50000)
    spec = parse_pr_name('pr500_5_full')
    assert (spec.num_gen, spec.k, spec.max_real) == (500, 5, 200000)
    for bad in ('pr50k', 'pr5003_full', 'prc50k3', 'pr50k3_fullx'):
        with pytest.raises(MetricError, match='pr50k3_full'):
            parse_pr_name(bad)


# ------------------------------------------------------------------------- VGG16 network
def test_features_follow_the_reference_path():
    net = V.random_vgg16(1, input_size=32, **TINY)
    img = torch.randint(0, 256, (3, 3, 20, 24), dtype=torch.uint8)
    feats = net(img)
    assert feats.shape == (3, 16) and feats.dtype == torch.float32 and (feats >= 0).all()
    # The same path written out: TF-1 bilinear resize, ImageNet normalisation on [0, 1],
    # torchvision's layer order, 7x7 average pool, fc1 → ReLU → fc2 → ReLU.
    from genforce_metrics_fid.inception import tf_resize_bilinear
    x = tf_resize_bilinear(img.float(), 32) / 255
    x = (x - torch.tensor(V.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        V.IMAGENET_STD).view(1, 3, 1, 1)
    for layer in net.features:
        x = layer(x)
    x = nn.functional.adaptive_avg_pool2d(x, 7).flatten(1)
    x = torch.relu(net.classifier[3](torch.relu(net.classifier[0](x))))
    torch.testing.assert_close(feats, x, rtol=1e-5, atol=1e-6)
    # Grey images are repeated to three channels.
    grey = img[:, :1]
    torch.testing.assert_close(net(grey), net(grey.expand(-1, 3, -1, -1)))
    # Parameter names are torchvision's.
    names = set(net.state_dict())
    assert {'features.0.weight', 'features.28.bias', 'classifier.0.weight',
            'classifier.3.bias'} <= names


def test_torchvision_file_and_nvidia_archive_give_the_same_network(tmp_path, monkeypatch):
    net = V.random_vgg16(2, lpips=True, input_size=32, **TINY)
    tv_state = {k: v for k, v in net.state_dict().items() if not k.startswith('lpips')}
    tv_state['classifier.6.weight'] = torch.zeros(10, 16)  # torchvision's fc3: ignored
    torch.save(tv_state, tmp_path / V.TORCHVISION_FILE)
    write_nvidia_style_vgg16(net, tmp_path / V.NVIDIA_FILE)
    # Reading the archive must not run its code.
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: pytest.fail('ran torch.jit.load'))
    from_tv = V.load_vgg16(tmp_path / V.TORCHVISION_FILE, download=False)
    from_nv = V.load_vgg16(tmp_path / V.NVIDIA_FILE, lpips=True, download=False)
    img = torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8)
    for loaded in (from_tv, from_nv):
        loaded.input_size = 32
        torch.testing.assert_close(loaded(img), net(img), rtol=0, atol=0)
    for ours, theirs in zip(from_nv.lpips_weights(), net.lpips_weights()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert from_nv.weights_path == str(tmp_path / V.NVIDIA_FILE)
    # LPIPS-only loading skips the fully connected layers.
    assert not hasattr(V.load_vgg16(tmp_path / V.NVIDIA_FILE, lpips=True, classifier=False,
                                    download=False), 'classifier')


def test_weight_files_that_do_not_fit_are_named(tmp_path):
    net = V.random_vgg16(0, **TINY)
    state = net.state_dict()
    del state['features.12.weight']
    torch.save(state, tmp_path / 'cut.pth')
    with pytest.raises(V.VGG16WeightsError, match=r"cut.pth does not fit VGG16: missing "
                                                  r"\['features.12.weight'\]"):
        V.load_vgg16(tmp_path / 'cut.pth', download=False)
    no_fc = {k: v for k, v in net.state_dict().items() if k.startswith('features')}
    torch.save(no_fc, tmp_path / 'no_fc.pth')
    with pytest.raises(V.VGG16WeightsError, match='no fully connected layers'):
        V.load_vgg16(tmp_path / 'no_fc.pth', download=False)
    torch.save({'weight': torch.zeros(3)}, tmp_path / 'other.pth')
    with pytest.raises(V.VGG16WeightsError, match='is not a VGG16'):
        V.load_vgg16(tmp_path / 'other.pth', download=False)


def test_hostile_archive_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    torch.save({'features.0.weight': torch.zeros(1), 'x': Payload()}, tmp_path / 'evil.pth')
    with pytest.raises(V.VGG16WeightsError, match=r'refused VGG16 weights file .*evil.pth: it '
                                                  r'references \S*open'):
        V.load_vgg16(tmp_path / 'evil.pth', download=False)
    assert not marker.exists()


def test_missing_weights_name_the_file_the_source_and_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv('GENFORCE_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv(V.ENV_VGG16, raising=False)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(V.VGG16WeightsError) as info:
        V.load_vgg16(download=False)
    message = str(info.value)
    for part in (str(tmp_path / 'cache' / 'vgg16' / 'vgg16.pt'), V.NVIDIA_URL,
                 V.TORCHVISION_URL, '--vgg16 PATH', 'vgg16=PATH', '$GENFORCE_VGG16_WEIGHTS'):
        assert part in message, part
    monkeypatch.setenv(V.ENV_VGG16, str(tmp_path / 'nope.pt'))
    with pytest.raises(V.VGG16WeightsError, match=r'nope.pt \(from the \$GENFORCE_VGG16_'):
        V.load_vgg16(download=False)
    # A file in the cache folder is found without being named.
    monkeypatch.delenv(V.ENV_VGG16)
    (tmp_path / 'cache' / 'vgg16').mkdir(parents=True)
    torch.save(V.random_vgg16(0, **TINY).state_dict(),
               tmp_path / 'cache' / 'vgg16' / V.TORCHVISION_FILE)
    assert V.load_vgg16(download=False).fc_dim == 16


# ------------------------------------------------------------------ the mmengine metric
def test_pr_metric_uses_generated_and_cached_real_features(shapes_folder, tmp_path,
                                                           monkeypatch):
    vgg = V.random_vgg16(3, input_size=32, **TINY)
    metric = PR('pr12_3_full', vgg16=vgg, batch_size=5, cache_dir=str(tmp_path),
                num_workers=0, progress=False)
    generator = TinyGenerator()
    results = metric.evaluate_model(generator, str(shapes_folder))
    assert set(results) == {'pr12_3_full_precision', 'pr12_3_full_recall'}
    # The same numbers from the pieces: all 40 real images (_full), 12 generated.
    from genforce_metrics_fid.precision_recall import dataset_features
    from genforce_metrics_fid.stats_cache import build_dataset
    real = dataset_features(vgg, build_dataset(str(shapes_folder)), 40, progress=False)
    gen = generator_features(vgg, generator, 8, 12, batch_size=5, progress=False)
    expected = precision_recall(real, gen, 3)
    assert (results['pr12_3_full_precision'], results['pr12_3_full_recall']) == expected
    # The real features are cached: a second evaluation does not extract them again.
    from genforce_metrics_fid import precision_recall as P
    monkeypatch.setattr(P, 'dataset_features', lambda *a, **k: pytest.fail('recomputed'))
    assert metric.evaluate_model(generator, str(shapes_folder)) == results
    assert len(list(tmp_path.glob('*-vgg16.npy'))) == 1
    with pytest.raises(MetricError, match='GenerativeValLoop'):
        metric.process({}, [])


def test_speed_benchmark_prints_and_writes_json(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / 'benchmarks' / 'pr_ppl_speed.py'
    spec = importlib.util.spec_from_file_location('pr_ppl_speed', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / 'speed.json'
    assert module.main(['--parts', 'pr', '--num', '20', '40', '--dim', '8', '--device', 'cpu',
                        '--out', str(out)]) == 0
    rows = json.loads(out.read_text())['results']
    assert [(r['part'], r['n']) for r in rows] == [('pr', 20), ('pr', 40)]
    assert all(r['rate'] > 0 for r in rows) and 'distances/s' in capsys.readouterr().out
