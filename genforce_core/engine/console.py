"""What a training run shows on the console.

By default the console is quiet: mmengine's start-up chatter (environment, config dump, hook
table) goes only to the log file in the work dir; the console gets a short header (config, work
dir, log file, plugins in use), genforce's own messages, warnings and errors, and a live
progress display fed by :class:`~genforce_core.hooks.GANProgressHook`: a bar on a terminal,
plain timed lines otherwise. ``GENFORCE_VERBOSE=1`` (or ``log_level='DEBUG'``) restores
mmengine's full console output. The log file gets every record except the console-only ones.
"""
from __future__ import annotations

import logging
import math
import os
import os.path as osp
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mmengine

from ..formatting import format_duration, format_kimg

VERBOSE_ENV = 'GENFORCE_VERBOSE'

# Record attribute (set through ``logger.info(..., extra=...)``) that routes one message:
# ``CONSOLE_ONLY`` never reaches the log file, ``FILE_ONLY`` never reaches a quiet console.
ROUTE = 'genforce_route'
CONSOLE_ONLY = {ROUTE: 'console'}
FILE_ONLY = {ROUTE: 'file'}

_MMENGINE_DIR = osp.dirname(osp.abspath(mmengine.__file__)) + os.sep
# mmengine messages still worth seeing while the run starts: what is being resumed.
_STARTUP_KEPT = ('Load checkpoint from', 'resumed epoch')
# mmengine warnings about its own internals that a user cannot act on (kept in the log file).
_MMENGINE_NOISE = ('`save_param_scheduler` is True but', '`resume_param_scheduler` is True but',
                   '"FileClient" will be deprecated', '"HardDiskBackend" is the alias of')


def verbose_requested(log_level: str | int = 'INFO') -> bool:
    """True when ``$GENFORCE_VERBOSE`` is set (1/true/yes/on) or the log level is DEBUG."""
    flag = os.environ.get(VERBOSE_ENV, '').strip().lower() in {'1', 'true', 'yes', 'on'}
    level = logging.getLevelName(log_level) if isinstance(log_level, str) else log_level
    return flag or (isinstance(level, int) and level <= logging.DEBUG)


def format_progress(kimg: float, total_kimg: float, img_per_s: float,
                    losses: Mapping[str, Any] | None = None) -> str:
    """One progress line, e.g.
    ``kimg 1.2/25.0  img/s 90.0  sec/kimg 11.11  ETA 00:04:24  loss_g 0.693``."""
    sec_per_kimg = 1000 / img_per_s if img_per_s > 0 else math.inf
    eta = max(total_kimg - kimg, 0) * sec_per_kimg
    parts = [f'kimg {format_kimg(kimg)}/{format_kimg(total_kimg)}', f'img/s {img_per_s:.1f}',
             f'sec/kimg {sec_per_kimg:.2f}', f'ETA {format_duration(eta)}']
    parts += [f'{name} {float(value):.3g}' for name, value in (losses or {}).items()]
    return '  '.join(parts)


def loss_values(outputs: Any) -> dict[str, Any]:
    """The scalar ``loss*`` entries of a train step's outputs (numbers or one-element tensors,
    converted only when a line is drawn)."""
    if not isinstance(outputs, Mapping):
        return {}
    return {k: v for k, v in outputs.items()
            if k.startswith('loss') and getattr(v, 'numel', lambda: 1)() == 1}


class RateMeter:
    """Images per second over (at least) the last ``window_s`` seconds of training (time
    passed to :meth:`exclude`, e.g. an evaluation, does not count)."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, images: int) -> None:
        self._samples.append((t, images))
        # Drop the oldest sample while the rest still spans the window.
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    def exclude(self, seconds: float) -> None:
        """Leave out the last ``seconds`` (a pause that ended now): earlier samples move
        forward in time by that much."""
        self._samples = deque((t + seconds, images) for t, images in self._samples)

    def img_per_s(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, i0), (t1, i1) = self._samples[0], self._samples[-1]
        return (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


class _QuietFormatter(logging.Formatter):
    """``12:34:56 message``; the level name only for warnings and errors."""

    def __init__(self):
        super().__init__(datefmt='%H:%M:%S')

    def format(self, record: logging.LogRecord) -> str:
        level = f' {record.levelname}' if record.levelno >= logging.WARNING else ''
        text = f'{self.formatTime(record, self.datefmt)}{level} {record.getMessage()}'
        if record.exc_info:
            text += '\n' + self.formatException(record.exc_info)
        return text


class _BarSafeStream:
    """A console stream that lifts tqdm bars off the screen while a log line is written."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self.stream):
            return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _not_console_only(record: logging.LogRecord) -> bool:
    return getattr(record, ROUTE, None) != 'console'


