"""The detector: TF resize, both weight formats, restricted archive reading, weight lookup."""
from __future__ import annotations

import hashlib
import pickle
import warnings
import zipfile

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genforce_metrics_fid import weights as W
from genforce_metrics_fid.inception import tf_resize_bilinear
from genforce_metrics_fid.testing import SMALL_INPUT, random_inception


def test_tf_resize_follows_tf1_resize_bilinear():
    # TF-1 resize_bilinear (align_corners=False): out j samples in j * 2/4 = 0, .5, 1, 1.5
    x = torch.tensor([[[[10.0, 30.0]]]]).expand(1, 1, 2, 2)
    out = tf_resize_bilinear(x, 4)
    assert out[0, 0, 0].tolist() == [10.0, 20.0, 30.0, 30.0]
    # Same as sampling the pixel grid at dst * in / out with border clamping (grid_sample).
    img = torch.randint(0, 256, (2, 3, 37, 53)).double()
    theta = torch.tensor([[1 + 0.0, 0, 1 / 53 - 1 / 299], [0, 1, 1 / 37 - 1 / 299]],
                         dtype=torch.float64)
    grid = F.affine_grid(theta[None].expand(2, 2, 3), [2, 3, 299, 299], align_corners=False)
    ref = F.grid_sample(img, grid, 'bilinear', 'border', align_corners=False)
    torch.testing.assert_close(tf_resize_bilinear(img, 299), ref, atol=1e-9, rtol=0)


def test_features_shapes_and_input_checks(detector):
    img = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    feats, logits = detector(img)
    assert feats.shape == (3, 2048) and logits.shape == (3, 1008)
    assert torch.isfinite(feats).all() and feats.std() > 0
    gray = detector(img[:, :1])[0]  # one channel is repeated to RGB
    torch.testing.assert_close(gray, detector(img[:, :1].expand(-1, 3, -1, -1))[0])
    with pytest.raises(ValueError, match=r'expected images \[N, 3, H, W\]'):
        detector(img[0])


def test_pytorch_fid_state_dict_loads(tmp_path, detector, monkeypatch):
    state = {k: v for k, v in detector.state_dict().items()
             if not k.endswith('num_batches_tracked')}
    path = tmp_path / 'pt_inception-2015-12-05-6726825d.pth'
    torch.save(state, path)
    net = W.load_inception(path)
    net.input_size = SMALL_INPUT
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for a, b in zip(net(img), detector(img)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # A kernel stored in TF's HWIO layout is transposed on load.
    hwio = dict(state, **{'Mixed_6b.branch7x7_2.conv.weight':
                          state['Mixed_6b.branch7x7_2.conv.weight'].permute(2, 3, 1, 0)})
    torch.save(hwio, tmp_path / 'hwio.pth')
    torch.testing.assert_close(W.load_inception(tmp_path / 'hwio.pth').state_dict(),
                               W.load_inception(path).state_dict(), rtol=0, atol=0)
    # A wrong file names the keys that do not fit.
    del state['Mixed_6b.branch1x1.conv.weight']
    torch.save(state, tmp_path / 'bad.pth')
    with pytest.raises(W.InceptionWeightsError, match=r"missing \['Mixed_6b.branch1x1"):
        W.load_inception(tmp_path / 'bad.pth')


class _TFConv(nn.Module):
    """A conv of NVIDIA's archive: TF names, batch norm without scale."""

    def __init__(self, weight, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.beta = nn.Parameter(bn.bias.detach().clone())
        self.register_buffer('mean', bn.running_mean.clone())
        self.register_buffer('var', bn.running_var.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta.sum()


def nvidia_style_module(net) -> nn.Module:
    """A module tree with the TF graph names of NVIDIA's inception-2015-12-05.pt."""
    root = nn.Module()
    modules = dict(net.named_modules())
    for ours, theirs in W.TF_NAMES.items():
        parent = root
        *path, leaf = theirs.split('.')
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        basic = modules[ours]
        parent.add_module(leaf, _TFConv(basic.conv.weight.detach(), basic.bn))
    root.output = nn.Linear(2048, 1008)
    root.output.load_state_dict(net.fc.state_dict())
    return root


class _Scriptable(nn.Module):
    def __init__(self, tree: nn.Module):
        super().__init__()
        self.layers = tree.layers
        self.output = tree.output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(x)


def write_nvidia_style_archive(net, path) -> None:
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(_Scriptable(nvidia_style_module(net))), str(path))


def test_torchscript_archive_gives_the_same_features(tmp_path, detector, monkeypatch):
    path = tmp_path / 'inception-2015-12-05.pt'
    write_nvidia_style_archive(detector, path)
    # Reading must not run the archive's code: make any TorchScript load fail loudly.
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: pytest.fail('ran torch.jit.load'))
    tensors = W.read_torchscript_tensors(path)
    assert 'layers.mixed_10.tower_1.mixed.conv_1.weight' in tensors
    net = W.load_inception(path)
    net.input_size = SMALL_INPUT
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for a, b in zip(net(img), detector(img)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_pth_and_torchscript_of_the_same_parameters_agree(tmp_path):
    net = random_inception(seed=3)
    torch.save(net.state_dict(), tmp_path / 'a.pth')
    write_nvidia_style_archive(net, tmp_path / 'b.pt')
    a, b = W.load_inception(tmp_path / 'a.pth'), W.load_inception(tmp_path / 'b.pt')
    a.input_size = b.input_size = SMALL_INPUT
    img = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8)
    torch.testing.assert_close(a(img)[0], b(img)[0], rtol=0, atol=0)


def test_torchscript_list_tags_are_read(tmp_path, monkeypatch):
    # A scripted conv stores stride/padding through torch.jit._pickle.build_intlist.
    conv = nn.Conv2d(3, 4, 3, stride=2)
    path = tmp_path / 'conv.pt'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(conv), str(path))
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: pytest.fail('ran torch.jit.load'))
    tensors = W.read_torchscript_tensors(path)
    assert torch.equal(tensors['weight'], conv.weight) and torch.equal(tensors['bias'], conv.bias)


