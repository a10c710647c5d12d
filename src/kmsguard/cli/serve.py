"""`kmsguard serve`: the web dashboard over the store. 127.0.0.1 by default; anywhere else needs a token."""

from __future__ import annotations

import typer

from kmsguard.cli.common import err_console, fail
from kmsguard.store.db import StoreError, open_store
from kmsguard.web.auth import new_token, token_required


def serve(
    db: str | None = typer.Option(None, "--db", envvar="KMSGUARD_DB", help="Database URL (as for monitor)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Not loopback: a token is required."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    token: str | None = typer.Option(
        None, "--token", envvar="KMSGUARD_TOKEN", help="Login token (default: generated and printed when needed)."
    ),
    require_token: bool = typer.Option(False, "--require-token", help="Require a token even on 127.0.0.1."),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help="Another host name browsers use to reach the dashboard (repeatable); only loopback and --host are "
        "served otherwise.",
    ),
    behind_tls: bool = typer.Option(
        False,
        "--behind-tls",
        envvar="KMSGUARD_BEHIND_TLS",
        help="A proxy in front ends TLS: mark the session cookie Secure.",
    ),
) -> None:
    """Serve the dashboard: posture, keys, findings (mute/unmute), compliance."""
    import uvicorn

    from kmsguard.web.app import create_app

    if not 0 < port < 65536:
        fail(f"--port: {port} is not a TCP port")
    try:
        store = open_store(db)
    except StoreError as e:
        fail(str(e))
    if token_required(host, token, require_token) and token is None:
        token = new_token()
        # Printed once, on stderr: the operator needs it to log in; it is not stored anywhere.
        err_console.print(f"login token: {token}", highlight=False)
    if token is not None and len(token) < 16:
        fail("--token must be at least 16 characters")
    try:
        app = create_app(store, token, host=host, allowed_hosts=allowed_host, behind_tls=behind_tls)
    except ValueError as e:
        fail(str(e))
    shown = f"[{host}]" if ":" in host else host
    err_console.print(f"kmsguard dashboard on http://{shown}:{port}/ (store {store.url})", highlight=False)
    if host in ("0.0.0.0", "::") and not allowed_host:
        # Every interface, but the guard serves only the names it knows: say so before the first 421.
        err_console.print(f"only loopback names and {host} are served: add others with --allowed-host", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")
