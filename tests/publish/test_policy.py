"""policy.yaml validation: impossible policies fail at load with the file and the key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from pipelines.settings import DEMO_POLICY
from publish import load_policy


def write(tmp_path, text: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """version: 1
recipients:
  - name: r
    description: d
    kind: {kind}
    level: district
    purpose: statistics
    legal_basis: statutory
    columns: {columns}
{extra}"""


@pytest.mark.parametrize(
    ("kind", "columns", "extra", "message"),
    [
        ("department", "[nmae]", "", r"recipients\[0\]\.columns: .*unknown column\(s\) \['nmae'\]"),
        ("analyst", "[person_id, name]", "    pseudonymise: true\n", "analysts get no direct identifiers"),
        ("analyst", "[person_id, sex]", "", "must set pseudonymise: true"),
        ("department", "[person_id, name]", "    pseudonyms: stable\n", "pseudonyms .* needs pseudonymise: true"),
        ("analyst", "[person_id, sex]", "    pseudonymise: true\n    pseudonyms: forever\n",
         r"pseudonyms: .*'per_release' or 'stable'"),
        ("grid_worker", "[name]", "", "must be bound to one grid"),
        ("department", "[name]", "    mask: {phone: partial}\n", "mask on 'phone', which is not in columns"),
        ("department", "[name]", "    population: [elderly_alone]\n", r"unknown key population\(s\) \['elderly_alone'\]"),
        ("analyst", "[person_id, birth_date]", "    pseudonymise: true\n", "analysts get no direct identifiers"),
        ("analyst", "[sex]", "    aggregate: {by: community}\n", "an aggregate recipient gets counts only"),
        ("analyst", "[]", "    aggregate: {by: community, threshold: 1}\n", r"aggregate\.threshold: .*greater than or equal to 2"),
        ("analyst", "[]", "    aggregate: {by: building}\n", r"aggregate\.by"),
        ("department", "[]", "", "name the columns shared"),
        ("department", "[name, key_populations]", "", "key_populations is in columns but no category is named"),
        ("department", "[name]", "    key_populations: [disabled]\n", "the key_populations column is not in columns"),
        # health and judicial data need the law that allows them, even on a statutory basis (PIPL art. 28)
        ("department", "[name, corrections]", "    legal_reference: 社会救助暂行办法\n",
         r"column corrections is judicial data .*sensitive_legal_reference: \{judicial"),
        ("department", "[name, key_populations]", "    key_populations: [disabled, pregnant_woman]\n",
         "key population pregnant_woman is health data"),
        ("department", "[name]", "    population: [community_corrections]\n",
         "population filter community_corrections is judicial data"),
    ],
)
def test_bad_policy_fails_naming_file_and_key(tmp_path, kind, columns, extra, message):
    path = write(tmp_path, BASE.format(kind=kind, columns=columns, extra=extra))
    with pytest.raises(ConfigError, match=message) as err:
        load_policy(path)
    assert str(path) in str(err.value)


def test_demo_policy_loads():
    policy = load_policy(DEMO_POLICY)
    assert {r.kind for r in policy.recipients} == {"department", "grid_worker", "analyst"}


def test_statutory_register_needs_a_statutory_basis(tmp_path):
    text = BASE.format(kind="department", columns="[name]", extra="    statutory_register: true\n")
    path = write(tmp_path, text.replace("legal_basis: statutory", "legal_basis: consent"))
    with pytest.raises(ConfigError, match="statutory_register: true needs legal_basis: statutory"):
        load_policy(path)


def test_demo_policy_has_an_aggregate_and_a_register():
    policy = load_policy(DEMO_POLICY)
    assert any(r.aggregate is not None for r in policy.recipients)
    assert [r.name for r in policy.recipients if r.statutory_register] == ["civil_affairs_assistance"]


def test_sensitive_data_on_a_statutory_basis_loads_with_its_law(tmp_path):
    extra = ("    key_populations: [disabled, community_corrections]\n"
             "    sensitive_legal_reference: {judicial: 社区矫正法 第五条}\n")
    recipient = load_policy(write(tmp_path, BASE.format(kind="department", columns="[name, key_populations]",
                                                        extra=extra))).recipients[0]
    assert recipient.shared_key_populations == ["disabled", "community_corrections"]
    assert recipient.sensitive_categories == {"judicial": "key population community_corrections"}
