"""The gettext catalogs in ``locales/``: the template is current, every catalog is complete and compiled.

No database: these tests read the catalogs, re-run the extraction, and go through the runtime helpers
(``engine.common.i18n``) and flask-babel the way the survey pages do.

Catalog workflow (from the repository root)::

    .venv/bin/pybabel extract -F babel.cfg -k N_ -k _ --no-location --sort-output --omit-header \\
        -o locales/messages.pot .
    .venv/bin/pybabel update -i locales/messages.pot -d locales --previous
    .venv/bin/pybabel compile -d locales --statistics
"""

from __future__ import annotations

import gettext
import io
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, render_template
from flask_babel import Babel

from engine.common import i18n

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "locales"
POT = LOCALES / "messages.pot"
EXTRACT = ["extract", "-F", "babel.cfg", "-k", "N_", "-k", "_", "--no-location", "--sort-output", "--omit-header"]
# Every catalog in locales/ is checked, not only those named here: a new language is held to the same rules.
PO_FILES = sorted(LOCALES.glob(f"*/LC_MESSAGES/{i18n.DOMAIN}.po"))
LANGS = [p.parent.parent.name for p in PO_FILES]
PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}|%\([A-Za-z_]\w*\)[sdif]")
KEYPAD_DIGIT = re.compile(r"(?<!\d)\d(?!\d)")
# msgids whose Spanish is rightly the same word as the English.
SAME_IN_SPANISH = {"Error:"}

TRUST = "This interaction increased my trust in {service}."
SATISFIED = "I am satisfied with the service I received from {service}."


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _ids(catalog: Catalog) -> set[str]:
    return {str(m.id) for m in catalog if m.id}


def _placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def pot() -> Catalog:
    return _read(POT)


