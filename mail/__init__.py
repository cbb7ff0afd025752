"""Mail delivery: the background sender that drains the outbox, and its transports.

Depends on :mod:`auth` (ports, settings) only; :mod:`graph` starts the sender.
"""
