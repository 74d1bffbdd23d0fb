"""The message catalogues stay whole: every guest sentence in the code has a translation in every
language, with the same `{placeholders}` as its English.

The sentences are found the way `make messages` finds them: Babel's extraction with babel.cfg
(`_()`, `gettext()`, `ngettext()` and `N_()` in Python and in the templates).
"""

from __future__ import annotations

from gettext import NullTranslations
from pathlib import Path
from string import Formatter

from babel import Locale
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from portico.kit import i18n

ROOT = Path(__file__).parent.parent
HOW_TO_FIX = (
    "Run `make messages` (it adds new sentences to every src/portico/locales/<lang>/LC_MESSAGES/messages.po), "
    "then write each empty msgstr, check the entries marked `#, fuzzy` and remove that mark."
)


def sentences() -> dict[str, tuple[tuple[str, ...], str]]:
    """Every sentence to translate: its English forms (two for a plural) and where it is."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    found: dict[str, tuple[tuple[str, ...], str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        forms = tuple(message) if isinstance(message, tuple | list) else (message,)
        if forms[0]:
            found.setdefault(forms[0], (tuple(form for form in forms if form), f"{filename}:{lineno}"))
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


def catalogues() -> dict[str, Path]:
    return {
        po.parent.parent.name: po for po in sorted((ROOT / "src/portico/locales").glob("*/LC_MESSAGES/messages.po"))
    }


def test_the_guest_languages_are_english_german_french_and_spanish():
    assert {"en", "de", "fr", "es"} <= set(i18n.LANGUAGES)
    assert set(catalogues()) == set(i18n.LANGUAGES) - {i18n.SOURCE}


def test_the_extraction_finds_the_guest_sentences_of_python_and_templates():
    found = sentences()
    # One of each kind: a template's `_()`, a constant's `N_()`, a plural, a loader's word.
    for english in ("Send message", "This assistant is offline right now. Please try again later.", "Close chat"):
        assert english in found, english
    assert found["Your link has {count} session left."][0] == (
        "Your link has {count} session left.",
        "Your link has {count} sessions left.",
    )


def test_every_guest_sentence_is_translated_in_every_language_with_the_same_placeholders():
    found = sentences()
    problems: list[str] = []
    for language, path in catalogues().items():
        with path.open("rb") as source:
            catalog = read_po(source, locale=language)
        for english, (forms, where) in found.items():
            message = catalog.get(english)
            if message is None:
                problems.append(f"{language}: missing {english!r} ({where})")
                continue
            translations = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy or not all(t.strip() for t in translations):
                problems.append(
                    f"{language}: not translated{' (fuzzy)' if message.fuzzy else ''} {english!r} ({where})"
                )
                continue
            expected = set().union(*(placeholders(form) for form in forms))
            for translation in translations:
                if placeholders(translation) != expected:
                    problems.append(
                        f"{language}: {translation!r} has placeholders {sorted(placeholders(translation))}, "
                        f"its English {english!r} has {sorted(expected)}"
                    )
    assert not problems, f"{len(problems)} sentences to translate or fix:\n" + "\n".join(problems) + "\n" + HOW_TO_FIX


def test_each_catalogue_is_read_as_written():
    # What the server loads at start is what the .po says (plural forms included).
    german = i18n.LANGUAGES["de"].translations
    assert german.gettext("Send") == "Senden"
    assert german.ngettext("{count} second", "{count} seconds", 1) == "{count} Sekunde"
    assert german.ngettext("{count} second", "{count} seconds", 2) == "{count} Sekunden"
    french = i18n.LANGUAGES["fr"].translations
    assert french.ngettext("{count} second", "{count} seconds", 0) == "{count} seconde"  # French: 0 is singular
    assert i18n.LANGUAGES["de"].dir == "ltr"


def test_a_right_to_left_language_gets_dir_rtl_without_code_of_its_own():
    # None ships yet; a catalogue for Arabic or Hebrew would need only its .po.
    assert i18n.Language("ar", Locale.parse("ar"), NullTranslations()).dir == "rtl"
    assert i18n.Language("he", Locale.parse("he"), NullTranslations()).dir == "rtl"
    assert all(language.dir == "ltr" for language in i18n.LANGUAGES.values())
