"""The bulk scenario: COPY with deferred indexes, on empty and non-empty tables."""

from __future__ import annotations

import re
from typing import Any

import pytest
from psycopg2 import sql
from psycopg2.errors import CheckViolation, UniqueViolation
from sqlalchemy import text
from sqlalchemy.orm import Session

from scenarios import bulk, loading, registry
from scenarios.emails import email_address, user_names
from scenarios.errors import ScenarioError, ScenarioUsageError
from scenarios.factories import UserFactory, bound_to

GENERATED_EMAIL = re.compile(r"[a-z0-9_.]+\.([0-9]+)@example\.(com|org|net)")
SCHEMA_QUERIES = {
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid),
               convalidated, obj_description(oid, 'pg_constraint')
        FROM pg_constraint
        WHERE conrelid = 'users'::regclass OR confrelid = 'users'::regclass
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisprimary,
               indisunique, indisclustered, indisreplident, indisvalid, indisready,
               obj_description(indexrelid, 'pg_class')
        FROM pg_index WHERE indrelid = 'users'::regclass ORDER BY 1
    """,
    "columns": """
        SELECT attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(adbin, adrelid)
        FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
        WHERE attrelid = 'users'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
    """,
    "table": """
        SELECT relreplident, relhasindex, pg_get_serial_sequence('users', 'id')
        FROM pg_class WHERE oid = 'users'::regclass
    """,
}


def schema(database: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Everything about the users table that the migrations (or a test) defined."""
    return {name: database.query(query) for name, query in SCHEMA_QUERIES.items()}


def run_bulk(session: Session, *args: str) -> list[str]:
    lines: list[str] = []
    registry.run_scenario("bulk", session, args=list(args), echo=lines.append)
    return lines


def test_bulk_loads_count_users_and_leaves_the_schema_as_migrated(
    session: Session, database: Any
) -> None:
    migrated = schema(database)

    lines = run_bulk(session, "--count", "10000")
    session.commit()

    assert database.query(
        "SELECT count(*), count(DISTINCT email), min(id), max(id), count(created_at) FROM users"
    ) == [(10_000, 10_000, 1, 10_000, 10_000)]
    assert schema(database) == migrated
    assert re.fullmatch(r"Loaded 10,000 users \(ids 1-10000\) in [0-9.]+ s", lines[0])
    for (email,) in database.query("SELECT email FROM users"):
        assert GENERATED_EMAIL.fullmatch(email), email


def test_bulk_advances_the_id_sequence(session: Session, database: Any) -> None:
    run_bulk(session, "-n", "500")
    session.commit()

    assert database.query("INSERT INTO users (email) VALUES ('a@b.example') RETURNING id") == [
        (501,)
    ]


def test_bulk_into_a_non_empty_table(session: Session, database: Any) -> None:
    registry.run_scenario("users", session, echo=lambda line: None)
    session.commit()
    # A hand-made address in the generated shape with a high number: bulk must go above it.
    database.query("INSERT INTO users (email) VALUES ('zed.5000000@example.org') RETURNING id")
    migrated = schema(database)

    run_bulk(session, "--count", "1000")
    with bound_to(session):
        later = UserFactory.create()
    session.commit()

    assert database.query("SELECT count(*), count(DISTINCT email), max(id) FROM users") == [
        (1005, 1005, 1005)
    ]
    assert database.query("SELECT min(id), max(id) FROM users WHERE id > 4 AND id < 1005") == [
        (5, 1004)
    ]
    numbers = [
        int(match.group(1))
        for (email,) in database.query("SELECT email FROM users WHERE id > 4")
        if (match := GENERATED_EMAIL.fullmatch(email))
    ]
    assert len(numbers) == 1001
    assert min(numbers) > 5_000_000
    assert later.id == 1005
    assert schema(database) == migrated


def test_bulk_twice_never_collides(session: Session, database: Any) -> None:
    run_bulk(session, "--count", "300")
    session.commit()
    with Session(session.get_bind()) as second:
        run_bulk(second, "--count", "300")
        second.commit()

    assert database.query("SELECT count(DISTINCT email), max(id) FROM users") == [(600, 600)]


def test_a_sequence_ahead_of_the_ids_is_left_alone(session: Session, database: Any) -> None:
    database.query("SELECT setval('users_id_seq', 50)")

    run_bulk(session, "--count", "10")
    session.commit()

    assert database.query("SELECT min(id), max(id) FROM users") == [(1, 10)]
    assert database.query("SELECT nextval('users_id_seq')") == [(51,)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--count", "abc"], "must be a whole number >= 0, got 'abc'"),
        (["--count", "-1"], "must be a whole number >= 0, got '-1'"),
        (["--count"], "requires an argument"),
        (["--bogus"], "No such option '--bogus'"),
        (["surplus"], "unexpected extra argument"),
    ],
)
def test_bad_arguments_are_one_clear_line_and_touch_nothing(
    session: Session, args: list[str], expected: str
) -> None:
    with pytest.raises(ScenarioUsageError) as caught:
        run_bulk(session, *args)

    message = str(caught.value)
    assert message.startswith("bulk: ")
    assert expected in message
    assert "\n" not in message
    assert session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None


def test_count_zero_loads_nothing(session: Session, database: Any) -> None:
    assert run_bulk(session, "--count", "0") == ["bulk: --count 0, nothing to load"]
    session.commit()

    assert database.query("SELECT count(*) FROM users") == [(0,)]


