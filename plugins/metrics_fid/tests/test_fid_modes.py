"""FID/KID modes: ``pytorch_fid`` and ``clean`` reproduce pytorch-fid and clean-fid exactly.

The libraries are test oracles only (the ``test`` extra): both run here with the same random
Inception weights as ours, with batch-norm statistics calibrated on a forward pass so that
features differ between images. pytorch-fid runs end to end (its file loading, weight loading
through ``torch.hub``'s cache, network and FID formula). clean-fid's network is NVIDIA's
TorchScript file, which cannot be downloaded here: it runs end to end with our network traced
into a TorchScript file of the same shape (``.layers`` on normalized 299x299 input), so its
reading, resizing, normalization and FID/KID code are the oracle, and our network path is the
``nvidia`` one.

Both libraries' FID take ``scipy.linalg.sqrtm`` of 2048x2048 (minutes on 2 CPU cores), so
their formula is applied to the features expressed in an orthonormal basis of the span of
all feature vectors: FID is invariant under a common translation and rotation, and nothing
lies outside that span, so the value is the same (checked against the full-dimension formula
in :func:`test_span_basis_keeps_the_libraries_fid`).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_metrics_fid import evaluation, scores, stats_cache
from genforce_metrics_fid.inception import MODES, InceptionV3FID, pil_bicubic_resize
from genforce_metrics_fid.testing import random_inception

# The libraries' sqrtm warns on the (singular) covariances of a few images.
pytestmark = [pytest.mark.filterwarnings('ignore::scipy.linalg.LinAlgWarning'),
              pytest.mark.filterwarnings('ignore:The `disp` argument:DeprecationWarning'),
              pytest.mark.filterwarnings('ignore:`torch.jit:FutureWarning')]

RESOLUTIONS = (32, 64, 256)
PER_FOLDER = 2
WEIGHTS_NAME = 'pt_inception-2015-12-05-6726825d.pth'  # the name pytorch-fid downloads


def needs_libraries() -> None:
    """Skip unless the oracles are installed (the root ``test`` extra installs them)."""
    pytest.importorskip('pytorch_fid')
    pytest.importorskip('cleanfid')


def smooth_images(count: int, size: int, seed: int) -> np.ndarray:
    """``[count, size, size, 3]`` uint8: random blobs at a random scale plus a little noise,
    so that images (and their Inception features) differ."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        cells = int(rng.integers(2, 9))
        low = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
        img = np.asarray(low.resize((size, size), Image.BICUBIC), dtype=np.float64)
        img += rng.normal(0, 12, img.shape)
        out.append(img.clip(0, 255).astype(np.uint8))
    return np.stack(out)


def as_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def calibrated_inception(seed: int = 0) -> InceptionV3FID:
    """Random weights (at 299 px) whose batch-norm running statistics are those of a batch of
    images at each layer's input, so activations stay normalized through all 94 layers."""
    net = random_inception(seed, input_size=299)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0  # the running statistics become the batch's
    net.train()
    with torch.no_grad():
        net.features(net.preprocess(as_batch(smooth_images(2, 96, seed=100 + seed))))
    for bn in bns:
        bn.momentum = 0.1
    return net.eval()


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """The calibrated weights as pytorch-fid's file, inside a ``$TORCH_HOME`` where
    pytorch-fid's ``load_state_dict_from_url`` finds it without downloading."""
    torch_home = tmp_path_factory.mktemp('torch_home')
    path = torch_home / 'hub' / 'checkpoints' / WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    torch.save(calibrated_inception().state_dict(), path)
    return path


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    """One folder of ``PER_FOLDER`` PNGs per resolution."""
    root = tmp_path_factory.mktemp('mode_images')
    result = {}
    for res in RESOLUTIONS:
        folder = root / f'res{res}'
        folder.mkdir()
        for i, img in enumerate(smooth_images(PER_FOLDER, res, seed=res)):
            Image.fromarray(img).save(folder / f'{i:02d}.png')
        result[res] = folder
    return result


def our_features(weights_path, folder, mode: str, cache_dir) -> np.ndarray:
    """Our features of a folder: weights file → get_detector → dataset → extraction."""
    detector = evaluation.get_detector(weights_path, 'cpu', mode)
    return stats_cache.real_features(detector, str(folder), batch_size=PER_FOLDER,
                                     cache_dir=cache_dir, progress=False)['feats']


