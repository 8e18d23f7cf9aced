"""Reading features of a collection for the OGC API: scope, masking, filters and keyset paging.

Framework-free (no FastAPI): the router parses HTTP into an :class:`ItemsQuery` and renders
the :class:`ItemsPage`. Every page is one keyset step (``key > last key ORDER BY key LIMIT n``)
on the collection's unique key, so page 1,000 costs what page 1 does; ``numberMatched`` is
counted up to a cap (``GRIDSVC_OGC_COUNT_CAP``) and left out above it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from gridsvc.auth.masking import sees_personal_data
from gridsvc.auth.policy import may, require
from gridsvc.auth.principal import Principal
from gridsvc.errors import BadQueryParameter, NotFound
from gridsvc.ogc.collections import Collection
from gridsvc.ogc.crs import CRS84, OgcCrs
from gridsvc.services.clock import local_zone
from gridsvc.settings import get_settings

#: A time range: (start, end), either open (None); an instant has start == end.
TimeRange = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class ItemsQuery:
    """What a client asked of /items, parsed."""

    limit: int
    after: str | None = None
    before: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    when: TimeRange | None = None
    filters: dict[str, str] = field(default_factory=dict)
    crs: OgcCrs = CRS84


@dataclass(frozen=True)
class ItemsPage:
    """One page of features (GeoJSON Feature texts) and where the neighbouring pages start."""

    features: list[str]
    properties: list[dict[str, Any]]
    number_matched: int | None
    next_after: str | None
    prev_before: str | None


def _instant(text: str, *, end_of_day: bool) -> datetime:
    """An RFC 3339 date-time, or a date (its local start, or its end for an as-of view)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), local_zone())
            return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise BadQueryParameter(
            f"datetime 的时间 {text!r} 无法识别；请用 RFC 3339，如 2026-03-01T08:00:00Z 或 2026-03-01"
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=local_zone())


def parse_datetime(value: str, *, instant_only: bool) -> TimeRange:
    """A ``datetime`` parameter: an instant, a date, or an interval ``a/b`` (``..`` open)."""
    if "/" not in value:
        if len(value) == 10 and not instant_only:  # a whole day
            return _instant(value, end_of_day=False), _instant(value, end_of_day=True)
        moment = _instant(value, end_of_day=True)
        return moment, moment
    if instant_only:
        raise BadQueryParameter(
            "此集合的 datetime 只接受一个时刻（查看当时的边界）；时间段请查询 cell_versions 集合"
        )
    start_text, _, end_text = value.partition("/")
    start = None if start_text in ("", "..") else _instant(start_text, end_of_day=False)
    end = None if end_text in ("", "..") else _instant(end_text, end_of_day=True)
    if start is None and end is None:
        raise BadQueryParameter("datetime 的时间段至少要有一端")
    if start and end and start > end:
        raise BadQueryParameter("datetime 的开始时间晚于结束时间")
    return start, end


def _time_condition(collection: Collection, when: TimeRange) -> Any:
    start_col, end_col = collection.temporal  # type: ignore[misc]
    start, end = when
    conditions = []
    if end_col is None:  # an instant per row (reported_at)
        if start is not None:
            conditions.append(start_col >= start)
        if end is not None:
            conditions.append(start_col <= end)
    else:  # a validity range per row [valid_from, valid_to)
        if end is not None:
            conditions.append(start_col <= end)
        if start is not None:
            conditions.append(or_(end_col.is_(None), end_col > start))
    return and_(*conditions)


def _typed(collection: Collection, name: str, raw: str) -> Any:
    column = collection.properties[name].column
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return raw
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise BadQueryParameter(f"{name} 只能是 true 或 false")
        return raw.lower() == "true"
    if kind is int:
        try:
            return int(raw)
        except ValueError as exc:
            raise BadQueryParameter(f"{name} 须为整数") from exc
    return raw


def _key(collection: Collection, raw: str, parameter: str) -> Any:
    if not collection.key_is_int:
        return raw
    try:
        return int(raw)
    except ValueError as exc:
        raise BadQueryParameter(f"{parameter}={raw!r} 不是本集合的要素编号") from exc


def may_read(principal: Principal, collection: Collection) -> bool:
    """True when the permission matrix lets the principal's role read the collection."""
    return may(principal, collection.action)


def require_read(principal: Principal, collection: Collection) -> None:
    """Forbidden unless the principal's role may read the collection."""
    require(principal, collection.action)


def filterable(collection: Collection, principal: Principal) -> list[str]:
    """The property names the principal may filter this collection by."""
    personal = sees_personal_data(principal)
    return [
        name
        for name, prop in collection.properties.items()
        if prop.filterable and (personal or not prop.personal)
    ]


