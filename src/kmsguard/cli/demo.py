"""`kmsguard demo`: scan an embedded AWS emulator filled with a sample estate, exactly as a real scan would.

The emulator (moto plus kmsguard's documented layer, see docs/emulator.md) runs in this process on
127.0.0.1 and a free port. The scan goes through the same collect -> judge -> report pipeline as
`kmsguard scan`, over HTTP, with fake credentials that exist only inside the demo.

Exit codes: 0 the demo ran (findings are the point of a demo, not a failure); 1 something in the demo
broke; 2 usage error; 3 the emulator could not be reached.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from kmsguard.cli.common import EXIT_AWS, EXIT_OK, EXIT_USAGE, err_console, fail, local_dir, progress_bar

if TYPE_CHECKING:  # the emulator pulls in moto: import it only when the demo runs
    from kmsguard.demo.emulator import Emulator
    from kmsguard.model.result import ScanResult

EXIT_BROKEN = 1
DEMO_FORMATS = ("table", "json")
REPORT_BASENAME = "kmsguard-demo"

# What the demo's own clients see. "testing" credentials are moto's convention; they reach nothing but the
# emulator because every call is sent to its endpoint.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Whatever the user's environment says about AWS must not leak into the demo (a profile would win over the
# fake keys; a credential_process or SSO config would be consulted).
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


@contextmanager
def scoped_aws_env(endpoint_url: str, region: str) -> Iterator[None]:
    """Point the standard AWS credential chain at the emulator for the duration of the block, then restore."""
    wanted = {
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        # No shared config or credentials file: nothing from ~/.aws takes part in the demo.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in (*wanted, *_UNSET)}
    try:
        for k in _UNSET:
            os.environ.pop(k, None)
        os.environ.update(wanted)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _say(message: str) -> None:
    # Narration goes to stderr so that `kmsguard demo --format json > out.json` gives clean JSON.
    err_console.print(message, highlight=False, soft_wrap=True)


def demo(
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave the emulator up after the scan (until Ctrl-C) and print how to use it."
    ),
    output_dir: Path = typer.Option(
        Path("."), "--output-dir", "-o", help="Where to write kmsguard-demo.json and kmsguard-demo.sarif."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="How to print the findings: table or json."),
    port: int | None = typer.Option(None, "--port", help="Emulator port on 127.0.0.1 (default: a free port)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    aws_latency: str | None = typer.Option(
        None,
        "--aws-latency",
        metavar="MS[:JITTER]",
        help="Make every emulator request wait MS milliseconds (uniformly ± JITTER), as AWS's network does.",
    ),
    aws_quotas: str | None = typer.Option(
        None,
        "--aws-quotas",
        metavar="default|FILE",
        help="Throttle the emulator at AWS's request quotas per account, Region and operation: the built-in "
        "table (default) or a file in its format (docs/emulator.md).",
    ),
) -> None:
    """Scan an embedded AWS emulator filled with a sample estate (two regions, about 30 keys)."""
    if fmt not in DEMO_FORMATS:
        fail(f"--format: {fmt!r} is not one of {', '.join(DEMO_FORMATS)}")
    if port is not None and not (1 <= port <= 65535):
        fail(f"--port: {port} is not a TCP port (1-65535)")
    if port is not None and not _port_free(port):
        fail(f"--port: 127.0.0.1:{port} is already in use; pick another or leave --port out for a free one")
    local_dir(output_dir, "--output-dir")

    from kmsguard.aws.quotas import load_quotas
    from kmsguard.demo.emulator import Emulator
    from kmsguard.demo.quotas import parse_latency

    try:
        latency = parse_latency(aws_latency) if aws_latency is not None else None
    except ValueError as e:
        fail(f"--aws-latency: {e}")
    try:
        quotas = load_quotas(aws_quotas) if aws_quotas is not None else None
    except ValueError as e:  # QuotaFileError names the file and line
        fail(f"--aws-quotas: {e}")
    emulator = Emulator(port=port, aws_latency=latency, aws_quotas=quotas)
    # The whole demo runs in the scoped environment: moto itself creates boto3 sessions while it loads, and a
    # user's AWS_PROFILE or ~/.aws must not reach those either.
    with scoped_aws_env(emulator.endpoint_url, "us-east-1"):
        try:
            emulator.start()
        except OSError as e:
            fail(f"cannot start the emulator on 127.0.0.1:{emulator.port}: {e.strerror or e}", EXIT_AWS)
        try:
            code = _run(emulator, output_dir, fmt, quiet)
            if code == EXIT_OK and keep_running:
                _serve_until_stopped(emulator)
        finally:
            emulator.stop()
    raise typer.Exit(code)


def _run(emulator: Emulator, output_dir: Path, fmt: str, quiet: bool) -> int:
    from kmsguard.aws.errors import AwsUnavailable
    from kmsguard.aws.options import AwsOptions
    from kmsguard.collect.snapshot import collect_snapshot
    from kmsguard.demo.estate import seed_estate
    from kmsguard.pipeline import judge

    endpoint = emulator.endpoint_url
    _say(f"[bold]kmsguard demo[/]: AWS emulator (moto + kmsguard's emulator layer) on {endpoint}")
    if emulator.aws_latency is not None or emulator.aws_quotas is not None:
        lat = emulator.aws_latency
        _say(
            f"AWS's time: latency {f'{lat.ms:g} ± {lat.jitter_ms:g} ms' if lat else 'none'}, "
            f"quotas {emulator.aws_quotas.origin if emulator.aws_quotas else 'none'} (from the scan on)"
        )

    started = time.perf_counter()
    try:
        # The sample estate is the demo's premise, not part of what AWS's time is meant to show.
        with emulator.aws_time_paused():
            info = seed_estate(endpoint)
    except Exception as e:  # the estate is ours: any failure here is a bug worth a clear line, not a traceback
        _say(f"[bold red]error:[/] seeding the sample estate failed: {type(e).__name__}: {e}")
        return EXIT_BROKEN
    c = info.counts()
    _say(
        f"Seeded {c['customer_managed_keys']} customer managed keys, {c['aws_managed_keys']} AWS managed keys, "
        f"{c['resources']} resources and {c['trails']} trails in {c['accounts']} accounts "
        f"({', '.join(info.regions)}) in {time.perf_counter() - started:.1f} s"
    )

    options = AwsOptions(endpoint_url=endpoint, regions=list(info.regions), accounts=list(info.accounts))
    emulator.reset_request_counts()
    started = time.perf_counter()
    try:
        with progress_bar(not quiet) as bar:
            snapshot = collect_snapshot(options, bar)
    except AwsUnavailable as e:
        _say(f"[bold red]error:[/] {e}")
        return EXIT_AWS
    except Exception as e:
        _say(f"[bold red]error:[/] the scan failed: {type(e).__name__}: {e}")
        return EXIT_BROKEN
    calls, throttled = emulator.request_count(), sum(emulator.throttled_counts().values())
    scan_seconds = time.perf_counter() - started

    try:
        result = judge(snapshot)
    except Exception as e:
        _say(f"[bold red]error:[/] judging the snapshot failed: {type(e).__name__}: {e}")
        return EXIT_BROKEN

    from kmsguard.cli.scan import emit

    emit(result, fmt, None)
    _print_summary(result, len(snapshot.all_keys()), calls, scan_seconds, throttled)
    return _write_reports(result, output_dir)


def _print_summary(result: ScanResult, keys: int, calls: int, seconds: float, throttled: int = 0) -> None:
    summary = result.summary()
    by_status = ", ".join(f"{n} {s}" for s, n in summary["by_status"].items() if n)
    by_sev = ", ".join(f"{n} {s}" for s, n in summary["failing_by_severity"].items() if n)
    _say("")
    _say(
        f"[bold]Summary[/]: scanned {keys} keys in {len(result.accounts)} accounts and {len(result.regions)} regions "
        f"in {seconds:.1f} s with {calls} AWS calls" + (f" ({throttled} answered with throttling)" if throttled else "")
    )
    _say(f"  findings: {summary['total']} ({by_status or 'none'})")
    if by_sev:
        _say(f"  failing by severity: {by_sev}")
    failing = summary["failing_by_check"]
    if failing:
        _say(f"  failing checks ({len(failing)}): " + ", ".join(f"{cid} ×{n}" for cid, n in failing.items()))


def _write_reports(result: ScanResult, output_dir: Path) -> int:
    from kmsguard.fileio import write_atomic
    from kmsguard.report.registry import REGISTRY

    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _say(f"[bold red]error:[/] cannot create {output_dir}: {e.strerror or e}")
        return EXIT_BROKEN
    code = EXIT_OK
    for fmt in ("json", "sarif"):
        spec = REGISTRY.get(fmt)
        if spec is None:
            _say(f"[bold red]error:[/] this build has no {fmt} report format; {REPORT_BASENAME}.{fmt} not written")
            code = EXIT_BROKEN
            continue
        path = output_dir / f"{REPORT_BASENAME}.{spec.extension}"
        try:
            write_atomic(path, spec.render(result).encode("utf-8"))
        except (OSError, ValueError) as e:
            _say(f"[bold red]error:[/] cannot write {path}: {getattr(e, 'strerror', None) or e}")
            code = EXIT_BROKEN
            continue
        _say(f"Wrote {path.resolve()}")
    return code


def _serve_until_stopped(emulator: Emulator) -> None:
    env = emulator.env()
    _say("")
    _say(f"[bold]The emulator keeps running[/] on {emulator.endpoint_url} (Ctrl-C to stop).")
    _say("Point the aws CLI or other kmsguard commands at it (these credentials only work on the emulator):")
    for name, value in env.items():
        # On stdout, so `eval "$(kmsguard demo --keep-running ...)"`-style use and copy-paste both work.
        sys.stdout.write(f"export {name}={value}\n")
    sys.stdout.flush()
    _say(
        f"e.g.  aws kms list-aliases --region us-east-1  |  kmsguard scan --endpoint-url {emulator.endpoint_url} "
        "--regions us-east-1,eu-west-1"
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("Stopping the emulator.")


__all__ = ["EXIT_USAGE", "demo", "scoped_aws_env"]
