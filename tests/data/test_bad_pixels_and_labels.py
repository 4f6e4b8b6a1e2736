"""16-bit and odd-mode images become correct 8-bit pixels; hostile labels fail with a named error.

Each test writes the bad file itself and checks the value that comes back or the error text.
"""
from __future__ import annotations

import json
import re
import struct
import warnings
import zipfile
import zlib

import lmdb
import numpy as np
import pytest
from PIL import Image

from genforce_core.data import ImageDataset, load_labels_file, readers, write_dataset
from genforce_core.data.images import to_8bit
from genforce_core.errors import DatasetError

# 16-bit samples and the 8-bit value each must become (the high byte).
SAMPLES16 = [0x0000, 0x00FF, 0x0100, 0x1234, 0x7FFF, 0x8000, 0xABCD, 0xFFFF]


def png16(arr: np.ndarray) -> bytes:
    """A 16-bit PNG of a uint16 HxWxC array (C = 1 grey, 3 RGB, 4 RGBA), written by hand."""
    h, w, c = arr.shape
    colour_type = {1: 0, 3: 2, 4: 6}[c]
    rows = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))

    header = struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows))
            + chunk(b'IEND', b''))


def image16(channels: int) -> np.ndarray:
    """A 4x4 uint16 image whose pixels walk through SAMPLES16 (channel k shifted by k)."""
    flat = np.array(SAMPLES16 * 2, np.uint16)
    planes = [np.roll(flat, k).reshape(4, 4) for k in range(channels)]
    return np.stack(planes, axis=-1)


def read_zip_pixels(path) -> np.ndarray:
    with zipfile.ZipFile(path) as zf:
        with Image.open(zf.open('00000/img00000000.png')) as img:
            return np.asarray(img)


# ------------------------------------------------------------------------------- pixels
@pytest.mark.parametrize('channels', [1, 3, 4])
def test_prepare_scales_16bit_png_to_8bit(cli_main, tmp_path, channels):
    src = tmp_path / 'src'
    src.mkdir()
    arr = image16(channels)
    (src / 'deep.png').write_bytes(png16(arr))
    dest = tmp_path / 'out.zip'
    assert cli_main(['prepare-dataset', str(src), str(dest)]) == 0
    got = read_zip_pixels(dest)
    expected = (arr[:, :, :3] >> 8).astype(np.uint8)  # RGBA -> RGB drops alpha
    if channels == 1:
        expected = np.repeat(expected, 3, axis=2)
    assert got[1, 1, 0] == 128  # 0x8000, not 255
    np.testing.assert_array_equal(got, expected)


