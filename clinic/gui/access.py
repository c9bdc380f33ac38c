"""Who is at the desk, in the desk's words: role names in Chinese and the reason a button is off.

The rules themselves live in clinic.roles; this module only asks them and phrases the answer.
"""
from __future__ import annotations

from clinic.errors import NotAllowed
from clinic.roles import ACTION_NAMES, PERMISSIONS, require

from .i18n import tr

ROLE_NAMES = {"worker": "村医", "admin": "管理员", "supervisor": "督导员", "trainee": "学员"}


def role_name(role: str) -> str:
    return tr(ROLE_NAMES.get(role, role))


def may(operator, action: str) -> bool:
    return action in PERMISSIONS.get(operator.role, frozenset())


def missing_permission(operator, action: str) -> str:
    """The tooltip of a button this account may not press: the same words `require` raises."""
    try:
        require(operator, action)
    except NotAllowed as exc:
        return exc.message
    return ""


def action_name(action: str) -> str:
    return tr(ACTION_NAMES.get(action, action))
