"""The insurer simulator: a real HTTP server with its own database and policy engine,
speaking the national platform's wire format (protocol.md). Run: python -m settlement.mock_network
"""
