"""Grid commands: look up a resident before entering them, and the risk warnings a worker acts on.

    silobreaker lookup --as RECIPIENT [--name N] [--sex S] [--birth YYYY-MM] [--address A] [--id-part X]
                                                                   is this resident already known? the
                                                                   matches in RECIPIENT's scope, masked as
                                                                   its product shows them, with how sure

    silobreaker warnings list [--grid G] [--status S] [--rule R]   the published warnings (风险预警)
    silobreaker warnings acknowledge <id> --by WHO [--note TEXT]    seen; will follow up
    silobreaker warnings close <id> --by WHO --note TEXT           dealt with: stays closed while the
                                                                   condition holds
    silobreaker warnings reopen <id> --by WHO [--note TEXT]

    silobreaker grid-updates template PATH                          the empty grid-update form (网格信息变更表)
    silobreaker grid-updates list [--grid G] [--not-taken]         the updates published, and which the
                                                                   golden record does not follow

An action is kept in the data home (``<home>/warnings/actions.parquet``) and applied by the next
publication (``publish.risks``); ``list`` shows it at once beside the published status.
"""

from __future__ import annotations

import argparse

from core.config import suggest
from core.errors import ConfigError
from core.home import HOME_ENV, DataHome
from core.vocabulary import display_width
from pipelines.console import add_json_flag, print_json

__all__ = ["add_grid_commands"]


def _home(args: argparse.Namespace) -> DataHome:
    return DataHome.resolve(args.home) if args.home else DataHome.resolve()


def _published_warnings(home: DataHome):
    from publish import WarehouseReader

    reader = WarehouseReader(home)
    if not reader.exists or "risk_warnings" not in reader.tables():
        raise ConfigError(f"尚无风险预警 / no risk warnings published under {home.root}: run the pipeline first "
                          "(silobreaker run) with a risks.yaml (SILOBREAKER_RISKS or --risks)")
    with reader.connect() as con:
        return con.execute("SELECT * FROM risk_warnings").df()


