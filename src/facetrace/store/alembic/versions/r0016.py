"""Photo ids are never reused: SQLite's ``photos`` rebuilt with AUTOINCREMENT.

A photo id names the photo in deletion receipts; a reused one would tie a receipt to
someone else's photo. Batch mode copies the table into a new one and swaps them, with
foreign keys off (the store turns them off around every upgrade, since dropping
``photos`` with them on would cascade into ``faces`` and ``sightings``), and the
store checks every foreign key afterwards. PostgreSQL's sequences never hand an id
out twice, so there is nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    ddl = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'photos'"
    ).scalar()
    if ddl is None or "AUTOINCREMENT" in str(ddl).upper():
        return
    with op.batch_alter_table(
        "photos", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
