"""Model-zoo downloads: checksums, corrupt files, resume, file:// and local sources, the
entries of this plugin, download + convert of a zoo name, trust on first use only after a
successful conversion, and --from replacing a cached download."""
from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from genforce_converters.zoo_entries import ENTRIES
from genforce_core import zoo
from genforce_core.cli.main import main
from genforce_core.testing import ZOO_KEYS

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """A local HTTP server for ``/model.pkl`` that honours (or ignores) ``Range``."""

    def __init__(self, payload: bytes, honour_range: bool = True):
        self.payload, self.honour_range, self.ranges = payload, honour_range, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                if self.path != '/model.pkl':
                    self.send_error(404)
                    return
                data, status = server.payload, 200
                header = self.headers.get('Range')
                server.ranges.append(header)
                if header and server.honour_range:
                    start = int(header.split('=')[1].split('-')[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    data, status = data[start:], 206
                self.send_response(status)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/model.pkl'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_download_verifies_checksum(tmp_path):
    with _Server(PAYLOAD) as server:
        path = zoo.download_file(server.url, tmp_path / 'a' / 'model.pkl', SHA, progress=False)
        assert path.read_bytes() == PAYLOAD
        # Already there and intact: no second request.
        zoo.download_file(server.url, path, SHA, progress=False)
        assert len(server.ranges) == 1


def test_corrupt_download_is_rejected_and_deleted(tmp_path):
    corrupt = bytearray(PAYLOAD)
    corrupt[1000] ^= 0xFF
    with _Server(bytes(corrupt)) as server:
        dest = tmp_path / 'model.pkl'
        with pytest.raises(zoo.ZooError, match=f'checksum mismatch.*expected sha256 {SHA}'):
            zoo.download_file(server.url, dest, SHA, progress=False)
        assert not dest.exists() and not dest.with_name('model.pkl.part').exists()


@pytest.mark.parametrize('honour_range', [True, False])
def test_resume_partial_download(tmp_path, honour_range):
    dest = tmp_path / 'model.pkl'
    dest.with_name('model.pkl.part').write_bytes(PAYLOAD[:300_000])  # an interrupted download
    with _Server(PAYLOAD, honour_range=honour_range) as server:
        zoo.download_file(server.url, dest, SHA, progress=False)
    assert server.ranges == ['bytes=300000-']
    assert dest.read_bytes() == PAYLOAD  # also right when the server sent everything again


def test_file_url_and_local_path(tmp_path):
    src = tmp_path / 'official.pkl'
    src.write_bytes(PAYLOAD)
    a = zoo.download_file(src.as_uri(), tmp_path / 'a' / 'm.pkl', SHA, progress=False)
    b = zoo.download_file(str(src), tmp_path / 'b' / 'm.pkl', SHA, progress=False)
    assert a.read_bytes() == b.read_bytes() == PAYLOAD
    with pytest.raises(zoo.ZooError, match='does not exist'):
        zoo.download_file(str(tmp_path / 'missing.pkl'), tmp_path / 'c' / 'm.pkl', SHA)


def test_unknown_hash_needs_no_verify_then_is_enforced(tmp_path):
    src = tmp_path / 'official.pkl'
    src.write_bytes(PAYLOAD)
    dest = tmp_path / 'cache' / 'm.pkl'
    with pytest.raises(zoo.ZooError, match='no published sha256.*--no-verify'):
        zoo.download_file(str(src), dest, None, progress=False)
    assert not dest.exists()
    zoo.download_file(str(src), dest, None, verify=False, progress=False)
    assert dest.with_name('m.pkl.sha256').read_text().split()[0] == SHA
    # The recorded hash now protects the file: a changed source is rejected.
    dest.unlink()
    src.write_bytes(PAYLOAD[::-1])
    with pytest.raises(zoo.ZooError, match='checksum mismatch'):
        zoo.download_file(str(src), dest, None, progress=False)


def test_plugin_entries_are_complete_and_official():
    names = [e['name'] for e in ENTRIES]
    assert len(names) == len(set(names))
    families = {e['family'] for e in ENTRIES}
    assert {'stylegan', 'stylegan2', 'stylegan2ada', 'stylegan3'} <= families
    for entry in ENTRIES:
        assert ZOO_KEYS <= set(entry), entry['name']
        host = ('https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/'
                if entry['family'] == 'stylegan3' else 'https://nvlabs-fi-cdn.nvidia.com/')
        assert entry['url'].startswith(host)
        assert entry['sha256'] is None  # never guessed; see zoo_entries.py
    listed = {e['name'] for e in zoo.list_entries()}
    assert set(names) <= listed
    with pytest.raises(zoo.ZooError, match='did you mean stylegan2-ffhq1024'):
        zoo.get_entry('stylegan2-ffhq')


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch, official):
    """A zoo entry whose official file is a local StyleGAN2-ADA pickle."""
    from genforce_converters.testing import write_stylegan2ada_pickle

    src = write_stylegan2ada_pickle(tmp_path / 'tiny.pkl', official.G, official.D,
                                    official.g_kwargs, official.d_kwargs)
    entry = dict(name='tiny-official', family='stylegan2ada', resolution=32, dataset='test',
                 url=src.as_uri(), sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
                 converter='stylegan2ada_pth', fid=None)
    real = zoo.list_entries
    monkeypatch.setattr(zoo, 'list_entries', lambda: [*real(), entry])
    monkeypatch.setenv('GENFORCE_ZOO_CACHE', str(tmp_path / 'cache'))
    return entry


def test_zoo_download_converts(fake_zoo, tmp_path, capsys):
    assert main(['zoo', 'download', 'tiny-official']) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == tmp_path / 'cache' / 'tiny-official.pth' and out.is_file()
    assert (tmp_path / 'cache' / 'downloads' / 'tiny-official' / 'tiny.pkl').is_file()
    assert main(['zoo', 'list']) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith('tiny-official')]
    assert line and line[0].rstrip().endswith('yes')


