"""GraphiQL served from the application itself, with no request to any other host.

Strawberry's own page loads React and GraphiQL from unpkg.com: a third party the browser
must reach and trust on every visit, and unreachable from offline networks. The same
files are vendored in ``gql_app/static/graphiql`` (see its README) and served from here.
"""

import base64
import hashlib
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from gql_app.api.http import GRAPHQL_PATH

ASSETS_PATH = "/graphiql-assets"
ASSETS_DIRECTORY = Path(__file__).resolve().parent.parent / "static" / "graphiql"

_DEFAULT_QUERY = """\
# Sign in with the login mutation, then put its
# accessToken in the Headers tab below:
#   {"Authorization": "Bearer <accessToken>"}

{
  me {
    email
  }
}
"""

# Kept free of anything per-request so its hash, and the policy below, never change.
_START_SCRIPT = f"""
      const fetcher = GraphiQL.createFetcher({{ url: "{GRAPHQL_PATH}" }});
      const root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(
        React.createElement(GraphiQL, {{
          fetcher,
          defaultQuery: {json.dumps(_DEFAULT_QUERY)},
          defaultEditorToolsVisibility: true,
          isHeadersEditorEnabled: true,
          // Headers carry bearer tokens; persisted, they would outlive the tab in
          // localStorage, readable by any script on this origin.
          shouldPersistHeaders: false,
          inputValueDeprecation: true,
        }}),
      );
"""

# For whoever serves the page: everything comes from this origin, and the one inline
# script is allowed by its hash rather than by 'unsafe-inline'. GraphiQL's editor and
# popovers insert <style> elements at run time, hence the inline styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'sha256-"
        + base64.b64encode(hashlib.sha256(_START_SCRIPT.encode()).digest()).decode()
        + "'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_PAGE = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>gql-app GraphiQL</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="{ASSETS_PATH}/graphiql.min.css" />
    <style>
      body {{
        margin: 0;
      }}

      #graphiql {{
        height: 100vh;
      }}
    </style>
    <script src="{ASSETS_PATH}/react.production.min.js"></script>
    <script src="{ASSETS_PATH}/react-dom.production.min.js"></script>
    <script src="{ASSETS_PATH}/graphiql.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>{_START_SCRIPT}</script>
  </body>
</html>
"""


def page_html() -> str:
    return _PAGE


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="graphiql-assets")


def redirect_root(app: FastAPI) -> None:
    """``GET /`` leads to GraphiQL, where someone who just opened the address wants to be."""

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(GRAPHQL_PATH)
