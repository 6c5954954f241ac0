"""Admin: users and roles, creator applications, the audit log, the dashboard's counters and series, exports.

Admins are users with `role = 'admin'` (what the frontend calls `is_super_admin`: there is one admin level), made
in the database or by another admin. Every change an admin makes writes one `admin_actions` row in the same
transaction (`audit`); the `system` account is never changed and no admin can remove their own admin role.

- `users`: the user list and the one role-change implementation (`write_role`).
- `applications`: creator applications: list, approve (the user becomes a creator), reject, queue.
- `audit`: the audit log, and the dashboard's own notes (`client_note`).
- `counters`: GET /admin/stats; `analytics`: the activity feed and daily series; `exports`: CSV/JSON files.
"""

from lib.admin import analytics, applications, audit
from lib.admin.analytics import activity_feed, dashboard
from lib.admin.applications import (
    ApplicationFilters,
    ApproveBody,
    DateRange,
    QueueBody,
    RejectBody,
    StatusFilter,
    approve,
    list_applications,
    queue,
    reject,
)
from lib.admin.audit import AuditNote, append_note, list_logs
from lib.admin.counters import STAT_SECTIONS, StatSection, stats
from lib.admin.exports import ExportFile, ExportFormat, ExportRequest, export
from lib.admin.users import AssignableRole, RoleChange, list_users, set_role

__all__ = [
    "STAT_SECTIONS",
    "ApplicationFilters",
    "ApproveBody",
    "AssignableRole",
    "AuditNote",
    "DateRange",
    "ExportFile",
    "ExportFormat",
    "ExportRequest",
    "QueueBody",
    "RejectBody",
    "RoleChange",
    "StatSection",
    "StatusFilter",
    "activity_feed",
    "analytics",
    "append_note",
    "applications",
    "approve",
    "audit",
    "dashboard",
    "export",
    "list_applications",
    "list_logs",
    "list_users",
    "queue",
    "reject",
    "set_role",
    "stats",
]
