"""The house rules that keep one owner per concept: checked on the source, so drift fails CI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "connectors", "staging", "dedup", "quality", "publish", "assets", "pipelines", "demo")

# Folder and file names under the data home; only core/home.py may join them onto a path.
HOME_NAMES = {
    "warehouse", "silobreaker.duckdb", "shared", "reports", "latest.html", "review", "decisions.parquet",
    "audit", "publication_log.jsonl", "members", "keys", "audit.key", "audit_signing.key", "audit_signing.pub", "staging",
    "quarantine", "corrections", "demo", "truth", "areas.csv",
    "dagster", "dagster.yaml",
}


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def spelled_home_paths(source: str, name: str) -> list[str]:
    """``x / "warehouse"``-style joins of a data-home name in one module's source (paths in the
    repository, built from ``__file__``, such as the demo's declarations, are not under the home)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            in_repository = any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node.left))
            if isinstance(right, ast.Constant) and right.value in HOME_NAMES and not in_repository:
                found.append(f"{name}:{node.lineno} / {right.value!r}")
    return found


def test_no_path_under_the_data_home_is_spelled_outside_the_data_home_object():
    spelled = [
        hit
        for path in modules(*PACKAGES)
        if path != ROOT / "core" / "home.py"
        for hit in spelled_home_paths(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert spelled == []


def test_the_house_rule_finds_a_spelled_path():
    source = 'from pathlib import Path\nreport = Path(home) / "reports" / "latest.html"\n'
    assert spelled_home_paths(source, "bad.py") == ["bad.py:2 / 'latest.html'", "bad.py:2 / 'reports'"]


def test_only_publish_opens_the_published_warehouse():
    # The warehouse file is named by the data home and opened by publish (writer and reader) alone;
    # everyone else asks publish.WarehouseReader.
    users = sorted(
        str(path.relative_to(ROOT))
        for path in modules(*PACKAGES)
        if path.parent.name != "publish" and path != ROOT / "core" / "home.py"
        and any(name in path.read_text(encoding="utf-8") for name in ("warehouse_file", "warehouse_candidate"))
    )
    assert users == []


def test_outside_publish_duckdb_only_opens_in_memory_databases():
    # SQL over published tables runs in publish/ alone; the other rooms use DuckDB as an engine.
    opened = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in modules(*PACKAGES) if path.parent.name != "publish"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "duckdb" and (node.args or node.keywords)
    ]
    assert opened == []


@pytest.mark.parametrize("package", ["dedup", "staging", "core"])
def test_low_rooms_import_no_database_driver_reader_or_dagster(package):
    probe = (f"import sys, {package}; "
             "print(sorted(m for m in ('sqlalchemy', 'openpyxl', 'dagster', 'psycopg', 'pymysql') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
