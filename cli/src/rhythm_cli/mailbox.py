"""A local mailbox for development: an SMTP sink and a small web view of what it received.

`make run` points the notifications service at it (Mailpit takes its place when installed).
Messages are kept in a SQLite file under .run/, so they survive a restart of the demo.
"""

from __future__ import annotations

import email
import email.policy
import html
import sqlite3
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from rhythm_shared.kit.settings import run_dir

app = typer.Typer(help="The local mailbox (SMTP sink + web view) used by `make run`.")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT,
    raw BLOB NOT NULL
)
"""


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute(_SCHEMA)
        self.db.commit()

    def add(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.db.execute(
            "INSERT INTO messages (received_at, mail_from, rcpt_to, subject, message_id, raw)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                datetime.now(UTC).isoformat(),
                mail_from,
                ", ".join(rcpt_to),
                str(parsed.get("Subject", "")),
                str(parsed.get("Message-ID", "")),
                raw,
            ),
        )
        self.db.commit()

    def list(self, limit: int = 200) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT id, received_at, mail_from, rcpt_to, subject FROM messages"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def get(self, message_id: int) -> EmailMessage | None:
        row = self.db.execute("SELECT raw FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        parsed = email.message_from_bytes(row[0], policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.store.add(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        return "250 Message accepted for delivery"


def web(store: Store) -> FastAPI:
    site = FastAPI(title="Rhythm mailbox", docs_url=None, redoc_url=None)

    @site.get("/api/messages")
    async def messages() -> dict[str, Any]:
        rows = store.list(limit=1000)
        return {
            "count": store.count(),
            "messages": [
                {"id": r[0], "received_at": r[1], "from": r[2], "to": r[3], "subject": r[4]}
                for r in rows
            ],
        }

    @site.get("/", response_class=HTMLResponse)
    async def index() -> str:
        items = "".join(
            f"<tr><td>{html.escape(r[1][:19].replace('T', ' '))}</td>"
            f"<td>{html.escape(r[3])}</td>"
            f"<td><a href='/messages/{r[0]}'>{html.escape(r[4]) or '(no subject)'}</a></td></tr>"
            for r in store.list()
        )
        return _page(
            f"Mailbox — {store.count()} messages",
            f"<table><tr><th>received (UTC)</th><th>to</th><th>subject</th></tr>{items}</table>",
        )

    @site.get("/messages/{message_id}", response_class=HTMLResponse)
    async def show(message_id: int) -> str:
        message = store.get(message_id)
        if message is None:
            raise HTTPException(404, "no such message")
        headers = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in message.items()
        )
        text_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        text = html.escape(text_part.get_content()) if text_part else ""
        frame = (
            f'<iframe sandbox srcdoc="{html.escape(html_part.get_content())}"></iframe>'
            if html_part
            else ""
        )
        return _page(
            str(message.get("Subject", "")),
            f"<p><a href='/'>&larr; all messages</a></p><table>{headers}</table>"
            f"<h2>HTML</h2>{frame}<h2>Text</h2><pre>{text}</pre>",
        )

    return site


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .6rem;"
        "border-bottom:1px solid #ddd;vertical-align:top}iframe{width:100%;height:28rem;"
        "border:1px solid #ccc}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


@app.command("serve")
def serve(
    smtp_port: Annotated[int, typer.Option(help="SMTP port to accept mail on.")] = 1025,
    http_port: Annotated[int, typer.Option(help="Port of the web view.")] = 8025,
    store_path: Annotated[Path | None, typer.Option(help="SQLite file for messages.")] = None,
) -> None:
    """Accept every email on 127.0.0.1 and show it at http://127.0.0.1:HTTP_PORT/."""
    store = Store(store_path or run_dir() / "mailbox.db")
    controller = Controller(_Handler(store), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        uvicorn.run(web(store), host="127.0.0.1", port=http_port, log_level="warning")
    finally:
        controller.stop()
