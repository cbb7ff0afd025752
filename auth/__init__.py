"""The authentication domain: passwords, tokens, sessions and the rules around them.

Pure Python. Nothing here imports FastAPI, Strawberry or SQLAlchemy: persistence is
reached through the protocols in :mod:`auth.ports`, implemented by :mod:`db`.
"""
