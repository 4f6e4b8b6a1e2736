"""The orchestrator behind ``tools/gpu_check.sh``: GPU verification steps, each with its own
timeout and log, within one time budget; writes ``summary.json`` and ``summary.md``.

Every step is a separate process (a crash or a hung kernel ends that step only); its output goes
to ``steps/<name>.log`` and its results to ``steps/<name>.json``, both in the output folder (or,
with ``--pack``, in a scratch folder whose ``steps`` are packed into ``OUT/steps.tar.gz`` after
each step, so that at most four files need to come back from a remote machine). The summary is
rewritten after every step, so a run killed from outside still leaves what it had.

This module imports only the standard library: it also writes the summary of a skipped run,
on a machine where torch or genforce cannot be imported.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_BUDGET_S = 480.0  # the issue's 8 minutes on one GPU
MIN_STEP_S = 15.0  # a step is not started with less time than this left
REHEARSAL_SLOWDOWN = 3  # --rehearse: timeouts and budget scaled by this (a busy 2-core CPU)


class GpuCheckError(Exception):
    """A usage error of the GPU check (unknown step, bad option): one line for the user."""


@dataclass
class Context:
    """What every step's command line is built from."""
    python: str
    out: Path  # results folder (summary.*, steps/ or steps.tar.gz)
    steps_dir: Path  # where step logs and JSON go
    scratch: Path  # installed wheels, ops cache, datasets, work dirs
    wheels: Path
    arch: str = ''  # TORCH_CUDA_ARCH_LIST for the visible GPU, e.g. '9.0'
    rehearse: bool = False  # run every step on the CPU at toy sizes (tests the script)

    def json_path(self, name: str) -> Path:
        return self.steps_dir / f'{name}.json'

    def tool(self, script: str, name: str, *args: str) -> list[str]:
        """Command line of a helper of this folder that writes ``steps/<name>.json``."""
        argv = [self.python, str(HERE / script), '--json', str(self.json_path(name)), *args]
        return argv + (['--rehearse'] if self.rehearse else [])


@dataclass
class Step:
    name: str
    help: str
    timeout_s: float
    argv: Callable[[Context, float], list[str]]  # (context, seconds allowed) -> command line
    required: bool = False  # later steps are skipped when it fails
    min_s: float = 0.0  # not started with less time left than this (or MIN_STEP_S)


@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | timeout | skipped
    seconds: float = 0.0
    timeout_s: float | None = None
    returncode: int | None = None
    note: str = ''
    command: list[str] = field(default_factory=list)
    result: dict | None = None  # the step's own JSON, when it wrote one


def _setup(ctx: Context, _: float) -> list[str]:
    return ctx.tool('install.py', 'setup', '--wheels', str(ctx.wheels),
                    '--site', str(ctx.scratch / 'site'))


def _compile(ctx: Context, _: float) -> list[str]:
    return ctx.tool('compile_all.py', 'compile', '--arch', ctx.arch or '9.0')


def _tests(ctx: Context, _: float) -> list[str]:
    return ctx.tool('tests_step.py', 'tests', '--junit', str(ctx.steps_dir / 'tests.xml'))


def _train(precision: str) -> Callable[[Context, float], list[str]]:
    def argv(ctx: Context, _: float) -> list[str]:
        return ctx.tool('train_smoke.py', f'train_{precision}', '--precision', precision,
                        '--work-dir', str(ctx.scratch / f'train_{precision}'))
    return argv


def _speed(ctx: Context, seconds: float) -> list[str]:
    # Stop starting new measurements early enough to write the JSON before the timeout.
    return ctx.tool('speed.py', 'speed', '--deadline', f'{max(seconds - 30, 5):.0f}')


def _fid(ctx: Context, _: float) -> list[str]:
    return ctx.tool('fid_step.py', 'fid')


