"""The reference source server's command line.

``python -m egov_index.source_server [serve] --port 0 --port-file PATH`` runs the server (the
default command); ``python -m egov_index.source_server write-inbox --inbox DIR --period 2026-Q3``
writes the period's commune reports as Excel/CSV files into DIR.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from egov_index.source_server.app import DEFAULT_DEFECT_RATE, DEFAULT_LEGACY_RATE, ServerSettings, create_app
from egov_index.source_server.generator import DEFAULT_DOSSIERS_PER_DAY, DEFAULT_SEED, prepare

TOKEN_ENV = "EGOV_SOURCE_TOKEN"
CHAOS_RATE_ENV, CHAOS_SEED_ENV = "EGOV_SOURCE_CHAOS_RATE", "EGOV_SOURCE_CHAOS_SEED"
log = logging.getLogger("egov_index.source_server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m egov_index.source_server [serve]", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 = any free port (see --port-file)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--token", help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dossiers-per-day", type=int, default=DEFAULT_DOSSIERS_PER_DAY)
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE)
    parser.add_argument("--legacy-rate", type=float, default=DEFAULT_LEGACY_RATE)
    parser.add_argument(
        "--chaos-rate",
        type=float,
        default=float(os.environ.get(CHAOS_RATE_ENV, "0")),
        help=f"share of API requests given a random transient fault (default ${CHAOS_RATE_ENV} or 0: off)",
    )
    parser.add_argument(
        "--chaos-seed",
        type=int,
        default=int(os.environ.get(CHAOS_SEED_ENV, "0")),
        help=f"seed of the chaos draws (default ${CHAOS_SEED_ENV} or 0)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _inbox_parser() -> argparse.ArgumentParser:
    from egov_index.source_server.files import FILE_STYLES

    parser = argparse.ArgumentParser(
        prog="python -m egov_index.source_server write-inbox",
        description="Write a period's commune reports (the API's, same settings) as Excel/CSV files.",
    )
    parser.add_argument("--inbox", type=Path, required=True, help="directory to write into")
    parser.add_argument("--period", required=True, help="a quarter, e.g. 2026-Q3")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--limit", type=int, help="only the first N communes (registry order)")
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE)
    parser.add_argument("--legacy-rate", type=float, default=DEFAULT_LEGACY_RATE)
    parser.add_argument("--styles", nargs="+", choices=list(FILE_STYLES), default=list(FILE_STYLES))
    return parser


def write_inbox(argv: Sequence[str]) -> None:
    from egov_index.registry import current_units
    from egov_index.source_server.files import write_report_files

    parser = _inbox_parser()
    args = parser.parse_args(argv)
    communes = current_units().commune_codes()[: args.limit] if args.limit is not None else None
    try:
        paths = write_report_files(
            args.inbox,
            args.period,
            args.seed,
            communes,
            args.styles,
            defect_rate=args.defect_rate,
            legacy_rate=args.legacy_rate,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{len(paths)} report files written to {args.inbox}")


def _log_config() -> dict:
    """uvicorn's logging, with access logs on stderr too, plus this package's logger."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["egov_index"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Server(uvicorn.Server):
    """uvicorn server that announces its port (and writes the port file) once listening."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, port_file: Path | None) -> None:
        super().__init__(config)
        self._sock = sock
        self._port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        host, port = self._sock.getsockname()[:2]
        if self._port_file is not None:
            _write_atomically(self._port_file, f"{port}\n")
        log.info("reference source server listening on http://%s:%d", host, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._port_file is not None:
            self._port_file.unlink(missing_ok=True)
        await super().shutdown(sockets=sockets)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["write-inbox"]:
        write_inbox(argv[1:])
    else:
        serve(argv[1:] if argv[:1] == ["serve"] else argv)


def serve(argv: Sequence[str]) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        parser.error(f"a bearer token is required: --token or ${TOKEN_ENV}")
    try:
        settings = ServerSettings(
            token=token,
            seed=args.seed,
            dossiers_per_day=args.dossiers_per_day,
            defect_rate=args.defect_rate,
            legacy_rate=args.legacy_rate,
            chaos_rate=args.chaos_rate,
            chaos_seed=args.chaos_seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = uvicorn.Config(
        create_app(settings), log_config=_log_config(), log_level=args.log_level, lifespan="off"
    )
    prepare(settings.seed)
    sock = _bind(args.host, args.port)
    log.info(
        "seed=%d dossiers_per_day=%d defect_rate=%g legacy_rate=%g chaos_rate=%g chaos_seed=%d",
        settings.seed,
        settings.dossiers_per_day,
        settings.defect_rate,
        settings.legacy_rate,
        settings.chaos_rate,
        settings.chaos_seed,
    )
    _Server(config, sock, args.port_file).run(sockets=[sock])


if __name__ == "__main__":
    main()
