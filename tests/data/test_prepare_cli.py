"""`genforce prepare-dataset`, the writer's atomicity, and the built-in shapes dataset."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from genforce_core.data import (
    ImageDataset,
    ensure_builtin_dataset,
    make_shapes_images,
    read_dataset_meta,
    write_dataset,
)
from genforce_core.data.prepare import center_crop_wide
from genforce_core.errors import DatasetError


@pytest.fixture
def photo_folder(tmp_path):
    """Non-square photos of different sizes, with a labels file."""
    root = tmp_path / 'photos'
    rng = np.random.default_rng(0)
    names = []
    for i, (w, h) in enumerate([(40, 30), (30, 50), (64, 64), (33, 21)]):
        name = f'{"xy"[i % 2]}/p{i}.{"png" if i % 2 else "jpg"}'
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(root / name)
        names.append(name)
    names.sort()  # the order of the source and of the dataset written from it
    labels = tmp_path / 'labels.json'
    labels.write_text(json.dumps({n: i % 2 for i, n in enumerate(names)}))
    return root, names, labels


@pytest.mark.parametrize('fmt', ['zip', 'lmdb'])
def test_cli_writes_dataset(cli_main, photo_folder, tmp_path, fmt, capsys):
    root, names, labels = photo_folder
    dest = tmp_path / ('out.zip' if fmt == 'zip' else 'out_lmdb')
    argv = ['prepare-dataset', str(root), str(dest), '--resolution', '16', '--transform',
            'center-crop', '--labels', str(labels)]
    assert cli_main(argv + (['--format', 'lmdb'] if fmt == 'lmdb' else [])) == 0
    ds = ImageDataset(dest, use_labels=True)
    assert (ds.num_images, ds.resolution, ds.label_dim, ds.metainfo['format']) == (4, 16, 2, fmt)
    assert [ds.get_label(i).argmax() for i in range(4)] == [0, 1, 0, 1]
    square = names.index('x/p2.jpg')  # 64x64: center-crop is a plain Lanczos resize
    expected = np.asarray(Image.open(root / names[square]).resize((16, 16), Image.LANCZOS))
    np.testing.assert_array_equal(ds[square]['img'].numpy().transpose(1, 2, 0), expected)
    assert cli_main(argv) == 2  # DEST exists
    assert 'already exists' in capsys.readouterr().err


def test_cli_nvidia_layout_and_max_images(cli_main, photo_folder, tmp_path):
    root, _, labels = photo_folder
    dest = tmp_path / 'nv.zip'
    assert cli_main(['prepare-dataset', str(root), str(dest), '--resolution', '8',
                     '--max-images', '3', '--labels', str(labels)]) == 0
    with zipfile.ZipFile(dest) as zf:
        assert sorted(zf.namelist()) == ['00000/img00000000.png', '00000/img00000001.png',
                                         '00000/img00000002.png', 'dataset.json']
        table = json.loads(zf.read('dataset.json'))
    assert table['labels'] == [['00000/img00000000.png', 0], ['00000/img00000001.png', 1],
                               ['00000/img00000002.png', 0]]
    # A zip is also a valid source; its labels come along.
    again = tmp_path / 'again'
    assert cli_main(['prepare-dataset', str(dest), str(again), '--format', 'lmdb']) == 0
    assert ImageDataset(again, use_labels=True).label_dim == 2


def test_cli_errors_name_the_entry(cli_main, photo_folder, tmp_path, capsys):
    root, names, labels = photo_folder
    assert cli_main(['prepare-dataset', str(root), str(tmp_path / 'a.zip'), '--resolution',
                     '16', '--transform', 'none']) == 2
    assert f'{names[0]} is 40x30, not 16x16' in capsys.readouterr().err
    labels.write_text(json.dumps({'labels': [[names[0], 1], ['x/ghost.png', 0]]}))
    assert cli_main(['prepare-dataset', str(root), str(tmp_path / 'b.zip'), '--resolution',
                     '16', '--labels', str(labels)]) == 2
    assert "'x/ghost.png' names no image" in capsys.readouterr().err
    labels.write_text(json.dumps({'labels': [[names[0], 1]]}))
    assert cli_main(['prepare-dataset', str(root), str(tmp_path / 'c.zip'), '--resolution',
                     '16', '--labels', str(labels)]) == 2
    assert f'{names[1]} has no label' in capsys.readouterr().err
    assert not any('.tmp' in p.name for p in tmp_path.iterdir())


def test_center_crop_wide_letterboxes():
    img = Image.fromarray(np.full((30, 80, 3), 200, np.uint8))
    out = np.asarray(center_crop_wide(img, 16))
    assert out.shape == (16, 16, 3)
    assert (out[:4] == 0).all() and (out[12:] == 0).all() and (out[4:12] == 200).all()


def test_writer_is_atomic(tmp_path):
    def images():
        yield 'a.png', np.zeros((4, 4, 3), np.uint8)
        raise KeyboardInterrupt  # a killed run

    for fmt in ('zip', 'lmdb'):
        with pytest.raises(KeyboardInterrupt):
            write_dataset(images(), tmp_path / f'd.{fmt}', fmt, progress=False)
        assert list(tmp_path.iterdir()) == []
    bad = [('a.png', np.zeros((4, 4, 3), np.uint8)), ('b.png', np.zeros((5, 5, 3), np.uint8))]
    with pytest.raises(DatasetError, match=r'b\.png has shape \(5, 5, 3\)'):
        write_dataset(bad, tmp_path / 'x.zip', progress=False)


def test_builtin_shapes_deterministic(tmp_path, capsys):
    first = [a for _, a in make_shapes_images(20, 16, seed=3)]
    assert all(a.shape == (16, 16, 3) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, (a for _, a in
                                                              make_shapes_images(20, 16, seed=3))))
    assert not np.array_equal(first[0], next(make_shapes_images(1, 16, seed=4))[1])
    one = ensure_builtin_dataset(tmp_path / 'a', resolution=16, num_images=50)
    two = ensure_builtin_dataset(tmp_path / 'b', resolution=16, num_images=50)
    assert one.name == 'shapes16.zip' and one.read_bytes() == two.read_bytes()
    assert str(one) in capsys.readouterr().out
    mtime = one.stat().st_mtime_ns
    assert ensure_builtin_dataset(tmp_path / 'a', resolution=16, num_images=50) == one
    assert one.stat().st_mtime_ns == mtime  # reused
    assert read_dataset_meta(one)['num_images'] == 50
    ensure_builtin_dataset(tmp_path / 'a', resolution=16, num_images=60)  # stale: rewritten
    ds = ImageDataset(one, use_labels=True)
    assert ds.num_images == 60 and ds.label_dim == 15  # shape, colour, ground
    lm = ImageDataset(ensure_builtin_dataset(tmp_path / 'a', resolution=16, num_images=60,
                                             fmt='lmdb'))
    np.testing.assert_array_equal(lm[7]['img'].numpy(), ds[7]['img'].numpy())


def test_builtin_is_fast(tmp_path):
    import time

    start = time.perf_counter()
    ensure_builtin_dataset(tmp_path, resolution=32, num_images=1000)
    assert time.perf_counter() - start < 5
