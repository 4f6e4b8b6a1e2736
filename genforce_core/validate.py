"""Check a training/test config before anything is built, so a mistake is one line, not a
traceback after 200 lines of start-up output.

* every ``dict(type=...)`` whose type is registered is checked against the constructor's
  signature: an unknown key names the valid ones and the closest match;
* the numbers people get wrong are checked for range (batch size, kimg, iterations,
  resolutions);
* the training dataset path must exist (or name a built-in dataset);
* a GAN trains on shuffled data and by iterations: an unshuffled sampler, an epoch-based loop,
  epoch-based logs or mmengine's epoch checkpoints are refused, naming the base config that
  gets them right (``genforce_core::_base_/gan.py``).
"""
from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError, DatasetError

__all__ = ['validate_config']

# Keys a builder consumes itself, never passed to the constructor.
_BUILDER_KEYS = {'type', '_scope_', 'priority'}


def validate_config(cfg: Mapping[str, Any], source: str, train: bool = True) -> None:
    """Raise a one-line :class:`ConfigError` naming ``source`` and the key for the first problem
    found in ``cfg`` (an mmengine Config or dict)."""
    from .plugins import load_plugins

    load_plugins()
    if not isinstance(cfg, Mapping):  # an mmengine Config is not a Mapping; its dict is
        cfg = cfg.to_dict()
    _check_types(cfg, '', _registered_classes(), source)
    if train:
        _check_training_numbers(cfg, source)
        _check_iteration_based_training(cfg, source)
        _check_dataset_path(cfg, source)


# --------------------------------------------------------------------------- keys

def _registered_classes() -> dict[str, Any]:
    """Every name of the genforce registries and their mmengine parents -> class."""
    from .registry import ALL_REGISTRIES

    classes: dict[str, Any] = {}
    for registry in ALL_REGISTRIES.values():
        chain = []
        while registry is not None:
            chain.append(registry)
            registry = registry.parent
        for reg in reversed(chain):  # genforce's own names win over mmengine's
            classes.update(reg.module_dict)
    return classes


def _accepted_keys(obj: Any) -> set[str] | None:
    """Keyword arguments ``obj`` accepts, or None when it takes ``**kwargs`` (anything goes)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _check_types(value: Any, where: str, classes: dict[str, Any], source: str) -> None:
    if isinstance(value, Mapping):
        type_name = value.get('type')
        if isinstance(type_name, str) and type_name.split('.')[-1] in classes:
            cls = classes[type_name.split('.')[-1]]
            accepted = _accepted_keys(cls)
            if accepted is not None:
                for key in value:
                    if key not in accepted and key not in _BUILDER_KEYS:
                        raise ConfigError(_unknown_key(source, where, key, type_name, accepted))
        for key, item in value.items():
            _check_types(item, f'{where}.{key}' if where else str(key), classes, source)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_types(item, f'{where}[{index}]', classes, source)


def _unknown_key(source: str, where: str, key: str, type_name: str, accepted: set[str]) -> str:
    options = sorted(accepted - {'self', 'runner', 'dataloader'})
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    return (f'{source}: unknown key {where}.{key} ({type_name} takes '
            f'{", ".join(options) or "no options"}).{hint}')


# --------------------------------------------------------------------------- numbers

def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split('.'):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_training_numbers(cfg: Mapping[str, Any], source: str) -> None:
    batch = _get(cfg, 'train_dataloader.batch_size')
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool)
                              or batch <= 0):
        raise ConfigError(f'{source}: train_dataloader.batch_size must be a positive integer '
                          f'(images per process), got {batch!r}')
    for key in ('train_cfg.total_kimg', 'train_cfg.max_iters'):
        value = _get(cfg, key)
        if value is not None and (not _is_number(value) or value <= 0):
            raise ConfigError(f'{source}: {key} must be a positive number, got {value!r}')
    _check_resolutions(_get(cfg, 'model'), 'model', source)
    resolution = _get(cfg, 'train_dataloader.dataset.resolution')
    if resolution is not None and (not isinstance(resolution, int) or resolution < 1):
        raise ConfigError(f'{source}: train_dataloader.dataset.resolution must be a positive '
                          f'integer, got {resolution!r}')


def _check_resolutions(value: Any, where: str, source: str) -> None:
    """Generator and discriminator resolutions: powers of two from 4 (every family here
    doubles the resolution per block)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f'{where}.{key}'
            if key in ('resolution', 'img_resolution') and item is not None:
                if not isinstance(item, int) or isinstance(item, bool) or item < 4 \
                        or item & (item - 1):
                    raise ConfigError(f'{source}: {path} must be a power of two >= 4 '
                                      f'(4, 8, ..., 1024), got {item!r}')
            else:
                _check_resolutions(item, path, source)


