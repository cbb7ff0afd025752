"""Persistence: SQLAlchemy 2 models, engines, repositories and Alembic migrations.

Implements the protocols of :mod:`auth.ports`. Nothing here imports :mod:`graph`.
"""
