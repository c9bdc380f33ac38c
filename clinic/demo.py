"""`clinic demo`: the counter flow headless, against a fresh simulator and virtual reader."""
from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

from settlement.money import yuan

from .config import Settings
from .counter import Counter
from .errors import CounterError
from .services import counter_services, simulator_dir

DEMO_RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]
DEMO_LOGIN = "demo"


def demo_login_file(settings: Settings) -> Path:
    """Demo only: the demo administrator's generated password, beside (never in) the data
    directory. A real installation creates its administrator with `clinic user init`."""
    return settings.home.with_name(settings.home.name + "-demo-login")


def demo_session(settings: Settings):
    """Log in for the demo: CLINIC_USER/CLINIC_PASSWORD if set; otherwise the demo administrator,
    created on the first run with a random password."""
    from .auth import NoUsersYet, UserStore, login_from_env_or_prompt
    from .crypto import write_private_once
    from .db import open_database
    if os.environ.get("CLINIC_USER"):
        return login_from_env_or_prompt(settings)
    engine = open_database(settings.db_path)
    try:
        store = UserStore(engine, settings)
        path = demo_login_file(settings)
        if not store.has_users():
            password = secrets.token_urlsafe(12)
            write_private_once(path, password.encode())
            session = store.create_first_admin(DEMO_LOGIN, "演示管理员", password)
            print(f"首次运行：已创建演示管理员 {DEMO_LOGIN}，密码保存在 {path}（仅供演示）")
            return session
        if not path.exists():
            raise NoUsersYet("本数据目录已有用户，请设置 CLINIC_USER 和 CLINIC_PASSWORD 后再运行演示",
                             f"no demo login file {path}")
        return store.login(DEMO_LOGIN, path.read_text().strip())
    finally:
        engine.dispose()


def run_demo(settings: Settings) -> int:
    try:
        session = demo_session(settings)
    except CounterError as exc:
        print(f"未完成：{exc.message}")
        return exc.exit_code
    print("正在启动模拟医保中心和虚拟读卡器……", flush=True)
    with counter_services(simulator_dir(settings)) as (network_url, reader_path):
        print(f"  模拟医保中心：{network_url}\n  虚拟读卡器：{reader_path}", flush=True)
        counter = Counter(replace(settings, network_url=network_url), session)
        try:
            card = counter.read_card(reader_path)
            # Run again and again on one data directory, the demo patient's supply is a repeat:
            # the worker's override (audited) lets it through, as it would at the counter.
            result = counter.run_visit(counter.credential_from_card(card), DEMO_RX,
                                       diagnosis="I10",
                                       overrides={"R006": "演示：同一位患者重复演示"})
        except CounterError as exc:
            print(f"未完成：{exc.message}")
            return exc.exit_code
        finally:
            counter.close()
    for v in result.verdicts:
        print(f"  [{v.rule_id}] {v.outcome}: {v.message}")
    if result.status != "settled":
        print(f"未结算：{result.message}")
        return 2
    s = result.settlement
    print(f"结算成功：{result.person.psn_name}（{result.person.insutype_name}）")
    print(f"  医疗费总额 {yuan(s.split.medfee_sumamt)} 元 = 统筹基金 {yuan(s.split.fund_pay_sumamt)}"
          f" + 个人账户 {yuan(s.split.acct_pay)} + 现金 {yuan(s.split.psn_cash_pay)}")
    print(f"  结算号 {s.setl_id}")
    print(f"收据已生成：{s.receipt_path}")
    return 0
