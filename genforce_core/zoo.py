"""The model zoo: entries contributed by plugins, downloads with checksums, conversion.

Plugins contribute entries through the ``genforce_model_zoo`` hook (see
:mod:`genforce_core.hookspecs`): dicts with ``name``, ``family``, ``resolution``, ``dataset``,
``url``, ``sha256``, ``converter`` (a ``CONVERTERS`` key) and optionally ``fid``.

Files go to the cache folder ``$GENFORCE_ZOO_CACHE`` (default ``~/.cache/genforce/zoo``):
``downloads/<name>/<file>`` holds the official file, ``<name>.pth`` the converted genforce
checkpoint. Downloads

* resume: an interrupted download leaves ``<file>.part``; the next attempt asks the server for
  the rest (HTTP ``Range``) and starts over if the server ignores it;
* are verified: the sha256 of the finished file must equal the entry's, otherwise the file is
  deleted and the download fails. An entry whose ``sha256`` is None cannot be verified:
  the download is refused unless ``verify=False`` (``--no-verify``), and then, once the file
  has converted successfully, the hash seen is recorded in ``<file>.sha256`` and every later
  use of the file is checked against it (trust on first use). An unverified file that fails
  to convert is deleted and not recorded, so it is never trusted later;
* accept a local path or ``file://`` URL instead of the entry's URL (offline machines). An
  explicit source replaces what is cached (download and converted checkpoint), verified exactly
  like a fresh download; the old files stay when the new one fails verification.

A converter is any registered class with ``convert_file(source, output) -> path``.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .errors import GenforceError
from .plugins import load_plugins

__all__ = ['ZooError', 'cache_dir', 'list_entries', 'get_entry', 'download_file',
           'fetch', 'ensure_converted', 'sha256_of', 'recorded_sha256', 'record_sha256']

REQUIRED_KEYS = ('name', 'family', 'resolution', 'dataset', 'url', 'sha256', 'converter')
CHUNK = 1 << 20


class ZooError(GenforceError):
    """A model-zoo entry is unknown, a download failed, or a checksum does not match."""


def cache_dir() -> Path:
    """``$GENFORCE_ZOO_CACHE`` or ``~/.cache/genforce/zoo``."""
    return Path(os.environ.get('GENFORCE_ZOO_CACHE') or '~/.cache/genforce/zoo').expanduser()


def list_entries() -> list[dict[str, Any]]:
    """Every entry of every installed plugin, sorted by name (malformed ones are errors)."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in load_plugins().model_zoo():
        missing = [k for k in REQUIRED_KEYS if k not in entry]
        if missing:
            raise ZooError(f'model-zoo entry {entry.get("name", entry)!r} lacks {missing}')
        if entry['name'] in entries:
            raise ZooError(f'two plugins contribute the model-zoo entry {entry["name"]!r}')
        entries[entry['name']] = dict(entry)
    return [entries[name] for name in sorted(entries)]


