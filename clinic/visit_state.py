"""A visit's states and the only transitions allowed between them."""
from __future__ import annotations

NEW = "new"
REGISTERED = "registered"
FEES_UPLOADED = "fees_uploaded"
PRESETTLED = "presettled"
SETTLING = "settling"
SETTLED = "settled"
REVOKING = "revoking"
REVOKED = "revoked"
REVERSING = "reversing"
REVERSED = "reversed"
FAILED = "failed"
UNKNOWN = "unknown"
SELF_PAID = "self_paid"
CANCELLED = "cancelled"

# Settled or not, nobody knows yet: the counter shows these until they are resolved.
UNRESOLVED = (SETTLING, UNKNOWN, REVOKING, REVERSING)
# The same set as an SQL term with literals, for the queries that should use the partial index
# ix_visit_unresolved (migration 0005 holds a copy): SQLite uses a partial index only when the
# query's WHERE contains the index's own term, and a bound parameter does not count.
UNRESOLVED_SQL = "state IN (" + ", ".join(f"'{s}'" for s in UNRESOLVED) + ")"

ALLOWED: dict[str, frozenset[str]] = {
    # Self-pay (自费) while the network is down: cash only, the insurer never hears of it.
    NEW: frozenset({REGISTERED, FAILED, SELF_PAID, CANCELLED}),
    # Before settling, a visit can be cancelled: its registration is withdrawn (2202).
    REGISTERED: frozenset({FEES_UPLOADED, FAILED, CANCELLED}),
    FEES_UPLOADED: frozenset({PRESETTLED, FAILED, CANCELLED}),
    PRESETTLED: frozenset({SETTLING, FAILED, CANCELLED}),
    # A settle with no answer is unknown, never failed, until the insurer is asked again.
    SETTLING: frozenset({SETTLED, UNKNOWN, FAILED}),
    UNKNOWN: frozenset({SETTLED, FAILED, REVERSING}),
    SETTLED: frozenset({REVOKING}),
    REVOKING: frozenset({REVOKED, SETTLED}),
    REVERSING: frozenset({REVERSED, UNKNOWN}),
    REVOKED: frozenset(),
    REVERSED: frozenset(),
    FAILED: frozenset(),
    SELF_PAID: frozenset(),
    CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check(from_state: str, to_state: str) -> None:
    if to_state not in ALLOWED.get(from_state, frozenset()):
        raise IllegalTransition(f"visit cannot go from {from_state} to {to_state}")

LABELS = {
    NEW: "新建", REGISTERED: "已挂号", FEES_UPLOADED: "已上传费用", PRESETTLED: "已预结算",
    SETTLING: "结算中", SETTLED: "已结算", REVOKING: "撤销中", REVOKED: "已撤销",
    REVERSING: "冲正中", REVERSED: "已冲正", FAILED: "未完成", UNKNOWN: "结果未知",
    SELF_PAID: "自费", CANCELLED: "已取消",
}
