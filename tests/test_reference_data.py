"""The reference data of the fidelity tests is part of the checkout, intact, and never optional."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from genforce_core.testing import TESTDATA_ENV, find_testdata

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO / 'tests' / 'testdata'
FOLDERS = sorted(p.name for p in TESTDATA.iterdir() if p.is_dir())


def test_reference_folders_exist():
    assert 'stylegan2ada_official_A' in FOLDERS


@pytest.mark.parametrize('name', FOLDERS)
def test_reference_files_match_their_checksums(name):
    folder = TESTDATA / name
    listed = {}
    for line in (folder / 'SHA256SUMS').read_text().splitlines():
        digest, file = line.split(maxsplit=1)
        listed[file] = digest
    present = {p.name for p in folder.iterdir()} - {'SHA256SUMS', 'README.md'}
    assert set(listed) == present, f'{name}: files and SHA256SUMS differ'
    for file, digest in listed.items():
        actual = hashlib.sha256((folder / file).read_bytes()).hexdigest()
        assert actual == digest, f'{name}/{file} changed (an LFS pointer or a line-ending filter?)'
    assert (folder / 'README.md').is_file()


def test_find_testdata_uses_the_checkout(monkeypatch):
    monkeypatch.delenv(TESTDATA_ENV, raising=False)
    path = find_testdata('stylegan2ada_official_A', REPO, ('meta.json', 'G.npz'))
    assert path == TESTDATA / 'stylegan2ada_official_A'


def test_missing_reference_data_raises(monkeypatch, tmp_path):
    monkeypatch.delenv(TESTDATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match='stylegan2ada_official_A'):
        find_testdata('stylegan2ada_official_A', tmp_path)
    with pytest.raises(FileNotFoundError, match='no_such.npz'):
        find_testdata('stylegan2ada_official_A', REPO, ('meta.json', 'no_such.npz'))


def test_env_override_is_used_and_never_silently_ignored(monkeypatch, tmp_path):
    copy = tmp_path / 'stylegan2ada_official_A'
    copy.mkdir()
    for file in ('meta.json', 'io.npz'):
        (copy / file).write_bytes(b'')
    for value in (tmp_path, copy):  # the folder holding it, or the folder itself
        monkeypatch.setenv(TESTDATA_ENV, str(value))
        assert find_testdata('stylegan2ada_official_A', REPO) == copy
    monkeypatch.setenv(TESTDATA_ENV, str(tmp_path / 'elsewhere'))
    with pytest.raises(FileNotFoundError, match=TESTDATA_ENV):
        find_testdata('stylegan2ada_official_A', REPO)  # the checkout's copy exists
