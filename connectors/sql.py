"""Reader for relational sources through SQLAlchemy: PostgreSQL, MySQL/MariaDB, SQLite, any URL.

A ``table`` source is reflected, its declared columns are checked before any row is read, and
it is read ordered by the primary key so the content hash is stable between runs; with a
``watermark`` only what changed since the last read is fetched (:mod:`connectors.increments`). A
``query`` source runs as written (add ORDER BY for a stable hash). Driver errors are translated in one
place, :func:`_translate`: a server that does not answer is a
:class:`~core.errors.SourceUnavailableError` (retry), anything the declaration or the
database must change is a :class:`~core.errors.SourceError`. Passwords never reach a message.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from connectors._frames import clean_name, frame_sha256, require_columns, text_frame
from connectors.config import SourceConfig
from connectors.increments import KeptRows, highest_watermark, read_changes
from connectors.lineage import Extract, Lineage
from core.errors import SilobreakerError, SourceError, SourceUnavailableError
from core.home import HomeLike

__all__ = ["read_sql", "safe_url"]

logger = logging.getLogger(__name__)

_BATCH_ROWS = 50_000
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd")
# MySQL/MariaDB error codes worth a retry: can't connect, server gone, lost connection,
# too many connections, lock wait timeout, deadlock.
_MYSQL_TRANSIENT = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
# ...and those where retrying cannot help: access denied, unknown database.
_MYSQL_TERMINAL_ON_CONNECT = {1044, 1045, 1049, 1698}
# PostgreSQL SQLSTATE prefixes worth a retry: connection exception, insufficient resources,
# operator intervention (shutdown), serialization failure / deadlock, lock not available.
_PG_TRANSIENT_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")
_PG_TERMINAL_ON_CONNECT = ("28", "3D000")
# libpq reports a server's refusal at connect time as text without a SQLSTATE: FATAL (also in a
# Chinese-localised server) means the server answered and said no, unless it is only busy.
_PG_FATAL = ("FATAL:", "致命错误")
_PG_BUSY = ("starting up", "shutting down", "too many clients", "recovery mode", "connection slots")


def safe_url(url: str | URL) -> str:
    """The URL as text with its password (and password-like query parameters) hidden."""
    parsed = make_url(url)
    hidden = {k: "***" for k in parsed.query if k.lower() in _SECRET_QUERY_KEYS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True)


def read_sql(cfg: SourceConfig, home: HomeLike, known: Lineage | None = None) -> Extract:
    """Read a sql source into a text frame (``known`` is not used: a database is read to know it is unchanged).

    Raises:
        SourceUnavailableError: the database did not answer (connection refused, server
            restarting, connection lost); worth retrying.
        SourceError: wrong URL or driver, wrong credentials or database, missing table or
            column, SQL error; the message says what to correct.
    """
    url_text = cfg.resolved_url(home)
    url = make_url(url_text)
    table_name = cfg.resolved_table(home)
    query = cfg.resolved_query(home)
    location = f"{safe_url(url)} table {table_name}" if table_name else f"{safe_url(url)} query"
    secret = url.password
    _require_sqlite_file(cfg, url, location)
    logger.debug("source %s: reading %s", cfg.name, location)
    started = _now()
    engine = None
    connecting = True
    try:
        engine = sa.create_engine(url, connect_args=_connect_args(url))
        with engine.connect() as conn:
            connecting = False
            if table_name:
                frame = _read_table(cfg, conn, table_name, location, home, started)
            else:
                # Escaping every colon stops text() from taking ':30' in '10:30' for a bind parameter.
                frame = text_frame(*_read_result(conn, sa.text(query.replace(":", "\\:"))))
    except SilobreakerError:
        raise
    except (sa.exc.SQLAlchemyError, ImportError) as e:
        raise _translate(e, cfg, location, connecting=connecting, secret=secret) from e
    finally:
        if engine is not None:
            engine.dispose()
    require_columns(cfg, location, frame.columns, "query result" if query else f"table {table_name}")
    lineage = Lineage(
        source=cfg.name,
        kind="sql",
        location=location,
        extracted_at=started,
        row_count=len(frame),
        content_hash=frame_sha256(frame),
    )
    return Extract(frame=frame, lineage=lineage)


def _connect_args(url: URL) -> dict[str, object]:
    # libpq waits forever for a host that drops packets; a bounded wait turns that into a retryable error.
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return {"connect_timeout": 30}
    return {}


def _require_sqlite_file(cfg: SourceConfig, url: URL, location: str) -> None:
    # SQLite would silently create an empty database at a wrong path and then report a missing table.
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise SourceError(
            cfg.name,
            location,
            f"SQLite database file {database} does not exist",
            "correct url in sources.yaml (relative SQLite paths are under the data home), "
            "or ask the department for the file",
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read_table(
    cfg: SourceConfig, conn: sa.Connection, table_name: str, location: str, home: HomeLike, started: dt.datetime
) -> pd.DataFrame:
    schema, _, name = table_name.rpartition(".")
    table = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema or None)
    by_clean = {clean_name(c.name): c for c in table.columns}
    # Checking before the SELECT turns a typo into a clear message instead of a driver's SQL error.
    require_columns(cfg, location, list(by_clean), f"table {table_name}")
    order = [by_clean[clean_name(k)] for k in cfg.primary_key]
    kept = KeptRows.load(home, cfg, started) if cfg.watermark else None
    changes = None
    if kept is not None and kept.watermark is not None:
        try:
            changes = read_changes(cfg, conn, table, kept, _read_result, started)
        except (TypeError, ValueError) as e:  # e.g. a watermark column whose type changed since the rows were kept
            logger.warning("source %s: the rows kept cannot be brought up to date (%s: %s); reading the table whole",
                           cfg.name, type(e).__name__, e)
    if changes is not None:
        rows = KeptRows(*changes, kept.full_read_at)
    else:
        names, columns = _read_result(conn, sa.select(table).order_by(*order))
        if not cfg.watermark:
            return text_frame(names, columns)
        rows = KeptRows(text_frame(names, columns), highest_watermark(names, columns, cfg, table, started), started)
        if rows.watermark is None and len(rows.frame):
            logger.warning("source %s: no value of %s can bound the next read (none written year first and not "
                           "after tomorrow); the table is read whole each run", cfg.name, cfg.watermark)
    try:
        rows.keep(home, cfg)
    except (OSError, TypeError) as e:  # the next run reads the table whole; this one has what it needs
        logger.warning("source %s: the rows read cannot be kept for the next run (%s)", cfg.name, e)
    return rows.frame


def _read_result(conn: sa.Connection, statement: sa.Executable) -> tuple[list[str], list[list]]:
    plain = _sqlite_rows(conn, statement)
    if plain is not None:
        return plain
    # A server-side cursor read in batches keeps the driver from buffering a whole large table
    # a second time next to the columns being built.
    result = conn.execute(statement.execution_options(stream_results=True, yield_per=_BATCH_ROWS))
    names = list(result.keys())
    return names, _columns(names, result.partitions())


def _columns(names: list[str], batches) -> list[list]:
    """The values of each column of ``names``, from batches of rows."""
    columns: list[list] = [[] for _ in names]
    for batch in batches:
        for position, values in enumerate(zip(*batch, strict=True)):
            columns[position].extend(values)
    return columns


def _sqlite_rows(conn: sa.Connection, statement: sa.Executable) -> tuple[list[str], list[list]] | None:
    """``(names, columns)`` from sqlite3's own cursor, which steps through the rows as they are fetched, for a
    statement without parameters whose columns SQLAlchemy would hand on as sqlite3 gives them (no result
    processor: text, integers); ``None`` otherwise. SQLAlchemy's rows cost the demo's 613k-row table 4 s for its
    key scan alone."""
    if conn.dialect.name != "sqlite" or not isinstance(statement, sa.Select):
        return None
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.params or any(c.type.result_processor(conn.dialect, None) is not None
                              for c in statement.selected_columns):
        return None
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled))
        names = [d[0] for d in cursor.description]
        columns = _columns(names, iter(lambda: cursor.fetchmany(_BATCH_ROWS), []))
    except conn.dialect.loaded_dbapi.Error as e:  # as SQLAlchemy would raise it, for _translate
        raise sa.exc.DBAPIError.instance(str(compiled), None, e, conn.dialect.loaded_dbapi.Error) from e
    finally:
        cursor.close()
    return names, columns


def _translate(
    error: Exception, cfg: SourceConfig, location: str, *, connecting: bool, secret: str | None
) -> SilobreakerError:
    """Map a driver or SQLAlchemy error to the project's transient or terminal error."""
    detail = _driver_message(error, secret)
    if isinstance(error, sa.exc.NoSuchTableError):
        return SourceError(
            cfg.name, location, "the table does not exist (or is not visible to this user)",
            "correct table in sources.yaml (schema.table if it is not in the default schema)",
        )
    if isinstance(error, sa.exc.NoSuchModuleError | ImportError | sa.exc.ArgumentError):
        return SourceError(
            cfg.name, location, f"cannot use this URL: {detail}",
            "correct url in sources.yaml, e.g. postgresql+psycopg://, mysql+pymysql:// or sqlite:///",
        )
    if isinstance(error, sa.exc.DBAPIError) and _is_transient(error, connecting=connecting):
        return SourceUnavailableError(cfg.name, location, detail)
    if _not_a_database(error, cfg):
        return SourceError(
            cfg.name, location, f"the file is not a readable SQLite database ({detail}): it is damaged, "
            "truncated or another kind of file",
            "ask the department for a fresh copy of the database file, or correct url in sources.yaml",
        )
    if connecting:
        return SourceError(
            cfg.name, location, f"the database refused the connection: {detail}",
            "check user, password and database name in url in sources.yaml (or its environment variables)",
        )
    return SourceError(
        cfg.name, location, f"the database rejected the read: {detail}",
        "correct table, query or columns in sources.yaml to match the database",
    )


