"""`clinic demo`: the counter flow headless, against a fresh simulator and virtual reader."""
from __future__ import annotations

from dataclasses import replace

from settlement.money import yuan

from .config import Settings
from .counter import Counter
from .errors import CounterError
from .services import counter_services

DEMO_RX = [("xbdp", 1, 7), ("阿司匹林肠溶片", 1, 7)]


def run_demo(settings: Settings) -> int:
    work = settings.home / "demo-services"
    print("正在启动模拟医保中心和虚拟读卡器……", flush=True)
    with counter_services(work) as (network_url, reader_path):
        print(f"  模拟医保中心：{network_url}\n  虚拟读卡器：{reader_path}", flush=True)
        counter = Counter(replace(settings, network_url=network_url))
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
