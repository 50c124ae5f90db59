"""The data home owns every path under it."""

from __future__ import annotations

from pathlib import Path

from core.home import HOME_ENV, DataHome


def test_every_path_lies_under_the_home(tmp_path):
    home = DataHome.at(tmp_path)
    paths = [
        home.warehouse_file, home.shared_dir, home.product_file("grid_1"), home.generation_warehouse_file("g000001"),
        home.generation_product_file("g000001", "grid_1"), home.generation_record("g000001"), home.current_link,
        home.publication_journal, home.lock_file, home.run_finished_marker("r1"), home.reports_dir,
        home.report_file("r1"), home.latest_report, home.review_decisions_file, home.audit_log_file,
        home.audit_members_file(3), home.keys_dir, home.audit_key_file, home.pseudonym_key_file("grid_1"),
        home.product_key_file("grid_1"), home.retired_product_key_file("grid_1", "0a1b2c3d"),
        home.audit_signing_key_file, home.audit_public_key_file, home.audit_export_file(12),
        home.asset_base("r1", ["staged_health"]),
        home.corrections_file("health", ".csv"), home.demo_dir, home.demo_truth_dir, home.dagster_dir,
        home.dagster_config_file,
    ]
    assert all(path.is_relative_to(tmp_path) for path in paths)
    assert len(set(paths)) == len(paths)
    # The fixed paths readers use lead, through `current`, to the same names inside a generation.
    assert home.product_file("grid_1").name == home.generation_product_file("g000001", "grid_1").name
    assert home.warehouse_file.relative_to(home.root) == (
        home.generation_warehouse_file("g1").relative_to(home.generation_dir("g1")))
    assert set(home.published_link_targets().values()) == {"current/warehouse", "current/shared"}
    assert home.pseudonym_key_file("grid_1") != home.product_key_file("grid_1")


def test_generation_products_and_retired_keys_are_found_by_recipient_and_key_id(tmp_path):
    home = DataHome.at(tmp_path)
    for recipient in ("grid_1", "grid_10"):
        home.generation_product_file("g000001", recipient).parent.mkdir(parents=True, exist_ok=True)
        home.generation_product_file("g000001", recipient).write_bytes(b"x")
        home.retired_product_key_file(recipient, f"id{recipient[-1]}").parent.mkdir(parents=True, exist_ok=True)
        home.retired_product_key_file(recipient, f"id{recipient[-1]}").write_bytes(b"k")
    home.product_key_file("grid_1").write_bytes(b"current")
    assert home.generation_product_files("g000001") == {
        "grid_1": home.generation_product_file("g000001", "grid_1"),
        "grid_10": home.generation_product_file("g000001", "grid_10"),
    }
    assert home.retired_product_key_files("grid_1") == {"id1": home.retired_product_key_file("grid_1", "id1")}
    assert home.generation_product_files("g000009") == {} and DataHome.at(tmp_path / "x").retired_product_key_files("a") == {}


def test_resolve_prefers_the_explicit_path_then_the_environment_then_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert DataHome.resolve(tmp_path / "given").root == tmp_path / "given"
    assert DataHome.resolve().root == tmp_path / "from-env"
    monkeypatch.delenv(HOME_ENV)
    assert DataHome.resolve().root == tmp_path / "var"
    assert (tmp_path / "var").is_dir() and (tmp_path / "given").is_dir()


def test_at_wraps_without_creating_and_declared_paths_resolve_under_the_home(tmp_path):
    home = DataHome.at(tmp_path / "not-yet")
    assert not home.root.exists() and DataHome.at(home) is home
    assert home.declared_path("demo/x.csv") == tmp_path / "not-yet" / "demo" / "x.csv"
    assert home.declared_path("/srv/x.csv") == Path("/srv/x.csv")
