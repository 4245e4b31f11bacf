"""``rhythm notifications ...``: operations of the notifications service."""

from __future__ import annotations

import asyncio
import base64
import json

import typer

from rhythm_notifications.adapters.webhooks import sign

app = typer.Typer(help="Operations of the notifications service.", no_args_is_help=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@app.command("vapid-keys")
def vapid_keys() -> None:
    """Generate a VAPID key pair (RFC 8292): the private key goes in VAPID_PRIVATE_KEY, the
    public key is the applicationServerKey the web app subscribes with."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from py_vapid import Vapid

    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    typer.echo(json.dumps({"VAPID_PRIVATE_KEY": _b64url(private), "public_key": _b64url(public)}))


@app.command("sign-webhook")
def sign_webhook(
    secret: str = typer.Option(..., help="The endpoint's whsec_ secret."),
    msg_id: str = typer.Option(..., help="webhook-id"),
    timestamp: int = typer.Option(..., help="webhook-timestamp (Unix seconds)"),
    body_file: typer.FileText = typer.Option(..., help="File with the exact body ('-': stdin)."),
) -> None:
    """Print the webhook-signature for a body, to check a receiver's verification."""
    typer.echo(sign(secret, msg_id, timestamp, body_file.read()))


@app.command("send-test-email")
def send_test_email(to: str = typer.Option(..., help="Address to send to.")) -> None:
    """Send one email through the configured SMTP server (checks SMTP_* settings)."""
    from email.message import EmailMessage

    import aiosmtplib

    from rhythm_notifications.settings import Settings

    settings = Settings()
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = to
    message["Subject"] = "Rhythm: SMTP settings work"
    message.set_content("This is a test message from the Rhythm notifications service.\n")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    asyncio.run(
        aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_s,
        )
    )
    typer.echo(f"sent to {to}")
