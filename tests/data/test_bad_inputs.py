"""Every bad input raises DatasetError naming the entry; skip_bad drops and counts them."""
from __future__ import annotations

import json
import zipfile

import lmdb
import numpy as np
import pytest

from genforce_core.data import ImageDataset, write_dataset
from genforce_core.errors import DatasetError

GARBAGE = b'\x89PNG\r\n\x1a\n' + b'not really a png' * 4


def _truncate(path, keep: int = 60) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_corrupt_png_in_folder(image_folder):
    root, names, *_ = image_folder
    (root / names[2]).write_bytes(GARBAGE)
    with pytest.raises(DatasetError, match=names[2]):
        ImageDataset(root)


def test_truncated_png_in_folder_fails_at_getitem(image_folder):
    root, names, *_ = image_folder
    _truncate(root / names[1])  # the header survives: detected when decoding
    ds = ImageDataset(root)
    with pytest.raises(DatasetError, match=rf'{names[1]}: cannot decode'):
        ds[ds.names.index(names[1])]


def test_skip_bad_reports_count(image_folder):
    root, names, *_ = image_folder
    (root / names[0]).write_bytes(GARBAGE)
    _truncate(root / names[3])
    with pytest.warns(UserWarning, match=r'Skipped 2 unreadable image\(s\) of 6'):
        ds = ImageDataset(root, skip_bad=True)
    assert ds.num_images == 4 and names[0] not in ds.names and names[3] not in ds.names
    ds[3]


def test_corrupt_png_in_zip(image_folder, tmp_path):
    root, names, arrays, _ = image_folder
    path = write_dataset(list(zip(names, arrays)), tmp_path / 'd.zip', progress=False)
    bad = tmp_path / 'bad.zip'
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, 'w') as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, GARBAGE if item == '00000/img00000004.png' else data)
    with pytest.raises(DatasetError, match=r'bad\.zip:00000/img00000004\.png'):
        ImageDataset(bad)


def test_corrupt_png_in_lmdb(image_folder, tmp_path):
    root, names, arrays, _ = image_folder
    path = write_dataset(list(zip(names, arrays)), tmp_path / 'd', 'lmdb', progress=False)
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        good = txn.get(b'00000002')
        txn.put(b'00000002', good[:70])  # truncated: header fine, pixels missing
        txn.put(b'00000003', GARBAGE)
    env.close()
    with pytest.raises(DatasetError, match='LMDB key 00000003'):
        ImageDataset(path)
    with pytest.warns(UserWarning, match='Skipped 2'):
        assert ImageDataset(path, skip_bad=True).num_images == 4


def test_non_square(tmp_path, helpers):
    helpers.write_folder(tmp_path, helpers.random_images(2, 8))
    from PIL import Image

    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / 'wide.png')
    with pytest.raises(DatasetError, match=r'wide\.png is 12x8, not square.*prepare-dataset'):
        ImageDataset(tmp_path)


def test_wrong_resolution(image_folder, helpers):
    root, names, *_ = image_folder
    with pytest.raises(DatasetError, match=rf'{names[0]} is 16x16 .*resolution=32.*'
                                           r'--resolution 32'):
        ImageDataset(root, resolution=32)
    helpers.write_folder(root / 'z', helpers.random_images(1, 8))
    with pytest.raises(DatasetError, match=r'z/a/img_000\.png is 8x8 but the first image'):
        ImageDataset(root)


def test_mixed_modes(image_folder, helpers):
    root, *_ = image_folder
    helpers.write_folder(root / 'z', helpers.random_images(1, 16, channels=4))
    with pytest.raises(DatasetError, match=r'z/a/img_000\.png has colour mode RGBA'):
        ImageDataset(root)


def test_labels_mismatch(image_folder):
    root, names, _, labels = image_folder
    table = dict(labels)
    del table[names[4]]
    (root / 'dataset.json').write_text(json.dumps({'labels': [[k, v] for k, v in table.items()]}))
    with pytest.raises(DatasetError, match=rf'{names[4]} has no label'):
        ImageDataset(root, use_labels=True)
    table = dict(labels, **{'a/ghost.png': 1})
    (root / 'dataset.json').write_text(json.dumps({'labels': [[k, v] for k, v in table.items()]}))
    with pytest.raises(DatasetError, match=r"'a/ghost\.png' names no image"):
        ImageDataset(root, use_labels=True)
    ImageDataset(root)  # labels are only checked when used
    table = dict(labels, **{names[0]: [1.0, 2.0]})
    (root / 'dataset.json').write_text(json.dumps({'labels': [[k, v] for k, v in table.items()]}))
    with pytest.raises(DatasetError, match=r"label of image 'b/img_001\.png' is 1 \(a class "
                                           r"index\) but the label of 'a/img_000\.png' is a "
                                           'vector of 2 numbers'):
        ImageDataset(root, use_labels=True)


def test_empty(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('no images here')
    with pytest.raises(DatasetError, match=r'empty \(folder\) holds no images'):
        ImageDataset(tmp_path / 'empty')
    with zipfile.ZipFile(tmp_path / 'e.zip', 'w') as zf:
        zf.writestr('dataset.json', '{"labels": null}')
    with pytest.raises(DatasetError, match=r'e\.zip \(zip\) holds no images'):
        ImageDataset(tmp_path / 'e.zip')


def test_not_a_zip(tmp_path):
    (tmp_path / 'x.zip').write_bytes(b'nope')
    with pytest.raises(DatasetError, match=r'x\.zip is not a readable zip'):
        ImageDataset(tmp_path / 'x.zip')
