"""Database roles: the application role that owns the schema, and passwords that never cross the wire.

Three roles matter (docs/operations.md, Security):

* the **admin** (a superuser: the embedded cluster's bootstrap role, or ``POSTGRES_USER`` in compose)
  runs migrations and maintenance only;
* the **application role** ``tickwise_app`` (``NOSUPERUSER NOCREATEROLE``) owns the database, the
  ``public`` schema and every table in it, which is all the pipelines need (they alter ``features``
  at write time, so they must own it); it cannot ``COPY ... TO PROGRAM`` or read server files;
* ``tickwise_grafana`` reads a few tables (migration 0003/0005).

Passwords are sent as SCRAM-SHA-256 verifiers computed here, so the server (and its log, and anyone
tracing the connection) never sees the plain text, unlike ``ALTER ROLE ... PASSWORD 'plain'``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

APP_ROLE = "tickwise_app"
GRAFANA_ROLE = "tickwise_grafana"
APP_PASSWORD_ENV = "TICKWISE_APP_PASSWORD"  # nosec B105: not a password: a name, a message or a pattern of key names
GRAFANA_PASSWORD_ENV = "TICKWISE_GRAFANA_PASSWORD"  # nosec B105: not a password: a name, a message or a pattern of key names
_SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (embedded quotes doubled): never pasted raw."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (standard_conforming_strings is on by default)."""
    if "\x00" in value:
        raise ValueError("an SQL literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def generate_password() -> str:
    """A random password (URL- and pgpass-safe: no ``:`` or ``\\``)."""
    return secrets.token_urlsafe(24)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677 layout).

    ``ALTER ROLE r PASSWORD '<verifier>'`` stores it as-is, so the plain password never leaves this
    process. (PostgreSQL's SASLprep is the identity for the ASCII passwords generated here.)
    """
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_password_sql(role: str, password: str) -> str:
    """``ALTER ROLE <role> LOGIN PASSWORD '<scram verifier>'`` (no plain text in the statement)."""
    return f"ALTER ROLE {quote_ident(role)} LOGIN PASSWORD {quote_literal(scram_verifier(password))}"


# Templates with @ROLE@ (a quoted literal) and @IDENT@ (a quoted identifier) filled by _with_role: the
# DO blocks are full of braces and % signs, which f-strings and format() would fight with.
_CREATE_APP_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = @ROLE@) THEN
        CREATE ROLE @IDENT@ NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
END
$$"""

_HAND_OVER = """
DO $$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = @ROLE@) THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER DATABASE %I OWNER TO %I', current_database(), @ROLE@);
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), @ROLE@);
    EXECUTE format('ALTER SCHEMA public OWNER TO %I', @ROLE@);
    FOR r IN
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND pg_get_userbyid(c.relowner) <> @ROLE@
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format(
            'ALTER %s %I OWNER TO %I',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            r.relname, @ROLE@);
    END LOOP;
    -- Sequences owned by a column moved with their table above; only free-standing ones remain.
    FOR r IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> @ROLE@
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
    LOOP
        EXECUTE format('ALTER SEQUENCE %I OWNER TO %I', r.relname, @ROLE@);
    END LOOP;
END
$$"""


def _with_role(template: str, role: str) -> str:
    return template.replace("@ROLE@", quote_literal(role)).replace("@IDENT@", quote_ident(role))


def create_app_role_sql(role: str = APP_ROLE) -> str:
    """Create the application role when missing (idempotent; roles are cluster-wide)."""
    return _with_role(_CREATE_APP_ROLE, role)


def hand_over_sql(role: str = APP_ROLE) -> str:
    """Make ``role`` own the current database, schema ``public`` and every relation in it.

    Run as a superuser after each migration (tables created by the admin move to the application
    role) and by ``db up`` on clusters made before the role existed. A no-op when the role is missing
    (an external database that does not use it). ``REASSIGN OWNED`` cannot be used: the old owner may
    be the bootstrap superuser, whose system objects cannot change hands. Hypertables pass their new
    owner on to their chunks. The database's TEMP privilege is granted explicitly because migration
    0005 revokes it from PUBLIC (the bulk writer stages rows in temporary tables).
    """
    return _with_role(_HAND_OVER, role)


def passwords_from_environment(environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(role, password) for each role whose password is given in the environment (compose sets them)."""
    env = os.environ if environ is None else environ
    out = []
    for role, name in ((APP_ROLE, APP_PASSWORD_ENV), (GRAFANA_ROLE, GRAFANA_PASSWORD_ENV)):
        value = env.get(name, "")
        if value:
            out.append((role, value))
    return out
