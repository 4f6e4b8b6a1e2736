"""Label tables: parse ``dataset.json``-style labels and match them to image entries.

A label table is either NVIDIA's ``{"labels": [[name, label], ...]}`` (or ``"labels": null``)
or a plain mapping ``{name: label}``. A label is an int class index (one-hot encoded) or a
list of numbers (kept as a float vector).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genforce_core.errors import DatasetError


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
        return {normalize_name(k): v for k, v in raw.items()}
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
    return mapping


def load_labels_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a labels JSON file (``{"labels": [[name, label], ...]}`` or ``{name: label}``)."""
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f'Labels file {path} does not exist.') from exc
    except (ValueError, UnicodeDecodeError) as exc:
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


def labels_to_matrix(values: Sequence[Any], names: Sequence[str], where: str,
                     num_classes: int | None = None) -> np.ndarray:
    """Encode labels as float32 ``[n, c_dim]``: int classes one-hot, vectors as they are.

    ``num_classes`` fixes the one-hot width (default: the largest class + 1).
    """
    if not values:
        return np.zeros((0, 0), np.float32)

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(values[0]):
        for name, v in zip(names, values):
            if not is_int(v) or v < 0:
                raise DatasetError(f'{where}: label of {name} is {v!r}; expected a class index '
                                   '>= 0 like the other labels.')
        classes = np.asarray(values, np.int64)
        width = max(int(classes.max()) + 1, num_classes or 0)
        onehot = np.zeros((len(classes), width), np.float32)
        onehot[np.arange(len(classes)), classes] = 1
        return onehot
    width = None
    for name, v in zip(names, values):
        ok = isinstance(v, (list, tuple)) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        if not ok:
            raise DatasetError(f'{where}: label of {name} is {v!r:.80}; expected an int class '
                               'or a list of numbers, the same kind for every image.')
        if width is None:
            width = len(v)
        elif len(v) != width:
            raise DatasetError(f'{where}: label of {name} has {len(v)} values, the first '
                               f'label has {width}. All label vectors must have one length.')
    return np.asarray(values, np.float32).reshape(len(values), width or 0)
