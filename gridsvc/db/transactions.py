"""Transaction helpers shared by imports and redraws."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.orm import Session


@contextlib.contextmanager
def savepoint(session: Session, *, keep: bool) -> Iterator[None]:
    """Run a block inside a SAVEPOINT: kept and committed when `keep`, else rolled back (a dry
    run that undoes only the block's own writes). Any error rolls the block back."""
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        raise
    if keep:
        nested.commit()
        session.commit()
    else:
        nested.rollback()