# --------------------------------------------------------------------------- data

def _check_dataset_path(cfg: Mapping[str, Any], source: str) -> None:
    dataset = _get(cfg, 'train_dataloader.dataset')
    if not isinstance(dataset, Mapping) or 'path' not in dataset:
        return
    path = dataset['path']
    hint = ('Make one with `genforce prepare-dataset SRC DEST`, or use the built-in dataset: '
            "path='builtin:shapes32'")
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f'{source}: train_dataloader.dataset.path must name a dataset (a '
                          f'folder, .zip or LMDB), got {path!r}. {hint}')
    from .data.builtin import is_builtin_path, parse_builtin_path

    if is_builtin_path(str(path)):
        try:
            parse_builtin_path(str(path))
        except DatasetError as err:
            raise ConfigError(f'{source}: train_dataloader.dataset.path: {err}') from None
    elif not os.path.exists(os.path.expanduser(str(path))):
        raise ConfigError(f'{source}: dataset {path} (train_dataloader.dataset.path) does not '
                          f'exist. {hint}')


# --------------------------------------------------------------------------- GAN schedule

GAN_BASE = "_base_ = ['genforce_core::_base_/gan.py']"
_EPOCH_LOOPS = ('EpochBasedTrainLoop',)
_UNSHUFFLED_SAMPLERS = ('SequentialSampler',)


def _check_iteration_based_training(cfg: Mapping[str, Any], source: str) -> None:
    """GANs train on a shuffled, endless stream of images, counted in iterations/kimg. mmengine
    defaults (no sampler shuffle, epoch loops, logs and checkpoints) train silently wrong."""
    loader = cfg.get('train_dataloader')
    if not isinstance(loader, Mapping):  # nothing to train on: mmengine says so itself
        return
    fix = f'inherit the GAN base config ({GAN_BASE}) or copy its'
    sampler = loader.get('sampler')
    if not isinstance(sampler, Mapping):
        raise ConfigError(f'{source}: train_dataloader.sampler is missing; {fix} '
                          "sampler=dict(type='ResumableInfiniteSampler', shuffle=True)")
    sampler_type = str(sampler.get('type', '')).split('.')[-1]
    if sampler_type in _UNSHUFFLED_SAMPLERS or _shuffle_of(sampler) is False:
        raise ConfigError(f'{source}: train_dataloader.sampler ({sampler_type or "?"}) does not '
                          f'shuffle, so the GAN would see the images in a fixed order; {fix} '
                          "sampler=dict(type='ResumableInfiniteSampler', shuffle=True)")
    if loader.get('persistent_workers') and not loader.get('num_workers'):
        raise ConfigError(f'{source}: train_dataloader.persistent_workers=True needs '
                          'num_workers > 0; set persistent_workers=False with num_workers=0')
    if 'collate_fn' not in loader:
        raise ConfigError(f"{source}: train_dataloader.collate_fn is missing (mmengine's "
                          'default gives lists the GAN cannot use); '
                          f"{fix} collate_fn=dict(type='default_collate')")
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, Mapping):
        loop = str(train_cfg.get('type', '')).split('.')[-1]
        if (loop in _EPOCH_LOOPS or 'max_epochs' in train_cfg
                or train_cfg.get('by_epoch') is True):
            raise ConfigError(f'{source}: train_cfg is an epoch-based loop; GANs train for a '
                              f"number of images: {fix} train_cfg=dict(type='GANTrainLoop', "
                              'total_kimg=...)')
    log_processor = cfg.get('log_processor')
    if not isinstance(log_processor, Mapping) or log_processor.get('by_epoch', True):
        raise ConfigError(f'{source}: log_processor logs by epoch (mmengine\'s default); {fix} '
                          'log_processor=dict(by_epoch=False)')
    hooks = cfg.get('default_hooks')
    checkpoint = hooks.get('checkpoint', 'default') if isinstance(hooks, Mapping) else 'default'
    if checkpoint == 'default' or (isinstance(checkpoint, Mapping)
                                   and checkpoint.get('by_epoch', True)):
        raise ConfigError(f"{source}: default_hooks.checkpoint is mmengine's epoch-based "
                          f'CheckpointHook (epoch_N.pth, once at the end); {fix} '
                          "default_hooks.checkpoint=None with dict(type='KimgCheckpointHook', "
                          'interval_kimg=...) in custom_hooks')


def _shuffle_of(sampler: Mapping[str, Any]) -> Any:
    """The sampler's ``shuffle``: the config's value, else the class default (None: unknown)."""
    if 'shuffle' in sampler:
        return sampler['shuffle']
    cls = _registered_classes().get(str(sampler.get('type', '')).split('.')[-1])
    try:
        parameter = inspect.signature(cls).parameters.get('shuffle') if cls else None
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default
