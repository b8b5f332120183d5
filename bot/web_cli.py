"""`ccas-bot web`: serve the coordinators' web app with waitress until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal

log = logging.getLogger("bot.web")


def register(commands) -> None:
    web = commands.add_parser(
        "web", help="serve the web app for coordinators and panel members",
        description="Serve the web app with waitress on [web] host and port. Run it behind a reverse "
                    "proxy that terminates HTTPS; see the README. Stops on SIGTERM or SIGINT once the "
                    "requests in progress have finished.")
    web.add_argument("--host", help="address to listen on (default: [web] host)")
    web.add_argument("--port", type=int, help="TCP port to listen on (default: [web] port)")
    web.set_defaults(handler=_web)


def _web(args) -> int:
    import waitress

    from bot.cli import load
    from bot.web import create_app

    config = load(args)
    app = create_app(config)
    host = args.host or config.web.host
    port = config.web.port if args.port is None else args.port
    # The X-Forwarded-* headers are read by the app itself ([web] trusted_proxy_count), not by waitress.
    server = waitress.create_server(app, host=host, port=port, threads=config.web.threads, ident="ccas-bot")

    def stop(signum, _frame):
        log.info("signal %d received; stopping the web app", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("web app started on http://%s:%s with %d threads", host, getattr(server, "effective_port", port),
             config.web.threads)
    try:
        server.run()
    finally:
        server.close()
        log.info("web app stopped")
    return 0
