"""Loading configs with errors that name the file, and the CLI's overrides."""
from __future__ import annotations

import os.path as osp
import re
from typing import Any

from mmengine.config import Config, DictAction

from .errors import ConfigError

__all__ = ['load_config', 'parse_cfg_option']

_KEY = re.compile(r'[A-Za-z_]\w*(\.\w+)*')


def parse_cfg_option(item: str) -> tuple[str, Any]:
    """``'a.b=[1,2]'`` -> ``('a.b', [1, 2])`` with mmengine's value syntax; raises
    ValueError for anything that is not ``KEY=VALUE`` with a dotted key."""
    key, sep, value = item.partition('=')
    if not sep:
        raise ValueError(f'{item!r} is not KEY=VALUE (e.g. train_dataloader.batch_size=8)')
    if not _KEY.fullmatch(key):
        raise ValueError(f'{item!r}: {key!r} is not a config key (dotted names, e.g. '
                         'model.generator.z_dim)')
    return key, DictAction._parse_iterable(value)


def load_config(path: str, cfg_options: dict[str, Any] | None = None) -> Config:
    """Read an mmengine config, apply ``--cfg-options`` and default to the genforce scope."""
    if not osp.isfile(path):
        hint = ' (it is a directory)' if osp.isdir(path) else ''
        raise ConfigError(f'config file {path} does not exist{hint}')
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:  # SyntaxError, NameError, a missing _base_ file, ...
        raise ConfigError(f'cannot read config {path}: {type(exc).__name__}: {exc}') from exc
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:
            raise ConfigError(f'cannot apply --cfg-options {cfg_options} to {path}: '
                              f'{exc}') from exc
    cfg.setdefault('default_scope', 'genforce')
    return cfg
