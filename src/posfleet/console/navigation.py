"""The console's navigation: one list of entries, each visible to the roles that may use it.

New areas add an entry here, inside one of the groups (dropdowns) where they fit: the header holds one
line at 1366 px in both languages for the role with the most entries (tests/e2e/test_navbar_browser.py),
so a new top-level entry is the exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.iam.models import PROVIDER_ROLES, Role, User

ALL_ROLES = frozenset(Role.values)


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str | Promise
    icon: str  # a bootstrap-icons name
    url_name: str
    roles: frozenset[str] = ALL_ROLES
    when: Callable[[User], bool] | None = None
    exact: bool = False  # active only on its own URL (not on the pages below it)
    also: tuple[str, ...] = ()  # other path prefixes on which the entry counts as active

    def visible_to(self, user: User) -> bool:
        if getattr(user, "role", None) not in self.roles:
            return False
        return self.when(user) if self.when is not None else True


@dataclass(frozen=True)
class NavGroup:
    """A menu of entries (a dropdown in the navbar); shown when any of its entries is."""

    key: str
    label: str | Promise
    icon: str
    entries: tuple[NavEntry, ...]


STAFF = PROVIDER_ROLES
STAFF_AND_AGENTS = STAFF | {Role.AGENT}

MONEY = NavGroup(
    "money",
    _("Money"),
    "cash-coin",
    (
        NavEntry("money", _("Money overview"), "wallet2", "console:money", also=("/console/merchants/",)),
        NavEntry("transactions", _("Transactions"), "receipt", "console:transactions"),
        NavEntry(
            "statements",
            _("Statements"),
            "file-earmark-text",
            "console:my_statements",
            roles=frozenset({Role.MERCHANT}),
        ),
        NavEntry("settlements", _("Settlements"), "bank", "console:settlements", roles=STAFF_AND_AGENTS),
        NavEntry("contracts", _("Service contracts"), "file-earmark-check", "console:contracts"),
        NavEntry("plans", _("Rate plans"), "percent", "console:plans", roles=STAFF_AND_AGENTS),
    ),
)

DEVICES = NavGroup(
    "devices",
    _("Devices"),
    "hdd-stack",
    (
        NavEntry("terminals", _("Terminals"), "hdd-stack", "console:terminals"),
        NavEntry("silent", _("Silent terminals"), "wifi-off", "console:silent_terminals"),
        NavEntry("relocations", _("Relocation alerts"), "geo-alt", "console:relocations"),
        NavEntry("expiry", _("Expiry calendar"), "calendar-event", "console:expiry"),
    ),
)

# The requests someone files and the provider works through: onboarding, closure, complaint.
CASES = NavGroup(
    "cases",
    _("Cases"),
    "clipboard-check",
    (
        NavEntry("applications", _("Applications"), "clipboard-check", "console:applications"),
        NavEntry("closures", _("Closures"), "x-octagon", "console:closures"),
        NavEntry("complaints", _("Complaints"), "chat-square-text", "console:complaints"),
    ),
)

REPORTS = NavGroup(
    "reports",
    _("Reports"),
    "bar-chart-line",
    (
        NavEntry(
            "all_reports", _("All reports"), "bar-chart-line", "console:reports", roles=STAFF_AND_AGENTS
        ),
        NavEntry(
            "my_agent",
            _("My agent page"),
            "person-badge",
            "console:my_agent",
            roles=frozenset({Role.AGENT}),
            also=("/console/agents/",),
        ),
    ),
)

MAIN: tuple[NavEntry | NavGroup, ...] = (
    NavEntry(
        "dashboard", _("Dashboard"), "speedometer2", "console:dashboard", roles=STAFF_AND_AGENTS, exact=True
    ),
    NavEntry("home", _("Home"), "house", "console:dashboard", roles=frozenset({Role.MERCHANT}), exact=True),
    DEVICES,
    CASES,
    MONEY,
    REPORTS,
    NavEntry("deliveries", _("Notifications"), "send", "console:deliveries", roles=STAFF),
    NavEntry("backups", _("Data backup"), "archive", "console:backups", roles=frozenset({Role.MERCHANT})),
)

ACCOUNT: tuple[NavEntry, ...] = (
    NavEntry("security", _("Security"), "shield-lock", "iam:security"),
    NavEntry("tokens", _("API tokens"), "key", "iam:tokens"),
    NavEntry("admin", _("Django admin"), "gear", "admin:index", when=lambda user: user.is_superuser),
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str | Promise
    icon: str
    url: str
    active: bool
    children: tuple[NavItem, ...] = ()


def _item(entry: NavEntry, path: str) -> NavItem:
    url = reverse(entry.url_name)
    active = path == url if entry.exact else path.startswith((url, *entry.also))
    return NavItem(entry.key, entry.label, entry.icon, url, active)


def _items(entries: tuple[NavEntry | NavGroup, ...], user: User, path: str) -> list[NavItem]:
    items = []
    for entry in entries:
        if isinstance(entry, NavGroup):
            children = tuple(_item(e, path) for e in entry.entries if e.visible_to(user))
            if children:
                active = any(c.active for c in children)
                items.append(NavItem(entry.key, entry.label, entry.icon, "", active, children))
        elif entry.visible_to(user):
            items.append(_item(entry, path))
    return items


def main_items(user: User, path: str) -> list[NavItem]:
    return _items(MAIN, user, path)


def account_items(user: User, path: str) -> list[NavItem]:
    return _items(ACCOUNT, user, path)