def conditions(collection: Collection, principal: Principal, query: ItemsQuery) -> list[Any]:
    """Everything that limits the rows: scope, current/as-of, bbox, time, property filters."""
    require_read(principal, collection)
    out = [collection.scope(principal), *collection.extra_conditions]
    if query.when is not None:
        if collection.temporal is None:
            raise BadQueryParameter(f"集合 {collection.id} 没有时间属性，不支持 datetime")
        out.append(_time_condition(collection, query.when))
    elif collection.default is not None:
        out.append(collection.default())
    if query.bbox is not None:
        envelope = func.ST_MakeEnvelope(*query.bbox, 4326)
        out.append(collection.bbox_column.op("&&")(envelope))
        out.append(func.ST_Intersects(collection.geometry, envelope))
    allowed = filterable(collection, principal)
    for name, raw in query.filters.items():
        if name not in allowed:
            raise BadQueryParameter(
                f"不能按 {name} 筛选集合 {collection.id}；可用：{'、'.join(allowed) or '无'}"
            )
        out.append(collection.properties[name].column == _typed(collection, name, raw))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _features(
    collection: Collection, principal: Principal, rows: list[Any]
) -> tuple[list[str], list[dict[str, Any]]]:
    features, properties = [], []
    for row in rows:
        props = dict(row._mapping)
        key, geometry = props.pop("_key"), props.pop("_geometry")
        if collection.mask is not None:
            props = collection.mask(principal, props)
        properties.append({"id": key, **props})
        features.append(
            '{"type": "Feature", "id": '
            + json.dumps(key, ensure_ascii=False)
            + ', "geometry": '
            + (geometry or "null")
            + ', "properties": '
            + json.dumps(props, ensure_ascii=False, default=_json_default)
            + "}"
        )
    return features, properties


def _columns(collection: Collection, crs: OgcCrs) -> list[Any]:
    return [
        collection.key.label("_key"),
        crs.geometry_json(collection.geometry).label("_geometry"),
        *collection.property_columns(),
    ]


def items(
    session: Session, principal: Principal, collection: Collection, query: ItemsQuery
) -> ItemsPage:
    """One page of the collection's features in the principal's scope, masked for them."""
    where = conditions(collection, principal, query)
    key = collection.key
    backwards = query.before is not None
    steps = list(where)
    if query.after is not None:
        steps.append(key > _key(collection, query.after, "after"))
    if backwards:
        steps.append(key < _key(collection, query.before, "before"))  # type: ignore[arg-type]
    order = key.desc() if backwards else key
    stmt = collection.select(*_columns(collection, query.crs))
    if principal.is_admin and query.bbox is None:
        # Nothing narrower than the whole city: walk the key's index, reading one page.
        stmt = stmt.where(*steps).order_by(order).limit(query.limit + 1)
    else:
        # A scope (or a box) bounds the rows: find them by its index first (OFFSET 0 keeps
        # PostgreSQL from walking the key's index through the city instead), take a page of
        # their keys, then read those rows by key.
        scoped = collection.select(key.label("k")).where(*steps).offset(0).subquery()
        ordered = scoped.c.k.desc() if backwards else scoped.c.k
        keys = list(session.scalars(select(scoped.c.k).order_by(ordered).limit(query.limit + 1)))
        stmt = stmt.where(key.in_(keys)).order_by(order) if keys else None
    rows = list(session.execute(stmt)) if stmt is not None else []
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    features, properties = _features(collection, principal, rows)
    first = str(rows[0]._mapping["_key"]) if rows else None
    last = str(rows[-1]._mapping["_key"]) if rows else None
    if backwards:
        next_after, prev_before = last, first if more else None
    else:
        next_after = last if more else None
        prev_before = first if query.after is not None else None
    return ItemsPage(
        features, properties, _count(session, collection, where), next_after, prev_before
    )


def _count(session: Session, collection: Collection, where: list[Any]) -> int | None:
    """How many rows match, counted up to the cap (None above it: not worth a city scan)."""
    cap = get_settings().app.ogc_count_cap
    bounded = collection.select(collection.key).where(*where).limit(cap + 1).subquery()
    total = session.scalar(select(func.count()).select_from(bounded)) or 0
    return None if total > cap else int(total)


def item(
    session: Session, principal: Principal, collection: Collection, fid: str, crs: OgcCrs
) -> tuple[str, dict[str, Any]]:
    """One feature (GeoJSON text and its properties) by id, if the principal may read it."""
    where = conditions(collection, principal, ItemsQuery(limit=1, crs=crs))
    try:
        key = _key(collection, fid, "featureId")
    except BadQueryParameter as exc:
        raise NotFound(f"集合 {collection.id} 中没有要素 {fid!r}") from exc
    stmt = collection.select(*_columns(collection, crs)).where(*where, collection.key == key)
    row = session.execute(stmt.limit(1)).one_or_none()
    if row is None:
        raise NotFound(f"集合 {collection.id} 中没有你可查看的要素 {fid!r}")
    features, properties = _features(collection, principal, [row])
    return features[0], properties[0]


def scope_extent(session: Session, principal: Principal) -> list[float] | None:
    """The lon/lat box of the communities in the principal's scope (a 格长: their cell's
    community): every collection's advertised extent, read from the small community table."""
    from gridsvc.auth.policy import scope_filter
    from gridsvc.models import Community

    scope = scope_filter(
        principal, cell_id=None, community_id=Community.id, street_id=Community.street_id
    )
    box = select(func.ST_Extent(Community.geom).label("box")).where(scope).subquery()
    row = session.execute(
        select(
            func.ST_XMin(box.c.box),
            func.ST_YMin(box.c.box),
            func.ST_XMax(box.c.box),
            func.ST_YMax(box.c.box),
        )
    ).one()
    return None if row[0] is None else [round(float(v), 6) for v in row]
