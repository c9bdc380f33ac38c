"""Bytes on a serial line -> a card's data; plus the voucher and ID-number inputs and a virtual reader."""
