"""The dashboard's routes, one APIRouter per page group; ``web.app.create_app`` includes them in this order."""

from __future__ import annotations

from fastapi import APIRouter

from kmsguard.web.routes import compliance, findings, keys, login, overview, principals

ROUTERS: tuple[APIRouter, ...] = (
    login.router,
    overview.router,
    keys.router,
    principals.router,
    findings.router,
    compliance.router,
)
