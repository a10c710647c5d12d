"""Alert channels: SNS, Slack incoming webhook, generic JSON webhook, e-mail over SMTP.

Every channel receives the same alert payload (see ``alerts.build_payload``) and renders it its own way.
``name`` identifies a channel in the outbox (one delivery row per alert and channel), so it must be stable
across restarts for the same configuration, and must not contain secrets (it is stored and shown).
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

TIMEOUT = 10.0
MAX_ITEMS_IN_TEXT = 25


class Channel(Protocol):
    name: str

    def send(self, payload: dict[str, Any]) -> None:
        """Deliver one alert; raise on failure (the outbox keeps it pending and retries)."""


def render_text(payload: dict[str, Any]) -> str:
    """The plain-text alert: what changed, where, how bad, and where to see more."""
    lines = [str(payload["title"]), ""]
    items: list[dict[str, Any]] = payload.get("items", [])
    for it in items[:MAX_ITEMS_IN_TEXT]:
        lines.append(f"- [{it['severity'].upper()}] {it['summary']}")
        lines.append(f"  where: account {it['account']}, region {it['region']}, {it['resource_arn']}")
        if it.get("more"):
            lines.append(f"  more: {it['more']}")
    if len(items) > MAX_ITEMS_IN_TEXT:
        lines.append(f"... and {len(items) - MAX_ITEMS_IN_TEXT} more")
    lines += ["", f"See more: {payload['more']}"]
    return "\n".join(lines)


def _url_name(kind: str, url: str) -> str:
    # Webhook URLs are secrets (Slack's carry the token in the path): store a digest, show only the host.
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{kind}:{urlsplit(url).hostname}:{digest}"


def _post_json(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        if not 200 <= resp.status < 300:
            raise OSError(f"HTTP {resp.status}")


class WebhookChannel:
    """POSTs the alert payload itself as JSON: for SIEMs, ticketing and anything that parses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = _url_name("webhook", url)

    def send(self, payload: dict[str, Any]) -> None:
        _post_json(self.url, payload)


class SlackChannel:
    """Slack incoming webhook: ``text`` is the fallback and the notification; blocks carry the detail."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = _url_name("slack", url)

    def send(self, payload: dict[str, Any]) -> None:
        text = render_text(payload)
        body = {
            "text": str(payload["title"]),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"```{text[:2900]}```"}}],
        }
        _post_json(self.url, body)


class SnsChannel:
    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client
        self.name = f"sns:{topic_arn}"

    def send(self, payload: dict[str, Any]) -> None:
        # Subject: SNS allows 100 characters; e-mail subscribers see it, SQS subscribers get it in the envelope.
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=str(payload["title"])[:100],
            Message=render_text(payload),
            MessageAttributes={"severity": {"DataType": "String", "StringValue": str(payload["severity"])}},
        )


@dataclass
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: list[str]
    starttls: bool = False
    username: str | None = None
    password: str | None = None


class SmtpChannel:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.name = f"smtp:{settings.host}:{settings.port}:{','.join(sorted(settings.recipients))}"

    def send(self, payload: dict[str, Any]) -> None:
        st = self.settings
        msg = EmailMessage()
        msg["Subject"] = str(payload["title"])
        msg["From"] = st.sender
        msg["To"] = ", ".join(st.recipients)
        msg.set_content(render_text(payload))
        with smtplib.SMTP(st.host, st.port, timeout=TIMEOUT) as smtp:
            if st.starttls:
                smtp.starttls()
            if st.username:
                smtp.login(st.username, st.password or "")
            smtp.send_message(msg)


def parse_smtp(spec: str, sender: str | None, recipients: list[str]) -> SmtpSettings:
    """``host[:port]`` (default port 25), or ``smtp+starttls://user:pass@host:port``."""
    starttls = False
    user = password = None
    if "://" in spec:
        parts = urlsplit(spec)
        if parts.scheme not in ("smtp", "smtp+starttls"):
            raise ValueError(f"--smtp: unknown scheme {parts.scheme!r} (smtp:// or smtp+starttls://)")
        starttls = parts.scheme == "smtp+starttls"
        host, port = parts.hostname or "", parts.port or (587 if starttls else 25)
        user, password = parts.username, parts.password
    else:
        host, _, p = spec.partition(":")
        if p and not p.isdigit():
            raise ValueError(f"--smtp: {spec!r} is not HOST[:PORT]")
        port = int(p) if p else 25
    if not host:
        raise ValueError(f"--smtp: {spec!r} names no host")
    if not recipients:
        raise ValueError("--smtp needs at least one --smtp-to address")
    return SmtpSettings(host, port, sender or "kmsguard@localhost", recipients, starttls, user, password)
