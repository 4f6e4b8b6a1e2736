"""Round trips through zip / LMDB, NVIDIA's zip layout, labels, x-flip and the registry."""
from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_core.data import (
    ImageDataset,
    ImageFolderDataset,
    LMDBDataset,
    ZipDataset,
    write_dataset,
)
from genforce_core.errors import DatasetError
from genforce_core.registry import DATASETS


def _pixels(ds) -> list[np.ndarray]:
    return [ds[i]['img'].numpy() for i in range(ds.num_images)]


@pytest.mark.parametrize('fmt', ['zip', 'lmdb'])
def test_round_trip_identical(image_folder, tmp_path, fmt):
    root, names, arrays, labels = image_folder
    src = ImageDataset(root)
    assert src.names == sorted(names)
    dest = write_dataset([(n, a) for n, a in zip(names, arrays)], tmp_path / f'out.{fmt}', fmt,
                         labels=labels, progress=False)
    assert not any('.tmp' in p.name for p in tmp_path.iterdir())
    ds = ImageDataset(dest, use_labels=True)
    assert ds.metainfo['format'] == fmt
    assert (ds.resolution, ds.num_channels, ds.label_dim, len(ds)) == (16, 3, 3, 6)
    for i, arr in enumerate(arrays):  # the writer keeps the order it was given
        item = ds[i]
        assert item['img'].dtype == torch.uint8 and item['img'].shape == (3, 16, 16)
        np.testing.assert_array_equal(item['img'].numpy(), arr.transpose(2, 0, 1))
        np.testing.assert_array_equal(item['label'].numpy(), np.eye(3)[labels[names[i]]])
        assert item['idx'] == i
    folder_by_name = dict(zip(src.names, _pixels(src)))
    for name, pixels in zip(names, _pixels(ds)):
        np.testing.assert_array_equal(folder_by_name[name], pixels)


def test_nvidia_zip_layout_with_labels(tmp_path):
    arrays = [np.full((8, 8, 3), i * 20, np.uint8) for i in range(4)]
    path = tmp_path / 'nv.zip'
    with zipfile.ZipFile(path, 'w') as zf:
        entries = []
        for i, arr in enumerate(arrays):
            name = f'00000/img{i:08d}.png'
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format='png')
            zf.writestr(name, buf.getvalue())
            entries.append([name, [6, 2, 0, 1][i]])
        zf.writestr('dataset.json', json.dumps({'labels': entries}))
    ds = ZipDataset(path, use_labels=True)
    assert ds.label_dim == 7 and ds.has_labels
    assert ds[0]['label'].argmax().item() == 6 and ds[3]['label'].argmax().item() == 1
    assert ds[2]['img'][0, 0, 0].item() == 40
    assert ImageDataset(path).label_dim == 0  # use_labels=False -> shape [0]
    assert ImageDataset(path)[0]['label'].shape == (0,)


def test_null_labels_and_vector_labels(tmp_path):
    arrays = [np.zeros((4, 4, 3), np.uint8)] * 3
    images = [(f'{i}.png', a) for i, a in enumerate(arrays)]
    plain = write_dataset(images, tmp_path / 'plain.zip', progress=False)
    with zipfile.ZipFile(plain) as zf:
        assert json.loads(zf.read('dataset.json'))['labels'] is None
    with pytest.raises(DatasetError, match='no labels'):
        ImageDataset(plain, use_labels=True)
    vec = {f'{i}.png': [0.5, float(i)] for i in range(3)}
    ds = ImageDataset(write_dataset(images, tmp_path / 'vec', 'lmdb', labels=vec,
                                    progress=False), use_labels=True)
    assert ds.label_dim == 2
    np.testing.assert_allclose(ds[2]['label'].numpy(), [0.5, 2.0])


def test_xflip_doubles_and_mirrors(image_folder):
    root, *_ = image_folder
    ds = ImageDataset(root, xflip=True)
    assert len(ds) == 12 and ds.num_images == 6
    for i in (0, 5):
        np.testing.assert_array_equal(ds[i + 6]['img'].numpy(), ds[i]['img'].numpy()[:, :, ::-1])
    assert ds[7]['idx'] == 7
    with pytest.raises(IndexError):
        ds[12]


def test_max_size_and_resolution(image_folder):
    root, *_ = image_folder
    ds = ImageDataset(root, max_size=4, resolution=16)
    assert ds.num_images == 4 and ds.names == sorted(ds.names)
    assert ImageDataset(root, max_size=4).names == ds.names  # fixed subset


def test_grayscale_dataset(tmp_path, helpers):
    helpers.write_folder(tmp_path, helpers.random_images(3, 8, channels=1))
    ds = ImageDataset(tmp_path, channels=1)
    assert ds[0]['img'].shape == (1, 8, 8)
    with pytest.raises(DatasetError, match=r'mode L .*channels=1'):
        ImageDataset(tmp_path)


def test_registry_aliases_and_format_check(image_folder, tmp_path):
    root, names, arrays, _ = image_folder
    for name in ('ImageDataset', 'ImageFolderDataset', 'ZipDataset', 'LMDBDataset'):
        assert DATASETS.get(name) is not None
    ds = DATASETS.build(dict(type='ImageFolderDataset', path=str(root), xflip=True))
    assert isinstance(ds, ImageFolderDataset) and len(ds) == 12
    with pytest.raises(DatasetError, match='expects a lmdb dataset'):
        LMDBDataset(root)
    with pytest.raises(DatasetError, match='does not exist'):
        ImageDataset(tmp_path / 'missing')


@pytest.mark.parametrize('fmt', ['zip', 'lmdb'])
def test_pickle_reopens_handle(image_folder, tmp_path, fmt):
    root, names, arrays, _ = image_folder
    dest = write_dataset(list(zip(names, arrays)), tmp_path / f'p.{fmt}', fmt, progress=False)
    ds = ImageDataset(dest)
    first = ds[0]['img']
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0]['img'], first)

