"""Where things are served: one definition of each URL prefix."""

GRAPHQL_PATH = "/graphql"
STATIC_PREFIX = "/static"
