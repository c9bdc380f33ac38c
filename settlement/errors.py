"""Typed failures of a call to the insurer; each carries a Chinese message and a log detail."""
from __future__ import annotations


class SettlementError(Exception):
    message = "医保结算出错"

    def __init__(self, message: str | None = None, detail: str = ""):
        super().__init__(message or self.message)
        if message:
            self.message = message
        self.detail = detail


class NetworkUnreachable(SettlementError):
    """The request certainly did not reach the insurer (connection refused, DNS, no route)."""
    message = "连不上医保网络。请检查网线或网络后重试；急需时可按自费收费。"


class OutcomeUnknown(SettlementError):
    """The request may have reached the insurer but no usable answer came back."""
    message = "医保网络没有及时回复，结算结果未知。请勿重复收费，系统会自动向医保核实。"


class InsurerRefused(SettlementError):
    """The insurer answered infcode -1: a business refusal with its own Chinese err_msg."""
    message = "医保中心拒绝了本次交易"


class GatewayRejected(SettlementError):
    """The insurer's gateway refused our credentials or signature (configuration problem)."""
    message = "医保网关拒绝了本机的接入认证，请联系管理员检查接入配置。"
