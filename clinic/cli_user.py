"""`clinic user ...`: the first administrator, accounts, passwords (clinic.auth).

Passwords come from the terminal (getpass, never echoed) or, with --password-stdin, as lines on
standard input (for scripts); they are never taken as arguments, which other users can see.
"""
from __future__ import annotations

import getpass
import json
import sys

from .roles import SELF_LOGIN


def _store(settings):
    from .auth import UserStore
    from .db import open_database
    engine = open_database(settings.db_path)
    return engine, UserStore(engine, settings)


def _stdin_lines(n: int) -> list[str]:
    lines = []
    for _ in range(n):
        line = sys.stdin.readline()
        if not line:
            break
        lines.append(line.rstrip("\r\n"))
    if len(lines) < n:
        from .auth import AuthError
        raise AuthError("从标准输入读取密码失败：行数不够", f"expected {n} lines on stdin")
    return lines


def _new_password(args, prompt: str = "新密码：") -> str:
    """One new password: a line on stdin, or typed twice on the terminal."""
    from .auth import AuthError, check_password_rule
    if args.password_stdin:
        pw = _stdin_lines(1)[0]
    else:
        if not sys.stdin.isatty():
            raise AuthError("请在终端运行，或用 --password-stdin 从标准输入提供密码",
                            "no tty for password")
        pw = getpass.getpass(prompt)
        if getpass.getpass("再输入一次：") != pw:
            raise AuthError("两次输入的密码不一致", "password mismatch")
    check_password_rule(pw)
    return pw


def cmd_user_init(args, settings) -> int:
    from .auth import AuthError
    engine, store = _store(settings)
    try:
        if store.has_users():
            raise AuthError("已经有管理员了，请用管理员账号登录后用 clinic user add 添加用户",
                            "init with users present")
        password = _new_password(args, "管理员密码：")
        session = store.create_first_admin(args.login, args.name, password)
    finally:
        engine.dispose()
    print(f"已创建管理员 {session.operator.opter}（{session.operator.opter_name}）。"
          f"请牢记密码：忘记后只能由其他管理员重置。")
    return 0


def cmd_user_add(args, settings) -> int:
    session = args.session  # logged in, role checked by the CLI
    password = _new_password(args, f"{args.login} 的初始密码：")
    engine, store = _store(settings)
    try:
        store.add_user(session, args.login, args.name, args.role, password)
    finally:
        engine.dispose()
    from .auth import ROLE_NAMES
    print(f"已添加用户 {args.login}（{args.name}，{ROLE_NAMES.get(args.role, args.role)}）")
    return 0


def cmd_user_disable(args, settings) -> int:
    session = args.session  # logged in, role checked by the CLI
    engine, store = _store(settings)
    try:
        store.disable_user(session, args.login)
    finally:
        engine.dispose()
    print(f"已停用用户 {args.login}，其数据密钥已删除")
    return 0


def cmd_user_reset(args, settings) -> int:
    session = args.session  # logged in, role checked by the CLI
    password = _new_password(args, f"{args.login} 的新密码：")
    engine, store = _store(settings)
    try:
        store.reset_password(session, args.login, password)
    finally:
        engine.dispose()
    print(f"已重置 {args.login} 的密码；该用户下次登录后须改密码")
    return 0


def cmd_user_passwd(args, settings) -> int:
    from .auth import AuthError
    if args.password_stdin:
        old, new = _stdin_lines(2)
    else:
        if not sys.stdin.isatty():
            raise AuthError("请在终端运行，或用 --password-stdin 从标准输入提供原密码和新密码",
                            "no tty for password")
        old = getpass.getpass("原密码：")
        new = getpass.getpass("新密码：")
        if getpass.getpass("再输入一次：") != new:
            raise AuthError("两次输入的密码不一致", "password mismatch")
    # Its own login: a password an administrator set is good for this and nothing else.
    from .auth import login_from_env_or_prompt
    session = login_from_env_or_prompt(settings)
    engine, store = _store(settings)
    try:
        store.change_password(session, old, new)
    finally:
        engine.dispose()
    print("密码已修改")
    return 0


def cmd_user_list(args, settings) -> int:
    from .auth import ROLE_NAMES
    engine, store = _store(settings)
    try:
        users = store.users()
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([{"login": u.login, "name": u.name, "role": u.role,
                           "disabled": u.disabled,
                           "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                           "must_change": u.must_change} for u in users], ensure_ascii=False))
        return 0
    for u in users:
        state = "已停用" if u.disabled else (
            f"锁定至 {u.locked_until:%H:%M:%S}" if u.locked_until else "正常")
        extra = "（须改密码）" if u.must_change else ""
        print(f"{u.login:<12} {u.name:<8} {ROLE_NAMES.get(u.role, u.role):<4} {state}{extra}")
    return 0


def cmd_user_keyring(args, settings) -> int:
    from . import keyring_store
    if args.action == "status":
        print("系统密钥环：" + ("可用" if keyring_store.available() else "不可用（未安装 keyring 或无后端）"))
        print("数据密钥已存入密钥环" if keyring_store.load_key(settings) else "密钥环中没有本机的数据密钥")
        return 0
    session = args.session  # logged in, role checked by the CLI
    engine, store = _store(settings)
    try:
        if args.action == "enable":
            store.enable_keyring(session)
            print("数据密钥已存入本机系统密钥环")
        else:
            store.disable_keyring(session)
            print("已从系统密钥环删除数据密钥")
    finally:
        engine.dispose()
    return 0


def register(sub) -> None:
    us = sub.add_parser("user", help="用户与密码").add_subparsers(dest="sub", required=True)
    ui = us.add_parser("init", help="首次使用：创建第一个管理员")
    ui.add_argument("--login", required=True)
    ui.add_argument("--name", required=True)
    ui.add_argument("--password-stdin", action="store_true", help="从标准输入读一行作为密码")
    ui.set_defaults(func=cmd_user_init, needs=SELF_LOGIN)
    ua = us.add_parser("add", help="添加用户（管理员）")
    ua.add_argument("login")
    ua.add_argument("--name", required=True)
    ua.add_argument("--role", required=True, choices=["worker", "admin", "supervisor", "trainee"])
    ua.add_argument("--password-stdin", action="store_true")
    ua.set_defaults(func=cmd_user_add, needs="manage_users")
    ud = us.add_parser("disable", help="停用用户（管理员）")
    ud.add_argument("login")
    ud.set_defaults(func=cmd_user_disable, needs="manage_users")
    ur = us.add_parser("reset", help="重置用户密码（管理员）")
    ur.add_argument("login")
    ur.add_argument("--password-stdin", action="store_true")
    ur.set_defaults(func=cmd_user_reset, needs="manage_users")
    up = us.add_parser("passwd", help="修改自己的密码")
    up.add_argument("--password-stdin", action="store_true",
                    help="从标准输入读两行：原密码、新密码")
    up.set_defaults(func=cmd_user_passwd, needs=SELF_LOGIN)
    ul = us.add_parser("list", help="列出用户（管理员）")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_user_list, needs="manage_users")
    uk = us.add_parser("keyring", help="把数据密钥也存入系统密钥环（可选，管理员）")
    uk.add_argument("action", choices=["enable", "disable", "status"])
    uk.set_defaults(func=cmd_user_keyring, needs="manage_users")
