"""Hostile VGG16 weight files: pickled code, TorchScript, decompression bombs, torch's advice.

Every file is built here. A pickled ``os.system('touch MARKER')`` proves by the missing
marker that nothing ran; every refusal must be a VGGWeightsError (a GenforceError) that names
the file and never repeats torch's advice to load with ``weights_only=False``.
"""
from __future__ import annotations

import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_core.errors import GenforceError
from genforce_inversion.perceptual import VGG16Features, VGGWeightsError


def system_pickle(marker) -> bytes:
    """Protocol 2, by hand: ``posix.system('touch MARKER')``."""
    command = f'touch {marker}'.encode()
    return b'\x80\x02cposix\nsystem\nX%s%s\x85R.' % (struct.pack('<I', len(command)), command)


def rewrite_zip(src, dst, member_suffix: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            zout.writestr(info, data if info.filename.endswith(member_suffix) else zin.read(info))


def torchscript_archive(path) -> None:
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(path))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / 'MARKER'
    yield path
    assert not path.exists(), 'the pickled command ran'


@pytest.fixture
def no_code_loading(monkeypatch):
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: pytest.fail('ran torch.jit.load'))


def refusal(path, *words: str) -> VGGWeightsError:
    with pytest.raises(VGGWeightsError) as info:
        VGG16Features(weights=path)
    err, text = info.value, str(info.value)
    assert isinstance(err, GenforceError) and str(path) in text, text
    for word in words:
        assert word in text, text
    assert 'weights_only' not in text and 'WeightsUnpickler' not in text, text
    assert err.__cause__ is None and err.__context__ is None  # torch's message is not chained
    return err


def test_torch_zip_with_os_system_is_refused_by_name(tmp_path, marker):
    torch.save({'features.0.weight': torch.zeros(2)}, tmp_path / 'good.pth')
    path = tmp_path / 'vgg16-397923af.pth'
    rewrite_zip(tmp_path / 'good.pth', path, '/data.pkl', system_pickle(marker))
    refusal(path, 'posix.system', 'nothing in it was run')


def test_legacy_pickle_with_os_system_is_refused_by_name(tmp_path, marker):
    torch.save({'features.0.weight': torch.zeros(2)}, tmp_path / 'legacy.pth',
               _use_new_zipfile_serialization=False)
    path = tmp_path / 'vgg16-evil.pth'
    path.write_bytes(system_pickle(marker) + (tmp_path / 'legacy.pth').read_bytes())
    refusal(path, 'posix.system', 'nothing in it was run')


def test_torchscript_archives_are_refused_without_running_them(tmp_path, marker,
                                                               no_code_loading):
    path = tmp_path / 'vgg16.pt'  # NVIDIA's VGG16 is a TorchScript program
    torchscript_archive(path)
    refusal(path, 'TorchScript archive', 'nothing in it was run', 'vgg16-397923af.pth')
    evil = tmp_path / 'evil_vgg16.pt'
    rewrite_zip(path, evil, '/data.pkl', system_pickle(marker))
    refusal(evil, 'posix.system', 'nothing in it was run')


def test_a_decompression_bomb_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    torch.save({'features.0.weight': torch.zeros(2)}, tmp_path / 'good.pth')
    path = tmp_path / 'bomb.pth'
    with zipfile.ZipFile(tmp_path / 'good.pth') as zin, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            if not info.filename.endswith('/data/0'):
                zout.writestr(info, zin.read(info))
                continue
            with zout.open(info.filename, 'w') as member:  # 256 MiB of zeros, ~250 KB
                for _ in range(256):
                    member.write(bytes(1 << 20))
    assert path.stat().st_size < 2 << 20
    monkeypatch.setattr(torch, 'load', lambda *a, **k: pytest.fail('torch.load was reached'))
    refusal(path, "'good/data/0'", 'compressed', 'nothing was inflated')


def test_torchs_advice_to_turn_off_weights_only_never_reaches_the_user(tmp_path):
    torch.save({'features.0.weight': torch.zeros(2)}, tmp_path / 'good.pth')
    path = tmp_path / 'broken.pth'
    rewrite_zip(tmp_path / 'good.pth', path, '/data.pkl', b'\x80\x02\xff.')  # bad opcode
    refusal(path, 'could not be read', 'Unsupported operand 255')


def test_invert_cli_refuses_an_evil_vgg_file(tmp_path, marker, gan_checkpoint, capsys):
    from genforce_core.cli.main import main

    torch.save({'features.0.weight': torch.zeros(2)}, tmp_path / 'good.pth')
    path = tmp_path / 'vgg16-397923af.pth'
    rewrite_zip(tmp_path / 'good.pth', path, '/data.pkl', system_pickle(marker))
    image = tmp_path / 'x.png'
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(image)
    code = main(['invert', str(gan_checkpoint), str(image), '--steps', '1', '--vgg', str(path),
                 '--out', str(tmp_path / 'out'), '--device', 'cpu'])
    err = capsys.readouterr().err
    assert code == 1 and str(path) in err and 'posix.system' in err, err
    assert 'weights_only' not in err and 'Traceback' not in err
    assert not (tmp_path / 'out' / 'x_ws.npy').exists()
