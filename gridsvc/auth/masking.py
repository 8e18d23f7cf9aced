"""What of personal data a role sees: names, phones, 身份证号, rooms and household flags are
masked for every role outside the ``personal.read`` row of :mod:`gridsvc.auth.policy`, in the API,
maps and exports alike."""

from __future__ import annotations

from typing import Any

from gridsvc.auth.policy import ROLES
from gridsvc.auth.principal import Principal
from gridsvc.domain import HOUSEHOLD_FLAGS

#: Roles that see personal fields (names, phones, 身份证号, rooms, flags) unmasked: the
#: ``personal.read`` row of the permission matrix.
PERSONAL_DATA_ROLES = ROLES["personal.read"] | {"admin"}


def sees_personal_data(principal: Principal) -> bool:
    """True when the principal's role may read personal fields unmasked."""
    return principal.role in PERSONAL_DATA_ROLES


def mask_phone(phone: str | None) -> str | None:
    """138****1234 (the middle digits hidden)."""
    return None if not phone else (phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****")


def mask_name(name: str | None) -> str | None:
    """张** (only the family name kept)."""
    return None if not name else name[0] + "*" * (len(name) - 1)


def mask_id_number(value: str | None) -> str | None:
    """3201**********1234 (region prefix and last four kept)."""
    return None if not value else value[:4] + "*" * max(len(value) - 8, 0) + value[-4:]


#: Household flags (低保, 残疾 …): withheld (null) for roles that may not see personal data.
_FLAG_KEYS = tuple(HOUSEHOLD_FLAGS)
#: Exact-address fields of a household: withheld (null) for those roles.
_ADDRESS_KEYS = ("unit", "room")


def mask_personal(principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
    """A household (or resident) row with its personal fields masked unless the principal may
    see them: head_name/name → 张**, phone → 138****1234, id_number → 3201**…1234, unit/room
    and the flags (低保, 残疾 …) → null."""
    if sees_personal_data(principal):
        return row
    masked = dict(row)
    for key in ("head_name", "name"):
        if key in masked:
            masked[key] = mask_name(masked[key])
    if "phone" in masked:
        masked["phone"] = mask_phone(masked["phone"])
    if "id_number" in masked:
        masked["id_number"] = mask_id_number(masked["id_number"])
    for key in (*_ADDRESS_KEYS, *_FLAG_KEYS):
        if key in masked:
            masked[key] = None
    return masked


def mask_person(principal: Principal, person: dict[str, Any]) -> dict[str, Any]:
    """A registered person masked for roles that may not see personal data: name 张**, phone
    138****1234, 身份证号 masked and the household (their exact address) withheld."""
    if sees_personal_data(principal):
        return person
    masked = mask_personal(principal, person)
    if "household_id" in masked:
        masked["household_id"] = None
    if "roles" in masked:  # a role held for a household names that household too
        masked["roles"] = [{**role, "household_id": None} for role in masked["roles"]]
    return masked


def mask_assignment(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A role assignment for those roles: the holder's name masked and the household withheld
    when the role is held for a household (a resident, e.g. a 信息员); staff names stay."""
    if sees_personal_data(principal) or item.get("household_id") is None:
        return item
    return {**item, "person": mask_name(item.get("person")), "household_id": None}


def mask_contact(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A 辖区单位 with its contact person's name and phone masked for those roles."""
    if sees_personal_data(principal):
        return item
    masked = dict(item)
    if "contact_name" in masked:
        masked["contact_name"] = mask_name(masked["contact_name"])
    if "contact_phone" in masked:
        masked["contact_phone"] = mask_phone(masked["contact_phone"])
    return masked


def mask_visit(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """A 走访 record with its free text (the note and the follow-up, often about the
    household) withheld for those roles."""
    if sees_personal_data(principal):
        return item
    return {**item, "note": None, "follow_up": None}


def mask_phones(principal: Principal, item: dict[str, Any]) -> dict[str, Any]:
    """The item (and its nested "people" and "children") with phones masked unless the
    principal may see personal data; names of staff and volunteers stay readable."""
    if sees_personal_data(principal):
        return item
    masked = {**item}
    if "phone" in masked:
        masked["phone"] = mask_phone(masked["phone"])
    for key in ("people", "children"):
        if key in masked:
            masked[key] = [mask_phones(principal, child) for child in masked[key]]
    return masked
