"""The catalogues, checked as CI checks them: every string the code and templates use is in every catalogue,
translated (no empty, fuzzy or obsolete entry), with the same placeholders and markup, and every catalogue compiles."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import i18n

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = ROOT / "translations"
PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]")
TAG_RE = re.compile(r"</?[a-z]+[^>]*>")
TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT_LANGUAGE]


def _read(path: Path, locale: str | None = None):
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def _ids(catalogue) -> set:
    return {message.id for message in catalogue if message.id}


def _forms(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set:
    """What `make extract` finds in the code and templates now."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    bin_dir = Path(sys.executable).parent
    subprocess.run(["make", "-s", "extract", f"POT={pot}", f"BIN={bin_dir}"], cwd=ROOT, check=True)
    return _ids(_read(pot))


@pytest.fixture(scope="module", params=TRANSLATED)
def catalogue(request):
    return _read(CATALOGUES / request.param / "LC_MESSAGES" / "messages.po", request.param)


def test_the_languages_are_english_and_every_catalogue():
    # A language added with `make lang-add` joins by its folder alone; these six ship.
    assert {"en", "de", "fr", "es", "pt_BR", "ar"} <= set(i18n.LANGUAGES)
    assert "ar" in i18n.RIGHT_TO_LEFT and "de" not in i18n.RIGHT_TO_LEFT


def test_messages_pot_holds_what_the_code_says(extracted):
    assert _ids(_read(CATALOGUES / "messages.pot")) == extracted, "run `make translations`"


def test_the_catalogues_are_as_make_translations_writes_them(tmp_path):
    """So that adding a string changes only its own lines (no rewrapping), and merges of two catalogues stay clean."""
    copy = tmp_path / "translations"
    shutil.copytree(CATALOGUES, copy, ignore=shutil.ignore_patterns("*.mo"))
    bin_dir = Path(sys.executable).parent
    make = ["make", "-s", "translations", f"POT={copy / 'messages.pot'}", f"CATALOGUES={copy}", f"BIN={bin_dir}"]
    subprocess.run(make, cwd=ROOT, check=True)
    for written in sorted(copy.rglob("*.po*")):
        committed = CATALOGUES / written.relative_to(copy)
        assert _without_dates(written) == _without_dates(committed), f"{committed}: run `make translations`"


def _without_dates(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith('"POT-Creation-Date:')]


def test_every_catalogue_has_every_string_and_no_other(catalogue, extracted):
    ids = _ids(catalogue)
    assert extracted - ids == set(), "missing: run `make translations`, then translate"
    assert ids - extracted == set(), "obsolete: run `make translations`"
    assert not catalogue.obsolete


def test_every_entry_is_translated_and_none_is_fuzzy(catalogue):
    for message in catalogue:
        if message.id:
            assert not message.fuzzy, message.id
            assert all(form.strip() for form in _forms(message)), message.id
            assert len(_forms(message)) == (catalogue.num_plurals if message.pluralizable else 1), message.id


def test_babels_checkers_find_nothing(catalogue):
    assert [(message.id, [str(error) for error in errors]) for message, errors in catalogue.check()] == []


def test_placeholders_and_markup_match_the_source(catalogue):
    """A translation keeps every placeholder (a plural form may spell out its number) and exactly the source's tags:
    translations are rendered as markup, so a stray tag would be ours to answer for."""
    for message in catalogue:
        if not message.id:
            continue
        source = message.id[0] if message.pluralizable else message.id
        wanted = set(PLACEHOLDER_RE.findall(source))
        for form in _forms(message):
            found = set(PLACEHOLDER_RE.findall(form))
            assert found <= wanted | {"num"}, (message.id, form)
            if not message.pluralizable:
                assert found == wanted, (message.id, form)
            assert sorted(TAG_RE.findall(form)) == sorted(TAG_RE.findall(source)), (message.id, form)


def test_the_catalogues_compile(tmp_path):
    copy = shutil.copytree(CATALOGUES, tmp_path / "translations", ignore=shutil.ignore_patterns("*.mo"))
    done = subprocess.run(
        [Path(sys.executable).parent / "pybabel", "compile", "--statistics", "-d", copy],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("100%") == len(TRANSLATED), done.stderr
    assert len(list(copy.glob("*/LC_MESSAGES/messages.mo"))) == len(TRANSLATED)
