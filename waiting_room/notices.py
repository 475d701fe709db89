"""How a person in line asked to be told of their turn, and what they are told.

One record per person per room (lua/queue_notify.lua keeps it, JSON): a Web Push subscription
or an e-mail address, the language of the page they asked from, and the room page's address.
While it lives the person counts as present: at their turn they are called with a claim window
(lua/queue_admit.lua), told so (workers/turn_notices.py), and told again if it ran out.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from booking_rush.services.web_push import Subscription

LANGUAGES = ("en", "th")

_TEXTS = {
    "en": {
        "called_title": "It's your turn",
        "called_body": "You have {minutes} minutes to take your place. Open the waiting room to continue.",
        "missed_title": "Your turn has passed",
        "missed_body": "You did not come back within {minutes} minutes, so your place went to the next "
        "person. You can join the line again.",
    },
    "th": {
        "called_title": "ถึงคิวของคุณแล้ว",
        "called_body": "คุณมีเวลา {minutes} นาทีในการรับสิทธิ์ เปิดห้องรอคิวเพื่อดำเนินการต่อ",
        "missed_title": "เลยคิวของคุณแล้ว",
        "missed_body": "คุณไม่ได้กลับมาภายใน {minutes} นาที สิทธิ์จึงส่งต่อให้คนถัดไป คุณต่อคิวใหม่ได้",
    },
}


@dataclass(frozen=True)
class NoticeRecord:
    """push or email (one of them), lang, and page: the waiting room's address (absolute for a
    mail, which is read outside the site; the push message's link is the page's path)."""

    page: str
    lang: str = "en"
    push: Subscription | None = None
    email: str | None = None

    def to_json(self) -> bytes:
        record = {"page": self.page, "lang": self.lang}
        if self.push is not None:
            record["push"] = orjson.loads(self.push.to_json())
        if self.email is not None:
            record["email"] = self.email
        return orjson.dumps(record)

    @classmethod
    def from_json(cls, raw: bytes | str) -> NoticeRecord:
        record = orjson.loads(raw)
        push = record.get("push")
        return cls(
            page=record["page"],
            lang=record.get("lang", "en"),
            push=Subscription.from_json(orjson.dumps(push)) if push else None,
            email=record.get("email"),
        )


def language(value: object) -> str:
    """A page's language as we speak it ("th-TH" -> "th"); English otherwise."""
    if isinstance(value, str) and value[:2].lower() in LANGUAGES:
        return value[:2].lower()
    return "en"


def message(kind: str, lang: str, minutes: int) -> tuple[str, str]:
    """(title, body) of the notice `kind` ("called" or "missed") in `lang`."""
    texts = _TEXTS[language(lang)]
    return texts[f"{kind}_title"], texts[f"{kind}_body"].format(minutes=minutes)
