"""argparse entry point: `herald clients|campaigns|dead-letters|notify ...`; errors exit non-zero.

Configuration: HERALD_API_URL (default http://127.0.0.1:8000), HERALD_API_TOKEN or the
first token of HERALD_API_TOKENS, HERALD_AMQP_URL; the environment wins over `.env`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from herald_client import HeraldClient
from services.cli import campaigns, deadletters, notify
from services.cli.client import Api, ApiError, CliError, flatten
from services.cli.config import CliConfig
from services.cli.progress import watch
from shared.domain import channels

CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description="Operate Herald campaigns.")
    parser.add_argument("--api-url", help="the API's base URL (HERALD_API_URL)")
    parser.add_argument("--token", help="a bearer token (HERALD_API_TOKEN)")
    groups = parser.add_subparsers(dest="group", required=True)

    clients = groups.add_parser("clients", help="recipients").add_subparsers(
        dest="command", required=True
    )
    upload = clients.add_parser("import", help="upsert clients from a CSV (or JSON) file, streamed")
    upload.add_argument("file", type=Path)

    add_campaign_commands(groups.add_parser("campaigns", help="campaigns"))

    dead = groups.add_parser("dead-letters", help=f"the {deadletters.DEAD_QUEUE} parking queue")
    dead_commands = dead.add_subparsers(dest="command", required=True)
    dead_commands.add_parser("count", help="how many messages are parked")
    replay = dead_commands.add_parser(
        "replay",
        help="move parked messages back to where they came from",
        description="Republish parked messages to their exchange and routing key (delivery "
        "batches to 'deliveries' under their channel), each confirmed before it leaves the "
        "parking queue. Items the sender parked were already counted failed, so a resend "
        "does not change the stats; 'herald campaigns retry-failed ID' resends a campaign's "
        "failed messages and counts them again.",
    )
    replay.add_argument(
        "--limit", type=positive, help="at most this many (default: all parked now)"
    )

    notify.add_arguments(
        groups.add_parser(
            "notify",
            help="send one notification and follow it until it is final",
            description="Print its id, then its status until final. Exit 0 once sent or "
            "delivered, 1 if it failed, expired, was cancelled or undelivered, 2 if the API "
            "refused it.",
        )
    )
    return parser


def add_campaign_commands(group: argparse.ArgumentParser) -> None:
    commands = group.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="preview, confirm and create a campaign")
    create.add_argument("--name", required=True)
    create.add_argument("--text", required=True, help="template, e.g. 'Hi {{ name }}'")
    create.add_argument("--channel", choices=channels.names(), default="http")
    create.add_argument("--subject", help="e-mail subject (email channel)")
    create.add_argument("--tags", type=campaigns.split_list, default=[], help="any of: a,b")
    create.add_argument(
        "--operator-codes", type=campaigns.split_list, default=[], help="any of: 900,901"
    )
    create.add_argument(
        "--starts-at", type=campaigns.parse_when, help="ISO 8601, now, +2h (default now)"
    )
    create.add_argument(
        "--ends-at", type=campaigns.parse_when, required=True, help="ISO 8601 or +1d"
    )
    create.add_argument("--window", type=campaigns.parse_window, help="recipient-local HH:MM-HH:MM")
    create.add_argument("--rate-limit", type=int, help="messages per second")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    listing = commands.add_parser("list", help="list campaigns")
    listing.add_argument("--status")
    listing.add_argument("--channel")
    listing.add_argument("--limit", type=int, default=100)

    for action in ("pause", "resume", "cancel"):
        commands.add_parser(action, help=f"{action} a campaign").add_argument("id", type=int)
    commands.add_parser("stats", help="counts, rate and ETA").add_argument("id", type=int)
    commands.add_parser("retry-failed", help="send failed messages again").add_argument(
        "id", type=int
    )
    watching = commands.add_parser("watch", help="a live progress bar until the campaign ends")
    watching.add_argument("id", type=int)
    watching.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def run(args: argparse.Namespace, config: CliConfig, out: TextIO, ask: Callable[[str], str]) -> int:
    if args.group == "dead-letters":
        if args.command == "count":
            print(
                f"{deadletters.count(config.amqp_url):,} messages in {deadletters.DEAD_QUEUE}",
                file=out,
            )
            return 0
        report = deadletters.replay(config.amqp_url, args.limit)
        print(f"{report.moved:,} messages replayed", file=out)
        for route, moved in sorted(report.routes.items()):
            print(f"  {moved:,} to {route}", file=out)
        return 0
    if args.group == "notify":
        with HeraldClient(args.api_url or config.api_url, args.token or config.token) as client:
            return notify.run(client, args, out, sys.stderr)
    api = Api(args.api_url or config.api_url, args.token or config.token)
    if args.group == "clients":
        return import_clients(api, args.file, out)
    if args.command == "create":
        return campaigns.create(api, args, out, ask)
    if args.command == "watch":
        watch(api, args.id, out, args.interval)
        return 0
    if args.command in ("pause", "resume", "cancel"):
        args.action = args.command
        return campaigns.act(api, args, out)
    commands = {
        "list": campaigns.list_campaigns,
        "stats": campaigns.stats,
        "retry-failed": campaigns.retry_failed,
    }
    return commands[args.command](api, args, out)


def import_clients(api: Api, path: Path, out: TextIO) -> int:
    """Stream the file to POST /clients/import and print the report."""
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "text/csv")
    try:
        with path.open("rb") as stream:
            report = api.upload("/clients/import", stream, content_type)
    except OSError as exc:
        raise CliError(f"error: cannot read {path}: {exc.strerror}") from exc
    counts = (report["created"], report["updated"], report["rejected"])
    print("{:,} created, {:,} updated, {:,} rejected".format(*counts), file=out)
    for row in report["errors"]:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in flatten(row["errors"]))
        print(f"  row {row['row']} ({row['phone']}): {reasons}", file=out)
    if report["rejected"] > len(report["errors"]):
        print(f"  ... and {report['rejected'] - len(report['errors']):,} more", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args, CliConfig.from_env(), sys.stdout, input)
    except ApiError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
    except CliError as exc:
        print(str(exc), file=sys.stderr)
    except EOFError:
        print("aborted: no answer on standard input (use --yes)", file=sys.stderr)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
