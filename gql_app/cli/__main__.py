"""`python -m gql_app.cli`, as the single-module CLI allowed: the same as `gql-app`."""

if __name__ == "__main__":
    import sys

    from gql_app.cli import main

    sys.exit(main())