class Console:
    """The console of one run (a :class:`GenforceRunner` holds one as ``runner.console``).

    Args:
        verbose: Show everything, as mmengine does (no filtering, no progress display).
        stream: The console stream (default ``sys.stdout``, where mmengine logs).
    """

    def __init__(self, verbose: bool = False, stream=None):
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self.starting = True  # until the train/test loop has started
        self.progress_active = False  # a progress display replaces LoggerHook's train lines
        self.display: ProgressDisplay | None = None

    # -- logging ---------------------------------------------------------------------------
    def install(self, logger: logging.Logger) -> None:
        """Filter the logger's console handler(s) and keep console-only lines out of files."""
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.addFilter(_not_console_only)
            elif isinstance(handler, logging.StreamHandler):
                handler.addFilter(self.shows)
                if not self.verbose:
                    handler.setFormatter(_QuietFormatter())
                    if self.tty:
                        handler.setStream(_BarSafeStream(handler.stream))

    def shows(self, record: logging.LogRecord) -> bool:
        """Whether a log record goes to the console."""
        route = getattr(record, ROUTE, None)
        if self.verbose or route == 'console':
            return True
        if route == 'file':
            return False
        from_mmengine = osp.abspath(record.pathname).startswith(_MMENGINE_DIR)
        message = str(record.msg)
        if record.levelno >= logging.WARNING:
            return not (from_mmengine and message.startswith(_MMENGINE_NOISE))
        if not from_mmengine:
            return True
        if self.starting:
            return message.startswith(_STARTUP_KEPT)
        train_line = (record.funcName == 'after_train_iter'
                      and record.pathname.endswith('logger_hook.py'))
        return not (train_line and self.progress_active)

    def header(self, logger: logging.Logger, lines: Iterable[tuple[str, str]]) -> None:
        """Log ``name : value`` lines to the console only."""
        items = [(name, value) for name, value in lines if value]
        width = max((len(name) for name, _ in items), default=0)
        for name, value in items:
            logger.info(f'{name:<{width}} : {value}', extra=CONSOLE_ONLY)

    # -- progress --------------------------------------------------------------------------
    def progress(self, logger: logging.Logger, total_images: int, start_images: int,
                 interval_s: float) -> ProgressDisplay | None:
        """A progress display for this console (None when verbose: the log lines suffice)."""
        if self.verbose:
            return None
        self.progress_active = True
        if self.tty:
            self.display = ProgressBar(logger, self.stream, total_images, start_images)
        else:
            self.display = ProgressLines(logger, total_images, start_images, interval_s)
        return self.display

    def abandon_progress(self) -> None:
        """The run failed: end a bar's line, so that the error starts on a line of its own."""
        if self.display is not None:
            self.display.abandon()
            self.display = None