STEPS = [
    Step('setup', 'install the carried wheels (if any), record versions, GPU, plugins', 120,
         _setup, required=True),
    Step('compile', "compile every plugin's CUDA ops for the visible GPU (in parallel)", 240,
         _compile),
    Step('tests', 'the CUDA tests: ops vs reference, values, 1st/2nd-order gradients, fp16',
         180, _tests),
    Step('train_fp16', 'StyleGAN2 64x64 smoke, official fp16 layers: losses, checkpoint, resume',
         150, _train('fp16')),
    Step('train_amp', 'StyleGAN2 64x64 smoke with --amp: losses, checkpoint, resume', 150,
         _train('amp')),
    Step('fid', 'FID: overlapped == serial features; Inception img/s (fid_speed.py)', 120, _fid),
    # Last: it measures as much of its plan as the time left allows.
    Step('speed', 'train_speed at 256: paper256 / auto / StyleGAN3 T, R, batch 16-64, cuda vs '
         'ref, fp32/fp16/amp',
         240, _speed, min_s=60),  # process start, warm-up and one ~20 s measurement
]
STEP_NAMES = [s.name for s in STEPS]


def parse_names(text: str | None) -> list[str]:
    """``'a,b'`` -> ``['a', 'b']``; raises :class:`GpuCheckError` naming an unknown step."""
    if not text:
        return []
    names = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in names if n not in STEP_NAMES]
    if unknown:
        raise GpuCheckError(f'unknown step {", ".join(unknown)!s}: choose from '
                            f'{",".join(STEP_NAMES)}')
    return names


def select_steps(only: str | None = None, skip: str | None = None,
                 steps: list[Step] | None = None) -> list[Step]:
    """The steps to run, in their fixed order. ``setup`` (which installs what the others
    import) runs whenever anything else runs, unless named in ``skip``."""
    steps = STEPS if steps is None else steps
    wanted, unwanted = parse_names(only), set(parse_names(skip))
    chosen = [s for s in steps if (not wanted or s.name in wanted or s.required)
              and s.name not in unwanted]
    if not [s for s in chosen if not s.required]:
        raise GpuCheckError(f'no step left to run (--only {only or "-"}, --skip {skip or "-"})')
    return chosen