def test_zoo_download_of_corrupt_file_fails_cleanly(fake_zoo, tmp_path, capsys):
    fake_zoo['sha256'] = '0' * 64
    assert main(['zoo', 'download', 'tiny-official']) == 1
    assert 'checksum mismatch' in capsys.readouterr().err
    assert not (tmp_path / 'cache' / 'tiny-official.pth').exists()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unverified_file_that_does_not_convert_is_never_trusted(fake_zoo, tmp_path, capsys):
    """--no-verify: a hostile file fails to convert, so its hash is not recorded and the
    download is deleted; a later use without --no-verify is refused, not trusted."""
    from genforce_converters.testing import write_malicious_pickle

    marker = tmp_path / 'pwned'
    (tmp_path / 'bad').mkdir()
    bad = write_malicious_pickle(tmp_path / 'bad' / 'tiny.pkl', marker)
    fake_zoo.update(sha256=None, url=bad.as_uri())
    raw = tmp_path / 'cache' / 'downloads' / 'tiny-official' / 'tiny.pkl'
    assert main(['zoo', 'download', 'tiny-official', '--no-verify']) == 1
    err = capsys.readouterr().err
    assert str(raw) in err and 'not recorded' in err
    assert not marker.exists()
    assert not raw.with_name('tiny.pkl.sha256').exists() and not raw.exists()
    assert not (tmp_path / 'cache' / 'tiny-official.pth').exists()
    assert main(['zoo', 'download', 'tiny-official']) == 1
    assert 'no published sha256' in capsys.readouterr().err


def test_unverified_file_is_recorded_only_once_converted(fake_zoo, tmp_path, capsys):
    fake_zoo['sha256'] = None
    raw = tmp_path / 'cache' / 'downloads' / 'tiny-official' / 'tiny.pkl'
    record = raw.with_name('tiny.pkl.sha256')
    assert main(['zoo', 'download', 'tiny-official', '--no-verify', '--no-convert']) == 0
    assert raw.is_file() and not record.exists()  # fetched, but not shown to convert
    assert main(['zoo', 'download', 'tiny-official', '--no-verify']) == 0
    assert record.read_text().split()[0] == _sha(tmp_path / 'tiny.pkl')
    assert (tmp_path / 'cache' / 'tiny-official.pth').is_file()


def test_from_replaces_the_cached_checkpoint(fake_zoo, tmp_path, capsys):
    assert main(['zoo', 'download', 'tiny-official']) == 0
    pth = tmp_path / 'cache' / 'tiny-official.pth'
    good = pth.read_bytes()
    pth.write_bytes(b'tampered')
    assert main(['zoo', 'download', 'tiny-official', '--from', str(tmp_path / 'tiny.pkl')]) == 0
    assert pth.read_bytes() != b'tampered' and len(pth.read_bytes()) == len(good)


@pytest.mark.parametrize('no_convert', [False, True])
def test_from_a_wrong_file_is_verified_although_cached(fake_zoo, tmp_path, capsys, no_convert):
    assert main(['zoo', 'download', 'tiny-official']) == 0
    capsys.readouterr()
    raw = tmp_path / 'cache' / 'downloads' / 'tiny-official' / 'tiny.pkl'
    pth = tmp_path / 'cache' / 'tiny-official.pth'
    before = _sha(raw), _sha(pth)
    wrong = tmp_path / 'wrong.pkl'
    wrong.write_bytes(b'not the official file')
    extra = ['--no-convert'] if no_convert else []
    assert main(['zoo', 'download', 'tiny-official', '--from', str(wrong), *extra]) == 1
    assert f'checksum mismatch for {wrong}' in capsys.readouterr().err
    assert (_sha(raw), _sha(pth)) == before  # the verified cache is left as it was


def test_from_is_checked_against_the_recorded_hash(fake_zoo, tmp_path, official, capsys):
    """Trust on first use: a later --from must match the recorded hash, also with --no-verify;
    after deleting the record, --from replaces the download, record and checkpoint."""
    from genforce_converters.testing import write_stylegan2ada_pickle

    fake_zoo['sha256'] = None
    other = write_stylegan2ada_pickle(tmp_path / 'other.pkl', official.G, None,
                                      official.g_kwargs, None)
    raw = tmp_path / 'cache' / 'downloads' / 'tiny-official' / 'tiny.pkl'
    record = raw.with_name('tiny.pkl.sha256')
    pth = tmp_path / 'cache' / 'tiny-official.pth'
    assert main(['zoo', 'download', 'tiny-official', '--no-verify']) == 0
    first = _sha(pth)
    capsys.readouterr()
    assert main(['zoo', 'download', 'tiny-official', '--no-verify', '--from', str(other)]) == 1
    err = capsys.readouterr().err
    assert 'checksum mismatch' in err and f'recorded in {record}' in err
    assert _sha(pth) == first and record.read_text().split()[0] == _sha(tmp_path / 'tiny.pkl')
    record.unlink()
    assert main(['zoo', 'download', 'tiny-official', '--no-verify', '--from', str(other)]) == 0
    assert raw.read_bytes() == other.read_bytes()
    assert record.read_text().split()[0] == _sha(other)
    assert _sha(pth) != first  # converted from the new file (no discriminator)
