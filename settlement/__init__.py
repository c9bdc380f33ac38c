"""Talking to the insurance network: wire format, signed client, journal, simulator."""