def _is_transient(error: sa.exc.DBAPIError, *, connecting: bool) -> bool:
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    code = original.args[0] if original is not None and original.args and isinstance(original.args[0], int) else None
    if sqlstate:
        if connecting and sqlstate.startswith(_PG_TERMINAL_ON_CONNECT):
            return False
        return sqlstate.startswith(_PG_TRANSIENT_PREFIXES)
    if code is not None:
        if code in _MYSQL_TRANSIENT:
            return True
        if code in _MYSQL_TERMINAL_ON_CONNECT:
            return False
    text = str(original)
    if "database is locked" in text:
        return True
    if connecting and any(mark in text for mark in _PG_FATAL):
        return any(phrase in text for phrase in _PG_BUSY)
    # On connect, an operational/interface error without a known code is a server that did not answer.
    return connecting and isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError)


def _driver_message(error: Exception, secret: str | None) -> str:
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    text = text.splitlines()[0] if text else type(error).__name__
    if secret:
        text = text.replace(secret, "***")
    return text


def _not_a_database(error: Exception, cfg: SourceConfig) -> bool:
    text = str(error).lower()
    return (cfg.url or "").startswith("sqlite") and any(
        sign in text for sign in ("file is not a database", "database disk image is malformed", "file is encrypted")
    )
