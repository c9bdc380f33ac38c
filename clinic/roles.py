"""Who may do what. Each command and screen asks `require(operator, action)` before acting."""
from __future__ import annotations

from .domain import Operator
from .errors import NotAllowed

WORKER, ADMIN, SUPERVISOR, TRAINEE = "worker", "admin", "supervisor", "trainee"

# Every command declares `needs`: the action its role must allow (the CLI logs in and checks it
# before the command runs), or one of these. A command that declares nothing is refused.
NO_LOGIN = "no-login"            # touches no clinic data: the simulator, reader hardware, town tools
SELF_LOGIN = "self-login"        # logs in itself (user management, backups, the demo)
LOGIN_IN_WINDOW = "login-in-window"  # the desk asks for the password in its own window

_COUNTER = {"settle", "revoke", "reverse", "self_pay", "day_close", "reprint", "view_visits",
            "view_formulary", "catalogue_sync", "configure_reader", "audit_checkpoint"}

PERMISSIONS: dict[str, frozenset[str]] = {
    WORKER: frozenset(_COUNTER),
    ADMIN: frozenset(_COUNTER | {"backup", "restore", "manage_users", "formulary_install",
                                 "audit_verify", "audit_export"}),
    # Read-only on a clinic; the supervisor's own store is theirs alone.
    SUPERVISOR: frozenset({"view_visits", "view_formulary", "audit_verify", "audit_export",
                           "supervisor_store"}),
    # Trainees exist only in the training profile (clinic.auth refuses them elsewhere).
    TRAINEE: frozenset(_COUNTER - {"configure_reader", "catalogue_sync"}),
}

ACTION_NAMES = {"settle": "结算", "revoke": "撤销结算", "reverse": "冲正", "self_pay": "自费收费",
                "day_close": "日结", "reprint": "补打收据", "backup": "备份", "restore": "恢复备份",
                "manage_users": "管理用户", "audit_verify": "核验审计日志",
                "audit_export": "导出审计日志", "audit_checkpoint": "审计检查点",
                "view_visits": "查看就诊记录", "view_formulary": "查看药品目录",
                "formulary_install": "安装药品目录", "catalogue_sync": "更新国家医保目录",
                "configure_reader": "设置读卡器", "supervisor_store": "镇卫生院督导库"}


def require(operator: Operator, action: str) -> None:
    if action not in PERMISSIONS.get(operator.role, frozenset()):
        raise NotAllowed(f"当前账号没有“{ACTION_NAMES.get(action, action)}”的权限",
                         f"role {operator.role} may not {action}")
