"""``python -m loadtest``: drive the switch (and the echo baseline) and report.

Examples::

    # closed loop, switch and echo baseline in one run, one JSON object on stdout
    python -m loadtest --terminals 200 --duration 30 --baseline echo --json
    # open loop at 2,000 transactions/s with Poisson arrivals, plus a plot
    python -m loadtest --terminals 200 --rate 2000 --duration 30 --plot run.png
    # find the peak rate with p99 <= 50 ms, then measure at 70% of it
    python -m loadtest --terminals 200 --baseline echo --step --json
    # overload: find the peak, then run open loop at 2x it (p99, share answered 91, RSS)
    python -m loadtest --terminals 200 --step --overload --json
    # a fixture file for a switch started by hand (then --switch HOST:PORT)
    python -m loadtest --write-fixtures fixtures.json --terminals 200

Progress goes to stderr; with ``--json`` stdout carries exactly one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from loadtest.limits import raise_open_files_limit
from loadtest.mix import Mix, default_reversal_share
from loadtest.plot import plot_runs
from loadtest.population import write_fixtures
from loadtest.report import RunResult, build_report, summarize
from loadtest.runner import RunOptions, TargetMeasurement, measure, progress
from loadtest.step import StepCriteria, overload_factor_default, overload_summary
from loadtest.targets import EchoTarget, ExternalTarget, SwitchTarget, Target, TargetError

processes_default = 2  # the generator needs more than one core to outrun the echo baseline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Load generator for atm-switch (open or closed loop, HDR latency).",
    )
    add = parser.add_argument
    add("--terminals", type=int, default=200, help="terminals, each on its own connection")
    add("--duration", type=float, default=30.0, help="measurement window, seconds")
    add("--warmup", type=float, default=5.0, help="warm-up before the window, seconds")
    add("--rate", type=float, default=None, help="open loop: transactions (0200) per second")
    add("--arrival", choices=("poisson", "fixed"), default="poisson", help="open-loop arrivals")
    add("--processes", type=int, default=None, help="generator processes (default 2)")
    add("--baseline", choices=("none", "echo"), default="none", help="also run the echo baseline")
    add("--echo-only", action="store_true", help="measure only the echo baseline")
    add("--json", action="store_true", help="print one JSON object")
    add("--plot", type=Path, default=None, help="write a PNG of throughput and latency")
    add("--dsn", default=None, help="PostgreSQL DSN for the switch (default: embedded)")
    add("--switch", default=None, metavar="HOST:PORT[,...]", help="use running switch process(es)")
    add("--switch-pid", default=None, metavar="PID[,...]", help="their PIDs, for CPU and RSS")
    add("--switch-data-dir", type=Path, default=None, help="its data dir (embedded DB CPU)")
    add("--workers", type=int, default=None, help="pass --workers N to atm-switch serve")
    add("--switch-log", type=Path, default=None, help="file for the switch's stderr")
    add("--keep-data-dir", action="store_true", help="keep the switch's temporary data dir")
    add("--seed", default="atm-loadtest", help="population seed (TMKs, PINs)")
    add("--response-timeout", type=float, default=10.0, help="seconds before a request fails")
    add("--reversal-share", type=float, default=default_reversal_share)
    add("--step", action="store_true", help="find the peak rate with p99 <= --p99-max-ms")
    add("--step-duration", type=float, default=10.0)
    add("--step-warmup", type=float, default=3.0)
    add("--p99-max-ms", type=float, default=50.0)
    add("--error-rate-max", type=float, default=0.001)
    add("--peak-fraction", type=float, default=0.7, help="measure at this fraction of the peak")
    add("--write-fixtures", type=Path, default=None, help="write the fixture file and exit")
    add("--overload", action="store_true",
        help="after the run (the peak from --step, or --rate), run open loop at "
        "--overload-factor x that rate: p99 of answered 0200s, share answered 91, RSS")
    add("--overload-factor", type=float, default=overload_factor_default)
    return parser


def options_from(args: argparse.Namespace) -> RunOptions:
    if args.terminals < 1 or args.duration <= 0 or args.warmup < 0:
        raise SystemExit("loadtest: --terminals >= 1, --duration > 0 and --warmup >= 0 please")
    if args.processes is None:
        args.processes = min(processes_default, args.terminals)
    if args.processes < 1 or args.processes > args.terminals:
        raise SystemExit("loadtest: --processes must be between 1 and --terminals")
    if args.rate is not None and args.rate <= 0:
        raise SystemExit("loadtest: --rate must be positive")
    return RunOptions(
        terminals=args.terminals,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rate_per_s=args.rate,
        arrival=args.arrival,
        processes=args.processes,
        seed=args.seed,
        response_timeout_s=args.response_timeout,
        mix=Mix(reversal_share=args.reversal_share),
        step=args.step,
        criteria=StepCriteria(p99_ms_max=args.p99_max_ms, error_rate_max=args.error_rate_max),
        step_duration_s=args.step_duration,
        step_warmup_s=args.step_warmup,
        peak_fraction=args.peak_fraction,
    )


@contextlib.contextmanager
def switch_target(args: argparse.Namespace, log: IO[str] | None) -> Iterator[Target]:
    if args.switch:
        yield ExternalTarget(args.switch, args.switch_pid, args.switch_data_dir)
        return
    progress(f"starting atm-switch with {args.terminals} terminals (fixtures, serve)")
    with SwitchTarget(
        args.terminals,
        seed=args.seed,
        dsn=args.dsn,
        workers=args.workers,
        keep_data_dir=args.keep_data_dir,
        log=log,
    ) as target:
        yield target


def run(args: argparse.Namespace) -> dict[str, Any]:
    options = options_from(args)
    echo: TargetMeasurement | None = None
    switch: TargetMeasurement | None = None
    overload: dict[str, Any] | None = None
    if args.baseline == "echo" or args.echo_only:
        with EchoTarget() as echo_target:
            echo = measure(echo_target, options, key_exchange=False, verify_mac=False)
    if not args.echo_only:
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(args.switch_log.open("w")) if args.switch_log else None
            target = stack.enter_context(switch_target(args, log))
            switch = measure(target, options, key_exchange=True, verify_mac=True)
            overload = _overload(args, options, target, switch) if args.overload else None
    report = build_report(
        switch=switch.main if switch else None,
        echo=echo.main if echo else None,
        settings=_settings(args),
        processes=options.processes,
    )
    if switch is not None:
        report["switch"] |= switch.extra_json()
        if switch.at_fraction is not None:
            at = summarize(switch.at_fraction)
            report |= {k: at[k] for k in ("p50_ms", "p99_ms", "p999_ms", "errors", "error_rate")}
            report["latency_source"] = f"open loop at {options.peak_fraction:g} of the peak rate"
            report["peak_rate"] = report["switch"]["peak_rate"]
    if overload is not None:
        report["overload"] = overload
    if echo is not None:
        report["echo"] |= echo.extra_json()
    if args.plot:
        runs: list[RunResult] = [m.main for m in (switch, echo) if m is not None]
        if switch is not None and switch.at_fraction is not None:
            switch.at_fraction.target = f"switch@{options.peak_fraction:g}peak"
            runs.append(switch.at_fraction)
        plot_runs(runs, args.plot, f"atm-switch load test, {options.terminals} terminals",
                  p99_goal_ms=args.p99_max_ms)
        report["plot"] = str(args.plot)
    return report


def _overload(
    args: argparse.Namespace, options: RunOptions, target: Target, switch: TargetMeasurement
) -> dict[str, Any]:
    """Open loop at ``--overload-factor`` x the peak (DESIGN.md 5: bounded p99, 91s, flat RSS)."""
    peak = switch.peak_rate or args.rate
    if not peak:
        raise TargetError("--overload needs the peak rate: give --step or --rate")
    rate = peak * args.overload_factor
    progress(f"overload: open loop at {rate:.0f}/s ({args.overload_factor:g} x {peak:.0f}/s)")
    over = measure(target, dataclasses.replace(options, rate_per_s=rate, step=False),
                   key_exchange=True, verify_mac=True)
    baseline = summarize(switch.at_fraction or switch.main).get("target_rss_mb")
    return overload_summary(summarize(over.main), peak, baseline)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("terminals", "duration", "warmup", "rate", "arrival", "processes", "baseline")
    settings = {key: getattr(args, key) for key in keys}
    settings["mode"] = "closed" if args.rate is None else "open"
    settings["database"] = "external" if args.dsn else "embedded"
    settings["workers"] = args.workers
    settings["step"] = args.step
    settings["overload"] = args.overload
    return settings


def print_human(report: dict[str, Any]) -> None:
    for name in ("switch", "echo"):
        summary = report.get(name)
        if not summary:
            continue
        print(
            f"{name}: {summary['tps']} 0200/s ({summary['requests_per_s']} requests/s), "
            f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
            f"p999 {summary['p999_ms']} ms, "
            f"errors {summary['errors']}, approved {summary['approved_share']:.4f}, "
            f"generator {summary['generator_cpu_cores']} cores"
        )
    if report.get("ratio") is not None:
        print(f"ratio switch/echo: {report['ratio']}")
    overload = report.get("overload")
    if overload:
        print(
            f"overload at {overload['offered_rate_per_s']}/s: {overload['tps']} 0200/s, "
            f"p99 {overload['p99_ms']} ms, answered 91: {overload['share_answered_91']}, "
            f"errors {overload['errors']}, RSS {overload['target_rss_mb']} MB "
            f"(+{overload['target_rss_growth_mb']})"
        )
    if report.get("peak_rate") is not None:
        print(
            f"peak rate {report['peak_rate']}/s; at {report['latency_source']}: "
            f"p99 {report['p99_ms']} ms, p999 {report['p999_ms']} ms, errors {report['errors']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write_fixtures:
        write_fixtures(args.write_fixtures, args.terminals, args.seed)
        return 0
    raise_open_files_limit()  # the switch and echo server inherit it
    try:
        report = run(args)
    except TargetError as exc:
        print(f"loadtest: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