def parse_timeouts(items: list[str]) -> dict[str, float]:
    """``['speed=300']`` -> ``{'speed': 300.0}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition('=')
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or not name.strip() or seconds <= 0:
            raise GpuCheckError(f'--timeout {item!r}: expected STEP=SECONDS, e.g. speed=300')
        out[parse_names(name)[0]] = seconds
    return out


# ------------------------------------------------------------------------------- running steps

def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the step's process group, then SIGKILL what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(step: Step, ctx: Context, env: dict, timeout: float) -> StepResult:
    """Run one step in its own process group; its output goes to ``steps/<name>.log``."""
    argv = step.argv(ctx, timeout)
    json_path = ctx.json_path(step.name)
    json_path.unlink(missing_ok=True)
    start = time.monotonic()
    with open(ctx.steps_dir / f'{step.name}.log', 'w') as log:
        log.write(f'$ {shlex.join(argv)}\n')
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout)
            status = 'passed' if returncode == 0 else 'failed'
            note = '' if returncode == 0 else f'exit code {returncode}'
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            returncode, status, note = None, 'timeout', f'killed after {timeout:.0f} s'
        seconds = time.monotonic() - start
        log.write(f'\n[gpu_check] {step.name}: {status} in {seconds:.1f} s {note}\n')
    result = None
    if json_path.is_file():
        try:
            result = json.loads(json_path.read_text())
        except ValueError as exc:
            note = f'{note}; unreadable JSON: {exc}'.lstrip('; ')
    if isinstance(result, dict) and result.get('note'):
        note = '; '.join(n for n in (note, str(result['note'])) if n)
    return StepResult(step.name, status, seconds, timeout, returncode, note, argv, result)


def run_all(steps: list[Step], ctx: Context, env: dict, budget_s: float,
            timeouts: dict[str, float] | None = None,
            on_result: Callable[[list[StepResult]], None] | None = None) -> list[StepResult]:
    """Run ``steps`` in order; a failing step does not stop the others (except a failed
    required step, after which nothing can run). Each step gets its own timeout, cut to the
    time left of ``budget_s``; a step with less than ``MIN_STEP_S`` left is skipped."""
    deadline = time.monotonic() + budget_s
    results: list[StepResult] = []
    blocked = ''
    for step in steps:
        remaining = deadline - time.monotonic()
        timeout = min((timeouts or {}).get(step.name, step.timeout_s), remaining)
        if blocked:
            result = StepResult(step.name, 'skipped', note=blocked)
        elif remaining < max(MIN_STEP_S, step.min_s):
            result = StepResult(step.name, 'skipped',
                                note=f'time budget of {budget_s:.0f} s used up')
        else:
            print(f'[gpu_check] {step.name}: {step.help} (timeout {timeout:.0f} s) ...',
                  flush=True)
            result = run_step(step, ctx, env, timeout)
        print(f'[gpu_check] {step.name}: {result.status} {result.seconds:.1f} s '
              f'{result.note}'.rstrip(), flush=True)
        if step.required and result.status != 'passed':
            blocked = f'{step.name} {result.status}'
        results.append(result)
        if on_result:
            on_result(results)
    return results


# ------------------------------------------------------------------------------------ summary

def overall_status(results: list[StepResult]) -> str:
    """'passed' when every step passed, else 'failed' (skipped steps count as not passed)."""
    return 'passed' if results and all(r.status == 'passed' for r in results) else 'failed'


def summary_dict(results: list[StepResult], *, status: str | None = None, reason: str = '',
                 budget_s: float | None = None, started: str = '', extra: dict | None = None
                 ) -> dict:
    return dict(
        status=status or overall_status(results),
        reason=reason,
        started=started,
        finished=datetime.datetime.now().isoformat(timespec='seconds'),
        total_s=round(sum(r.seconds for r in results), 1),
        budget_s=budget_s,
        host=platform.node(),
        python=platform.python_version(),
        counts={s: sum(r.status == s for r in results)
                for s in ('passed', 'failed', 'timeout', 'skipped')},
        steps=[asdict(r) for r in results],
        **(extra or {}),
    )


def _fmt(value, spec: str = '.1f') -> str:
    return '-' if value is None else format(value, spec)


def markdown_tables(summary: dict) -> str:
    """The steps table, then the result tables of the speed, fid and train steps."""
    lines = [f'# GPU check: {summary["status"]}', '']
    if summary.get('reason'):
        lines += [summary['reason'], '']
    gpu = summary.get('gpu') or {}
    if summary.get('rehearse'):
        lines += ['Rehearsal on the CPU at toy sizes: no GPU was used, no number is a GPU '
                  'measurement.', '']
    elif gpu.get('name'):
        lines += [f'GPU: {gpu.get("name", "?")} (capability {gpu.get("capability", "?")}), '
                  f'torch {gpu.get("torch", "?")}, CUDA {gpu.get("cuda", "?")}', '']
    lines += ['| step | status | seconds | timeout | note |', '| --- | --- | --- | --- | --- |']
    for s in summary['steps']:
        note = str(s.get('note') or '').replace('|', '/').replace('\n', ' ')[:120]
        lines.append(f'| {s["name"]} | {s["status"]} | {_fmt(s.get("seconds"))} | '
                     f'{_fmt(s.get("timeout_s"), ".0f")} | {note} |')
    results = {s['name']: s.get('result') or {} for s in summary['steps']}
    rows = results.get('speed', {}).get('results') or []
    if rows:
        lines += ['', '## Training speed (one full iteration, lazy regularization amortized)', '',
                  '| setting | res | batch | ops | precision | img/s | sec/kimg | peak MB |',
                  '| --- | --- | --- | --- | --- | --- | --- | --- |']
        for r in rows:
            if r.get('error'):
                lines.append(f'| {r["setting"]} | {r.get("resolution", "-")} | {r["batch"]} | '
                             f'{r["ops"]} | {r["precision"]} | error: '
                             f'{str(r["error"])[:60]} | | |')
                continue
            ops = r.get('ops_used', r['ops'])
            if r.get('filtered_lrelu') not in (None, ops):  # StyleGAN3 rows: its op's path
                ops += ', filtered_lrelu ' + str(r['filtered_lrelu']).replace('|', '/')[:40]
            lines.append(f'| {r["setting"]} | {r["resolution"]} | {r["batch"]} | '
                         f'{ops} | {r["precision"]} | '
                         f'{_fmt(r["img_per_s"])} | {_fmt(r["sec_per_kimg"], ".2f")} | '
                         f'{_fmt(r.get("peak_mem_mb"), ".0f")} |')
    fid = results.get('fid', {})
    if fid.get('speed'):
        speed = fid['speed']
        lines += ['', '## FID', '', '| batch | Inception img/s |', '| --- | --- |']
        lines += [f'| {r["batch"]} | {_fmt(r["images_per_s"])} |' for r in speed['extraction']]
        side = speed.get('side_by_side') or {}
        side_rows = side.get('rows', []) + (side.get('clean_resize') or {}).get('rows', [])
        if side_rows:
            lines += ['', f'Side by side, batch {side.get("batch")}:', '',
                      '| extraction | img/s |', '| --- | --- |']
            lines += [f'| {r["name"]} | {_fmt(r["images_per_s"])} |' for r in side_rows]
        metric = speed.get('full_metric') or {}
        if metric:
            lines += ['', f'{metric.get("count")} generated images ({metric.get("generator")}, '
                      f'batch {metric.get("batch")}): serial {_fmt(metric.get("serial_s"), ".2f")}'
                      f' s, overlapped {_fmt(metric.get("overlapped_s"), ".2f")} s, generation '
                      f'alone {_fmt(metric.get("generation_only_s"), ".2f")} s.']
    if fid.get('overlap_check'):
        check = fid['overlap_check']
        lines += ['', f'Overlapped vs serial extraction: max |diff| of features '
                  f'{check.get("max_abs_diff")} ({"ok" if check.get("ok") else "MISMATCH"}).']
    for name in ('train_fp16', 'train_amp'):
        train = results.get(name, {})
        if train.get('checks'):
            failed = [k for k, ok in train['checks'].items() if not ok]
            seconds = ' + '.join(_fmt(s) for s in train.get('seconds') or [])
            lines += ['', f'{name}: {train.get("iterations")} iterations, then resumed for as '
                      f'many ({seconds} s, process start included); checks '
                      + ('all passed' if not failed else 'FAILED: ' + ', '.join(failed))]
    return '\n'.join(lines) + '\n'


def write_summary(out: Path, summary: dict) -> None:
    """``summary.json`` and ``summary.md`` in ``out`` (written to temporary files, renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (('summary.json', json.dumps(summary, indent=2, default=str)),
                       ('summary.md', markdown_tables(summary))):
        tmp = out / f'.{name}.tmp'
        tmp.write_text(text)
        tmp.replace(out / name)


def pack_steps(steps_dir: Path, out: Path) -> Path:
    """``out/steps.tar.gz`` holding every file of ``steps_dir`` (replaced atomically)."""
    tmp = out / '.steps.tar.gz.tmp'
    with tarfile.open(tmp, 'w:gz') as tar:
        for path in sorted(steps_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=f'steps/{path.name}')
    final = out / 'steps.tar.gz'
    tmp.replace(final)
    return final


# ----------------------------------------------------------------------------------- command

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='tools/gpu_check.sh',
        description='Verify genforce on a CUDA GPU: compile the ops, run the CUDA tests, '
                    'fp16/amp training smokes, training and FID speed; JSON + summary.')
    parser.add_argument('out', nargs='?', help='results folder (default: $OUT, else '
                        'work_dirs/gpu_check)')
    parser.add_argument('--only', help=f'comma-separated steps to run ({",".join(STEP_NAMES)}); '
                        'setup always runs unless skipped')
    parser.add_argument('--skip', help='comma-separated steps not to run')
    parser.add_argument('--budget', type=float, default=None,
                        help=f'total seconds for all steps (default {DEFAULT_BUDGET_S:.0f}; '
                        f'{REHEARSAL_SLOWDOWN} times that with --rehearse)')
    parser.add_argument('--timeout', action='append', default=[], metavar='STEP=SECONDS',
                        help='override one step\'s timeout (repeatable)')
    parser.add_argument('--wheels', default=str(REPO / '.gpu_wheels'),
                        help='folder of carried wheels (from --prepare; default .gpu_wheels)')
    parser.add_argument('--scratch', default=None, help='scratch folder (default '
                        '$TMPDIR/genforce_gpu_check)')
    parser.add_argument('--pack', action='store_true',
                        help='keep step logs/JSON in the scratch folder and pack them into '
                        'OUT/steps.tar.gz (at most 4 files in OUT)')
    parser.add_argument('--rehearse', action='store_true',
                        help='run every step on the CPU at toy sizes (tests the script)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the steps and their command lines, run nothing')
    parser.add_argument('--list', action='store_true', help='list the steps and exit')
    parser.add_argument('--arch', default='', help='TORCH_CUDA_ARCH_LIST of the GPU '
                        '(tools/gpu_check.sh passes it)')
    parser.add_argument('--gpu', default='', help='GPU name (tools/gpu_check.sh passes it)')
    parser.add_argument('--skip-reason', default=None,
                        help='write a summary saying the check was skipped for this reason')
    parser.add_argument('--check-args', action='store_true',
                        help='only validate the arguments (before the GPU probe)')
    return parser