def test_prepare_16bit_grey_to_one_channel(cli_main, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    arr = image16(1)[:, :, 0]
    Image.fromarray(arr).save(src / 'grey.png')  # PIL writes mode I;16 as a 16-bit PNG
    dest = tmp_path / 'out.zip'
    assert cli_main(['prepare-dataset', str(src), str(dest), '--channels', '1']) == 0
    np.testing.assert_array_equal(read_zip_pixels(dest), arr >> 8)


def test_dataset_reads_16bit_grey_folder(tmp_path):
    arr = image16(1)[:, :, 0]
    for i in range(2):
        Image.fromarray(arr).save(tmp_path / f'g{i}.png')
    ds = ImageDataset(tmp_path, channels=1)
    np.testing.assert_array_equal(ds[0]['img'].numpy()[0], arr >> 8)
    np.testing.assert_array_equal(ds[1]['img'].numpy()[0], arr >> 8)


def test_to_8bit_other_modes():
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # PIL warns on palette + byte transparency -> RGB
        pal = Image.new('P', (2, 2))
        pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
        pal.putpixel((1, 1), 1)
        pal.info['transparency'] = b'\x00\xff'
        assert np.asarray(to_8bit(pal, 'RGB'))[1, 1].tolist() == [40, 50, 60]
        assert np.asarray(to_8bit(pal, 'RGBA'))[0, 0].tolist() == [10, 20, 30, 0]
    assert np.asarray(to_8bit(Image.new('1', (2, 2), 1), 'L')).tolist() == [[255] * 2] * 2
    assert np.asarray(to_8bit(Image.new('LA', (1, 1), (77, 0)), 'RGB')).tolist() == [[[77] * 3]]
    assert np.asarray(to_8bit(Image.new('CMYK', (1, 1), (0, 0, 0, 0)), 'RGB'))[0, 0].tolist() \
        == [255] * 3
    wide = Image.fromarray(np.array([[0x8000, 0xFFFF]], np.int32))
    assert wide.mode == 'I'
    assert np.asarray(to_8bit(wide, 'L')).tolist() == [[128, 255]]
    with pytest.raises(DatasetError, match=r'mode I image holds values outside 0\.\.65535'):
        to_8bit(Image.fromarray(np.array([[70000]], np.int32)), 'RGB')
    with pytest.raises(DatasetError, match=r'colour mode F is not supported'):
        to_8bit(Image.fromarray(np.array([[0.5]], np.float32)), 'RGB')


def test_other_image_formats_are_refused(cli_main, tmp_path, capsys, helpers):
    src = tmp_path / 'src'
    helpers.write_folder(src, helpers.random_images(2, 8))
    Image.new('RGB', (8, 8)).save(src / 'sneaky.png', format='TIFF')  # named .png, is TIFF
    assert cli_main(['prepare-dataset', str(src), str(tmp_path / 'o.zip')]) == 2
    err = capsys.readouterr().err
    assert 'sneaky.png' in err and 'not a PNG, JPEG, WebP or BMP' in err
    assert not (tmp_path / 'o.zip').exists()
    with pytest.raises(DatasetError, match=r'sneaky\.png: cannot read the image \(not a PNG'):
        ImageDataset(src)
    with pytest.warns(UserWarning, match='Skipped 1'):
        assert cli_main(['prepare-dataset', str(src), str(tmp_path / 'o.zip'), '--skip-bad']) == 0


# ------------------------------------------------------------------------------- labels
BAD_LABELS = [
    pytest.param(10**12, r'1000000000000; a class index must be 0 <= label < 100000', id='huge'),
    pytest.param(-1, r'-1; a class index must be 0 <= label < 100000', id='negative'),
    pytest.param(True, r'True; a label must be an int class index or a list of numbers, not '
                       'bool', id='bool'),
    pytest.param('3', r"'3'; a label must be an int class index or a list of numbers, not str",
                 id='string'),
    pytest.param(2.5, r'2\.5; a class index must be a whole number', id='fraction'),
    pytest.param(None, r'None; a label must be', id='null'),
    pytest.param([1.0, 'x'], r"\[1\.0, 'x'\]; a label vector must hold numbers, not str",
                 id='vector-of-str'),
    pytest.param([], r'\[\]; a label vector must hold 1 to 100000 numbers', id='empty-vector'),
    pytest.param([1e39], r'\[1e\+39\]; a label vector must hold finite float32 numbers',
                 id='vector-overflow'),
]


def _labelled_folder(tmp_path, helpers, first_label, second_label):
    src = tmp_path / 'src'
    names = helpers.write_folder(src, helpers.random_images(2, 8))
    labels = tmp_path / 'labels.json'
    labels.write_text(json.dumps({'labels': [[names[0], first_label], [names[1], second_label]]}))
    return src, names, labels


@pytest.mark.parametrize('value, message', BAD_LABELS)
def test_prepare_refuses_bad_label(cli_main, tmp_path, capsys, helpers, value, message):
    src, names, labels = _labelled_folder(tmp_path, helpers, 0, value)
    dest = tmp_path / 'out.zip'
    assert cli_main(['prepare-dataset', str(src), str(dest), '--labels', str(labels)]) == 2
    err = capsys.readouterr().err.strip()
    assert '\n' not in err and str(labels) in err and repr(names[1]) in err
    assert re.search(message, err), err
    assert not dest.exists()


@pytest.mark.parametrize('first, second, message', [
    pytest.param(0, [1.0, 2.0], r"'b/img_001\.png' is \[1\.0, 2\.0\] \(a vector of 2 "
                 r"numbers\) but the label of 'a/img_000\.png' is a class index", id='kinds'),
    pytest.param([1.0, 2.0], [1.0], r"is \[1\.0\] \(a vector of 1 numbers\) but the label "
                 r"of 'a/img_000\.png' is a vector of 2 numbers", id='lengths'),
    pytest.param(float('nan'), 1, r'nan; a class index must be a whole number', id='nan'),
])
def test_prepare_refuses_mixed_labels(cli_main, tmp_path, capsys, helpers, first, second,
                                      message):
    src, _, labels = _labelled_folder(tmp_path, helpers, first, second)
    assert cli_main(['prepare-dataset', str(src), str(tmp_path / 'o.zip'), '--labels',
                     str(labels)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_prepare_accepts_whole_float_class(cli_main, tmp_path, helpers):
    src, _, labels = _labelled_folder(tmp_path, helpers, 3.0, 0)
    dest = tmp_path / 'o.zip'
    assert cli_main(['prepare-dataset', str(src), str(dest), '--labels', str(labels)]) == 0
    with zipfile.ZipFile(dest) as zf:
        assert [v for _, v in json.loads(zf.read('dataset.json'))['labels']] == [3, 0]
    ds = ImageDataset(dest, use_labels=True)
    assert ds.label_dim == 4 and ds.get_label(0).tolist() == [0, 0, 0, 1]


def test_writer_refuses_bad_label(tmp_path, helpers):
    images = [('a.png', helpers.random_images(1, 4)[0])]
    with pytest.raises(DatasetError, match=r"label of image 'a\.png' is 1000000000000"):
        write_dataset(images, tmp_path / 'd.zip', labels={'a.png': 10**12}, progress=False)
    assert list(tmp_path.iterdir()) == []


def _zip_with_labels(tmp_path, helpers, labels_json: str):
    arrays = helpers.random_images(3, 4)
    path = write_dataset([(f'{i}.png', a) for i, a in enumerate(arrays)], tmp_path / 'd.zip',
                         progress=False)
    bad = tmp_path / 'hostile.zip'
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, 'w') as dst:
        for item in src.namelist():
            if item != 'dataset.json':
                dst.writestr(item, src.read(item))
        dst.writestr('dataset.json', labels_json, compress_type=zipfile.ZIP_DEFLATED)
    return bad


def test_dataset_refuses_huge_class_on_open(tmp_path, helpers):
    table = [[f'00000/img{i:08d}.png', 10**12 if i == 1 else 0] for i in range(3)]
    bad = _zip_with_labels(tmp_path, helpers, json.dumps({'labels': table}))
    with pytest.raises(DatasetError, match=r"hostile\.zip: the label of image "
                                           r"'00000/img00000001\.png' is 1000000000000; a class"):
        ImageDataset(bad, use_labels=True)
    ImageDataset(bad)  # labels are only read when used


def test_dataset_refuses_huge_class_in_lmdb(tmp_path, helpers):
    arrays = helpers.random_images(2, 4)
    path = write_dataset([(f'{i}.png', a) for i, a in enumerate(arrays)], tmp_path / 'db',
                         'lmdb', labels={'0.png': 0, '1.png': 1}, progress=False)
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        meta = json.loads(txn.get(b'__meta__'))
        meta['labels'][1][1] = -5
        txn.put(b'__meta__', json.dumps(meta).encode())
    env.close()
    with pytest.raises(DatasetError, match=r"the label of image '00000001' is -5"):
        ImageDataset(path, use_labels=True)


def test_largest_class_is_cheap(tmp_path, helpers):
    table = [[f'00000/img{i:08d}.png', 99_999 if i == 2 else i] for i in range(3)]
    ds = ImageDataset(_zip_with_labels(tmp_path, helpers, json.dumps({'labels': table})),
                      use_labels=True)
    assert ds.label_dim == 100_000
    assert ds.get_label(2).argmax() == 99_999 and ds[1]['label'][1] == 1
    assert ds._labels.nbytes < 1000  # one-hot rows are built per item, not n x 100000


def test_deeply_nested_labels_json(tmp_path, helpers):
    bad = _zip_with_labels(tmp_path, helpers, '[' * 200_000)
    with pytest.raises(DatasetError, match=r'hostile\.zip:dataset\.json is not valid JSON'):
        ImageDataset(bad, use_labels=True)
    file = tmp_path / 'labels.json'
    file.write_text('{"labels": ' + '[' * 200_000)
    with pytest.raises(DatasetError, match=r'labels\.json is not valid JSON'):
        load_labels_file(file)


def test_oversized_labels_json(tmp_path, helpers, monkeypatch):
    monkeypatch.setattr(readers, 'MAX_LABELS_BYTES', 1000)
    bad = _zip_with_labels(tmp_path, helpers, json.dumps({'labels': None, 'pad': ' ' * 5000}))
    with pytest.raises(DatasetError, match=r'dataset\.json holds 50\d\d bytes, more than the 1000'):
        ImageDataset(bad, use_labels=True)


@pytest.mark.parametrize('count', [3, True, -1, '2'])
def test_lmdb_count_must_match_entries(tmp_path, helpers, count):
    arrays = helpers.random_images(2, 4)
    path = write_dataset([(f'{i}.png', a) for i, a in enumerate(arrays)], tmp_path / 'db',
                         'lmdb', progress=False)
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        meta = json.loads(txn.get(b'__meta__'))
        txn.put(b'__meta__', json.dumps(dict(meta, count=count)).encode())
    env.close()
    with pytest.raises(DatasetError, match=rf'__meta__ says "count": {count!r} but the LMDB '
                                           'holds 2 images'):
        ImageDataset(path)


def test_zip_bomb_image_entry_is_refused_before_inflating(tmp_path):
    """A tiny zip whose image entry inflates to 300 MiB is refused by its declared size."""
    path = tmp_path / 'bomb.zip'
    png = Image.new('RGB', (8, 8))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        with archive.open('a.png', 'w') as entry:
            png.save(entry, format='PNG')
        with archive.open('b.png', 'w', force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(300):
                entry.write(chunk)
    assert path.stat().st_size < 2 << 20
    reader = readers.open_reader(path)
    with pytest.raises(DatasetError, match=r'bomb.zip:b.png inflates to 314572800 bytes'):
        reader.read('b.png')
