"""The long-running poll: APScheduler 3.11 runs one poll at a time at the configured interval."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.blocking import BlockingScheduler

from bot.config import Config
from bot.errors import ConfigError, RemoteError

log = logging.getLogger(__name__)


def run_forever(config: Config, poll, daily=None) -> None:
    """Poll at the configured interval until SIGTERM or SIGINT; a running poll finishes first.

    `daily`, when given, runs once a day at 07:30 local time (action reminders).
    """
    timezone = ZoneInfo(config.bot.timezone)
    scheduler = BlockingScheduler(timezone=timezone)
    scheduler.add_job(
        _guarded(poll), "interval", seconds=config.bot.poll_interval_seconds, id="poll",
        max_instances=1, coalesce=True, misfire_grace_time=config.bot.misfire_grace_seconds,
        next_run_time=datetime.now(timezone),
    )
    if daily is not None:
        # A missed morning run (the machine was off) still runs within the day.
        scheduler.add_job(_guarded(daily), "cron", hour=7, minute=30, id="daily", max_instances=1,
                          coalesce=True, misfire_grace_time=12 * 3600)

    def stop(signum, _frame):
        log.info("signal %d received; stopping after the current poll", signum)
        # shutdown() waits for the running job, so it must not run on the scheduler's thread.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: polling every %d s", config.bot.poll_interval_seconds)
    scheduler.start()
    log.info("scheduler stopped")


def _guarded(poll):
    def job() -> None:
        try:
            poll()
        except RemoteError as error:
            log.warning("poll failed, will retry at the next interval: %s", error)
        except ConfigError as error:
            log.error("poll failed because of the configuration: %s", error)
        except Exception:
            log.exception("poll failed (bug); will retry at the next interval")
    return job