def output_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get('OUT') or REPO / 'work_dirs' / 'gpu_check').resolve()


def make_context(args: argparse.Namespace, out: Path) -> Context:
    scratch = Path(args.scratch or Path(os.environ.get('TMPDIR', '/tmp'))
                   / 'genforce_gpu_check').resolve()
    steps_dir = scratch / 'steps' if args.pack else out / 'steps'
    return Context(python=sys.executable, out=out, steps_dir=steps_dir, scratch=scratch,
                   wheels=Path(args.wheels).resolve(), arch=args.arch, rehearse=args.rehearse)


def step_env(ctx: Context) -> dict:
    """The environment of every step: installed wheels first on the path, one ops cache, the
    GPU's arch list (so compiled ops and later loads share one build)."""
    env = dict(os.environ)
    site = ctx.scratch / 'site'
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(site), env.get('PYTHONPATH', '')) if p)
    env['GENFORCE_OPS_CACHE'] = str(ctx.scratch / 'ops')
    if ctx.arch:
        env['TORCH_CUDA_ARCH_LIST'] = ctx.arch
    env.setdefault('MAX_JOBS', str(os.cpu_count() or 4))
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('MPLBACKEND', 'Agg')
    return env


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scale = REHEARSAL_SLOWDOWN if args.rehearse else 1
    args.budget = args.budget or DEFAULT_BUDGET_S * scale
    try:
        timeouts = {**{s.name: s.timeout_s * scale for s in STEPS},
                    **parse_timeouts(args.timeout)}
        steps = select_steps(args.only, args.skip)
    except GpuCheckError as exc:
        print(f'[gpu_check] error: {exc}', file=sys.stderr)
        return 2
    if args.check_args:
        return 0
    if args.list:
        for step in STEPS:
            print(f'{step.name:<11} {step.timeout_s:>4.0f} s  {step.help}')
        return 0
    out = output_dir(args.out)
    started = datetime.datetime.now().isoformat(timespec='seconds')
    if args.skip_reason is not None:
        results = [StepResult(s.name, 'skipped', note=args.skip_reason) for s in steps]
        write_summary(out, summary_dict(results, status='skipped', reason=args.skip_reason,
                                        started=started))
        print(f'[gpu_check] skipped: {args.skip_reason} (summary in {out})')
        return 0
    ctx = make_context(args, out)
    if args.dry_run:
        for step in steps:
            seconds = timeouts.get(step.name, step.timeout_s)
            print(f'{step.name} (timeout {seconds:.0f} s): {shlex.join(step.argv(ctx, seconds))}')
        return 0
    if args.pack and ctx.steps_dir.is_dir():  # ours: no stale step files in the archive
        shutil.rmtree(ctx.steps_dir)
    ctx.steps_dir.mkdir(parents=True, exist_ok=True)
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    extra = dict(gpu=dict(name=args.gpu, capability=args.arch), rehearse=args.rehearse,
                 out=str(out))

    def on_result(results: list[StepResult]) -> None:
        setup = next((r.result for r in results if r.name == 'setup' and r.result), None)
        if setup:
            extra['gpu'] = {**extra['gpu'], **(setup.get('gpu') or {})}
        write_summary(out, summary_dict(results, budget_s=args.budget, started=started,
                                        extra=extra))
        if args.pack:
            pack_steps(ctx.steps_dir, out)

    mode = ' (rehearsal on the CPU at toy sizes)' if args.rehearse else ''
    print(f'[gpu_check] {len(steps)} step(s) on {args.gpu or "?"}{mode}, budget '
          f'{args.budget:.0f} s, results in {out}', flush=True)
    results = run_all(steps, ctx, step_env(ctx), args.budget, timeouts, on_result)
    print()
    print(markdown_tables(json.loads((out / 'summary.json').read_text())), end='')
    status = overall_status(results)
    print(f'[gpu_check] {status}: ' + ', '.join(
        f'{n} {sum(r.status == n for r in results)}'
        for n in ('passed', 'failed', 'timeout', 'skipped')) + f'; summary in {out}')
    return 0 if status == 'passed' else 1


if __name__ == '__main__':
    sys.exit(main())
