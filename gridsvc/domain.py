"""The domain vocabulary: identifiers in English, labels in Chinese (DESIGN §3)."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Longest text accepted, by kind of field. Request bodies, form, query, path and header
#: parameters and the text read from import files all use these (one rule, stated once).
MAX_CODE = 64  # codes and identifiers: cell/community/street codes, categories, roles, kinds
MAX_NAME = 200  # names of people, places, buildings, teams, organisations; units, rooms
MAX_ADDRESS = 500  # postal addresses
MAX_TEXT = 4000  # reasons, notes, descriptions, duties
MAX_PERSON_NAME = 64  # 姓名

#: Household flags (column name → label).
HOUSEHOLD_FLAGS: dict[str, str] = {
    "low_income": "低保",
    "elderly_alone": "空巢/独居老人",
    "disabled": "残疾",
    "extreme_poverty": "特困",
    "floating": "流动人口",
    "rental": "出租房屋",
}

#: Party membership kinds.
PARTY_STATUSES: dict[str, str] = {
    "in_service": "在职党员",
    "direct": "直管党员",
    "floating": "流动党员",
    "retired": "离退休党员",
}

#: Cell kinds: 综合网格, 专属网格 (a school, market, company), 微网格 (楼栋/单元 scale).
CELL_KINDS: dict[str, str] = {"general": "综合网格", "dedicated": "专属网格", "micro": "微网格"}

#: Kinds of audited redraws (labels for the history view).
CHANGE_KINDS: dict[str, str] = {
    "create": "新建网格",
    "reshape": "调整边界",
    "split": "拆分",
    "merge": "合并",
    "move_buildings": "调整楼栋归属",
    "revert": "恢复历史版本",
    "proposal": "采用自动划格方案",
}

#: The four-level scheme.
CELL_LEVELS: dict[int, str] = {
    1: "一级网格(社区)",
    2: "二级网格(片区)",
    3: "三级网格(党支部)",
    4: "四级网格",
}

#: Roles a person holds for a community, sector, cell, building or household (dated).
ASSIGNMENT_ROLES: dict[str, str] = {
    "community_head": "一级网格长(社区书记)",
    "sector_head": "二级网格长(片长)",
    "branch_head": "三级网格长(党支部书记)",
    "leader": "格长",
    "grid_worker": "网格员",
    "building_captain": "楼栋长",
    "unit_captain": "单元长",
    "informant": "信息员",
    "assistant": "协管员",
}
#: Which target each assignment role needs.
ASSIGNMENT_TARGET: dict[str, str] = {
    "community_head": "community",
    "sector_head": "sector",
    "branch_head": "sector",
    "leader": "cell",
    "grid_worker": "cell",
    "building_captain": "building",
    "unit_captain": "building",
    "informant": "household",
    "assistant": "building",
}

#: Sign-in roles, and the kind of area each is scoped to (None: everything).
USER_ROLES: dict[str, str] = {
    "admin": "系统管理员",
    "street_staff": "街道工作人员",
    "community_staff": "社区工作人员",
    "leader": "格长",
    "grid_worker": "网格员",
    "viewer": "只读用户",
}
USER_ROLE_SCOPE: dict[str, tuple[str, ...]] = {
    "admin": (),
    "street_staff": ("street",),
    "community_staff": ("community",),
    "leader": ("cell",),
    "grid_worker": ("cell",),
    "viewer": ("street", "community", "cell"),
}
SCOPE_KINDS = ("street", "community", "cell")

#: Incident workflow states (立案 → 派遣 → 处置 → 核查 → 结案, plus 退回/上报/挂账).
INCIDENT_STATUSES: dict[str, str] = {
    "filed": "立案",
    "dispatched": "派遣",
    "handled": "处置",
    "verified": "核查",
    "closed": "结案",
    "returned": "退回",
    "escalated": "上报",
    "parked": "挂账",
}
#: The final state (结案) and the set-aside state (挂账).
INCIDENT_CLOSED = "closed"
INCIDENT_PARKED = "parked"
#: Cases still being worked on: neither closed (结案) nor parked (挂账). Maps, exports and the
#: incident statistics count these as "open" (未结).
INCIDENT_OPEN_STATUSES: tuple[str, ...] = tuple(
    s for s in INCIDENT_STATUSES if s not in (INCIDENT_CLOSED, INCIDENT_PARKED)
)
#: States in which a case waits for dispatch (派遣) — filed, or escalated before any dispatch —
#: so its dispatch deadline counts as long as it has not been dispatched.
INCIDENT_AWAITING_DISPATCH_STATUSES: tuple[str, ...] = ("filed", "escalated")
INCIDENT_CATEGORIES: dict[str, str] = {
    "dispute": "矛盾纠纷",
    "public_order": "治安隐患",
    "safety": "安全隐患",
    "sanitation": "环境卫生",
    "municipal": "市政设施",
    "livelihood": "民生诉求",
    "opinion": "社情民意",
    "floating_population": "流动人口",
    "other": "其他",
}
REPORTER_KINDS: dict[str, str] = {
    "resident": "居民",
    "leader": "格长",
    "grid_worker": "网格员",
    "public": "匿名群众",
}

#: Default duties of each level of the four-level scheme (configurable: table level_duty).
DEFAULT_LEVEL_DUTIES: dict[int, str] = {
    1: "统筹协调辖区重大事项，督导各级网格工作，建立并管理工作台账。",
    2: "指导片区内网格工作，及时化解或上报片区内的问题和矛盾。",
    3: "收集、汇总和上报居民的意见建议和诉求，组织党员联系服务群众。",
    4: "由格长带领，倾听居民呼声，帮助居民解决实际困难，做到小事不出格。",
}

#: Kinds of volunteer teams (志愿服务队).
VOLUNTEER_TEAM_KINDS: dict[str, str] = {
    "party": "党员志愿服务队",
    "elderly": "老年志愿服务队",
    "women": "巾帼志愿服务队",
    "housekeeping": "家政志愿服务队",
    "public_security": "治安志愿服务队",
}

#: 公益岗位 kinds a party member can claim.
SERVICE_POST_KINDS: dict[str, str] = {
    "education": "宣教",
    "rights": "维权",
    "assistance": "帮扶",
    "environment": "环保",
    "culture": "文体",
    "security": "治安",
    "mediation": "调解",
}

#: Kinds of 辖区单位 (organisations in the area).
ORGANISATION_KINDS: dict[str, str] = {
    "government": "机关事业单位",
    "school": "学校",
    "hospital": "医院",
    "enterprise": "企业",
    "market": "商贸市场",
    "social": "社会组织",
    "other": "其他",
}

#: Employment of grid workers.
EMPLOYMENT_KINDS: dict[str, str] = {"full_time": "专职", "part_time": "兼职"}

#: What each role answers for (三图四包: 书记包全局, 干部包区域, 协管员包楼栋, 信息员包住户).
ROLE_DUTIES: dict[str, str] = {
    "community_head": "包全局：统筹社区网格工作",
    "sector_head": "包区域：指导片区网格，化解或上报问题",
    "branch_head": "包区域：组织党员收集和上报民意",
    "leader": "包网格：倾听民意，帮助解决困难",
    "grid_worker": "信息采集、巡查走访、事件上报",
    "building_captain": "包楼栋：联系本楼住户",
    "unit_captain": "包单元：联系本单元住户",
    "assistant": "包楼栋：协助管理楼栋事务",
    "informant": "包住户：收集和反映住户情况",
}
#: Incident workflow actions (transitions), with their labels; the table of who may do what
#: from which state lives in gridsvc.services.incidents.TRANSITIONS.
INCIDENT_ACTIONS: dict[str, str] = {
    "file": "立案",
    "dispatch": "派遣",
    "handle": "处置",
    "verify": "核查",
    "close": "结案",
    "return": "退回",
    "escalate": "上报",
    "park": "挂账",
    "resume": "销账恢复",
    "confirm_cell": "确认网格",
}
#: Category urgencies (DESIGN §5: urgent dispatch within 10 min, normal within 30 min).
INCIDENT_URGENCIES: dict[str, str] = {"urgent": "紧急", "normal": "一般", "low": "较缓"}
#: The queue an incident waits in: its cell (or a parent 片区/党支部 cell), the community, the street.
INCIDENT_QUEUES: dict[str, str] = {"cell": "网格", "community": "社区", "street": "街道"}


# -- the derived rules, rendered into SQL ----------------------------------------------------
# SQL strings elsewhere use these instead of spelling a status or flag (tests/gridsvc/
# test_vocabulary.py fails if one does). ``a`` is the table alias of the incident row.

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def sql_literal(value: str, vocabulary: Iterable[str]) -> str:
    """A vocabulary identifier as a SQL string literal; refuses anything not in ``vocabulary``."""
    if value not in tuple(vocabulary) or not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{value!r} is not in the vocabulary")
    return f"'{value}'"


def sql_in(column: str, values: Iterable[str], vocabulary: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` for identifiers of one vocabulary."""
    vocab = tuple(vocabulary)
    return f"{column} IN ({', '.join(sql_literal(v, vocab) for v in values)})"


