"""Times and sizes for people, in the page's language and time zone (Flask-Babel's): '3 h 12 min', 'in 2 days',
'5 min ago', 'Dec 8, 2026, 3:58 PM UTC', '1.5 MiB'. Outside a request (a command, the purge) they come out in English
and UTC."""

from datetime import datetime, timedelta

import pytz
from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from flask_babel import get_locale, get_timezone, gettext, ngettext

from i18n import N_

ENGLISH = Locale("en")
# Binary units, as files are measured here (FILE_MAX_BYTES is 25 MiB); each language writes its own symbol (Mio).
SIZE_UNITS = (N_("%(size)s KiB"), N_("%(size)s MiB"), N_("%(size)s GiB"), N_("%(size)s TiB"))


def duration_text(delta: timedelta) -> str:
    """Return a short duration in the page's language: '3 h 12 min', '2 days', '45 min'."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        day_words = ngettext("%(num)d day", "%(num)d days", days)
        return gettext("%(days)s %(hours)d h", days=day_words, hours=hours) if hours else day_words
    if hours and minutes:
        return gettext("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
    if hours:
        return gettext("%(num)d h", num=hours)
    return gettext("%(num)d min", num=minutes)


def relative_time(moment: datetime, now: datetime) -> str:
    """Return `moment` relative to `now`: 'in 3 h 12 min' or '5 min ago'."""
    delta = moment - now
    if abs(delta.total_seconds()) < 60:
        return gettext("in less than a minute") if delta.total_seconds() > 0 else gettext("just now")
    if delta.total_seconds() > 0:
        return gettext("in %(duration)s", duration=duration_text(delta))
    return gettext("%(duration)s ago", duration=duration_text(-delta))


def exact_time(moment: datetime) -> str:
    """Return `moment` as a date and time in the page's language and time zone, the zone named:
    'Dec 8, 2026, 3:58 PM UTC', '08.12.2026, 16:58 Europe/Berlin'."""
    zone, locale = get_timezone() or pytz.utc, get_locale() or ENGLISH
    local = moment.astimezone(zone)
    date = format_date(local, "medium", locale=locale)
    time = format_time(local, "short", tzinfo=zone, locale=locale)
    return f"{locale.datetime_formats['medium'].format(time, date)} {zone.zone}"


def size_text(num_bytes: int) -> str:
    """Return a size in the page's language, in binary units with one decimal: '3.0 KiB', '1,5 MiB', '25,0 Mio'."""
    if num_bytes < 1024:
        return ngettext("%(num)d byte", "%(num)d bytes", num_bytes)
    power = 1
    while power < len(SIZE_UNITS) and num_bytes >= 1024 ** (power + 1):
        power += 1
    number = format_decimal(num_bytes / 1024**power, "#,##0.0", locale=get_locale() or ENGLISH)
    return gettext(SIZE_UNITS[power - 1], size=number)
