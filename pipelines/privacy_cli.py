"""``silobreaker audit``, ``silobreaker product`` and ``silobreaker keys``: the audit trail, the encrypted
products and their keys.

    silobreaker audit verify [--against FILE]   check the log, its signatures and its anchors; exit 1 naming
                                                what disagrees
    silobreaker audit export [--out FILE]       write the log's head, public key and entries for a notary
    silobreaker audit person <id number>        which recipients received this person's data, when, why
    silobreaker audit person --person-id P      ... by person id (people without an ID number too)
    silobreaker audit person --name N --birth-date YYYY-MM-DD   ... by name and birth date
    silobreaker product read <recipient>        decrypt a product: print it, or --out a plain parquet file
    silobreaker keys rotate <recipient>         give a recipient a new product key; the old one is kept
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict
from datetime import date
from pathlib import Path

from core.errors import ConfigError
from core.home import HOME_ENV, DataHome
from core.lock import hold_data_home
from pipelines.console import add_json_flag, print_json

__all__ = ["add_privacy_commands"]


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from publish.anchors import verify_trail

    home = DataHome.resolve(args.home)
    trail = verify_trail(home, Path(args.against) if args.against else None)
    log = trail.log
    path = home.audit_log_file
    if args.json:
        print_json({"ok": trail.ok, "log": {"path": str(path), **asdict(log)}, "agrees": list(trail.checked),
                    "not_checked": list(trail.unchecked), "disagrees": list(trail.problems)})
        return 0 if trail.ok else 1
    if log.ok:
        signed = f", {log.signed} signed (key {log.fingerprint[:16]}…)" if log.signed and log.fingerprint else ""
        print(f"audit log: {log.entries} entries, chain verified{signed} ({path})")
    elif log.broken_seq is not None:
        line = f"line {log.broken_line} of " if log.broken_line else ""
        print(f"audit log BROKEN at entry {log.broken_seq} ({line}{path}): {log.reason}; "
              f"{log.entries} entries before it verify")
    elif log.broken_line is not None:
        print(f"audit log BROKEN at line {log.broken_line} of {path}: {log.reason}; {log.entries} entries before it verify")
    else:
        print(f"audit log BROKEN ({path}): {log.reason}")
    for note in trail.checked:
        print(f"  agrees: {note}")
    for note in trail.unchecked:
        print(f"  not checked: {note}")
    for problem in trail.problems:
        print(f"DISAGREES: {problem}")
    print("audit trail intact" if trail.ok else "audit trail BROKEN")
    return 0 if trail.ok else 1


def _cmd_audit_export(args: argparse.Namespace) -> int:
    from publish import AuditLog

    home = DataHome.resolve(args.home)
    export = AuditLog(home).export()
    out = Path(args.out) if args.out else home.audit_export_file(export["head"]["seq"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(export, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    head = export["head"]
    if args.json:
        print_json({"out": str(out), "head": head, "entries": len(export["entries"]),
                    "fingerprint": export["fingerprint"], "exported_at": export["exported_at"]})
        return 0
    print(f"exported the audit log up to entry {head['seq']} (hash {head['hash']}) with its public key to {out}; "
          "hand it to the notary to timestamp, and check later with: silobreaker audit verify --against FILE")
    return 0


def _cmd_audit_person(args: argparse.Namespace) -> int:
    from publish import AuditLog, WarehouseReader

    home = DataHome.resolve(args.home)
    log = AuditLog(home)
    asked = [bool(args.id_number), bool(args.person_id), bool(args.name or args.birth_date)]
    if sum(asked) != 1 or (asked[2] and not (args.name and args.birth_date)):
        raise ConfigError("ask by one of: an ID number (silobreaker audit person 330106195001010012), a person id "
                          "(--person-id P…), or a name with a birth date (--name 张三 --birth-date 1950-01-01)")
    if args.id_number:
        entries = log.person(args.id_number)
    else:
        reader = WarehouseReader(home)
        person_id = args.person_id
        if person_id is None:
            try:
                date.fromisoformat(args.birth_date)
            except ValueError as e:
                raise ConfigError(f"--birth-date {args.birth_date!r} is not a date: write it as YYYY-MM-DD, e.g. "
                                  "--birth-date 1950-01-01") from e
            found = reader.person_ids_named(args.name, args.birth_date)
            if len(found) != 1:
                print(_not_one_person(args.name, args.birth_date, found), file=sys.stderr)
                return 1
            person_id = found[0]
        entries = log.person_by_ids(reader.earlier_person_ids(person_id))
    if args.json:
        keep = ("published_at", "run_id", "recipient", "purpose", "legal_basis", "legal_reference", "columns", "seq")
        print_json([{k: e.get(k) for k in keep} for e in entries])
        return 0
    if not entries:
        print("no publication has included this person")
        return 0
    print(f"{'published at':<27}{'recipient':<28}{'purpose':<20}{'basis':<11}columns")
    for e in entries:
        basis = e["legal_basis"] + (f" ({e['legal_reference']})" if e.get("legal_reference") else "")
        print(f"{e['published_at'][:19]:<27}{e['recipient']:<28}{e['purpose']:<20}{basis:<11} {', '.join(e['columns'])}")
    return 0


def _not_one_person(name: str, birth_date: str, found: list[str]) -> str:
    if not found:
        return (f"no person named {name} born {birth_date} is in the published warehouse; ask by ID number or "
                "person id if they were published under another name or birth date")
    # Never merge two people's records into one answer: the clerk tells them apart in the warehouse.
    return (f"{len(found)} people named {name} born {birth_date} are in the published warehouse ({', '.join(found)}); "
            "find which one is asking there (address, phone) and ask again with --person-id")


def _key_for(args: argparse.Namespace, home: DataHome, file_key_id: str | None) -> bytes:
    from publish.crypto import product_keys

    if args.key_file:
        text = Path(args.key_file).read_bytes()
        # A key file is either the 32 raw bytes the platform keeps or their 64-character hex form.
        return text if len(text) == 32 else bytes.fromhex(text.decode("ascii").strip())
    keys = product_keys(home, args.recipient)
    if file_key_id in keys:
        return keys[file_key_id]
    if keys and file_key_id is None:  # a file written before key ids: the current key
        return next(iter(keys.values()))
    if keys:
        raise SystemExit(f"error: this product was encrypted under key id {file_key_id}; the platform holds key ids "
                         f"{', '.join(keys)} for {args.recipient}: pass the recipient's key with --key-file")
    env = f"SILOBREAKER_PRODUCT_KEY_{args.recipient.upper()}"
    raise SystemExit(f"error: no key for {args.recipient}: pass --key-file, or set {env}")


def _cmd_product_read(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from publish.crypto import KeyIdMismatchError, product_key_id, read_product

    home = DataHome.resolve(args.home)
    path = Path(args.file) if args.file else home.product_file(args.recipient)
    try:
        key_id = product_key_id(path)
        table = read_product(path, _key_for(args, home, key_id), identifier=args.recipient)
    except KeyIdMismatchError as e:
        from publish.crypto import product_keys

        held = product_keys(home, args.recipient)
        if e.file_key_id in held and next(iter(held)) == e.file_key_id:
            where = f"it is the platform's current key, {home.product_key_file(args.recipient)}"
        elif e.file_key_id in held:
            where = f"the platform keeps it as {home.retired_product_key_file(args.recipient, e.file_key_id)}"
        else:
            where = "the platform holds no key with that id: ask for the key the product was sent with"
        print(f"error: cannot read {path}: this product was encrypted under key id {e.file_key_id}; your key is "
              f"{e.offered_key_id}. Use the key with id {e.file_key_id} ({where})", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"error: cannot read {path}: {e}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        suffix = out.suffix.lower()
        if suffix == ".parquet":
            pq.write_table(table, out)
        elif suffix == ".csv":
            import pyarrow.csv as pcsv

            # UTF-8 with a byte-order mark: Excel and WPS then read the Chinese text right.
            with open(out, "wb") as f:
                f.write("\ufeff".encode())
                pcsv.write_csv(_printable(table), f)
        elif suffix == ".xlsx":
            from publish.office import SheetTooLong, write_plain_xlsx

            try:
                write_plain_xlsx(table, out)
            except SheetTooLong as e:
                print(f"error: --out {out}: {e.rows:,} rows do not fit an Excel sheet; write .csv or .parquet",
                      file=sys.stderr)
                return 2
        else:
            print(f"error: --out {out}: write .parquet, .csv (UTF-8 with BOM, for Excel/WPS) or .xlsx", file=sys.stderr)
            return 2
        if args.json:
            print_json({**_product_metadata(args.recipient, path, key_id, table), "out": str(out), "encrypted": False})
            return 0
        print(f"decrypted {table.num_rows} rows to {out} (not encrypted: keep it inside the recipient's zone)")
        return 0
    import duckdb

    product = table  # DuckDB reads the Arrow table by its Python name
    disclosure = _disclosure_of(table, home, args.recipient, path)
    if args.json:
        document = {**_product_metadata(args.recipient, path, key_id, table), "disclosure": disclosure}
        if args.sql:
            try:
                result = duckdb.sql(args.sql.replace("{product}", "product")).df()
            except duckdb.Error as e:
                return _sql_error(e)
            document["result"] = json.loads(result.to_json(orient="records", date_format="iso", force_ascii=False))
        print_json(document)
        return 0
    if args.sql:
        try:
            print(duckdb.sql(args.sql.replace("{product}", "product")))
        except duckdb.Error as e:
            return _sql_error(e)
    else:
        print(duckdb.sql(f"FROM product LIMIT {int(args.limit)}"))
        print(f"{product.num_rows} rows")
    if disclosure and "k_required" in disclosure:
        print(deidentified_text(disclosure), file=sys.stderr)
    return 0


def _disclosure_of(table, home: DataHome, recipient: str, path: Path) -> dict | None:
    """What de-identification did to this very file: as the file itself carries it (in its encrypted footer, so a
    recipient reading it away from the platform sees it too), else, for a file published before files carried it,
    as the warehouse's ``publication_log`` records it (found by the file's SHA-256); ``None`` for a product without
    one, or a file neither says anything of."""
    import hashlib

    import duckdb

    from core.errors import SilobreakerError
    from publish import WarehouseReader
    from publish.crypto import DISCLOSURE_METADATA

    carried = (table.schema.metadata or {}).get(DISCLOSURE_METADATA.encode())
    if carried is not None:
        return json.loads(carried)
    reader = WarehouseReader(home)
    if not reader.exists:
        return None
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    try:
        with reader.connect() as con:
            rows = con.execute("SELECT disclosure FROM publication_log WHERE recipient = ? AND content_hash = ? "
                               "AND disclosure IS NOT NULL LIMIT 1", [recipient, digest]).fetchall()
    except (SilobreakerError, duckdb.Error):
        return None
    return json.loads(rows[0][0]) if rows else None


def deidentified_text(disclosure: dict) -> str:
    """What an analyst reading a de-identified product is told of it, in Chinese: why cells are empty, from what the
    product's disclosure records (:class:`publish.anonymity.Disclosure`)."""
    from core.vocabulary import FIELD_LABELS
    from publish.anonymity import AREA_LEVELS

    qis = set(disclosure.get("quasi_identifiers") or ())
    said = []
    ages = [c for c in ("age", "birth_year") if c in qis]
    if ages:
        band, label = disclosure.get("age_band"), FIELD_LABELS[ages[0]]
        unit = "岁" if ages[0] == "age" else "年"
        said.append(f"不显示{'和'.join(FIELD_LABELS[c] for c in ages)}" if band is None
                    else f"{label}按{band}{unit}分段" if band else f"{label}照实显示")
    areas = [c for c in AREA_LEVELS if c in qis]
    if areas:
        shown = disclosure.get("area")
        hidden = areas if shown is None else areas[:areas.index(shown)] if shown in areas else []
        if hidden:
            said.append("不显示" + "、".join(FIELD_LABELS[c] for c in reversed(hidden)))
    if "sex" in qis and not disclosure.get("sex_shown", True):
        said.append("不显示性别")
    # Rows suppressed and still released: the ones the last check left out are counted as left out (an older
    # disclosure without rows_blank says nothing of them rather than something untrue).
    if blank := disclosure.get("rows_blank"):
        shown_qis = [FIELD_LABELS.get(c, c) for c in (*ages, "sex", *areas) if c in qis]
        said.append(f"另有 {blank:,} 行的{'、'.join(shown_qis)}和其他部门也知道的重点人群类别都不显示（同样组合的人太少）")
    if flags := disclosure.get("flags_withheld"):
        said.append(f"{flags:,} 处重点人群类别在人数太少的地区不显示")
    if left := disclosure.get("rows_left_out"):
        said.append(f"{left:,} 人未列入")
    # Held against the newest earlier release (publish.releases): what an analyst sees is partly as it was.
    k = disclosure.get("k_required")
    if held := disclosure.get("rows_held"):
        said.append(f"{disclosure.get('classes_held', 0):,} 个组合自此前发布以来的变动还不足以混在 {k} 人之中，"
                    f"照此前发布列出 {held:,} 行（其中 {disclosure.get('rows_outdated', 0):,} 行已与现状不同）")
    if withheld := disclosure.get("classes_withheld"):
        said.append(f"{withheld:,} 个组合暂不列出（{disclosure.get('rows_withheld', 0):,} 行），变动凑足 {k} 人后恢复")
    if behind := disclosure.get("rows_behind"):
        said.append(f"{behind:,} 行最新变动暂未列出，凑足 {k} 人后一并列出")
    if disclosure.get("not_held"):
        said.append("本次未能与此前发布逐组核对（原因见运行日志），与上一期相减可能认出个人")
    summary = "；".join(said) or "各列照常显示"
    held = ("; classes that changed by fewer than k people since an earlier release are shown as then released"
            if disclosure.get("rows_held") or disclosure.get("classes_withheld") else "")
    return (f"注：本产品按 k-匿名发布（每种组合至少 {disclosure.get('k_required')} 行）：{summary}。各次发布只会更粗，"
            f"不会更细 / note: de-identified product; empty cells are generalised away, not missing data{held}")


