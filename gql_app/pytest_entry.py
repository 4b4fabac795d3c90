"""What installing gql-app adds to every pytest run: one ini option, off by default.

pytest imports the ``pytest11`` entry points of every installed package, so this is the one
module of gql-app a suite that never asked for it imports, and it imports nothing. The
fixtures are ``gql_app.testing``'s, which a suite turns on with ``-p gql_app.testing``,
``pytest_plugins = ["gql_app.testing"]`` in its top conftest.py, or this option.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

INI_OPTION = "gql_app"
PLUGIN = "gql_app.testing"


def pytest_addoption(parser: "pytest.Parser") -> None:
    parser.addini(
        INI_OPTION,
        type="bool",
        default=False,
        help=f"turn on gql-app's fixtures ({PLUGIN}): a real gql-app server, "
        "accounts on it, a GraphQL client and the mail it sends",
    )


def pytest_configure(config: "pytest.Config") -> None:
    if config.getini(INI_OPTION):
        config.pluginmanager.import_plugin(PLUGIN)
