"""Times in words for people: '3 h 12 min', 'in 2 days', '5 min ago'."""

from datetime import datetime, timedelta


def duration_text(delta: timedelta) -> str:
    """Return a short human duration: '3 h 12 min', '2 days', '45 min'."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def relative_time(moment: datetime, now: datetime) -> str:
    """Return `moment` relative to `now`: 'in 3 h 12 min' or '5 min ago'."""
    delta = moment - now
    if abs(delta.total_seconds()) < 60:
        return "in less than a minute" if delta.total_seconds() > 0 else "just now"
    if delta.total_seconds() > 0:
        return f"in {duration_text(delta)}"
    return f"{duration_text(-delta)} ago"
