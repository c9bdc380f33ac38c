"""The electronic voucher at the counter: scanned QR text -> a 1101 credential (type 01).

The desk app (keyboard-wedge scanner typing into a field, or ``cardreader.scanner.QrScanner``
on a serial port) and ``clinic settle --qr`` both call ``credential_from_voucher``.  The voucher
hub is reached at the insurer network address (the simulator serves both).
"""
from __future__ import annotations

from cardreader.scanner import ScanError, normalize_scanned
from settlement.values import Credential
from settlement.voucher import (
    VoucherError,
    VoucherExpired,
    VoucherHubClient,
    VoucherNetworkError,
    VoucherUnknown,
)

from .errors import CardProblem, NetworkProblem


def credential_from_voucher(counter, qr_text: str) -> Credential:
    """Clean the scanned text, ask the voucher hub, return Credential("01", ecToken, ...).

    Raises CardProblem (expired, unknown or not a voucher code: scan again) or
    NetworkProblem (hub unreachable), each with the Chinese message to show.  Audit event
    "voucher_read"; the person appears in it only as a keyed hash of the ID number."""
    try:
        code = normalize_scanned(qr_text)
    except ScanError as exc:
        counter.audit.append("voucher_read", "", "error", reason="not_a_voucher_code")
        raise CardProblem(exc.message, exc.detail) from exc
    s = counter.settings
    client = VoucherHubClient(s.network_url, s.paas_id, s.paas_token, org_id=s.fixmedins_code,
                              operator_id=counter.operator.opter,
                              timeout=s.timeout_seconds)
    try:
        ident = client.query(code)
    except VoucherError as exc:
        reason = ("expired" if isinstance(exc, VoucherExpired) else
                  "unknown" if isinstance(exc, VoucherUnknown) else
                  "network" if isinstance(exc, VoucherNetworkError) else "refused")
        counter.audit.append("voucher_read", "", "error", reason=reason)
        cls = NetworkProblem if isinstance(exc, VoucherNetworkError) else CardProblem
        raise cls(exc.message, exc.detail) from exc
    finally:
        client.close()
    counter.audit.append("voucher_read", "", "ok", id_ref=counter.cipher.keyed_hash(ident.id_no))
    return Credential("01", ident.ec_token, certno=ident.id_no, psn_name=ident.user_name)
