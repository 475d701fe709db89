"""Sending mail over SMTP: password resets today, booking notifications later.

The standard library's client runs in a thread, so a slow mail server never stalls an event
loop. Tests point it at a local SMTP sink; production at the real relay (BR_SMTP_*).
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from booking_rush.services.env import env_int, env_str


@dataclass(frozen=True)
class MailSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    sender: str = "Booking Rush <no-reply@booking-rush.test>"
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> MailSettings:
        return cls(
            host=env_str("BR_SMTP_HOST", cls.host),
            port=env_int("BR_SMTP_PORT", cls.port),
            sender=env_str("BR_MAIL_FROM", cls.sender),
        )


class MailError(Exception):
    """The mail could not be handed to the SMTP server."""


class Mailer:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.settings.host, self.settings.port, timeout=self.settings.timeout_s) as smtp:
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"could not send mail to {to}: {exc}") from exc
