"""The config stored inside a checkpoint, as plain data that is never run.

mmengine stores ``meta['cfg']`` as Python source (``Config.pretty_text``) and rebuilding it
with ``Config.fromstring`` executes that source: a checkpoint from someone else could run any
code. genforce stores the config as nested dicts/lists/strings/numbers instead (what the
checkpoint allowlist accepts anyway) and rebuilds it with ``Config(data)``, which evaluates
nothing. Checkpoints written before that hold a string: :func:`parse_literal_config` reads it
with a parser that accepts literals and ``dict(key=literal, ...)`` only.

Building a model from stored data is a second door: mmengine's registries import any dotted
``type`` they do not know (``type='os.system'``). :func:`check_registered_types` refuses every
``type`` that is not registered before anything is built.
"""
from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from typing import Any

from mmengine.config import Config

from .errors import CheckpointError

__all__ = ['config_to_data', 'config_from_checkpoint', 'parse_literal_config',
           'check_registered_types', 'RESAVE_HINT']

_SCALARS = (str, int, float, bool, type(None))

RESAVE_HINT = ('Rebuild it with a config you trust instead (`--config CONFIG`, or '
               '`load_generator(path, config=CONFIG)`), or store that config in the file once '
               'with `genforce resave-checkpoint CHECKPOINT --config CONFIG`.')


def config_to_data(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` as nested dicts/lists/tuples of str, int, float, bool and None.

    Values that are not data (a class or function in a lazy-import config) are stored as
    their dotted name; :func:`check_registered_types` refuses to build from such names.
    """
    data = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if hasattr(value, 'item') and callable(value.item):  # numpy / torch scalars
        try:
            return _plain(value.item())
        except (TypeError, ValueError, RuntimeError):
            pass
    name = getattr(value, '__qualname__', None)
    if name is not None:
        return f'{getattr(value, "__module__", "?")}.{name}'
    return repr(value)


def _check_plain(value: Any, where: str, path: str) -> None:
    """Stored data must be plain all the way down (the unpickler also admits tensors)."""
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f'{path}: meta.cfg key {key!r} under {where} is not a '
                                      'string')
            _check_plain(item, f'{where}.{key}', path)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f'{where}[{index}]', path)
        return
    raise CheckpointError(f'{path}: meta.cfg holds a {type(value).__name__} at {where}; a '
                          'stored config may hold only dicts, lists, strings and numbers')


# --------------------------------------------------------------------------- old checkpoints

class _NotLiteral(Exception):
    def __init__(self, node: ast.AST):
        super().__init__(node)
        self.node = node


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression; anything that would need evaluation raises."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) in (int, float):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):  # {**other}
            raise _NotLiteral(node)
        return {_literal(key): _literal(value) for key, value in zip(node.keys, node.values)}
    # mmengine writes dicts as dict(a=1, b=2): that exact form is data, not a call.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict' and not node.args \
            and all(kw.arg is not None for kw in node.keywords):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    raise _NotLiteral(node)


def parse_literal_config(text: str, path: str = '<checkpoint>') -> dict[str, Any]:
    """Read a config string of an older checkpoint without running it.

    Accepts only ``name = <literal>`` statements, where literals are numbers, strings, None,
    True/False, lists, tuples, ``{...}`` and ``dict(key=literal, ...)``. Anything else (a
    name, a call, an import, an attribute) is refused with a :class:`CheckpointError`.
    """
    try:
        tree = ast.parse(text, mode='exec')
    except SyntaxError as err:
        raise CheckpointError(f'{path}: the config stored in it (meta.cfg) does not parse: '
                              f'{err.msg} (line {err.lineno})') from None
    data: dict[str, Any] = {}
    for stmt in tree.body:
        try:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                raise _NotLiteral(stmt)
            data[stmt.targets[0].id] = _literal(stmt.value)
        except _NotLiteral as refusal:
            node = refusal.node
            snippet = ast.get_source_segment(text, node) or ast.dump(node)
            snippet = ' '.join(snippet.split())
            snippet = snippet if len(snippet) <= 80 else snippet[:77] + '...'
            raise CheckpointError(
                f'{path}: refused the config stored in it (meta.cfg, written by an older '
                f'genforce): line {getattr(node, "lineno", "?")} is not plain data '
                f'({snippet}); nothing in it was run. {RESAVE_HINT}') from None
    return data


# --------------------------------------------------------------------------- reading

def config_from_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> Config:
    """The config a checkpoint was trained with, rebuilt without evaluating anything."""
    path = os.fspath(path)
    meta = checkpoint.get('meta')
    stored = meta.get('cfg') if isinstance(meta, Mapping) else None
    if isinstance(stored, Mapping):
        _check_plain(stored, 'cfg', path)
        return Config(dict(stored))
    if isinstance(stored, str) and stored.strip():
        return Config(parse_literal_config(stored, path))
    if stored is None:
        raise CheckpointError(f'{path} holds no config (meta.cfg), so its model cannot be '
                              'rebuilt; pass the config it was trained with (`--config '
                              'CONFIG`, or `load_generator(path, config=CONFIG)`)')
    raise CheckpointError(f'{path}: meta.cfg is a {type(stored).__name__}, expected a dict')


def check_registered_types(cfg: Any, path: str | os.PathLike, where: str = 'model') -> None:
    """Refuse a stored config whose ``type`` values are not registered names.

    mmengine resolves an unknown ``type`` by importing it as a dotted path, so a checkpoint
    could name ``os.system``; only registered classes may be built from a file's config.
    """
    from .plugins import load_plugins
    from .registry import ALL_REGISTRIES

    load_plugins()
    known: set[str] = set()
    for registry in ALL_REGISTRIES.values():
        while registry is not None:
            known.update(registry.module_dict)
            registry = registry.parent
    _check_types(cfg, where, known, os.fspath(path))


def _check_types(value: Any, where: str, known: set[str], path: str) -> None:
    if isinstance(value, Mapping):
        if 'type' in value:
            name = value['type']
            bare = name.split('.', 1)[1] if isinstance(name, str) and \
                name.startswith(('genforce.', 'mmengine.')) else name
            if not isinstance(name, str) or bare not in known:
                raise CheckpointError(
                    f'{path}: refused to build {where}.type={name!r} from the config stored '
                    'in it: not a registered genforce type (a stored config may only name '
                    'registered types, never import paths). Install the plugin that '
                    'registers it, or pass a config you trust with `--config CONFIG`.')
        for key, item in value.items():
            _check_types(item, f'{where}.{key}', known, path)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_types(item, f'{where}[{index}]', known, path)