@pytest.fixture(params=LANGS)
def po(request: pytest.FixtureRequest) -> Catalog:
    return _read(LOCALES / request.param / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", request.param)


@pytest.fixture
def fresh_catalogs() -> Iterator[None]:
    """Clear the catalog cache around a test that changes what it would load."""
    i18n.catalog.cache_clear()
    yield
    i18n.catalog.cache_clear()


# -- languages and loading -----------------------------------------------------------------------------------


def test_runtime_reads_these_catalogs():
    assert i18n.LOCALES == LOCALES
    assert {"en", "es"} <= set(LANGS), f"catalogs found: {LANGS}"


def test_every_offered_language_loads(fresh_catalogs):
    available = i18n.available_languages()
    assert {"en", "es"} <= set(available), f"compiled catalogs: {available}"
    assert sorted(LANGS) == available, "each .po needs its compiled .mo and each .mo its .po"
    for language in available:
        assert isinstance(i18n.catalog(language), gettext.GNUTranslations), language
    assert isinstance(i18n.catalog("es-US"), gettext.GNUTranslations)


def test_every_flow_language_has_a_catalog():
    available = set(i18n.available_languages())
    for path in sorted((ROOT / "flows").glob("*.yaml")):
        flow = yaml.safe_load(path.read_text(encoding="utf-8"))
        wanted = {str(lang) for lang in flow.get("languages", [])} | {str(flow.get("default_language", "en"))}
        assert wanted <= available, f"{path.name} offers {sorted(wanted - available)} with no compiled catalog"


def test_missing_catalog_raises(fresh_catalogs):
    absent = next(code for code in ("fr", "de", "zz") if code not in i18n.available_languages())
    with pytest.raises(i18n.MissingCatalog):
        i18n.catalog(absent)


def test_missing_compiled_catalog_raises_except_for_english(fresh_catalogs, tmp_path):
    # A folder with no compiled catalog, chosen the way SURVEY_ENGINE_LOCALES_DIR chooses one.
    i18n.use_locales(tmp_path)
    try:
        assert i18n.available_languages() == []
        with pytest.raises(i18n.MissingCatalog):
            i18n.catalog("es")
        assert i18n.translate("en", TRUST, service="X") == "This interaction increased my trust in X."
    finally:
        i18n.use_locales(None)
    assert "es" in i18n.available_languages()


# -- the template and the catalogs -----------------------------------------------------------------------------


def test_pot_is_current(pot, tmp_path):
    fresh = tmp_path / "messages.pot"
    run = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *EXTRACT, "-o", str(fresh), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    extracted, committed = _ids(_read(fresh)), _ids(pot)
    assert extracted, "the extraction found no messages"
    assert extracted == committed, (
        "locales/messages.pot is stale (re-run `pybabel extract`, then `pybabel update` and translate):\n"
        f"  new: {sorted(extracted - committed)}\n  gone: {sorted(committed - extracted)}"
    )


def test_catalog_has_every_message(po, pot):
    missing, extra = _ids(pot) - _ids(po), _ids(po) - _ids(pot)
    assert not missing, f"{po.locale}: run `pybabel update` and translate: {sorted(missing)}"
    assert not extra, f"{po.locale}: messages no longer in the template (run `pybabel update`): {sorted(extra)}"


def test_catalog_is_translated_and_not_fuzzy(po):
    assert not po.fuzzy, f"{po.locale}: the catalog header is fuzzy (pybabel compile would skip it)"
    empty = [m.id for m in po if m.id and not m.string]
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not empty, f"{po.locale}: untranslated: {empty}"
    assert not fuzzy, f"{po.locale}: fuzzy (review, then remove the flag): {fuzzy}"


def test_placeholders_are_kept(po):
    wrong = {
        str(m.id): (sorted(_placeholders(str(m.id)).elements()), sorted(_placeholders(str(m.string)).elements()))
        for m in po
        if m.id and _placeholders(str(m.id)) != _placeholders(str(m.string))
    }
    assert not wrong, f"{po.locale}: placeholders differ (msgid, msgstr): {wrong}"


def test_keypad_and_reply_numbers_are_kept(po):
    """IVR keypad and SMS reply numbers mean the same answers in every language."""
    wrong = {
        str(m.id): str(m.string)
        for m in po
        if m.id
        and re.search(r"\b(press|reply)\b", str(m.id), re.IGNORECASE)
        and Counter(KEYPAD_DIGIT.findall(str(m.id))) != Counter(KEYPAD_DIGIT.findall(str(m.string)))
    }
    assert not wrong, f"{po.locale}: keypad/reply numbers differ: {wrong}"


def test_sms_opt_out_keyword_is_kept(po):
    dropped = [m.id for m in po if m.id and "STOP" in str(m.id) and "STOP" not in str(m.string)]
    assert not dropped, f"{po.locale}: the carrier opt-out keyword STOP must stay: {dropped}"


def test_english_catalog_is_the_source_text():
    en = _read(LOCALES / "en" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "en")
    different = [m.id for m in en if m.id and m.string != m.id]
    assert not different, f"en: msgstr must equal msgid: {different}"


def test_spanish_catalog_is_not_english():
    es = _read(LOCALES / "es" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "es")
    untranslated = [m.id for m in es if m.id and m.string == m.id and m.id not in SAME_IN_SPANISH]
    assert not untranslated, f"es: msgstr copied from the English: {untranslated}"
    sms_opt_out = [str(m.string) for m in es if m.id and "Reply STOP" in str(m.id)]
    assert sms_opt_out
    assert all("ALTO" in text for text in sms_opt_out), sms_opt_out


def test_compiled_catalog_is_current(po):
    mo = LOCALES / str(po.locale) / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo"
    assert mo.is_file(), f"{mo} is missing (run `pybabel compile -d locales`)"
    buffer = io.BytesIO()
    write_mo(buffer, po)
    buffer.seek(0)
    expected = gettext.GNUTranslations(buffer)._catalog  # type: ignore[attr-defined]
    with mo.open("rb") as f:
        committed = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    expected_pairs = {(k, v) for k, v in expected.items() if k != ""}
    committed_pairs = {(k, v) for k, v in committed.items() if k != ""}
    assert expected_pairs, f"{po.locale}: the catalog compiles to nothing"
    assert committed_pairs == expected_pairs, (
        f"{mo} is out of date with its .po (run `pybabel compile -d locales`): "
        f"{len(expected_pairs - committed_pairs)} missing or changed, {len(committed_pairs - expected_pairs)} stale"
    )


# -- through the runtime -------------------------------------------------------------------------------------


def test_translate_fills_spanish_wording(fresh_catalogs):
    assert i18n.translate("es", TRUST, service="X") == "Esta interacción aumentó mi confianza en X."
    assert i18n.translate("es", SATISFIED, service="X").startswith("Estoy satisfecho")
    assert i18n.translate("es", "Strongly disagree") == "Muy en desacuerdo"
    assert i18n.translate("es", "Submit your answers") == "Enviar sus respuestas"
    assert i18n.translate("es-MX", "Thank you") == "Gracias"
    assert i18n.translate("en", TRUST, service="X") == "This interaction increased my trust in X."


def test_invitation_sms_in_spanish(fresh_catalogs):
    template = (
        "{agency} asks how your {service} went, to help improve it. Voluntary, about {duration}. "
        "OMB {omb_control_number}. Reply STOP to opt out."
    )
    text = i18n.translate(
        "es", template, agency="Agencia", service="Servicio", duration="2 minutos", omb_control_number="1090-0011"
    )
    assert "{" not in text
    assert "1090-0011" in text and "voluntaria" in text and "2 minutos" in text
    assert "STOP" in text and "ALTO" in text


@pytest.mark.parametrize(
    ("language", "minutes", "said"),
    [("en", 1, "1 minute"), ("en", 2, "2 minutes"), ("es", 1, "1 minuto"), ("es", 3, "3 minutos")],
)
def test_how_long_takes_the_plural_form_of_each_language(fresh_catalogs, language, minutes, said):
    from engine.surveys.messages import duration

    assert duration(language, minutes) == said


def test_survey_page_template_is_translated(fresh_catalogs):
    """A page template rendered with flask-babel on the same directory, as ``engine.app`` sets it up."""
    app = Flask("engine.app")
    Babel(app, locale_selector=lambda: "es", default_translation_directories=str(i18n.LOCALES))
    pra = SimpleNamespace(omb_control_number="1090-0011")
    context = dict(language="es", questions=[], errors=[], title="T", intro="I", service_name="S", pra=pra)
    with app.test_request_context("/s/token"):
        html = render_template("survey/form.html", **context)
    assert "Enviar sus respuestas" in html
    assert "Saltar al contenido principal" in html
    assert "Número de control de la OMB: 1090-0011." in html
    assert "Submit your answers" not in html
