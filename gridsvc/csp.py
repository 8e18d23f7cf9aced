"""The Content-Security-Policy of every page, stated once.

Scripts run only from our own origin or when they carry the request's nonce (pages the server
renders) or match a sha256 hash (the self-contained HTML export, which has no server behind it
and carries the policy in a ``<meta>`` element). No ``'unsafe-inline'`` or ``'unsafe-eval'``
for scripts, so markup injected through stored data cannot run even if an escape were missed.
Leaflet positions everything with inline ``style`` attributes, hence ``'unsafe-inline'`` for
styles only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

#: Where browsers send violation reports (counted and logged by gridsvc.api.csp).
REPORT_PATH = "/api/v1/csp-reports"

_SCRIPT_OPEN = re.compile(r"<script(?=[\s>])", re.I)
_INLINE_SCRIPT = re.compile(r"<script(\s[^>]*)?>(.*?)</script\s*>", re.I | re.S)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.I)


def policy(
    *,
    nonce: str | None = None,
    hashes: Iterable[str] = (),
    img_sources: Iterable[str] = (),
    meta: bool = False,
) -> str:
    """The policy: ``nonce`` for a served page, script ``hashes`` (base64 sha256) for a file
    without a server; ``meta`` leaves out what a ``<meta>`` element cannot carry
    (frame-ancestors, report-uri). ``img_sources``: tile servers of a configured basemap."""
    scripts = ["'self'"]
    if nonce:
        scripts.append(f"'nonce-{nonce}'")
    scripts += [f"'sha256-{h}'" for h in hashes]
    directives = [
        ("default-src", "'self'"),
        ("script-src", " ".join(scripts)),
        ("style-src", "'self' 'unsafe-inline'"),
        ("img-src", " ".join(["'self'", "data:", "blob:", *img_sources])),
        ("font-src", "'self' data:"),
        ("connect-src", "'self'"),
        ("object-src", "'none'"),
        ("base-uri", "'none'"),
        ("form-action", "'self'"),
    ]
    if not meta:
        directives += [("frame-ancestors", "'none'"), ("report-uri", REPORT_PATH)]
    return "; ".join(f"{name} {value}" for name, value in directives)


def with_nonce(page: str, nonce: str) -> str:
    """A page we rendered from our own templates with every ``<script>`` carrying the nonce.

    Only for markup whose data is escaped (folium maps, the API docs): a script tag smuggled in
    through data would be nonced too, so this is a second line behind escaping, not a filter."""
    return _SCRIPT_OPEN.sub(f'<script nonce="{nonce}"', page)


def script_hashes(page: str) -> list[str]:
    """The base64 sha256 of every inline ``<script>`` of a page, in order, once each."""
    out = []
    for match in _INLINE_SCRIPT.finditer(page):
        if re.search(r"\bsrc\s*=", match.group(1) or "", re.I):
            continue
        out.append(base64.b64encode(hashlib.sha256(match.group(2).encode()).digest()).decode())
    return list(dict.fromkeys(out))


def with_meta_policy(page: str, img_sources: Iterable[str] = ()) -> str:
    """A self-contained page (opened from disk) carrying the policy in a ``<meta>`` element
    first in its head, allowing exactly its own inline scripts by hash."""
    hashes = script_hashes(page)
    meta = (
        '<meta http-equiv="Content-Security-Policy" content="'
        + policy(hashes=hashes, img_sources=img_sources, meta=True)
        + '">'
    )
    head = _HEAD.search(page)
    if head is None:
        raise ValueError("the page has no <head> to carry its policy")
    return page[: head.end()] + meta + page[head.end() :]
