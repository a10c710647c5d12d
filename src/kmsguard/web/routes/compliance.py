"""The compliance page: each control of a framework with the status counts of the checks that support it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kmsguard.store.queries import latest_scan, status_by_check
from kmsguard.web.deps import STATUSES, PagesDep, StoreDep

router = APIRouter()


@router.get("/compliance", response_class=HTMLResponse)
def compliance(request: Request, store: StoreDep, pages: PagesDep, framework: str = "") -> HTMLResponse:
    # Imported here: the check registry and the control table load on the first compliance page, not at start.
    from kmsguard.checks.registry import load_builtin_checks
    from kmsguard.compliance.mapping import FRAMEWORKS, framework_controls, supporting_checks

    slug = framework if framework in FRAMEWORKS else next(iter(FRAMEWORKS))
    specs = load_builtin_checks()
    topics = {cid: spec.topics for cid, spec in specs.items()}
    with store.session() as s:
        scan = latest_scan(s)
        if scan is None:
            return pages.render(request, "empty.html")
        by_check = status_by_check(s, scan.id)
    rows: list[dict[str, Any]] = []
    for control in framework_controls(slug):
        checks = supporting_checks(control, topics)
        counts = {st: sum(by_check.get(c, {}).get(st, 0) for c in checks) for st in STATUSES}
        state = "fail" if counts["FAIL"] else "error" if counts["ERROR"] else "pass" if counts["PASS"] else "none"
        rows.append({"control": control, "checks": checks, "counts": counts, "state": state})
    return pages.render(request, "compliance.html", scan=scan, frameworks=FRAMEWORKS, slug=slug, rows=rows)
