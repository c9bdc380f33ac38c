"""Who may do what. Each command and screen asks `require(operator, action)` before acting."""
from __future__ import annotations

from .domain import Operator
from .errors import NotAllowed

WORKER, ADMIN, SUPERVISOR, TRAINEE = "worker", "admin", "supervisor", "trainee"

PERMISSIONS: dict[str, frozenset[str]] = {
    WORKER: frozenset({"settle", "revoke", "reverse", "self_pay", "day_close", "reprint"}),
    ADMIN: frozenset({"settle", "revoke", "reverse", "self_pay", "day_close", "reprint",
                      "backup", "manage_users"}),
    SUPERVISOR: frozenset({"audit_verify", "audit_export"}),
    TRAINEE: frozenset({"settle", "revoke", "reverse", "self_pay", "day_close", "reprint"}),
}

ACTION_NAMES = {"settle": "结算", "revoke": "撤销结算", "reverse": "冲正", "self_pay": "自费收费",
                "day_close": "日结", "reprint": "补打收据", "backup": "备份",
                "manage_users": "管理用户", "audit_verify": "核验审计日志",
                "audit_export": "导出审计日志"}


def require(operator: Operator, action: str) -> None:
    if action not in PERMISSIONS.get(operator.role, frozenset()):
        raise NotAllowed(f"当前账号没有“{ACTION_NAMES.get(action, action)}”的权限",
                         f"role {operator.role} may not {action}")