class ProgressDisplay:
    """Shows training progress; fed after every iteration with the images seen and losses."""

    def __init__(self, total_images: int, start_images: int,
                 clock: Callable[[], float] = time.monotonic):
        self.total_kimg = total_images / 1000
        self.clock = clock
        self.start = (clock(), start_images)
        self.images = start_images
        self.rate = RateMeter()
        self.rate.add(*self.start)
        self.losses: dict[str, Any] = {}
        self._paused_at: float | None = None

    def pause(self) -> None:
        """Training stops for a while (an evaluation): until :meth:`resume` the time does not
        count in the rate, nor in the ETA drawn from it."""
        self._paused_at = self.clock()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.rate.exclude(self.clock() - self._paused_at)
            self._paused_at = None

    def update(self, images: int, losses: Mapping[str, Any] | None = None) -> None:
        self.images = images
        self.rate.add(self.clock(), images)
        self.losses.update(losses or {})
        self.show()

    def line(self) -> str:
        return format_progress(self.images / 1000, self.total_kimg, self.rate.img_per_s(),
                               self.losses)

    def summary(self) -> str:
        """``finished at 0.064 kimg: 0.032 kimg in 00:00:03 (10.7 img/s)``."""
        elapsed = self.clock() - self.start[0]
        done = self.images - self.start[1]
        speed = f' ({done / elapsed:.1f} img/s)' if elapsed > 0 else ''
        return (f'finished at {format_kimg(self.images / 1000)} kimg: '
                f'{format_kimg(done / 1000)} kimg in {format_duration(elapsed)}{speed}')

    def show(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Training finished: show the final state and a summary."""
        raise NotImplementedError

    def abandon(self) -> None:
        """Training failed: leave what is shown as it is."""


class ProgressLines(ProgressDisplay):
    """Plain lines for logs and pipes: after the first iteration, then every ``interval_s``."""

    def __init__(self, logger: logging.Logger, total_images: int, start_images: int,
                 interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__(total_images, start_images, clock)
        self.logger = logger
        self.interval_s = interval_s
        self._last_shown: float | None = None
        self._shown_images = start_images

    def show(self) -> None:
        now = self.clock()
        if self._last_shown is None or now - self._last_shown >= self.interval_s:
            self._emit(self.line())
            self._last_shown, self._shown_images = now, self.images

    def close(self) -> None:
        if self._shown_images != self.images:
            self._emit(self.line())
        self._emit(self.summary())

    def _emit(self, text: str) -> None:
        self.logger.info(text, extra=CONSOLE_ONLY)


class ProgressBar(ProgressDisplay):
    """A tqdm bar on a terminal; log lines are printed above it."""

    REDRAW_S = 0.5

    def __init__(self, logger: logging.Logger, stream, total_images: int, start_images: int,
                 clock: Callable[[], float] = time.monotonic):
        from tqdm import tqdm

        super().__init__(total_images, start_images, clock)
        self.logger = logger
        # The size comes from shutil, which falls back where a terminal reports 0x0 (some
        # CI ptys); tqdm would then draw nothing.
        size = shutil.get_terminal_size((120, 24))
        self.bar = tqdm(total=total_images, initial=start_images, file=stream,
                        bar_format='{percentage:3.0f}%|{bar:20}| {desc}', ncols=size.columns,
                        nrows=size.lines, leave=True, desc='starting')
        self._drawn: float | None = None

    def show(self) -> None:
        # Redrawn at most twice a second (the first time at once), so that a fast GPU loop
        # does not pay for formatting on every iteration.
        now = self.clock()
        if self._drawn is None or now - self._drawn >= self.REDRAW_S:
            self._draw()
            self._drawn = now

    def close(self) -> None:
        self._draw()
        self.bar.close()
        self.logger.info(self.summary(), extra=CONSOLE_ONLY)

    def abandon(self) -> None:
        self.bar.close()

    def _draw(self) -> None:
        # Keep the line within the terminal: a wrapped line cannot be redrawn in place.
        self.bar.ncols = shutil.get_terminal_size((120, 24)).columns
        self.bar.set_description_str(self.line()[:max(self.bar.ncols - 28, 20)], refresh=False)
        self.bar.n = self.images
        self.bar.refresh()


def config_types(cfg: Any) -> set[str]:
    """Every ``type`` name (strings only) anywhere in a config."""
    found: set[str] = set()
    if isinstance(cfg, Mapping):
        for key, value in cfg.items():
            if key in ('type', 'runner_type') and isinstance(value, str):
                found.add(value)
            found |= config_types(value)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            found |= config_types(item)
    return found


def describe_plugins(cfg: Any) -> str:
    """``example_dcgan 0.1.0 (8 installed)``: the loaded plugins that registered a type the
    config names, with versions, and how many plugins are installed."""
    from ..plugins import load_plugins

    plugins = load_plugins().plugins.values()
    types = config_types(cfg)
    used = [p for p in plugins if p.status == 'loaded'
            and any(types.intersection(keys) for keys in p.registered.values())]
    names = ', '.join(f'{p.name} {p.version}' for p in used) or 'none (core types only)'
    return f'{names} ({len(plugins)} installed; `genforce plugins` lists them)'