def incident_closed_sql(a: str = "i") -> str:
    """The case is closed (结案)."""
    return f"{a}.status = {sql_literal(INCIDENT_CLOSED, INCIDENT_STATUSES)}"


def incident_parked_sql(a: str = "i") -> str:
    """The case is parked (挂账)."""
    return f"{a}.status = {sql_literal(INCIDENT_PARKED, INCIDENT_STATUSES)}"


def incident_open_sql(a: str = "i") -> str:
    """The case is open (未结): neither closed nor parked."""
    return sql_in(f"{a}.status", INCIDENT_OPEN_STATUSES, INCIDENT_STATUSES)


def incident_awaiting_dispatch_sql(a: str = "i", at: str | None = None) -> str:
    """The case waits for dispatch — now, or (``at``: a SQL expression) at that instant."""
    waiting = sql_in(f"{a}.status", INCIDENT_AWAITING_DISPATCH_STATUSES, INCIDENT_STATUSES)
    if at is None:
        return f"({waiting} AND {a}.dispatched_at IS NULL)"
    return f"({waiting} AND ({a}.dispatched_at IS NULL OR {a}.dispatched_at >= {at}))"


def incident_past_due_sql(a: str = "i", at: str = ":now", *, historical: bool = False) -> str:
    """At ``at``, the case is past its close deadline, or past its dispatch deadline while it
    still waits for dispatch (``historical``: waited at ``at``, even if dispatched since)."""
    waiting = incident_awaiting_dispatch_sql(a, at if historical else None)
    return f"({a}.close_due_at < {at} OR ({waiting} AND {a}.dispatch_due_at < {at}))"


def incident_overdue_sql(a: str = "i", at: str = ":now") -> str:
    """The case is overdue (超期): open and past due."""
    return f"({incident_open_sql(a)} AND {incident_past_due_sql(a, at)})"


def incident_unclosed_at_sql(a: str = "i", at: str = ":ts") -> str:
    """The case had not been closed at the instant ``at`` (reported before it, say)."""
    return f"(NOT {incident_closed_sql(a)} OR {a}.closed_at >= {at})"
