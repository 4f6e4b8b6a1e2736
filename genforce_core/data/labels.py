"""Label tables: parse ``dataset.json``-style labels and match them to image entries.

A label table is either NVIDIA's ``{"labels": [[name, label], ...]}`` (or ``"labels": null``)
or a plain mapping ``{name: label}``. A label is an int class index (one-hot encoded) or a
list of numbers (kept as a float vector). Every table is checked when it is read (see
:func:`check_labels`): a class index of 10**12 would otherwise allocate a 29 TiB one-hot matrix.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genforce_core.errors import DatasetError

MAX_LABEL_DIM = 100_000  # the largest c_dim: class indices < this, vectors at most this long
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER = (int, float, np.integer, np.floating)


def normalize_name(name: str) -> str:
    """An entry name as the readers spell it: POSIX separators, no leading ``./``."""
    name = str(name).replace('\\', '/')
    while name.startswith('./'):
        name = name[2:]
    return name


def labels_to_mapping(raw: Any, where: str) -> dict[str, Any] | None:
    """Turn the ``labels`` value (pairs or mapping) into ``{name: label}``; None stays None."""
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return check_labels({normalize_name(k): v for k, v in raw.items()}, where)
    if not isinstance(raw, list):
        raise DatasetError(f'{where}: "labels" must be a list of [name, label] pairs, a mapping '
                           f'or null, got {type(raw).__name__}.')
    mapping: dict[str, Any] = {}
    for i, pair in enumerate(raw):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise DatasetError(f'{where}: labels entry #{i} ({pair!r:.80}) is not a '
                               '[name, label] pair.')
        name = normalize_name(pair[0])
        if name in mapping:
            raise DatasetError(f'{where}: image {name!r} is labelled twice. Keep one entry.')
        mapping[name] = pair[1]
    return check_labels(mapping, where)


def load_labels_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a labels JSON file (``{"labels": [[name, label], ...]}`` or ``{name: label}``)."""
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f'Labels file {path} does not exist.') from exc
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f'Labels file {path} is not valid JSON ({exc}).') from exc
    if isinstance(table, dict) and set(table) <= {'labels', 'genforce'} and 'labels' in table:
        table = table['labels']
    mapping = labels_to_mapping(table, f'labels file {path}')
    if mapping is None:
        raise DatasetError(f'Labels file {path} holds "labels": null; give real labels or '
                           'drop --labels.')
    return mapping


def match_labels(mapping: Mapping[str, Any], names: Sequence[str], where: str,
                 describe=None) -> list[Any]:
    """The labels of ``names`` in order; a missing or an extra entry is an error naming it."""
    describe = describe or (lambda n: n)
    missing = [n for n in names if n not in mapping]
    if missing:
        raise DatasetError(
            f'{where}: image {describe(missing[0])} has no label ({len(missing)} of {len(names)} '
            f'images are unlabelled; the table has {len(mapping)} entries). Add the missing '
            'entries or drop the labels.')
    known = set(names)
    extra = [n for n in mapping if n not in known]
    if extra:
        raise DatasetError(
            f'{where}: the label entry {extra[0]!r} names no image in the dataset ({len(extra)} '
            f'such entries; {len(mapping)} labels for {len(names)} images). Remove the entry or '
            'add the image.')
    return [mapping[n] for n in names]


def _class_index(value: Any) -> int:
    if isinstance(value, (float, np.floating)):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError('a class index must be a whole number')
        value = int(value)
    if not 0 <= value < MAX_LABEL_DIM:
        raise ValueError(f'a class index must be 0 <= label < {MAX_LABEL_DIM}')
    return int(value)


def _vector(value: Sequence[Any]) -> list[float]:
    if not 0 < len(value) <= MAX_LABEL_DIM:
        raise ValueError(f'a label vector must hold 1 to {MAX_LABEL_DIM} numbers')
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, _NUMBER):
            raise ValueError(f'a label vector must hold numbers, not {type(x).__name__}')
        if not abs(x) <= _FLOAT32_MAX:  # also false for NaN; exact for huge ints
            raise ValueError('a label vector must hold finite float32 numbers')
        out.append(float(x))
    return out


def _parse_label(value: Any) -> int | list[float]:
    """An int class index or a list of floats; ValueError says why ``value`` is neither."""
    if isinstance(value, (list, tuple)):
        return _vector(value)
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise ValueError('a label must be an int class index or a list of numbers, not '
                         f'{type(value).__name__}')
    return _class_index(value)


def _kind(label: int | list[float]) -> str:
    return 'a class index' if isinstance(label, int) else f'a vector of {len(label)} numbers'


def check_labels(mapping: Mapping[str, Any], where: str) -> dict[str, int | list[float]]:
    """``mapping`` with every label checked: all class indices or all vectors of one length.

    Class indices must be whole numbers in ``[0, MAX_LABEL_DIM)`` (``3.0`` becomes ``3``);
    vectors hold 1 to ``MAX_LABEL_DIM`` finite numbers (kept as floats). The first bad entry
    (in table order) is named in a one-line DatasetError.
    """
    checked: dict[str, int | list[float]] = {}
    first: tuple[str, str] | None = None  # (name, kind) of the first label
    for name, value in mapping.items():
        try:
            label = _parse_label(value)
        except ValueError as exc:
            raise DatasetError(f'{where}: the label of image {name!r} is {value!r:.80}; {exc}. '
                               'Fix the entry.') from None
        kind = _kind(label)
        if first is None:
            first = (name, kind)
        elif kind != first[1]:
            raise DatasetError(f'{where}: the label of image {name!r} is {value!r:.80} ({kind}) '
                               f'but the label of {first[0]!r} is {first[1]}; all labels must '
                               'be class indices, or vectors of one length.')
        checked[name] = label
    return checked


def count_classes(labels: Mapping[str, int | list[float]]) -> int:
    """One more than the largest class index of checked ``labels`` (0 for vector labels)."""
    return max((v for v in labels.values() if isinstance(v, int)), default=-1) + 1


def encode_labels(values: Sequence[int | list[float]],
                  num_classes: int = 0) -> tuple[np.ndarray, int]:
    """Checked labels as an array plus ``c_dim``; see :func:`label_vector` for a row.

    Class indices stay int64 ``[n]`` with ``c_dim = max(largest + 1, num_classes)`` (one-hot
    rows are made on access, so memory is O(n)); vectors become float32 ``[n, c_dim]``.
    """
    if values and isinstance(values[0], int):
        classes = np.asarray(values, np.int64)
        return classes, max(int(classes.max()) + 1, num_classes)
    width = len(values[0]) if values else 0
    return np.asarray(values, np.float32).reshape(len(values), width), width


def label_vector(labels: np.ndarray, dim: int, index: int) -> np.ndarray:
    """Row ``index`` of :func:`encode_labels`'s array as float32 ``[dim]`` (classes one-hot)."""
    if labels.ndim == 2:
        return labels[index].copy()
    onehot = np.zeros(dim, np.float32)
    onehot[labels[index]] = 1
    return onehot