def _sql_error(error: Exception) -> int:
    print(f"error: --sql: {error}".splitlines()[0] + "\n(the decrypted table is called product, e.g. "
          "\"SELECT grid, count(*) FROM product GROUP BY grid\")", file=sys.stderr)
    return 2


def _product_metadata(recipient: str, path: Path, key_id: str | None, table) -> dict:
    """What ``product read --json`` says of a product: where it is, its key, rows and columns."""
    return {"recipient": recipient, "file": str(path), "key_id": key_id, "rows": table.num_rows,
            "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema]}


def _printable(table):
    """Lists (key populations) joined as text, for formats without lists."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pc.binary_join(column, "、")
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _cmd_product_password(args: argparse.Namespace) -> int:
    from publish.crypto import product_keys
    from publish.office import office_password

    home = DataHome.resolve(args.home)
    keys = product_keys(home, args.recipient)
    if not keys:
        print(f"error: no product key for {args.recipient} under {home.root}/keys (has a run published it?)",
              file=sys.stderr)
        return 2
    key_id, key = next(iter(keys.items()))
    files = [path.name for path in (home.office_file(args.recipient, f) for f in ("xlsx", "csv")) if path.exists()]
    if args.json:
        print_json({"recipient": args.recipient, "password": office_password(key), "key_id": key_id, "files": files})
        return 0
    delivered = " / ".join(files) or "no xlsx or zip published yet: the policy gives it parquet only"
    print(f"{office_password(key)}    ({delivered}, key id {key_id}: hand it over out of band, never beside the file)")
    return 0


def _cmd_keys_rotate(args: argparse.Namespace) -> int:
    from publish.crypto import rotate_product_key

    home = DataHome.resolve(args.home)
    # Under the run lock: a run building products meanwhile would encrypt some under each key.
    with hold_data_home(home, f"keys-rotate-{uuid.uuid4()}"):
        rotation = rotate_product_key(home, args.recipient)
    if args.json:
        print_json(asdict(rotation))
        return 0
    print(f"rotated the product key of {rotation.recipient}: key id {rotation.old_key_id} -> {rotation.new_key_id}. "
          f"Products published before stay under {rotation.old_key_id} (kept as {rotation.retired_file}); the next "
          f"run encrypts under {rotation.new_key_id}. Hand the new key to the recipient out of band: "
          f"xxd -p -c 64 {rotation.key_file}")
    return 0


def add_privacy_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``audit``, ``product`` and ``keys`` to the ``silobreaker`` parser's subcommands."""
    home_help = f"data home (default ${HOME_ENV} or ./var)"
    audit = sub.add_parser("audit", help="verify the signed publication log and its anchors; answer a citizen's query")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the log's chain and signatures, and that the warehouse, the "
                                  "products (and an export) agree with it; exit 1 naming what disagrees")
    verify.add_argument("--home", help=home_help)
    verify.add_argument("--against", metavar="FILE", help="an earlier `audit export`: the log must still hold its head")
    add_json_flag(verify)
    verify.set_defaults(func=_cmd_audit_verify)
    export = audit_sub.add_parser("export", help="write the log's head, public key and entries (JSON) for an outside "
                                  "notary to timestamp")
    export.add_argument("--home", help=home_help)
    export.add_argument("--out", metavar="FILE", help="file to write (default <home>/audit/exports/audit-<seq>.json)")
    add_json_flag(export)
    export.set_defaults(func=_cmd_audit_export)
    person = audit_sub.add_parser("person", help="which recipients received this person's data, when, for what")
    person.add_argument("id_number", nargs="?", help="resident ID number (18 characters)")
    person.add_argument("--person-id", help="the person's id in the warehouse (for people without an ID number)")
    person.add_argument("--name", help="the person's name, with --birth-date")
    person.add_argument("--birth-date", metavar="YYYY-MM-DD", help="the person's birth date, with --name")
    person.add_argument("--home", help=home_help)
    add_json_flag(person)
    person.set_defaults(func=_cmd_audit_person)

    product = sub.add_parser("product", help="work with the encrypted per-recipient products")
    product_sub = product.add_subparsers(dest="product_command", required=True)
    read = product_sub.add_parser("read", help="decrypt a product and show it, query it, or write it out")
    read.add_argument("recipient", help="recipient name (the product's file name)")
    read.add_argument("--home", help=home_help)
    read.add_argument("--file", help="the product file (default <home>/shared/<recipient>.parquet)")
    read.add_argument("--key-file", help="the recipient's key: 32 raw bytes or 64 hex characters (default: the "
                      "platform's key with the id the file names)")
    read.add_argument("--sql", help="DuckDB SQL over the decrypted table, called product, e.g. "
                      "\"SELECT grid, count(*) FROM product GROUP BY grid\"")
    read.add_argument("--limit", type=int, default=10, help="rows shown without --sql (default 10)")
    read.add_argument("--out", help="write the decrypted table to this file instead: .parquet, .csv (UTF-8 with BOM) "
                      "or .xlsx, as its suffix says (not encrypted)")
    add_json_flag(read)
    read.set_defaults(func=_cmd_product_read)
    password = product_sub.add_parser(
        "password", help="print the password of RECIPIENT's xlsx (format: xlsx) or zip (format: csv), to hand over out of band")
    password.add_argument("recipient", help="recipient name from policy.yaml")
    password.add_argument("--home", help=home_help)
    add_json_flag(password)
    password.set_defaults(func=_cmd_product_password)

    keys = sub.add_parser("keys", help="manage the recipients' product keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="give RECIPIENT a new product encryption key; the old one is kept (as "
        "<recipient>.product.key.<key id>) so products published before stay readable. Only the encryption key "
        "changes: the pseudonym key is not rotated, so stable pseudonyms (pseudonyms: stable) stay the same")
    rotate.add_argument("recipient", help="recipient name from policy.yaml")
    rotate.add_argument("--home", help=home_help)
    add_json_flag(rotate)
    rotate.set_defaults(func=_cmd_keys_rotate)
