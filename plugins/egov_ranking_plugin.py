"""The "E-gov ranking" page in the Airflow UI (issue 7): a FastAPI app on the api-server plus a nav entry.

Everything but the declaration lives in ``egov_index.ui_page``. This module is imported by every Airflow
component that loads plugins (scheduler, dag-processor, task runners), so it imports nothing heavy: the
FastAPI app (and with it Airflow's API security module, pandas, pyarrow) is built on the first request
the api-server routes to it.

Authentication is Airflow's own: every route depends on
``airflow.api_fastapi.core_api.security.requires_access_view(AccessView.WEBSITE)``, which reads the JWT
from ``Authorization: Bearer`` or from the ``_token`` cookie the UI's login sets; no token -> 401.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/egov-ranking"  # egov_index.ui_page.URL_PREFIX (not imported here: keep this module light)


class LazyPageApp:
    """ASGI app that builds ``egov_index.ui_page.create_app()`` on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from egov_index.ui_page import create_app

            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return "egov_index.ui_page.create_app()"


class EgovRankingPlugin(AirflowPlugin):
    name = "egov_ranking"
    fastapi_apps = [{"name": "egov_ranking", "app": LazyPageApp(), "url_prefix": URL_PREFIX}]
    external_views = [
        {
            "name": "E-gov ranking",
            # relative (no leading slash): resolves against the UI's base URL, also behind a path prefix
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",  # under the "Browse" menu
            "url_route": "egov-ranking",  # shown inside the UI (an iframe) at /plugin/egov-ranking
        }
    ]