def get_entry(name: str) -> dict[str, Any]:
    entries = {e['name']: e for e in list_entries()}
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.4)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        raise ZooError(f'{name!r} is not in the model zoo{hint} (`genforce zoo list` shows '
                       f'all {len(entries)} entries)')
    return entries[name]


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_path(source: str) -> Path | None:
    """The file a local path or ``file://`` URL names, None for other URLs."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == 'file':
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ('', 'c', 'd') or len(parsed.scheme) == 1:  # a path (or C:\...)
        return Path(source).expanduser()
    return None


def _bar(total: int | None, initial: int, name: str, progress: bool) -> tqdm:
    return tqdm(total=total, initial=initial, unit='B', unit_scale=True, unit_divisor=1024,
                desc=name, disable=not progress, leave=False)


def _copy_local(src: Path, part: Path, progress: bool) -> None:
    if not src.is_file():
        raise ZooError(f'{src} does not exist (or is not a file)')
    with open(src, 'rb') as fin, open(part, 'wb') as fout, \
            _bar(src.stat().st_size, 0, src.name, progress) as bar:
        while chunk := fin.read(CHUNK):
            fout.write(chunk)
            bar.update(len(chunk))


def _download_http(url: str, part: Path, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={'User-Agent': 'genforce'})
    if offset:
        request.add_header('Range', f'bytes={offset}-')
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to fetch: the part file is complete
            return
        raise ZooError(f'cannot download {url}: HTTP {err.code} {err.reason}') from err
    except (urllib.error.URLError, OSError) as err:
        raise ZooError(f'cannot download {url}: {getattr(err, "reason", err)}. Offline? Fetch '
                       'the file elsewhere and pass it with --from PATH') from err
    with response:
        resumed = offset and response.status == 206
        if offset and not resumed:  # the server sent the whole file
            offset = 0
        length = response.headers.get('Content-Length')
        total = offset + int(length) if length is not None else None
        with open(part, 'ab' if resumed else 'wb') as file, \
                _bar(total, offset, Path(urllib.parse.urlparse(url).path).name,
                     progress) as bar:
            while chunk := response.read(CHUNK):
                file.write(chunk)
                bar.update(len(chunk))


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + '.sha256')


def recorded_sha256(dest: str | os.PathLike) -> str | None:
    """The hash trusted on first use of ``dest`` (its ``.sha256`` record), None if none."""
    record = _record_path(Path(dest))
    if not record.is_file():
        return None
    fields = record.read_text().split()
    if not fields:
        raise ZooError(f'{record} is empty; delete it to trust {Path(dest).name} again')
    return fields[0]


def record_sha256(dest: str | os.PathLike, digest: str) -> None:
    """Trust ``dest`` from now on: later uses must have the hash ``digest``."""
    dest = Path(dest)
    _record_path(dest).write_text(f'{digest}  {dest.name}\n')


def download_file(source: str, dest: str | os.PathLike, sha256: str | None, *,
                  verify: bool = True, progress: bool = True, timeout: float = 60,
                  record: bool = True, replace: bool = False) -> Path:
    """Fetch ``source`` (URL, ``file://`` URL or local path) to ``dest`` and check its sha256.

    An existing ``dest`` whose hash matches is kept, unless ``replace`` (then ``source`` is
    fetched and verified, and replaces ``dest`` only if it passes). With ``sha256=None`` and
    ``verify`` the file is refused; with ``verify=False`` its hash is recorded in
    ``dest + '.sha256'`` (unless ``record=False``: the caller records it with
    :func:`record_sha256`), and a recorded hash is enforced like a published one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recorded = None if sha256 else recorded_sha256(dest)
    expected = sha256 or recorded
    if expected is None and verify:
        raise ZooError(f'no published sha256 for {source}, so the download cannot be verified; '
                       'pass --no-verify (verify=False) to accept it and record its hash for '
                       'later checks')
    if dest.is_file() and not replace:
        if expected is None or sha256_of(dest) == expected:
            return dest
        dest.unlink()  # stale or corrupt: fetch again
    part = dest.with_name(dest.name + '.part')
    local = _local_path(source)
    if local is not None:
        _copy_local(local, part, progress)
    else:
        _download_http(source, part, progress, timeout)
    got = sha256_of(part)
    if expected is not None and got != expected:
        part.unlink()
        origin = (f' (recorded in {_record_path(dest)} when first used; delete that file to '
                  'trust a different file)' if recorded else '')
        raise ZooError(f'checksum mismatch for {source}: expected sha256 {expected}{origin}, '
                       f'got {got}; the file was deleted (corrupt or changed download)')
    os.replace(part, dest)
    if expected is None and record:
        record_sha256(dest, got)
    return dest


def fetch(name: str, *, to: str | os.PathLike | None = None, source: str | None = None,
          verify: bool = True, progress: bool = True) -> Path:
    """The official file of zoo entry ``name`` (downloaded into the cache or ``to``).

    An explicit ``source`` replaces the cached file (if it passes verification). The hash of an
    unverified file is not recorded here: :func:`ensure_converted` records it once the file
    has converted.
    """
    entry = get_entry(name)
    folder = Path(to) if to is not None else cache_dir() / 'downloads' / name
    filename = Path(urllib.parse.urlparse(entry['url']).path).name or f'{name}.pkl'
    return download_file(source or entry['url'], folder / filename, entry['sha256'],
                         verify=verify, progress=progress, record=False,
                         replace=source is not None)


def ensure_converted(name: str, *, to: str | os.PathLike | None = None,
                     source: str | None = None, verify: bool = True,
                     progress: bool = True) -> Path:
    """The genforce checkpoint of zoo entry ``name``: fetched and converted if not cached.

    An explicit ``source`` replaces the cached download and checkpoint. A file without a
    published or recorded sha256 (``verify=False``) is trusted (its hash recorded) only after
    it converted; if it does not convert it is deleted.
    """
    from .registry import CONVERTERS

    entry = get_entry(name)
    output = (Path(to) if to is not None else cache_dir()) / f'{name}.pth'
    if output.is_file() and source is None:
        return output
    load_plugins()
    converter_cls = CONVERTERS.get(entry['converter'])
    if converter_cls is None:
        raise ZooError(f'{name} needs the converter {entry["converter"]!r}, which no installed '
                       'plugin provides (genforce plugins lists what is installed)')
    raw = fetch(name, to=to, source=source, verify=verify, progress=progress)
    if entry['sha256'] or recorded_sha256(raw):  # verified by fetch
        converter_cls().convert_file(raw, output)
        return output
    digest = sha256_of(raw)  # hashed before converting: these are the bytes we trust
    try:
        converter_cls().convert_file(raw, output)
    except GenforceError as err:
        raw.unlink(missing_ok=True)
        raise ZooError(f'{name}: {raw} did not convert ({err}); as it was not verified, it '
                       'was deleted and its hash not recorded') from err
    except Exception:
        raw.unlink(missing_ok=True)
        raise
    record_sha256(raw, digest)
    return output