def test_help_prints_the_options_and_loads_nothing(
    session: Session, database: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bulk(session, "--help") == []

    assert "--count" in capsys.readouterr().out
    assert session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar() is None


def test_default_count_is_a_million() -> None:
    assert bulk.parse_count([]) == 1_000_000


def test_progress_goes_to_stderr(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    run_bulk(session, "--count", "100")

    captured = capsys.readouterr()
    assert "Loading 100 users" in captured.err
    assert "Loading" not in captured.out


def test_rows_are_sorted_by_email_and_id_in_the_factory_shape() -> None:
    names = user_names(50)

    chunks = list(bulk.email_rows(7, 1_000_000, 25_000, names))

    lines = "".join(text for text, _ in chunks).splitlines()
    assert sum(rows for _, rows in chunks) == len(lines) == 25_000
    ids = [int(line.split("\t")[0]) for line in lines]
    emails = [line.split("\t")[1] for line in lines]
    assert ids == list(range(7, 25_007))
    assert emails == sorted(emails), "presorted input is what makes the index builds fast"
    by_number = {int(GENERATED_EMAIL.fullmatch(e).group(1)): e for e in emails}  # type: ignore[union-attr]
    assert sorted(by_number) == list(range(1_000_000, 1_025_000))
    assert all(
        email == email_address(email.rsplit(".", 2)[0], number)
        for number, email in by_number.items()
    )


def test_fewer_rows_than_names() -> None:
    chunks = list(bulk.email_rows(1, 10, 3, user_names(1000)))

    assert [rows for _, rows in chunks] == [3]


@pytest.mark.parametrize(
    ("lowest", "count", "expected"),
    [
        (1, 9, 1),
        (1, 10, 10),
        (1, 1_000_000, 1_000_000),
        (5_000_001, 1000, 5_000_001),
        (9_999_999, 2, 10_000_000),
        (10, 1, 10),
    ],
)
def test_same_width_start(lowest: int, count: int, expected: int) -> None:
    start = bulk.same_width_start(lowest, count)

    assert start == expected
    assert len(str(start)) == len(str(start + count - 1))


def test_user_names_are_distinct_letters_and_stable() -> None:
    names = user_names(1000)

    assert len(set(names)) == 1000
    assert names == user_names(1000)
    assert all(re.fullmatch(r"[a-z][a-z_.]*[a-z]", name) for name in names)
    with pytest.raises(ValueError, match="at most"):
        user_names(10**6)


def test_generic_deferral_keeps_every_related_definition(session: Session, database: Any) -> None:
    database.query(
        """
        CREATE INDEX ix_users_created_at ON users (created_at DESC) WITH (fillfactor = 70);
        COMMENT ON INDEX ix_users_created_at IS 'newest first';
        COMMENT ON CONSTRAINT uq_users_email ON users IS 'one account per address';
        ALTER TABLE users CLUSTER ON pk_users;
        ALTER TABLE users REPLICA IDENTITY USING INDEX uq_users_email;
        CREATE TABLE posts (
            id serial PRIMARY KEY,
            author_id integer CONSTRAINT fk_posts_author REFERENCES users (id) ON DELETE CASCADE,
            author_email varchar(320) REFERENCES users (email) DEFERRABLE
        );
        INSERT INTO users (email) VALUES ('writer@example.com');
        INSERT INTO posts (author_id, author_email) VALUES (1, 'writer@example.com');
        SELECT 1;
        """
    )
    before = schema(database)
    assert len(before["constraints"]) > 5

    run_bulk(session, "--count", "2000")
    session.commit()

    assert schema(database) == before
    assert database.query("SELECT count(*) FROM users") == [(2001,)]


def test_a_failed_rebuild_rolls_back_to_the_migrated_schema(
    session: Session, database: Any
) -> None:
    migrated = schema(database)

    with loading.raw_cursor(session) as cursor:
        found = loading.read_indexes(cursor, "users")
        loading.drop_indexes(cursor, found)
        rows = [("1\tsame@example.com\n2\tsame@example.com\n", 2)]
        loading.copy_rows(cursor, found.table_identifier, ["id", "email"], rows)
        with pytest.raises(UniqueViolation):
            loading.create_indexes(cursor, found)
    session.rollback()

    assert schema(database) == migrated
    assert database.query("SELECT count(*) FROM users") == [(0,)]


def test_only_ordinary_tables_can_be_deferred(session: Session) -> None:
    session.execute(text("CREATE VIEW user_emails AS SELECT email FROM users"))

    with loading.raw_cursor(session) as cursor, pytest.raises(ScenarioError, match="ordinary"):
        loading.read_indexes(cursor, "user_emails")


def test_advance_sequence_needs_a_sequence(session: Session) -> None:
    with loading.raw_cursor(session) as cursor, pytest.raises(ScenarioError, match="no sequence"):
        loading.advance_sequence(cursor, "users", "email", 10)


def test_chunk_reader_skips_empty_chunks_and_reports_rows() -> None:
    seen: list[int] = []
    reader = loading.ChunkReader([("", 0), ("a\n", 1), ("b\nc\n", 2)], seen.append)

    assert [reader.read(8192), reader.read(), reader.read()] == ["a\n", "b\nc\n", ""]
    assert seen == [0, 1, 2]


def test_copy_rows_quotes_identifiers(session: Session) -> None:
    session.execute(text('CREATE TABLE "odd ""name""" ("a column" int)'))

    with loading.raw_cursor(session) as cursor:
        loading.copy_rows(cursor, sql.Identifier('odd "name"'), ["a column"], [("1\n2\n", 2)])

    assert session.execute(text('SELECT sum("a column") FROM "odd ""name"""')).scalar() == 3


def test_a_rejected_row_fails_the_load(session: Session) -> None:
    session.execute(text("ALTER TABLE users ADD CONSTRAINT short_email CHECK (length(email) < 5)"))

    with pytest.raises(CheckViolation, match="short_email"):
        bulk.load_users(session, 10)
