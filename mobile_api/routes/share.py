"""The visitor's share page: the pass QR, its doors and times, no sign-in and nothing personal.

The link carries the pass id signed with the server's session secret, so ids cannot be walked. The page
names no one: not the visitor, not the host, not their unit or phone, and never the numeric code.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import segno
from flask import Blueprint, Response, render_template, url_for
from itsdangerous import BadData
from markupsafe import Markup

from mobile_api.state import mobile
from server.extensions import db
from server.models import PassStatus, VisitorPass
from server.services.visitors import passes

bp = Blueprint(
    "share", __name__, template_folder="../templates", static_folder="../static", static_url_path="/v/static"
)

QR_LABEL = "QR code for the visitor pass"
# Only our own stylesheet and the inline SVG; nothing else may load, and no one may frame the page.
SHARE_CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
_HEADERS = {
    "Content-Security-Policy": SHARE_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def share_link(pass_id: int) -> str:
    """The absolute address of a pass's share page (at public_base_url when configured)."""
    token = mobile().share.dumps(pass_id)
    base = mobile().config.public_base_url
    if base is None:
        return url_for("share.show_pass", token=token, _external=True)
    return str(base).rstrip("/") + "/v/" + token


def _pass_id(token: str) -> int | None:
    try:
        value = mobile().share.loads(token)
    except BadData:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def qr_svg(token: str) -> Markup:
    """The QR of a pass token as inline SVG, sized by the stylesheet (segno output holds only the token)."""
    svg = segno.make(token, error="m").svg_inline(scale=1, border=4, omitsize=True, title=QR_LABEL, light="#fff")
    return Markup(svg)  # noqa: S704 - segno builds it from our own token and escapes the label  # nosec B704


def _page(state: str, status: int, **context: object) -> Response:
    response = Response(render_template("share.html", state=state, qr_label=QR_LABEL, **context), status=status)
    response.headers.update(_HEADERS)
    return response


@bp.get("/v/<token>")
def show_pass(token: str) -> Response:
    """The page a visitor opens: 200 with the QR while the pass works, 410 once it ended, 404 for a bad link."""
    pass_id = _pass_id(token)
    visitor_pass = db.session.get(VisitorPass, pass_id) if pass_id is not None else None
    if visitor_pass is None:
        return _page("unknown", 404)
    site = visitor_pass.host.site
    uses_left = visitor_pass.uses_allowed - visitor_pass.uses_count
    if passes.status_at(visitor_pass) is not PassStatus.ACTIVE or uses_left <= 0:
        return _page("ended", 410, site_name=site.name)
    tz = ZoneInfo(site.timezone)
    return _page(
        "valid",
        200,
        site_name=site.name,
        timezone=site.timezone,
        doors=sorted(d.name for d in visitor_pass.doors),
        valid_from=visitor_pass.valid_from.astimezone(tz),
        valid_until=visitor_pass.valid_until.astimezone(tz),
        uses_left=uses_left,
        qr=qr_svg(passes.token_for(mobile().keys, visitor_pass)),
    )
