"""access control, audit trail, encryption: encrypted document numbers, audit chain, row-level security

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:00:00

* Passport and national ID numbers move from clear text to AES-GCM
  ciphertext plus an HMAC blind index (registry/crypto.py). Existing rows are
  encrypted here, with the application's keys; the downgrade decrypts them.
* ``audit_events`` and ``audit_seals``: the audit trail and its hash chain.
* Row-level security on the national tables, FORCEd, read from the
  per-transaction setting ``sagip.scope`` ('*' everything, a comma list of
  host countries for an embassy officer, unset or empty nothing), and the
  database role ``sagip_app`` the service switches to: not the owner, no
  BYPASSRLS, and on the audit trail only INSERT, SELECT and the one-time
  UPDATE of the chain columns.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

APP_ROLE = "sagip_app"
DML_TABLES = ("users", "api_tokens", "jobs", "outbox", "import_files", "idempotency_keys", "nationals",
              "deployments", "next_of_kin", "location_reports")
READ_ONLY_TABLES = ("countries", "spatial_ref_sys")
CHILD_TABLES = ("deployments", "next_of_kin", "location_reports")
# Fail closed: without a scope set in the transaction nothing is visible.
IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR jurisdiction_country = ANY ("
            "string_to_array(nullif(current_setting('sagip.scope', true), ''), ',')))")
CHILD_IN_SCOPE = ("(current_setting('sagip.scope', true) = '*' OR EXISTS ("
                  "SELECT 1 FROM nationals n WHERE n.id = national_id))")


def upgrade():
    op.add_column('nationals', sa.Column('passport_ciphertext', sa.LargeBinary(), nullable=True))
    op.add_column('nationals', sa.Column('passport_index', sa.LargeBinary(length=32), nullable=True))
    op.add_column('nationals', sa.Column('national_id_ciphertext', sa.LargeBinary(), nullable=True))
    op.add_column('nationals', sa.Column('national_id_index', sa.LargeBinary(length=32), nullable=True))
    op.add_column('nationals', sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True))
    _encrypt_existing()
    op.drop_index('uq_nationals_nationality_passport', table_name='nationals',
                  postgresql_where=sa.text('passport_number IS NOT NULL'))
    op.drop_column('nationals', 'passport_number')
    op.drop_column('nationals', 'national_id_number')
    op.create_index('uq_nationals_nationality_passport_index', 'nationals', ['nationality', 'passport_index'],
                    unique=True,
                    postgresql_where=sa.text('passport_index IS NOT NULL'))
    op.create_index('ix_nationals_national_id_index', 'nationals', ['national_id_index'], unique=False,
                    postgresql_where=sa.text('national_id_index IS NOT NULL'))
    op.create_index('ix_nationals_returned_at', 'nationals', ['returned_at'], unique=False,
                    postgresql_where=sa.text('returned_at IS NOT NULL'))
    op.execute("UPDATE nationals SET returned_at = updated_at WHERE status = 'returned'")

    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=True),
    sa.Column('object_ids', postgresql.ARRAY(sa.Uuid()), server_default='{}', nullable=False),
    sa.Column('result_count', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('chain_seq', sa.BigInteger(), nullable=True),
    sa.Column('chain_hash', sa.LargeBinary(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    op.create_index('ix_audit_events_action_id', 'audit_events', ['action', 'id'], unique=False)
    op.create_index('ix_audit_events_actor_id_id', 'audit_events', ['actor_id', 'id'], unique=False)
    op.create_index('ix_audit_events_at', 'audit_events', ['at'], unique=False)
    op.create_index('ix_audit_events_object_ids', 'audit_events', ['object_ids'], unique=False,
                    postgresql_using='gin')
    op.create_index('uq_audit_events_chain_seq', 'audit_events', ['chain_seq'], unique=True)
    op.create_index('ix_audit_events_unsealed', 'audit_events', ['id'], unique=False,
                    postgresql_where=sa.text('chain_seq IS NULL'))
    op.create_table('audit_seals',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('through_seq', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_seals'))
    )
    # A sealed event never changes, whoever asks (the owner included; a superuser can still
    # drop the trigger, which is what the hash chain is for).
    op.execute("""
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL
       AND (NEW.id, NEW.at, NEW.actor_id, NEW.actor_role, NEW.action, NEW.outcome, NEW.object_type,
            NEW.object_ids, NEW.result_count, NEW.purpose, NEW.details)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.actor_id, OLD.actor_role, OLD.action, OLD.outcome, OLD.object_type,
            OLD.object_ids, OLD.result_count, OLD.purpose, OLD.details) THEN
        RETURN NEW;  -- sealing: only the chain columns, once
    END IF;
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END $$""")
    op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
               "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()")

    _row_level_security()
    _app_role()


def _row_level_security():
    op.execute("ALTER TABLE nationals ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE nationals FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY in_scope ON nationals USING {IN_SCOPE} WITH CHECK {IN_SCOPE}")
    for table in CHILD_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY in_scope ON {table} USING {CHILD_IN_SCOPE} WITH CHECK {CHILD_IN_SCOPE}")


def _app_role():
    # Roles belong to the cluster: create it once, grant it in this database.
    op.execute(f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(DML_TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(READ_ONLY_TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON audit_events, audit_seals TO {APP_ROLE}")
    op.execute(f"GRANT UPDATE (chain_seq, chain_hash) ON audit_events TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def _encrypt_existing():
    from registry.crypto import keyring
    ring = keyring()
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, nationality, passport_number, national_id_number FROM nationals "
                                "WHERE passport_number IS NOT NULL OR national_id_number IS NOT NULL")).all()
    updates = []
    for national_id, nationality, passport, national_number in rows:
        updates.append({
            "id": national_id,
            "pc": ring.encrypt("passport", national_id, passport) if passport else None,
            "pi": ring.blind_index("passport", passport) if passport else None,
            "nc": ring.encrypt("national_id", national_id, national_number) if national_number else None,
            "ni": ring.blind_index("national_id", national_number) if national_number else None,
        })
    if updates:
        conn.execute(sa.text("UPDATE nationals SET passport_ciphertext = :pc, passport_index = :pi, "
                             "national_id_ciphertext = :nc, national_id_index = :ni WHERE id = :id"), updates)


def _decrypt_existing():
    from registry.crypto import keyring
    ring = keyring()
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, passport_ciphertext, national_id_ciphertext FROM nationals "
                                "WHERE passport_ciphertext IS NOT NULL OR national_id_ciphertext IS NOT NULL")).all()
    updates = [{"id": national_id,
                "p": ring.decrypt("passport", national_id, bytes(passport)) if passport else None,
                "n": ring.decrypt("national_id", national_id, bytes(number)) if number else None}
               for national_id, passport, number in rows]
    if updates:
        conn.execute(sa.text("UPDATE nationals SET passport_number = :p, national_id_number = :n WHERE id = :id"),
                     updates)


def downgrade():
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {APP_ROLE}")
    # The role itself stays: it is the cluster's, other databases may use it.
    for table in ("nationals",) + CHILD_TABLES:
        op.execute(f"DROP POLICY in_scope ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.drop_table('audit_seals')
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_index('ix_audit_events_unsealed', table_name='audit_events', postgresql_where=sa.text('chain_seq IS NULL'))
    op.drop_index('uq_audit_events_chain_seq', table_name='audit_events')
    op.drop_index('ix_audit_events_object_ids', table_name='audit_events', postgresql_using='gin')
    op.drop_index('ix_audit_events_at', table_name='audit_events')
    op.drop_index('ix_audit_events_actor_id_id', table_name='audit_events')
    op.drop_index('ix_audit_events_action_id', table_name='audit_events')
    op.drop_table('audit_events')

    op.add_column('nationals', sa.Column('passport_number', sa.String(length=20), nullable=True))
    op.add_column('nationals', sa.Column('national_id_number', sa.String(length=40), nullable=True))
    _decrypt_existing()
    op.drop_index('ix_nationals_returned_at', table_name='nationals', postgresql_where=sa.text('returned_at IS NOT NULL'))
    op.drop_index('ix_nationals_national_id_index', table_name='nationals',
                  postgresql_where=sa.text('national_id_index IS NOT NULL'))
    op.drop_index('uq_nationals_nationality_passport_index', table_name='nationals',
                  postgresql_where=sa.text('passport_index IS NOT NULL'))
    op.drop_column('nationals', 'returned_at')
    op.drop_column('nationals', 'national_id_index')
    op.drop_column('nationals', 'national_id_ciphertext')
    op.drop_column('nationals', 'passport_index')
    op.drop_column('nationals', 'passport_ciphertext')
    op.create_index('uq_nationals_nationality_passport', 'nationals', ['nationality', 'passport_number'],
                    unique=True, postgresql_where=sa.text('passport_number IS NOT NULL'))
