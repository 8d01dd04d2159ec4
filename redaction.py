"""Cut share ids and other link tokens out of log lines: one rule for gunicorn's logs and the app's. Standard library only.

A share id in a path is a working link, and so is the token of a link sent by email (`/password/reset/<token>`,
`/email/verify/<token>`). Whatever the spelling (`/view//<id>`, `/view/./<id>`, `/view%3Bx/<id>`, `/%76iew/<id>`,
`/VIEW/<id>`), every path segment after a word that leads to one is replaced by `[id]`, but the routes' own words;
gunicorn.conf.py imports this module, so it must not import the app (nor Flask).
"""

import re
from urllib.parse import quote, unquote

# Segments after these words are tokens (share ids, the tokens of reset, verification, invitation and manage links) unless
# they are a route word.
SECRET_PATH_WORDS = ("view", "secrets", "reset", "verify", "invite", "manage")
ROUTE_WORDS = {"", ".", "..", "edit", "delete", "card", "qr.png", "qr.svg", "events", "unlock"}
# A path in a log line: from a slash to the next space or quote; the query string goes with it.
PATH_RE = re.compile(r"/[^\s\"']*")
SEPARATOR_RE = re.compile(r"/|%2f", re.IGNORECASE)
MAX_DECODES = 4  # %25-encoded again and again: decode until it stops changing, a few times at most


def redact(text: str) -> str:
    """Return `text` with every path that leads to a secret (or names one in its query) redacted; the rest as it was."""
    return PATH_RE.sub(lambda match: redact_path(match.group()) if _holds_a_secret(match.group()) else match.group(), text)


def redact_path(path: str) -> str:
    """Return `path` decoded, its token segments replaced by [id], and percent-encoded again (no control characters).

    The query string, when there is one, becomes `?[query]`: it may hold a link too (`/login?next=/secrets/<id>`).
    """
    bare, has_query, _query = path.partition("?")
    segments = SEPARATOR_RE.split(_fully_decoded(bare))
    first = next((i for i, segment in enumerate(segments) if _leads_to_a_secret(segment)), len(segments))
    kept = [
        *segments[:first],
        *(_word_only(segment) for segment in segments[first : first + 1]),
        *(part if part.lower() in ROUTE_WORDS else "[id]" for part in segments[first + 1 :]),
    ]
    return quote("/".join(kept), safe="/[]-._~") + ("?[query]" if has_query else "")


def _fully_decoded(text: str) -> str:
    for _ in range(MAX_DECODES):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _leads_to_a_secret(segment: str) -> bool:
    """Tell whether a segment is one of the secret words, however it is dressed (`view;x`, `View.`, `secrets%00`)."""
    return segment.lower().startswith(SECRET_PATH_WORDS)


def _word_only(segment: str) -> str:
    """Keep the secret word of a leading segment; anything stuck to it (`view;<id>`, `view?<id>`) may be a token."""
    word = next(word for word in SECRET_PATH_WORDS if segment.lower().startswith(word))
    return segment if len(segment) == len(word) else segment[: len(word)] + "[id]"


def _holds_a_secret(token: str) -> bool:
    return any(_leads_to_a_secret(segment) for segment in SEPARATOR_RE.split(_fully_decoded(token)))
