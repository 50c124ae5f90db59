"""The warehouse's data dictionary: one catalogue, shown in docs/warehouse.md and written into the file as comments."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from publish import Warehouse
from publish.catalog import DOC_BEGIN, DOC_END, TABLES, add_comments, markdown, rewrite_doc, unified_columns
from publish.populations import KeyPopulations, default_populations
from tests.publish.conftest import make_inputs, policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"
CIVIL = dict(name="civil", description="民政", kind="department", level="district", purpose="service_delivery",
             legal_basis="statutory", columns=["person_id", "name", "id_number", "phone"])


def comments(path: Path) -> tuple[dict[str, str | None], dict[tuple[str, str], tuple[str, str | None]]]:
    """Each table's comment, and each column's type and comment, read from a fresh read-only connection."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() "
                                  "WHERE database_name = current_database()").fetchall())
        columns = {(t, c): (kind, comment) for t, c, kind, comment in con.execute(
            "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal").fetchall()}
    return tables, columns


def test_docs_warehouse_md_shows_the_catalogue_as_it_is():
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(DOC_BEGIN):text.index(DOC_END) + len(DOC_END)]
    assert generated == markdown(), "docs/warehouse.md is out of date with publish/catalog.py: run make warehouse-doc"


def test_rewriting_the_document_replaces_only_its_generated_section(tmp_path):
    doc = tmp_path / "warehouse.md"
    doc.write_text(f"# The warehouse\n\nprose before\n\n{DOC_BEGIN}\nstale\n{DOC_END}\n\nprose after\n", encoding="utf-8")
    assert rewrite_doc(doc) is True and rewrite_doc(doc) is False
    text = doc.read_text(encoding="utf-8")
    assert "stale" not in text and text.startswith("# The warehouse\n\nprose before\n\n")
    assert text.endswith(f"{DOC_END}\n\nprose after\n") and "### unified_population" in text
    doc.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no generated section"):
        rewrite_doc(doc)


def test_a_column_comment_starts_with_its_chinese_name_and_drops_markdown():
    assert TABLES["unified_population"].column("record_count").comment.startswith("记录数：")
    assert TABLES["source_records"].column("record_date").comment.startswith("登记日期：")
    assert TABLES["unified_population"].column("elderly_living_alone").comment.startswith("独居老人：")
    assert "`" not in TABLES["unified_population"].column("birth_day").comment
    # A level of the name comparison is not a name: it does not take the field's label.
    assert TABLES["link_pairs"].column("name").comment.startswith("姓名比对等级：")


def test_an_undocumented_table_or_column_is_reported_and_left_without_a_comment():
    with duckdb.connect() as con:
        con.execute("CREATE TABLE runs (run_id VARCHAR, persons BIGINT, mystery VARCHAR)")
        con.execute("CREATE TABLE scratch (x INTEGER)")
        missing = add_comments(con)
        rows = dict(con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'runs'").fetchall())
        table = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'runs'").fetchone()[0]
    assert missing == ["runs.mystery", "scratch"]
    assert rows["persons"] == TABLES["runs"].column("persons").comment and rows["mystery"] is None
    assert table == TABLES["runs"].comment


@pytest.mark.integration
def test_comments_survive_the_duckdb_1_2_storage_format_and_a_carried_over_publication(tmp_path, district):
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district), policy(CIVIL)))
    wh.publish(wh.build_candidate(make_inputs(district, run_id="run2"), policy(CIVIL)))  # history carried over
    with duckdb.connect(str(wh.path), read_only=True) as con:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    assert tags["storage_version"] == "v1.2.0+"
    tables, columns = comments(wh.path)
    assert tables["runs"] == TABLES["runs"].comment and all(tables.values())
    assert all(comment for _, comment in columns.values())
    assert columns[("source_records", "record_date")] == ("DATE", TABLES["source_records"].column("record_date").comment)


@pytest.mark.integration
def test_after_a_pipeline_run_every_table_and_column_has_the_catalogue_comment_and_type(published_demo):
    settings, _ = published_demo
    tables, columns = comments(settings.home.warehouse_file)
    documented = {(t.name, c.name): (c.type, c.comment) for t in TABLES.values() for c in t.columns}
    assert set(tables) == set(TABLES), "a table the catalogue does not describe, or one it describes that is gone"
    assert {name: comment for name, comment in tables.items()} == {name: t.comment for name, t in TABLES.items()}
    assert set(columns) == set(documented)
    assert {k: v for k, v in columns.items() if v != documented[k]} == {}
    assert all(comment.strip() for _, comment in columns.values())


def test_the_unified_tables_declared_columns_are_the_deployments_key_populations():
    # A district's populations.yaml gives unified_population other columns than the default categories: the asset's
    # declared schema (assets.published) follows it, in the place the document lists the categories.
    own = KeyPopulations(version=1, categories=[{"code": "veteran", "label": "退役军人", "rule": "age >= 18"}])
    names = [c.name for c in unified_columns(own)]
    default = [c.code for c in default_populations().categories]
    assert "veteran" in names and not set(default) & set(names)
    assert names.index("veteran") == [c.name for c in TABLES["unified_population"].columns].index(default[0])
    assert [c.name for c in unified_columns()] == [c.name for c in TABLES["unified_population"].columns]
