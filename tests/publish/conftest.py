"""Small hand-made canonical records for publication tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from connectors import Lineage
from core.home import DataHome
from publish import Generations, PublicationInputs, SharingPolicy, product_key, read_product
from quality import StagingReport, ValidationSummary
from staging.pinyin import name_pinyin

RECORD_COLUMNS = [
    "record_id", "source", "source_key", "name", "sex", "birth_date", "birth_date_precision", "id_number",
    "id_number_valid", "id_sex", "phone", "address", "street", "community", "grid", "record_date",
    "lives_alone", "low_income", "disability_grade", "chronic_disease", "pregnant", "corrections", "case_type",
    "hukou_address", "residence_status", "change", "reported_by", "note",
]


def records(*rows: dict) -> pd.DataFrame:
    """A canonical frame from partial rows; missing columns are null."""
    frame = pd.DataFrame([{c: row.get(c) for c in RECORD_COLUMNS} for row in rows])
    for column in ("lives_alone", "low_income", "pregnant", "corrections", "id_number_valid"):
        frame[column] = frame[column].astype("boolean")
    frame["disability_grade"] = frame["disability_grade"].astype("Int8")
    frame["name_pinyin"] = name_pinyin(frame["name"].astype("string"))  # as staging derives it
    return frame


ZHANG = "330106195001010012"
LI = "330106198502020021"


@pytest.fixture
def district() -> dict[str, pd.DataFrame]:
    """Three people: 张伟 (elderly, lives alone, in two departments with a conflicting phone),
    李娜 (adult, health only) and 王芳 (census only, no ID)."""
    recs = records(
        dict(record_id="civil_affairs:1", source="civil_affairs", source_key="1", name="张伟", sex="M",
             birth_date="1950-01-01", birth_date_precision="day", id_number=ZHANG, id_number_valid=True, id_sex="M",
             phone="13800000001", address="示范区西溪街道翠苑社区1幢", street="西溪街道", community="翠苑社区",
             grid="翠苑社区第1网格", record_date="2026-01-01", lives_alone=True),
        dict(record_id="health:9", source="health", source_key="9", name="张伟", sex="M",
             birth_date="1950-01-01", birth_date_precision="day", id_number=ZHANG, id_number_valid=True, id_sex="M",
             phone="13900000009", record_date="2026-06-01", chronic_disease="高血压"),
        dict(record_id="health:10", source="health", source_key="10", name="李娜", sex="F",
             birth_date="1985-02-02", birth_date_precision="day", id_number=LI, id_number_valid=True, id_sex="F",
             record_date="2026-05-01", pregnant=True),
        dict(record_id="census:5", source="census", source_key="5", name="王芳", sex="F",
             birth_date="2023-03", birth_date_precision="month", street="西溪街道", community="翠苑社区",
             grid="翠苑社区第1网格", record_date="2026-01-01"),
    )
    mapping = pd.DataFrame({
        "record_id": ["civil_affairs:1", "health:9", "health:10", "census:5"],
        "person_id": ["P_zhang", "P_zhang", "P_li", "P_wang"],
    })
    consent = pd.DataFrame({
        "record_id": ["consent:1", "consent:2", "consent:3"],
        "source": "consent_registry",
        "source_key": ["1", "2", "3"],
        "id_number": [ZHANG, ZHANG, LI],
        "name": ["张伟", "张伟", "李娜"],
        "purpose": ["service_delivery"] * 3,
        "recipient": ["health", "health", "*"],
        "status": ["granted", "withdrawn", "granted"],
        "decided_at": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-01-01"], utc=True),
        "channel": ["线下窗口", "政务APP", "电话"],
    })
    return {"records": recs, "mapping": mapping, "consent": consent}


def staging_report(source: str, rows: int = 2, role: str = "person") -> StagingReport:
    """A staging report for ``source`` with no declared fields (the measures then use what it fills)."""
    lineage = Lineage(source, "csv", f"/x/{source}.csv", datetime(2026, 11, 23, tzinfo=UTC), rows, "ab", "utf-8")
    validation = ValidationSummary(f"staged_{source}", True, rows)
    return StagingReport(source, source, role, lineage, rows, rows, 0, validation)


def make_inputs(district: dict[str, pd.DataFrame], run_id: str = "run1", **changes) -> PublicationInputs:
    values = dict(
        run_id=run_id,
        records=district["records"],
        mapping=district["mapping"],
        link_pairs=pd.DataFrame({"record_id_l": ["civil_affairs:1"], "record_id_r": ["health:9"], "score": [12.0]}),
        quarantine=pd.DataFrame({"source": ["health"], "source_key": ["11"], "rule": ["missing_name"],
                                 "message": ["name is empty"]}),
        consent=district["consent"],
        staging_reports=[staging_report(s) for s in ("civil_affairs", "health", "census")],
        trust={"civil_affairs": 0, "health": 1, "census": 2},
        as_of=date(2026, 11, 23),
    )
    values.update(changes)
    return PublicationInputs(**values)


def policy(*recipients: dict) -> SharingPolicy:
    return SharingPolicy.model_validate({"version": 1, "recipients": list(recipients)})


def read_shared(home: Path, recipient: str) -> pd.DataFrame:
    """A published product, decrypted with its recipient's key (as the recipient would)."""
    return read_product(DataHome.at(home).product_file(recipient), product_key(home, recipient)).to_pandas()


@contextmanager
def warehouse_rewritten(home: Path, recorded: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection to the published warehouse, for a test that changes it in place: as an earlier version
    left it (its generation's record then holds no SHA-256, as none did before 2026-12-06), or, ``recorded``, as
    someone who also rewrites that record would (the SHA-256 finds damage, not someone who can write the home)."""
    home = DataHome.at(home)
    with duckdb.connect(str(home.warehouse_file)) as con:
        yield con
    name = Generations(home).current().name
    record = home.generation_record(name)
    data = json.loads(record.read_text(encoding="utf-8"))
    data.pop("warehouse_sha256")
    if recorded:
        data["warehouse_sha256"] = hashlib.sha256(home.generation_warehouse_file(name).read_bytes()).hexdigest()
    record.write_text(json.dumps(data), encoding="utf-8")
