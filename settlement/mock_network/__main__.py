"""python -m settlement.mock_network [--host H] [--port P] [--db URL] [--policy TOML] ..."""
from __future__ import annotations

import argparse
import logging

from .faults import KINDS, parse_fault
from .policy import PolicyError
from .server import serve


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m settlement.mock_network",
                                 description="Insurer simulator (国家医保平台模拟) for training and tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 = any free port (printed)")
    ap.add_argument("--db", default=None, help="SQLAlchemy URL; default: SQLite under --data-dir")
    ap.add_argument("--data-dir", default=None, help="default: $CLINIC_HOME/simulator")
    ap.add_argument("--policy", default=None, help="policy TOML; default: policy_default.toml")
    ap.add_argument("--catalogue", default=None, help="catalogue CSV; default: formulary/data/formulary_v2.csv")
    ap.add_argument("--fault", action="append", default=[], metavar="INFNO:KIND[:COUNT[:SECONDS]]",
                    help=f"inject a fault; KIND one of {', '.join(KINDS)}; repeatable")
    ap.add_argument("--control", action="store_true",
                    help="enable the loopback-only fault control endpoint")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker processes sharing the socket (default 1; see docs/simulator.md)")
    ap.add_argument("--log-level", default="WARNING")
    a = ap.parse_args(argv)
    try:
        faults = [parse_fault(s) for s in a.fault]
    except ValueError as exc:
        ap.error(str(exc))
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        serve(a.host, a.port, a.db, a.policy, data_dir=a.data_dir, catalogue_path=a.catalogue,
              faults=faults, control=a.control, workers=max(1, a.workers))
    except OSError as exc:  # port in use, address not available, data dir not writable
        raise SystemExit(f"insurer simulator cannot start: {exc}") from None
    except (PolicyError, ValueError) as exc:
        raise SystemExit(f"insurer simulator cannot start: {exc}") from None


if __name__ == "__main__":
    main()
