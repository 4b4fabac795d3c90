"""A service of another team that trusts gql-app's access tokens (see ../README.md)."""