def span_basis(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` in an orthonormal basis of the span of all their rows (centred)."""
    rows = np.concatenate([a, b]).astype(np.float64)
    origin = rows.mean(axis=0)
    basis, _ = np.linalg.qr((rows - origin).T)
    return (a - origin) @ basis, (b - origin) @ basis


def library_fid(frechet_distance, a: np.ndarray, b: np.ndarray) -> float:
    """A library's FID formula on its statistics (np.mean, np.cov) of span coordinates."""
    a, b = span_basis(a, b)
    return float(frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                  b.mean(0), np.cov(b, rowvar=False)))


def assert_features_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Equal to 1e-4 relative to the features' range; and a real test: the features differ
    between images by far more than that."""
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= 1e-4 * scale
    assert (theirs.std(axis=0) > 1e-2 * scale).mean() > 0.5


# ------------------------------------------------------------------------ resize / input
@pytest.mark.parametrize('shape', [(32, 32), (64, 64), (256, 256), (299, 299), (512, 512),
                                   (40, 77), (300, 298), (97, 33)])
def test_clean_resize_equals_clean_fids_resizer(shape):
    build_resizer = pytest.importorskip('cleanfid.resize').build_resizer
    resize = build_resizer('clean')
    img = smooth_images(1, max(shape), seed=sum(shape))[0][:shape[0], :shape[1]]
    theirs = torch.from_numpy(resize(img)).permute(2, 0, 1)
    ours = pil_bicubic_resize(as_batch(img[None]).float(), 299).clamp(0, 255)[0]
    assert ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours, theirs)


@pytest.mark.slow
def test_network_inputs_equal_the_libraries_inputs(folders, monkeypatch):
    """The tensor entering the layers, per mode, against each library's own pipeline:
    clean-fid's dataset (read, resize, to tensor) and normalization; pytorch-fid's dataset
    (ToTensor) and the first lines of its forward (resize, 2x - 1)."""
    needs_libraries()
    import pytorch_fid.inception as pf_inception
    from cleanfid.utils import ResizeDataset
    from pytorch_fid.fid_score import ImagePathDataset
    from torchvision.transforms import ToTensor

    net = random_inception(0, input_size=299)
    monkeypatch.setattr(pf_inception, 'load_state_dict_from_url',
                        lambda *a, **k: net.state_dict())
    capture = pf_inception.InceptionV3([0]).eval()
    capture.blocks = torch.nn.ModuleList([torch.nn.Identity()])  # returns its input
    for folder in folders.values():
        files = sorted(str(p) for p in folder.glob('*.png'))
        ours = as_batch(np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files]))
        clean = torch.stack([ResizeDataset(files, mode='clean')[i] for i in range(len(files))])
        assert torch.equal(net.with_mode('clean').preprocess(ours), (clean - 128) / 128)
        to_tensor = ImagePathDataset(files, transforms=ToTensor())
        with torch.no_grad():
            pf = capture(torch.stack([to_tensor[i] for i in range(len(files))]))[0]
        assert pf.shape == (PER_FOLDER, 3, 299, 299)
        assert torch.equal(net.with_mode('pytorch_fid').preprocess(ours), pf)
        # The modes really differ (this is what a user switching libraries saw).
        nvidia = net.preprocess(ours)
        assert (nvidia - pf).abs().max() > 0.05
        assert (nvidia - (clean - 128) / 128).abs().max() > 0.05


def test_span_basis_keeps_the_libraries_fid():
    needs_libraries()
    from cleanfid.fid import frechet_distance as clean_fd
    from pytorch_fid.fid_score import calculate_frechet_distance as pf_fd
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(5, 96)), 0)
    b = np.maximum(rng.normal(0.2, 1.1, size=(4, 96)), 0)
    full = pf_fd(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert library_fid(pf_fd, a, b) == pytest.approx(full, rel=1e-6)
    assert library_fid(clean_fd, a, b) == pytest.approx(full, rel=1e-6)
    assert scores.fid_from_features(a, b) == pytest.approx(full, rel=1e-6)


# ------------------------------------------------------------------------- the networks
@pytest.mark.slow
def test_pytorch_fid_mode_reproduces_pytorch_fid(weights, folders, tmp_path, monkeypatch):
    needs_libraries()
    import pytorch_fid.inception as pf_inception
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

    monkeypatch.setenv('TORCH_HOME', str(weights.parent.parent.parent))
    monkeypatch.setattr(pf_inception, 'FID_WEIGHTS_URL', f'https://invalid.test/{WEIGHTS_NAME}')
    model = pf_inception.InceptionV3([pf_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ours, theirs = {}, {}
    for res, folder in folders.items():
        files = sorted(str(p) for p in folder.glob('*.png'))
        theirs[res] = get_activations(files, model, batch_size=PER_FOLDER, dims=2048,
                                      device='cpu', num_workers=0)
        ours[res] = our_features(weights, folder, 'pytorch_fid', tmp_path)
        assert_features_close(ours[res], theirs[res])
    for x, y in ((32, 64), (32, 256), (64, 256)):
        expected = library_fid(calculate_frechet_distance, theirs[x], theirs[y])
        assert scores.fid_from_features(ours[x], ours[y]) == pytest.approx(expected, rel=1e-6)
    # Today's default path gives other numbers on the same weights and images.
    nvidia = our_features(weights, folders[64], 'nvidia', tmp_path)
    assert np.abs(nvidia - theirs[64]).max() > 0.05 * np.abs(theirs[64]).max()


class _Layers(torch.nn.Module):
    """The layers of NVIDIA's TorchScript Inception: normalized 299x299 input → features."""

    def __init__(self, net: InceptionV3FID):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)[:, :, None, None]


class _NvidiaShaped(torch.nn.Module):
    def __init__(self, net: InceptionV3FID):
        super().__init__()
        self.layers = _Layers(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@pytest.mark.slow
def test_clean_mode_reproduces_clean_fid(weights, folders, tmp_path):
    needs_libraries()
    from cleanfid.fid import frechet_distance, get_folder_features, kernel_distance
    from cleanfid.inception_torchscript import InceptionV3W

    net = evaluation.get_detector(weights, 'cpu')
    example = torch.zeros(1, 3, 299, 299)
    torch.jit.save(torch.jit.trace(_NvidiaShaped(net), example),
                   str(tmp_path / 'inception-2015-12-05.pt'))
    model = InceptionV3W(str(tmp_path), download=False, resize_inside=False).eval()
    ours, theirs = {}, {}
    for res, folder in folders.items():
        theirs[res] = get_folder_features(str(folder), model, num_workers=0,
                                          batch_size=PER_FOLDER, device=torch.device('cpu'),
                                          mode='clean', verbose=False)
        ours[res] = our_features(weights, folder, 'clean', tmp_path)
        assert_features_close(ours[res], theirs[res])
    for x, y in ((32, 64), (32, 256), (64, 256)):
        expected = library_fid(frechet_distance, theirs[x], theirs[y])
        assert scores.fid_from_features(ours[x], ours[y]) == pytest.approx(expected, rel=1e-6)
        # Subsets of the whole set: the subset draw (clean-fid's global RNG) cannot matter.
        # clean-fid sums in the features' dtype (float32): its own float32 rounding aside, the
        # formula is the same (equal on float64 features).
        ours_kid = scores.kernel_inception_distance(ours[x], ours[y], num_subsets=3)
        assert ours_kid == pytest.approx(kernel_distance(
            theirs[x].astype(np.float64), theirs[y].astype(np.float64), num_subsets=3), rel=1e-6)
        assert ours_kid == pytest.approx(kernel_distance(theirs[x], theirs[y], num_subsets=3),
                                         rel=1e-4)


# -------------------------------------------------------------------- plumbing of modes
def test_modes_share_weights_and_have_their_own_cache_entries(detector, shapes_folder, tmp_path,
                                                              monkeypatch):
    views = {mode: evaluation.get_detector(detector, 'cpu', mode) for mode in MODES}
    assert views['nvidia'] is detector and detector.mode == 'nvidia'
    assert {v.mode for v in views.values()} == set(MODES)
    for view in views.values():  # one set of weights
        assert view.fc.weight is detector.fc.weight and view.input_size == detector.input_size
    stats = {mode: stats_cache.real_features(view, str(shapes_folder), max_items=6,
                                             batch_size=3, cache_dir=tmp_path, progress=False)
             for mode, view in views.items()}
    names = {mode: s['path'] for mode, s in stats.items()}
    assert len(set(names.values())) == 3 and all(f'-{m}-' in names[m] for m in MODES)
    assert not np.allclose(stats['nvidia']['feats'], stats['pytorch_fid']['feats'], rtol=1e-3)
    assert not np.allclose(stats['nvidia']['feats'], stats['clean']['feats'], rtol=1e-3)
    monkeypatch.setattr(stats_cache, 'extract_dataset', lambda *a, **k: pytest.fail('recomputed'))
    for mode, view in views.items():  # read back from each mode's own entry
        again = stats_cache.real_features(view, str(shapes_folder), max_items=6,
                                          cache_dir=tmp_path, progress=False)
        np.testing.assert_array_equal(again['feats'], stats[mode]['feats'])


def test_unknown_mode_is_a_one_line_error(detector):
    from genforce_metrics_fid.metrics import FID
    for make in (lambda: evaluation.get_detector(detector, 'cpu', 'tf'),
                 lambda: FID(name='fid10', mode='tf'), lambda: InceptionV3FID(mode='tf')):
        with pytest.raises(scores.MetricError, match=r"unknown FID mode 'tf': use nvidia .*"
                                                     r"pytorch_fid .* clean") as info:
            make()
        assert '\n' not in str(info.value)
    with pytest.raises(scores.MetricError, match="FID mode 'clean' needs the genforce Inception"):
        evaluation.get_detector(torch.nn.Linear(2, 2), 'cpu', 'clean')


@pytest.mark.slow
def test_metrics_and_evaluate_generator_take_the_mode(detector, tiny_generator, shapes_folder,
                                                      tmp_path):
    from genforce_metrics_fid.metrics import FID, KID
    common = dict(dataset=str(shapes_folder), batch_size=5, num_workers=0, progress=False,
                  cache_dir=str(tmp_path), inception=detector, kid_subsets=5)
    shared: dict = {}
    clean = {}
    for metric in (FID(name='fid10', mode='clean', **common),
                   KID(name='kid10', mode='clean', **common)):
        clean.update(metric.evaluate_model(tiny_generator, shared=shared))
    assert len(shared) == 1  # one session: the generated features are shared
    direct = evaluation.evaluate_generator(
        tiny_generator, dataset=str(shapes_folder), num_gen=10, batch_size=5, mode='clean',
        metrics=('fid10', 'kid10'), inception=detector, cache_dir=tmp_path, progress=False)
    assert clean['fid10'] == pytest.approx(direct['fid10'], rel=1e-9)
    nvidia = FID(name='fid10', **common).evaluate_model(tiny_generator, shared=shared)
    assert len(shared) == 2 and nvidia['fid10'] != pytest.approx(clean['fid10'], rel=1e-3)
    # A prefix tells the modes' keys apart (as mmengine's evaluate() does).
    prefixed = FID(name='fid10', mode='clean', prefix='clean', **common).evaluate_model(
        tiny_generator, shared=shared)
    assert prefixed == {'clean/fid10': clean['fid10']}


def test_fid_stats_command_takes_the_mode(shapes_zip, tmp_path, capsys, monkeypatch):
    from genforce_core.cli.main import main
    # The command's own path (file → get_detector → cache) with a small fast network.
    monkeypatch.setattr(evaluation, 'load_inception', lambda *a, **k: random_inception(0))
    args = ['fid-stats', str(shapes_zip), '--inception', str(tmp_path / 'w.pth'),
            '--max-items', '4', '--cache-dir', str(tmp_path), '--batch-size', '4',
            '--num-workers', '0']
    assert main(args + ['--mode', 'clean']) == 0
    assert main(args) == 0
    files = sorted(p.name for p in tmp_path.glob('*.npz'))
    assert len(files) == 2 and [f for f in files if '-4-clean-' in f] and \
        [f for f in files if '-4-nvidia-' in f]
    assert '4 images: statistics in' in capsys.readouterr().out
