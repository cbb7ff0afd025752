"""The GraphQL transport: schema, types, resolvers, the per-request context and the app factory.

Calls :mod:`auth` for every rule and wires :mod:`db` in, per request.
"""
