"""``silobreaker audit`` and ``silobreaker product``: the audit log and the encrypted products.

    silobreaker audit verify                 check the hash chain; exit 1 naming the first broken entry
    silobreaker audit person <id number>     which recipients received this person's data, when, why
    silobreaker product read <recipient>     decrypt a product: print it, or --out a plain parquet file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.home import HOME_ENV, DataHome

__all__ = ["add_privacy_commands"]


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from publish import AuditLog

    log = AuditLog(DataHome.resolve(args.home))
    result = log.verify()
    if result.ok:
        print(f"audit log intact: {result.entries} entries, chain verified ({log.path})")
        return 0
    print(f"audit log BROKEN at entry {result.broken_seq} (line {result.broken_line} of {log.path}): {result.reason}; "
          f"{result.entries} entries before it verify")
    return 1


def _cmd_audit_person(args: argparse.Namespace) -> int:
    from publish import AuditLog

    log = AuditLog(DataHome.resolve(args.home))
    entries = log.person(args.id_number)
    if args.json:
        keep = ("published_at", "run_id", "recipient", "purpose", "legal_basis", "legal_reference", "columns", "seq")
        print(json.dumps([{k: e.get(k) for k in keep} for e in entries], ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("no publication has included this person")
        return 0
    print(f"{'published at':<27}{'recipient':<28}{'purpose':<20}{'basis':<11}columns")
    for e in entries:
        basis = e["legal_basis"] + (f" ({e['legal_reference']})" if e.get("legal_reference") else "")
        print(f"{e['published_at'][:19]:<27}{e['recipient']:<28}{e['purpose']:<20}{basis:<11} {', '.join(e['columns'])}")
    return 0


def _key_for(args: argparse.Namespace, home: DataHome) -> bytes:
    from publish import product_key

    if args.key_file:
        text = Path(args.key_file).read_bytes()
        # A key file is either the 32 raw bytes the platform keeps or their 64-character hex form.
        return text if len(text) == 32 else bytes.fromhex(text.decode("ascii").strip())
    env = f"SILOBREAKER_PRODUCT_KEY_{args.recipient.upper()}"
    if os.environ.get(env) or home.product_key_file(args.recipient).exists():
        return product_key(home, args.recipient)
    raise SystemExit(f"error: no key for {args.recipient}: pass --key-file, or set {env}")


def _cmd_product_read(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from publish import read_product

    home = DataHome.resolve(args.home)
    path = Path(args.file) if args.file else home.product_file(args.recipient)
    try:
        table = read_product(path, _key_for(args, home), identifier=args.recipient)
    except (OSError, ValueError) as e:
        print(f"error: cannot read {path}: {e}", file=sys.stderr)
        return 2
    if args.out:
        pq.write_table(table, args.out)
        print(f"decrypted {table.num_rows} rows to {args.out} (plain parquet: keep it inside the recipient's zone)")
        return 0
    import duckdb

    product = table  # DuckDB reads the Arrow table by its Python name
    if args.sql:
        print(duckdb.sql(args.sql.replace("{product}", "product")))
    else:
        print(duckdb.sql(f"FROM product LIMIT {int(args.limit)}"))
        print(f"{product.num_rows} rows")
    return 0


def add_privacy_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``audit`` and ``product`` to the ``silobreaker`` parser's subcommands."""
    home_help = f"data home (default ${HOME_ENV} or ./var)"
    audit = sub.add_parser("audit", help="verify the hash-chained publication log; answer a citizen's query")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the chain; exit 1 naming the first broken entry")
    verify.add_argument("--home", help=home_help)
    verify.set_defaults(func=_cmd_audit_verify)
    person = audit_sub.add_parser("person", help="which recipients received this person's data, when, for what")
    person.add_argument("id_number", help="resident ID number (18 characters)")
    person.add_argument("--home", help=home_help)
    person.add_argument("--json", action="store_true", help="print JSON")
    person.set_defaults(func=_cmd_audit_person)

    product = sub.add_parser("product", help="work with the encrypted per-recipient products")
    product_sub = product.add_subparsers(dest="product_command", required=True)
    read = product_sub.add_parser("read", help="decrypt a product and show it, query it, or write it out")
    read.add_argument("recipient", help="recipient name (the product's file name)")
    read.add_argument("--home", help=home_help)
    read.add_argument("--file", help="the product file (default <home>/shared/<recipient>.parquet)")
    read.add_argument("--key-file", help="the recipient's key: 32 raw bytes or 64 hex characters")
    read.add_argument("--sql", help="DuckDB SQL over the decrypted table, called product, e.g. "
                      "\"SELECT grid, count(*) FROM product GROUP BY grid\"")
    read.add_argument("--limit", type=int, default=10, help="rows shown without --sql (default 10)")
    read.add_argument("--out", help="write the decrypted table to this plain parquet file instead")
    read.set_defaults(func=_cmd_product_read)
