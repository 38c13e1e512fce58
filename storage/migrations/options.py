"""Autogenerate options shared by ``env.py`` and the schema check (kept apart: ``env.py`` runs
migrations when imported, so nothing else may import it)."""

from __future__ import annotations

from typing import Any

from alembic.operations import ops
from sqlalchemy import JSON, DateTime, ForeignKeyConstraint

from storage.models import AwareDateTime


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our TypeDecorators as their plain SQL type, so revisions never import models code
    (a later change to ``storage.models`` must not change what an old revision does)."""
    if type_ == "type" and isinstance(obj, AwareDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        # Alembic's own rendering leaves JSONB's ``Text()`` unqualified (a NameError at run time).
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')"
    return False


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    """Create ``use_alter`` foreign keys after every table exists.

    ``duplicate_groups.canonical_call_id`` and ``calls.group_id`` point at each other. Alembic
    renders such a key inside ``create_table``, where PostgreSQL silently leaves it out (it expects
    a later ALTER); moving it to its own ``create_foreign_key`` works on both engines.
    """
    script = directives[0]
    if script.upgrade_ops is None:
        return
    for upgrade_ops in script.upgrade_ops_list:
        deferred: list[ops.MigrateOperation] = []
        for op in upgrade_ops.ops:
            if not isinstance(op, ops.CreateTableOp):
                continue
            late = [c for c in op.columns if isinstance(c, ForeignKeyConstraint) and c.use_alter]
            if not late:
                continue
            op.columns = [c for c in op.columns if not any(c is fk for fk in late)]
            deferred.append(
                ops.ModifyTableOps(
                    op.table_name,
                    [ops.CreateForeignKeyOp.from_constraint(fk) for fk in late],
                    schema=op.schema,
                )
            )
        if deferred:
            upgrade_ops.ops.extend(deferred)
    script.downgrade_ops = script.upgrade_ops.reverse()


def compare_type(
    context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """SQLite keeps no time zone flag: a reflected DATETIME equals our timestamptz there."""
    if context.dialect.name == "sqlite" and isinstance(metadata_type, (AwareDateTime, DateTime)):
        return not isinstance(inspected_type, DateTime)
    return None


COMPARE_OPTIONS: dict[str, Any] = {
    "compare_type": compare_type,
    "compare_server_default": True,
    "render_item": render_item,
    "process_revision_directives": process_revision_directives,
}
