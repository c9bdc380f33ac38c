"""Keys and chains for the audit tests (the chains are built exactly as the clinic builds them)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clinic import audit_keys
from clinic.audit_synth import ChainWriter

CLINIC = "H31011600001"
T0 = datetime(2026, 11, 2, 8, 0)


@pytest.fixture(scope="session")
def clinic_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def forger_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def pub(clinic_key):
    return audit_keys.public_raw(clinic_key)


def build_chain(key, n: int, checkpoint_every: int = 5, clinic: str = CLINIC) -> ChainWriter:
    """n events, a signed checkpoint every few events and always one over the last."""
    w = ChainWriter(clinic, key)
    for i in range(1, n + 1):
        t = T0 + timedelta(minutes=i)
        w.append(t, "settle", f"visit-{i}", "ok", fund=100 * i, psn_ref=f"{i:024x}")
        if i % checkpoint_every == 0 or i == n:
            w.checkpoint(t, "day_close")
    return w


@pytest.fixture(scope="session")
def kit():
    """Helpers for tests (imported through a fixture: `conftest` is not an importable name)."""
    from types import SimpleNamespace
    return SimpleNamespace(CLINIC=CLINIC, T0=T0, build_chain=build_chain)
