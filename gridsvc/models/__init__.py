"""ORM models; importing this package registers every table on ``Base.metadata``."""

from gridsvc.models.areas import Community, District, Estate, Road, Street, Water
from gridsvc.models.audit import AuditEvent
from gridsvc.models.cells import Cell, CellChange, CellLineage, CellVersion
from gridsvc.models.housing import Building, Household, Person, VolunteerTeam
from gridsvc.models.idempotency import IdempotencyKey
from gridsvc.models.incidents import (
    Incident,
    IncidentCategory,
    IncidentEvent,
    IncidentPhoto,
    Open311Key,
)
from gridsvc.models.people import (
    CellSector,
    LevelDuty,
    LinkedHousehold,
    Organisation,
    PostActivity,
    RoleAssignment,
    Sector,
    ServicePost,
    Visit,
)
from gridsvc.models.users import SignInBackoff, SignInRate, User

__all__ = [
    "AuditEvent",
    "Building",
    "Cell",
    "CellChange",
    "CellLineage",
    "CellSector",
    "CellVersion",
    "Community",
    "District",
    "Estate",
    "Household",
    "IdempotencyKey",
    "Incident",
    "IncidentCategory",
    "IncidentEvent",
    "IncidentPhoto",
    "LevelDuty",
    "LinkedHousehold",
    "Open311Key",
    "Organisation",
    "Person",
    "PostActivity",
    "Road",
    "RoleAssignment",
    "Sector",
    "ServicePost",
    "SignInBackoff",
    "SignInRate",
    "Street",
    "User",
    "Visit",
    "VolunteerTeam",
    "Water",
]
