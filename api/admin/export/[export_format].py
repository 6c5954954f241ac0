"""POST /api/admin/export/{csv|json} {type, filters, selection}: creator applications (or users) as a file."""

from fastapi.responses import Response

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/admin/export/{export_format}", response_class=Response)
def export(
    export_format: admin.ExportFormat, me: AdminUser, conn: DbConn, body: admin.ExportRequest | None = None
) -> Response:
    """An attachment of at most 5000 rows, newest first (X-Export-Truncated: true when there were more);
    CSV cells that look like formulas start with a quote. Audited."""
    result = admin.export(conn, me, export_format, body or admin.ExportRequest())
    headers = {
        "Content-Disposition": f'attachment; filename="{result.filename}"',
        "X-Export-Rows": str(result.rows),
        "X-Export-Truncated": "true" if result.truncated else "false",
    }
    return Response(result.content, media_type=result.media_type, headers=headers)
