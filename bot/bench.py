"""The `ccas-bot bench` group: commands that measure the bot and print figures.

Each module in BENCH_MODULES has register_bench(subparsers), which adds one
`ccas-bot bench NAME` command to the group. As for COMMAND_MODULES in bot/cli.py,
the command's handler receives the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import importlib

BENCH_MODULES: list[str] = ["bot.bench_fuzz", "bot.bench_latency", "bot.bench_load", "bot.bench_match", "bot.bench_parse"]


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="measure the bot and print figures")
    benchmarks = bench.add_subparsers(required=True, metavar="BENCHMARK")
    for module_name in BENCH_MODULES:
        importlib.import_module(module_name).register_bench(benchmarks)
