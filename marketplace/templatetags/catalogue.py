"""Small display helpers for catalogue pages."""

from __future__ import annotations

from django import template

from marketplace.taxonomy import Authenticity, Emotion

register = template.Library()


@register.filter
def seconds(value) -> str:
    """A duration in seconds for people: "4.5 s", "1:05", "1:02:03"."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if value < 60:
        return f"{round(value, 1):g} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes}:{rest:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"


@register.filter
def emotion_label(code) -> str:
    return Emotion(code).label if code in Emotion.values else str(code or "")


@register.filter
def authenticity_label(code) -> str:
    return Authenticity(code).label if code in Authenticity.values else str(code or "")


@register.filter
def signed(value) -> str:
    """Valence with its sign and a real minus: "+0.6", "−0.7"."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    if value == 0:
        return "0"
    return f"{'+' if value > 0 else '−'}{abs(value):.2g}"


@register.inclusion_tag("marketplace/catalogue/_intensity.html")
def intensity_dots(intensity) -> dict:
    try:
        value = max(0, min(5, int(intensity)))
    except (TypeError, ValueError):
        value = 0
    return {"value": value, "dots": [i < value for i in range(5)]}
