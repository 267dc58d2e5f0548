"""The web dashboard, served by Herald itself at ``/``: approvals, conversations, messages, schedules, monitors,
the dev inbox, interfaces and agents, for the humans who govern what agents send.

Server-rendered Jinja2 pages, a small stylesheet and one script of our own (live updates by polling), charts
as inline SVG: nothing to build, nothing fetched from elsewhere. Sign-in takes a tenant API key once and keeps
a signed session cookie (see :mod:`herald.web.dashboard.session`).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from herald.web.dashboard import channels, manage, setup_pages
from herald.web.dashboard.routes import STATIC_DIR, STATIC_PATH, router

__all__ = ["install", "router"]


def install(app: FastAPI) -> None:
    """Mount the pages and their static files; the API keeps ``/api``, ``/health`` and ``/metrics``."""
    app.include_router(router)
    app.include_router(channels.router)  # before manage's generic /manage/{key} pages it refines
    app.include_router(setup_pages.router)  # before manage's /manage/{key}
    app.include_router(manage.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
