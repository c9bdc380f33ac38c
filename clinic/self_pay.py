"""Self-pay (自费) while the network is down: a clearly marked cash receipt, no fund or account
debit, and nothing queued to send to the insurer later."""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from cardreader.card import CardData
from settlement.values import Credential, Person, Split

from . import visit_state as vs
from .domain import RxItem, Settlement
from .models import Visit
from .receipt import ReceiptHeader, receipt_lines, write_pdf
from .roles import require


def cash_split(total_fen: int) -> Split:
    return Split(medfee_sumamt=total_fen, fulamt_ownpay_amt=total_fen, overlmt_selfpay=0,
                 preselfpay_amt=0, inscp_scp_amt=0, act_pay_dedc=0, hifp_pay=0,
                 fund_pay_sumamt=0, psn_part_amt=total_fen, acct_pay=0, psn_cash_pay=total_fen,
                 hosp_part_amt=0, balc=0)


def take_self_pay(counter, items: tuple[RxItem, ...], card: CardData | None) -> Settlement:
    require(counter.operator, "self_pay")
    visit_id = str(uuid.uuid4())
    now = counter.clock()
    person = Person(psn_no="", psn_name=card.name if card else "", certno=card.certno if card else "",
                    gend="", brdy=None, age=0, insutype="", psn_type="", psn_insu_stas="",
                    balc_fen=0, insuplc_admdvs="")
    cred = Credential("03", card.card_no, card.card_sn) if card else Credential("", "")
    split = cash_split(sum(i.amount_fen for i in items))
    receipt_no = "ZF" + visit_id.replace("-", "")[:14].upper()
    with counter.engine.begin() as conn:
        conn.execute(Visit.__table__.insert().values(
            id=visit_id, created_at=now.isoformat(), business_date=now.date().isoformat(),
            state=vs.NEW, opter=counter.operator.opter, cert_type=cred.mdtrt_cert_type,
            person_sealed=counter.seal_party(visit_id, person, cred), self_pay=True,
            psn_ref=None,  # no insurer person number without the network; nothing to match on
            items_json=json.dumps([asdict(i) for i in items], ensure_ascii=False)))
        counter.transition(conn, visit_id, vs.SELF_PAID, setl_id=receipt_no,
                           setl_time=now.strftime("%Y-%m-%d %H:%M:%S"),
                           split_json=json.dumps(asdict(split)))
    settlement = Settlement(visit_id, "", receipt_no, "", now.strftime("%Y-%m-%d %H:%M:%S"), split,
                            training=counter.settings.training)
    header = ReceiptHeader(counter.settings.fixmedins_name, counter.settings.fixmedins_code,
                           counter.operator.opter, counter.operator.opter_name,
                           counter.settings.training)
    path = write_pdf(counter.settings.receipts_dir / f"{now.date()}_{receipt_no}.pdf",
                     receipt_lines(header, person, items, settlement, self_pay=True),
                     training=counter.settings.training)
    with counter.engine.begin() as conn:
        conn.execute(Visit.__table__.update().where(Visit.id == visit_id)
                     .values(receipt_path=str(path)))
    counter.audit.append("self_pay", visit_id, "ok", cash=split.psn_cash_pay, receipt=receipt_no)
    return Settlement(visit_id, "", receipt_no, "", settlement.setl_time, split,
                      str(path), counter.settings.training)
