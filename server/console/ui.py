"""The console's design-system helpers for templates: inline Lucide icons and status badges.

Templates call `icon("door-open")` and `badge("ok", text)`; the macros in templates/_ui.html (page header,
empty state, card) build on them. Icons are inline SVG, so they need no request and nothing from the
Content-Security-Policy; a badge always carries its text and an icon, never colour alone."""

from __future__ import annotations

from markupsafe import Markup, escape

from server.console.icon_shapes import SHAPES

# A badge's kind decides its colour and its icon; both say the same as its text.
BADGE_ICONS = {
    "ok": "check-circle-2",
    "bad": "x-circle",
    "warn": "alert-triangle",
    "info": "info",
    "muted": "minus-circle",
    "pending": "clock",
}


def icon(name: str, label: str | None = None, size: int = 18) -> Markup:
    """One icon as inline SVG: decorative (hidden from screen readers) unless it carries a label."""
    shape = SHAPES[name]  # an unknown name is a template bug: fail loudly in tests, not silently in the page
    a11y = f'role="img" aria-label="{escape(label)}"' if label else 'aria-hidden="true" focusable="false"'
    return Markup(  # noqa: S704  # nosec B704  (the shape is our own constant; the label is escaped)
        f'<svg class="icon" width="{size}" height="{size}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" {a11y}>{shape}</svg>'
    )


def badge(kind: str, text: str, icon_name: str | None = None) -> Markup:
    """A status badge: an icon and the words, coloured by kind (ok, bad, warn, info, muted, pending)."""
    glyph = icon(icon_name or BADGE_ICONS[kind], size=14)
    return Markup(  # noqa: S704  # nosec B704  (the kind and text are escaped)
        f'<span class="badge badge-{escape(kind)}" data-badge="{escape(kind)}">'
        f"{glyph}<span>{escape(text)}</span></span>"
    )
