"""``python -m bench [--quick]``: start what each benchmark needs, run it beside its baseline,
print one table and write it to ``bench/results/latest.md``."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from bench import store
from bench.config import RESULTS, Options, parse_args, process_env
from bench.report import Report


def _configure_this_process(opts: Options) -> None:
    """This process reads the bench database through Django (counts, timestamps, plans) and
    runs the dispatcher itself for the dispatch-rate figure, with capacity set high so that
    only admission is measured (the processes it starts keep the shipped capacity)."""
    os.environ.update(process_env(opts, settings_module="bench.baseline.settings"))
    os.environ.update(MAX_CPU_UNITS="100000000", MAX_MEMORY_MB="100000000000", LOG_LEVEL="ERROR")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _steps(opts: Options) -> list[tuple[str, str, Callable[..., None]]]:
    from bench import admission_limits, api_phases, delayed, make_run, scaling, worker_phases

    steps = [
        ("submit", "single-job submission", api_phases.submission),
        ("batch", "batch submission", api_phases.batch),
        ("e2e", "execution", worker_phases.execution),
        ("scale", "scaling", scaling.scaling),
        ("delayed", "delayed jobs", delayed.delayed),
        ("slow", "2-second jobs under make run", make_run.slow_jobs),
        ("limits", "admission with limits", admission_limits.admission_with_limits),
    ]
    return [s for s in steps if not opts.only or s[0] in opts.only]


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    redis_client = store.claim_redis(opts)
    _configure_this_process(opts)
    signal.signal(signal.SIGTERM, _interrupt)
    mode = "quick" if opts.quick else "full"
    print(f"[0] setup: re-creating database {opts.database_name} ({mode} run)", flush=True)
    store.recreate_database(opts)
    store.reset_redis(redis_client)

    import django

    django.setup()
    from bench.runner import Bench

    bench = Bench(opts=opts, report=Report(mode=mode, settings=opts.settings), redis=redis_client)
    bench.create_token()
    steps = _steps(opts)
    started = time.monotonic()
    try:
        for index, (_, title, run) in enumerate(steps, 1):
            bench.step = f"[{index}/{len(steps)}] {title}:"
            bench.say("starting")
            run(bench)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the bench started", file=sys.stderr, flush=True)
        return 130
    finally:
        bench.procs.stop_all()
        store.reset_redis(redis_client)
        if not opts.keep_db:
            store.drop_database(opts)
    print(f"\nDone in {(time.monotonic() - started) / 60:.1f} min.\n")
    print(bench.report.table())
    bench.report.write(RESULTS / "latest.md")
    print(f"\nwritten to {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
