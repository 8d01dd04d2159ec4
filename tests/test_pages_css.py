"""The stylesheet's palette: every colour has a light and a dark value, and browsers without light-dark() get the
light ones (static/css/app.css). Read as text: a drift between the two lists would only show on an old phone."""

import re
from pathlib import Path

CSS = (Path(__file__).parents[1] / "static" / "css" / "app.css").read_text()


def palette() -> dict[str, str]:
    """Each colour of :root's palette and its light value."""
    return dict(re.findall(r"^  (--[\w-]+): light-dark\((#[0-9a-f]+), #[0-9a-f]+\);$", CSS, re.MULTILINE))


def fallback() -> dict[str, str]:
    block = re.search(r"@supports not \(color: light-dark\(#000, #fff\)\) \{\s*:root \{(.*?)\}\s*\}", CSS, re.DOTALL)
    assert block, "the fallback for browsers without light-dark() is missing"
    return dict(re.findall(r"(--[\w-]+): (#[0-9a-f]+);", block.group(1)))


def test_browsers_without_light_dark_get_every_colour_in_its_light_value():
    assert len(palette()) >= 18
    assert fallback() == palette()


def test_every_colour_the_pages_use_is_in_the_palette():
    used = set(re.findall(r"var\((--[\w-]+)\)", CSS))  # one with a fallback value may be left unset
    defined = set(re.findall(r"(--[\w-]+):", CSS))
    assert used <= defined, sorted(used - defined)
