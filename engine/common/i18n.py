"""Languages: the gettext catalogs in ``locales/`` (engine strings and flow wording), and language choice.

One ``messages`` domain holds both the engine's own strings and every flow's wording (extracted from
``flows/*.yaml`` by :func:`extract_flow_yaml`, registered as a Babel extractor), so a translator works from one
``.pot``. A language the engine offers must have its compiled catalog: :func:`catalog` raises if it is missing,
and a test checks every offered language, so nothing falls back to English silently.

The languages offered are the compiled catalogs found (:func:`available_languages`), each named in its own words
by Babel (:func:`language_name`): a catalog added to the folder appears on every page with no code edit. The folder
is the shipped ``locales/`` unless ``SURVEY_ENGINE_LOCALES_DIR`` names another (:func:`use_locales`, called when
the runtime is built).
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from babel import Locale, UnknownLocaleError

from engine.settings import shipped

# The translators' folder at the root of a checkout, or its copy inside the package when installed from a wheel.
LOCALES = shipped("locales")
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
# The folder the process reads its catalogs from when it is not the shipped one (``use_locales``).
_configured: Path | None = None


class MissingCatalog(LookupError):
    """An offered language has no compiled catalog (run ``pybabel compile -d locales``)."""


def use_locales(folder: Path | None) -> None:
    """Read the catalogs from ``folder`` from now on (``None``: the shipped ``locales/``), for the whole process."""
    global _configured
    if folder != _configured:
        _configured = folder
        catalog.cache_clear()
        language_name.cache_clear()


def locales_dir() -> Path:
    """The folder the catalogs are read from."""
    return _configured or LOCALES


def available_languages() -> list[str]:
    """The languages offered: one per compiled catalog in the folder, in code order."""
    return list(_languages_in(locales_dir()))


@cache
def _languages_in(folder: Path) -> tuple[str, ...]:
    # Read once per folder: a catalog added while the process runs is not loaded before a restart either.
    return tuple(sorted(p.parent.parent.name for p in folder.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")))


@cache
def language_name(code: str) -> str:
    """A language named in its own words, for a language switch ("English", "Español", "Français")."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return code
    return str(name)[:1].upper() + str(name)[1:] if name else code


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English needs none: it is the source language)."""
    primary = language.split("-")[0].lower()
    folder = locales_dir()
    try:
        return gettext.translation(DOMAIN, localedir=str(folder), languages=[primary])
    except OSError:
        if primary == SOURCE_LANGUAGE:
            return gettext.NullTranslations()
        raise MissingCatalog(
            f"no compiled catalog for {primary!r} in {folder} (run `pybabel compile -d locales`)"
        ) from None


def N_(text: str) -> str:
    """Mark an engine string for extraction; it is translated where it is shown (``translate``)."""
    return text


def translate(language: str, text: str, **values: str) -> str:
    """Translate one message (engine string or flow wording) and fill its ``{placeholders}``."""
    translated = catalog(language).gettext(text) if text else text
    return _fill(translated, values)


class _Keep(dict[str, str]):
    """The values of a message's placeholders; one it does not hold stays as written (``{name}``)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format_map(_Keep(values)) if values else text


def best_language(offered: tuple[str, ...] | list[str], *wanted: str | None) -> str:
    """The first of ``wanted`` (primary subtags) the flow offers, else the flow's first language."""
    for tag in wanted:
        if tag:
            primary = tag.split("-")[0].lower()
            if primary in offered:
                return primary
    return offered[0]


# -- Babel extractors: flow wording, and the names of services ----------------------------------------------------

_TRANSLATABLE_KEYS = {"title", "text", "label", "burden_statement"}


def _strings(node: Any, key: str | None = None) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in (
                "id",
                "a11",
                "type",
                "driver",
                "scale",
                "skip_on",
                "show_if",
                "omb_control_number",
                "edition",
                "version",
                "languages",
                "default_language",
                "ivr_keypad",
                "driver_form",
                "expiration_date",
                "omb_wording_approval",
                "burden_minutes",
            ):
                continue  # fmt: skip
            yield from _strings(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str) and node.strip() and key is not None:
        yield node.strip()
    elif isinstance(node, (int, float)) or node is None:
        return


def extract_flow_yaml(
    fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor: every wording in a flow (titles, question texts, per-channel wording, labels, messages)."""
    data = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    seen: set[str] = set()
    for text in _strings(data):
        if text not in seen:
            seen.add(text)
            yield (0, "gettext", text, [f"flow {data.get('id', '?')}"])


def extract_services_yaml(
    fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for ``config/services.yaml``: what customers read (service, agency, sender names, and the
    burden statement of a service's own PRA block)."""
    data = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    seen: set[str] = set()
    for slug, service in (data.get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        pra: dict[str, Any] = service["pra"] if isinstance(service.get("pra"), dict) else {}
        names = [service.get("name"), service.get("agency"), (service.get("sender") or {}).get("name"),
                 pra.get("burden_statement")]  # fmt: skip
        for text in names:
            if isinstance(text, str) and text.strip() and text.strip() not in seen:
                seen.add(text.strip())
                yield (0, "gettext", text.strip(), [f"service {slug}"])
