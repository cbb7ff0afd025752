"""graph.features: the root types are joined from the classes feature modules mark."""

from __future__ import annotations

from graph.accounts import AccountMutations
from graph.features import root_type
from graph.mfa import MfaMutations
from graph.schema import build_schema
from graph.sessions import SessionMutations
from graph.viewer import ViewerQueries


def test_root_type_inherits_every_marked_class() -> None:
    mutation = root_type("Mutation")
    assert {AccountMutations, SessionMutations, MfaMutations} <= set(mutation.__mro__)
    assert ViewerQueries in root_type("Query").__mro__
    assert ViewerQueries not in mutation.__mro__


def test_build_schema_exposes_fields_of_each_feature_module() -> None:
    mutation = build_schema()._schema.mutation_type
    assert mutation is not None
    # One field from each feature module: accounts, sessions, lifecycle, mfa.
    assert {"signup", "logout", "requestPasswordReset", "verifyMfa"} <= set(mutation.fields)