def test_archive_with_foreign_globals_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))

    path = tmp_path / 'evil.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('evil/data.pkl', pickle.dumps(Evil(), protocol=2))
    with pytest.raises(W.InceptionWeightsError,
                       match=r'evil\.pt: it references __builtin__\.print, .* nothing in it'):
        W.read_torchscript_tensors(path)


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv('GENFORCE_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    with pytest.raises(W.InceptionWeightsError) as info:
        W.resolve_weights(None, url=(tmp_path / 'nowhere' / W.FILE_NAMES[1]).as_uri())
    text = str(info.value)
    assert str(tmp_path / 'cache' / 'inception' / 'inception-2015-12-05.pt') in text
    assert 'GENFORCE_INCEPTION_WEIGHTS' in text and W.NVIDIA_URL in text
    assert 'downloading file://' in text
    monkeypatch.setenv(W.ENV_WEIGHTS, str(tmp_path / 'missing.pt'))
    with pytest.raises(W.InceptionWeightsError, match=r'missing.pt \(from the \$GENFORCE_INC'):
        W.resolve_weights(None)


def test_download_checks_sha256(tmp_path, monkeypatch):
    source = tmp_path / 'src' / W.FILE_NAMES[1]
    source.parent.mkdir()
    source.write_bytes(b'not really inception')
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    # The known prefix of pytorch-fid's file does not match: refused and deleted.
    with pytest.raises(ValueError, match='sha256 of the downloaded'):
        W.download_weights(source.as_uri(), tmp_path / 'dl')
    assert not list((tmp_path / 'dl').iterdir())
    got = W.download_weights(source.as_uri(), tmp_path / 'dl', sha256=digest)
    assert got.read_bytes() == source.read_bytes()
    # A file in the cache folder is found without downloading.
    monkeypatch.setenv('GENFORCE_CACHE_DIR', str(tmp_path))
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    (tmp_path / 'inception').mkdir()
    (tmp_path / 'inception' / W.FILE_NAMES[0]).write_bytes(b'x')
    assert W.resolve_weights(None, url=None) == tmp_path / 'inception' / W.FILE_NAMES[0]
