"""Every command checks the role before it acts: a table of what each role is denied, run
through the real command line (in-process `main`, real SQLite file, real logins)."""
from __future__ import annotations

import argparse
from argparse import Namespace

import pytest
from auth_helpers import TEST_PASSWORD, admin_session, make_user

from clinic.cli import _login_for, build_parser, main
from clinic.config import load_settings
from clinic.errors import NotAllowed
from clinic.roles import LOGIN_IN_WINDOW, NO_LOGIN, PERMISSIONS, SELF_LOGIN

# One command line per action a role may be denied; each parses, so only the role stops it.
COMMANDS = {
    "settle": ["settle", "--rx", "xbdp:1", "--id-number", "310116194303120026"],
    "revoke": ["visit", "revoke", "no-such-visit", "--reason", "测试"],
    "reverse": ["visit", "reverse", "no-such-visit"],
    "reprint": ["visit", "reprint", "no-such-visit"],
    "self_pay": ["self-pay", "--rx", "xbdp:1"],
    "day_close": ["day", "close"],
    "view_visits": ["visit", "list"],
    "configure_reader": ["reader", "use", "/dev/ttyUSB9"],
    "catalogue_sync": ["formulary", "catalogue", "sync"],
    "formulary_install": ["formulary", "install", "v9.formulary.json"],
    "backup": ["backup", "create"],
    "restore": ["backup", "restore", "x.backup"],
    "manage_users": ["user", "add", "w9", "--name", "某某", "--role", "worker"],
    "audit_export": ["audit", "export", "--out", "a.zip"],
    "audit_verify": ["audit", "verify"],
    "supervisor_store": ["supervisor", "report", "--db", "sqlite:///t.db", "--out", "r.pdf"],
}


def _leaves(parser: argparse.ArgumentParser, path=(), inherited=None):
    """(command words, the `needs` it runs with): a group's default holds for its subcommands."""
    needs = parser.get_default("needs") or inherited
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, needs
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name), needs)


def test_every_command_declares_the_role_it_needs():
    undeclared = [" ".join(p) for p, needs in _leaves(build_parser()) if not needs]
    assert undeclared == []


def test_every_declared_action_is_in_the_permission_table_or_a_named_exception():
    known = set().union(*PERMISSIONS.values()) | {NO_LOGIN, SELF_LOGIN, LOGIN_IN_WINDOW}
    declared = {needs for _, needs in _leaves(build_parser())}
    assert declared <= known, declared - known
    assert set(COMMANDS) <= declared


def test_a_command_that_declares_nothing_is_refused_not_run():
    with pytest.raises(NotAllowed):
        _login_for(Namespace(command="anything", needs=None), load_settings())


@pytest.fixture
def users(monkeypatch):
    settings = load_settings()
    admin_session(settings)
    for login, role in (("w1", "worker"), ("s1", "supervisor")):
        make_user(settings, login, role)
    return settings


@pytest.mark.parametrize("login,role", [("w1", "worker"), ("s1", "supervisor"),
                                        ("admin", "admin")])
def test_each_role_is_denied_every_command_its_permissions_leave_out(users, login, role,
                                                                      monkeypatch, capsys):
    monkeypatch.setenv("CLINIC_USER", login)
    monkeypatch.setenv("CLINIC_PASSWORD", TEST_PASSWORD)
    denied = [a for a in COMMANDS if a not in PERMISSIONS[role]]
    assert denied or role == "admin"
    for action in denied:
        assert main(COMMANDS[action]) == 6, action
        assert "没有" in capsys.readouterr().err, action   # 当前账号没有“…”的权限
    # and what it may do gets past the role check (it may fail later, for other reasons)
    for action in [a for a in ("view_visits", "audit_verify") if a in PERMISSIONS[role]]:
        assert main(COMMANDS[action]) != 6, action


def test_without_credentials_and_without_a_terminal_nothing_runs(users, monkeypatch, capsys):
    monkeypatch.delenv("CLINIC_USER")
    monkeypatch.delenv("CLINIC_PASSWORD")
    for action in ("settle", "view_visits", "audit_verify", "backup"):
        assert main(COMMANDS[action]) == 6, action
        assert "需要登录" in capsys.readouterr().err


def test_a_trainee_works_only_in_the_training_profile(monkeypatch):
    training = load_settings(training=True)
    make_user(training, "t1", "trainee")
    monkeypatch.setenv("CLINIC_USER", "t1")
    assert main(["--training", "visit", "list", "--json"]) == 0
    assert main(["--training", "user", "add", "t2", "--name", "某某", "--role", "trainee"]) == 6
    assert main(["visit", "list"]) == 6       # the real profile does not know the trainee
