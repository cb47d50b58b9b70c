"""Run the reference source server: ``python -m egov_index.source_server --port 0 --port-file PATH``."""

from __future__ import annotations

import argparse
import copy
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from egov_index.source_server.app import DEFAULT_DEFECT_RATE, ServerSettings, create_app
from egov_index.source_server.generator import DEFAULT_DOSSIERS_PER_DAY, DEFAULT_SEED, prepare

TOKEN_ENV = "EGOV_SOURCE_TOKEN"
log = logging.getLogger("egov_index.source_server")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m egov_index.source_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 = any free port (see --port-file)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--token", help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dossiers-per-day", type=int, default=DEFAULT_DOSSIERS_PER_DAY)
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


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
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = uvicorn.Config(
        create_app(settings), log_config=_log_config(), log_level=args.log_level, lifespan="off"
    )
    prepare(settings.seed)
    sock = _bind(args.host, args.port)
    log.info(
        "seed=%d dossiers_per_day=%d defect_rate=%g",
        settings.seed,
        settings.dossiers_per_day,
        settings.defect_rate,
    )
    _Server(config, sock, args.port_file).run(sockets=[sock])


if __name__ == "__main__":
    main()
