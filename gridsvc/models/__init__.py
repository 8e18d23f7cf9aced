"""ORM models; importing this package registers every table on ``Base.metadata``."""

from gridsvc.models.areas import Community, District, Estate, Street
from gridsvc.models.cells import Cell, CellVersion
from gridsvc.models.housing import Building, Household, Person, VolunteerTeam
from gridsvc.models.incidents import Incident
from gridsvc.models.people import RoleAssignment
from gridsvc.models.users import User

__all__ = [
    "Building",
    "Cell",
    "CellVersion",
    "Community",
    "District",
    "Estate",
    "Household",
    "Incident",
    "Person",
    "RoleAssignment",
    "Street",
    "User",
    "VolunteerTeam",
]