def _cmd_warnings_list(args: argparse.Namespace) -> int:
    from publish.risks import STATUS_LABELS, WarningActions

    home = _home(args)
    warnings = _published_warnings(home)
    actions = WarningActions.in_home(home).load()
    pending = actions.sort_values("acted_at").groupby("warning_id").tail(1).set_index("warning_id") if len(actions) else None
    if args.grid:
        warnings = warnings[warnings["grid"] == args.grid]
    if args.rule:
        warnings = warnings[warnings["rule"] == args.rule]
    if args.status:
        warnings = warnings[warnings["status"] == args.status]
    import pandas as pd

    def text(value):
        return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value

    rows = []
    for w in warnings.itertuples(index=False):
        action = pending.loc[w.warning_id] if pending is not None and w.warning_id in pending.index else None
        newer = action is not None and (w.status_at is None or str(w.status_at) in ("NaT", "None")
                                        or action["acted_at"] > w.status_at)
        rows.append({"warning_id": w.warning_id, "rule": w.rule, "label": w.rule_label, "person_id": w.person_id,
                     "grid": w.grid, "reason": w.reason, "first_seen": str(w.first_seen)[:10], "last_seen": str(w.last_seen)[:10],
                     "status": w.status, "pending": action["status"] if newer and w.status != "cleared" else None,
                     "note": text(action["note"] if newer else w.note)})
    if args.json:
        print_json({"warnings": rows})
        return 0
    print(f"{_pad('预警编号', 13)}{_pad('网格', 18)}{_pad('状态', 16)}{_pad('首次发现', 12)}内容")
    for r in rows:
        status = STATUS_LABELS.get(r["status"], r["status"])
        if r["pending"]:
            status += f"→{STATUS_LABELS.get(r['pending'], r['pending'])}"
        print(f"{_pad(r['warning_id'], 13)}{_pad(r['grid'] or '不详', 18)}{_pad(status, 16)}{_pad(r['first_seen'], 12)}"
              f"{r['label']}（{r['reason']}）{'  ' + r['note'] if r['note'] else ''}")
    print(f"共 {len(rows)} 条预警 / {len(rows)} warning(s)")
    return 0


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns, a CJK character taking two (str.ljust counts it as one)."""
    return text + " " * max(1, width - display_width(text))


def _cmd_warnings_act(args: argparse.Namespace) -> int:
    from publish.risks import STATUS_LABELS, WARNING_ACTIONS, WarningActions

    home = _home(args)
    # the newest episode under an id (one that cleared and recurred has its own id since 2026-12)
    known = _published_warnings(home).sort_values("first_seen").drop_duplicates("warning_id", keep="last")
    known = known.set_index("warning_id")
    if args.warning_id not in known.index:
        raise ConfigError(f"没有编号为 {args.warning_id} 的预警 / no warning {args.warning_id!r} is published"
                          f"{suggest(args.warning_id, list(known.index))}; see silobreaker warnings list")
    if known.loc[args.warning_id, "status"] == "cleared":
        raise ConfigError(f"{args.warning_id} 已消除 / warning {args.warning_id} is cleared (its condition no longer "
                          "holds): nothing to act on; should it recur, it comes back as a new warning")
    row = WarningActions.in_home(home).record(args.warning_id, args.action, by=args.by, note=args.note)
    if args.json:
        print_json(row.iloc[0].to_dict())
    else:
        print(f"{args.warning_id}（{known.loc[args.warning_id, 'rule_label']}，{known.loc[args.warning_id, 'grid']}）："
              f"{args.by} 标记为“{STATUS_LABELS[WARNING_ACTIONS[args.action]]}”，已登记，下次运行后发布 / "
              f"{args.action} by {args.by} recorded; the next run publishes it")
    return 0


def _cmd_lookup(args: argparse.Namespace) -> int:
    from dedup.settings import load_link_settings
    from pipelines.settings import Settings
    from publish import load_area_register, load_policy, load_populations
    from publish.lookup import LookupQuery, lookup

    settings = Settings.from_env(args.home)
    home = settings.home
    register_file = settings.area_register_file if not args.home else (
        settings.areas_file or (home.demo_area_register if home.demo_area_register.exists() else None))
    populations = load_populations(settings.populations_file)
    policy = load_policy(settings.policy_file, populations)
    query = LookupQuery(name=args.name, sex=args.sex, birth=args.birth, address=args.address, id_part=args.id_part,
                        phone=args.phone)
    result = lookup(home, args.recipient, query, policy, load_area_register(register_file) if register_file else None,
                    load_link_settings(settings.linking_file), limit=args.limit)
    if args.json:
        print_json(result.as_dict())
        return 0
    from core.vocabulary import FIELD_LABELS, SEX_LABELS

    if not result.matches and not result.withheld:
        print(f"{result.recipient}：本辖区未找到相符的已登记居民，可以录入。/ no one in scope matches: enter the resident.")
    for i, match in enumerate(result.matches, 1):
        labels = {**SEX_LABELS, **populations.labels}
        shown = "；".join(f"{FIELD_LABELS.get(k, k)}：{_shown(k, v, labels)}" for k, v in match.fields.items()
                         if _shown(k, v, labels))
        print(f"{i}. {match.certainty}（{match.probability:.3f}，相符：{'、'.join(match.agreed) or '无'}）{shown}")
    if result.withheld:
        print(f"另有 {result.withheld} 名已登记居民与输入相符，但您无权查看详情（未取得本人同意，或不在您的名单范围）："
              "请勿重复录入，可请本人签署同意。")
    return 0


def _shown(column: str, value: object, labels: dict[str, str]) -> str:
    """A field as the worker reads it: codes in Chinese (sex, key populations), lists joined, blanks empty."""
    import pandas as pd

    if hasattr(value, "__len__") and not isinstance(value, str):
        return "、".join(labels.get(str(v), str(v)) for v in value)
    if value is None or pd.isna(value):
        return ""
    if column == "sex":
        return labels.get(str(value), str(value))
    return str(value)


def _cmd_grid_updates_template(args: argparse.Namespace) -> int:
    from connectors.grid_form import write_grid_update_form

    path = write_grid_update_form(args.path)
    print(f"网格信息变更表已生成：{path}（填好后放到 sources.yaml 中 role: grid_updates 来源的 path 处）/ "
          f"grid-update form written to {path}")
    return 0


def _cmd_grid_updates_list(args: argparse.Namespace) -> int:
    from publish import WarehouseReader

    home = _home(args)
    reader = WarehouseReader(home)
    if not reader.exists or "grid_updates" not in reader.tables():
        raise ConfigError(f"尚无网格变更记录 / no grid updates published under {home.root}: declare a role: "
                          "grid_updates source in sources.yaml and run the pipeline (silobreaker run)")
    with reader.connect() as con:
        updates = con.execute("SELECT g.*, u.name AS resident FROM grid_updates g "
                              "LEFT JOIN unified_population u USING (person_id) "
                              "ORDER BY g.record_date DESC NULLS LAST, g.record_id").df()
    if args.grid:
        updates = updates[updates["grid"] == args.grid]
    if args.not_taken:
        updates = updates[~updates["taken"].astype(bool)]
    plain = _plain(updates)
    if args.json:
        print_json(plain.to_dict(orient="records"))
        return 0
    print("\n".join(_update_lines(plain)))
    return 0


def _plain(updates):
    """Published updates with every missing value ``None`` (never a NaN, which is truthy) and dates as text."""
    plain = updates.astype(object).where(updates.notna(), None)
    plain["record_date"] = [None if d is None else str(d)[:10] for d in plain["record_date"]]
    return plain


def _update_lines(plain) -> list[str]:
    """``grid-updates list`` as the clerk reads it, from updates whose missing values are ``None``."""
    lines = ["填报日期    网格  变更类型  居民  填报人  情况说明  是否采用  记录编号"]
    for row in plain.itertuples(index=False):
        taken = "已采用" if row.taken else "未采用（有更新的部门记录）"
        lines.append(f"{row.record_date or '（无日期）'}  {row.grid or '（未定网格）'}  {row.change}  {row.resident or ''}  "
                     f"{row.reported_by or ''}  {row.note or ''}  {taken}  {row.record_id}")
    return [*lines, f"共 {len(plain)} 条 / {len(plain)} updates"]


def add_grid_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``lookup``, ``warnings`` and ``grid-updates`` on the CLI's subparsers."""
    find = sub.add_parser("lookup", help="is this resident already known? (先查后录) the matches in a worker's scope")
    find.add_argument("--as", dest="recipient", required=True,
                      help="the worker's product, e.g. grid_workers_cuiyuan_1: its scope and what it may see")
    find.add_argument("--name", help="姓名, e.g. 熊建国")
    find.add_argument("--sex", help="性别: 男/女")
    find.add_argument("--birth", help="出生年月 1959-12, or the date 1959-12-03, or the year")
    find.add_argument("--address", help="住址 as the resident says it, e.g. 翠苑社区1-2-302")
    find.add_argument("--id-part", help="身份证号, whole or a part (the last 4 characters)")
    find.add_argument("--phone", help="联系电话")
    find.add_argument("--limit", type=int, default=5, help="matches shown at most (default 5)")
    find.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(find)
    find.set_defaults(func=_cmd_lookup)
    warnings = sub.add_parser("warnings", help="risk early warnings (风险预警): list them, acknowledge or close one")
    warnings_sub = warnings.add_subparsers(dest="warnings_command", required=True)
    listing = warnings_sub.add_parser("list", help="the published warnings, with actions not yet published")
    listing.add_argument("--grid", help="only this grid, e.g. 翠苑社区第1网格")
    listing.add_argument("--rule", help="only this rule (its code in risks.yaml)")
    # publish.risks.WARNING_STATUSES, written out: the CLI imports no pipeline module until a command runs
    listing.add_argument("--status", choices=("open", "acknowledged", "closed", "cleared"))
    listing.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(listing)
    listing.set_defaults(func=_cmd_warnings_list)
    for action, text in (("acknowledge", "seen; will follow up"),
                         ("close", "dealt with (a note says how); stays closed while the condition holds"),
                         ("reopen", "open a closed or acknowledged warning again")):
        parser = warnings_sub.add_parser(action, help=text)
        parser.add_argument("warning_id", help="the warning's id (W + 10 hex characters)")
        parser.add_argument("--by", required=True, help="who acts on it")
        parser.add_argument("--note", required=action == "close", help="what was done, e.g. 已上门，女儿同住")
        parser.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
        add_json_flag(parser)
        parser.set_defaults(func=_cmd_warnings_act, action=action)
    updates = sub.add_parser("grid-updates", help="grid workers' updates (网格信息变更): the form, and what was published")
    updates_sub = updates.add_subparsers(dest="grid_updates_command", required=True)
    template = updates_sub.add_parser("template", help="write the empty grid-update form (xlsx) a worker fills in")
    template.add_argument("path", help="where to write it, e.g. 网格信息变更表.xlsx")
    template.set_defaults(func=_cmd_grid_updates_template)
    listing = updates_sub.add_parser("list", help="the updates published, newest first")
    listing.add_argument("--grid", help="only this grid, e.g. 翠苑社区第1网格")
    listing.add_argument("--not-taken", action="store_true", help="only those the golden record does not follow")
    listing.add_argument("--home", help=f"data home (default ${HOME_ENV} or ./var)")
    add_json_flag(listing)
    listing.set_defaults(func=_cmd_grid_updates_list)
