"""9001 sign-in, 9002 sign-out."""
from __future__ import annotations

from ..db import SignIn
from .common import Ctx, TxError, handler, node, text, ymdhms


@handler("9001", needs_sign_in=False)
def sign_in(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "signIn")
    row = SignIn(sign_no=ctx.new_id("sign"), fixmedins_code=ctx.fixmedins_code,
                 opter_no=text(d, "opter_no"), mac=text(d, "mac", required=False),
                 ip=text(d, "ip", required=False), sign_time=ctx.now)
    ctx.s.add(row)
    return {"signinoutb": {"sign_no": row.sign_no, "sign_time": ymdhms(row.sign_time)}}


@handler("9002")
def sign_out(ctx: Ctx, inp: dict) -> dict:
    d = node(inp, "signOut")
    sign_no = text(d, "sign_no")
    row = ctx.s.get(SignIn, sign_no)
    if row is None or row.fixmedins_code != ctx.fixmedins_code:
        raise TxError(f"签到编号 {sign_no} 不存在")
    if row.signout_time is not None:
        raise TxError(f"签到编号 {sign_no} 已于 {ymdhms(row.signout_time)} 签退")
    row.signout_time = ctx.now
    return {"signoutoutb": {"sign_time": ymdhms(ctx.now)}}
