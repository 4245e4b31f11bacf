"""Jinja2 templates: one text and one HTML template per category and language.

HTML templates autoescape (names come from the HR platform, not from us); plain-text templates
do not, because HTML entities in a text/plain part would be wrong, not safer. The shared
wording lives in text macros (``labels.txt``); HTML templates pass their output through
``forceescape``, because Jinja marks a macro's result safe in the caller's escaping mode even
though the macro itself was compiled without escaping. Subjects are set
at the top of the text template (``{% set subject = ... %}``) and read from its module.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LANGUAGES = ("en", "nl")

_DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "nl": ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"],
}
_MONTHS = {
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
    "nl": [
        "januari", "februari", "maart", "april", "mei", "juni",
        "juli", "augustus", "september", "oktober", "november", "december",
    ],
}  # fmt: skip


def language_of(locale: str) -> str:
    """``nl``, ``nl-BE`` -> ``nl``; anything we have no templates for -> ``en``."""
    language = locale.split("-", 1)[0].lower()
    return language if language in LANGUAGES else "en"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class _Environment(Environment):
    """Each template's globals as one dict rather than a ChainMap over the environment's: Jinja
    subtracts their keys from the context's at every ``{% import %}``, and over a ChainMap that
    set difference runs in Python (~4 % of the dispatcher's time per email). Nothing adds
    globals after the templates are loaded, so a copy sees the same names."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class Templates:
    def __init__(self) -> None:
        self.env = _Environment(
            loader=PackageLoader("rhythm_notifications", "templates"),
            autoescape=select_autoescape(
                enabled_extensions=("html",), disabled_extensions=("txt",), default=True
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # The templates ship with the package: compiled once, never checked for changes
            # on disk again (that check was a stat per template per email).
            auto_reload=False,
        )

    def render(
        self, category: str, locale: str, time_zone: str, context: dict[str, Any]
    ) -> Rendered:
        language = language_of(locale)
        zone = ZoneInfo(time_zone)

        def when(value: str | datetime) -> str:
            instant = datetime.fromisoformat(value) if isinstance(value, str) else value
            here = instant.astimezone(zone)
            day = _DAYS[language][here.weekday()]
            month = _MONTHS[language][here.month - 1]
            return f"{day} {here.day} {month} {here.year}, {here:%H:%M}"

        def on(value: str) -> str:
            instant = datetime.fromisoformat(value)
            return when(instant).rsplit(",", 1)[0]

        full = {"link": None, **context, "when": when, "on": on, "lang": language}
        text_template = self.env.get_template(f"{language}/{category}.txt")
        module = text_template.make_module(full)
        subject = str(getattr(module, "subject", "")).strip()
        text = str(module)
        html = self.env.get_template(f"{language}/{category}.html").render(**full, subject=subject)
        return Rendered(subject=" ".join(subject.split()), text=text, html=html)
