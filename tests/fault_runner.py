"""Run `ccas-bot poll --once` in forked children and SIGKILL them on request, for tests/test_faults.py.

Usage: python fault_runner.py CONFIG LOG_FILE

The runner imports the bot once and prints "ready". For each line "run DELAY" on
standard input it forks a child that runs `ccas-bot --config CONFIG poll --once`,
and kills the child with SIGKILL DELAY seconds after the fork unless it has exited
by then ("run none" never kills). It then prints one JSON line:
{"started": t, "ended": t, "killed_at": t or null, "status": exit status or -signal}.
Times are time.time() values. Forking from a process that has already imported the
bot spends each run on the poll itself rather than on Python's start-up, so a
random delay lands on the poll's steps. The runner itself starts no threads and no
connections, so forking it is safe.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

# Everything a poll imports, loaded once before the first fork.
import bot.app  # noqa: F401
import bot.cli
import bot.intake  # noqa: F401
import bot.pipeline  # noqa: F401
import bot.report  # noqa: F401
import store.db  # noqa: F401


def run_child(config: str, log_path: str) -> None:
    """Replace this forked process's output with the log file, run one poll and exit."""
    status = 70
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(devnull, 1)
        os.dup2(log_fd, 2)
        status = bot.cli.main(["--config", config, "poll", "--once"])
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(status)


def wait_or_kill(pid: int, delay: float | None) -> tuple[int, float | None]:
    """Wait for the child; kill it after `delay` seconds if it is still running. Return (status, killed_at)."""
    killed_at = None
    if delay is not None:
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(delay * 1000):
                killed_at = time.time()
                # The child is not reaped before this, so the pid cannot have been reused.
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), killed_at


def main(config: str, log_path: str) -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command != "run":
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
            continue
        delay = None if argument == "none" else float(argument)
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.time()
        pid = os.fork()
        if pid == 0:
            run_child(config, log_path)
        status, killed_at = wait_or_kill(pid, delay)
        print(json.dumps({"started": started, "ended": time.time(), "killed_at": killed_at,
                          "status": status}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
