"""`herald` against the real API served on a loopback port, the real database and RabbitMQ."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from werkzeug.serving import make_server

from services.api.app import create_app
from services.cli.__main__ import main
from shared.config import Settings
from shared.messaging.connection import connect
from shared.messaging.envelopes import DeliveryBatch, DeliveryItem
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import DEAD_EXCHANGE, DEAD_QUEUE, declare_all, delivery_queue
from tests.conftest import READ_TOKEN, WRITE_TOKEN
from tests.support.factories import make_clients
from tests.support.waiting import wait_until


@pytest.fixture
def api_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The API on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, create_app(settings, engine), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(autouse=True)
def cli_env(api_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the CLI at that API with a write token, away from the repository's .env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HERALD_API_URL", api_url)
    monkeypatch.setenv("HERALD_API_TOKEN", WRITE_TOKEN)


def herald(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def campaign_ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT id FROM campaign ORDER BY id")))


def test_import_streams_a_csv_and_prints_the_report(
    capsys: pytest.CaptureFixture[str], engine: Engine, tmp_path: Path
) -> None:
    csv = tmp_path / "clients.csv"
    csv.write_text("phone,tags,name\n+79123456789,vip,Ann\nnot-a-phone,vip,Bob\n+79123456780,,Cy\n")

    code, out, _ = herald(capsys, "clients", "import", str(csv))

    assert code == 0
    assert "2 created, 0 updated, 1 rejected" in out
    assert "row 2 (not-a-phone): phone:" in out
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM client")) == 2


def test_create_shows_the_preview_then_creates_with_yes(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    make_clients(engine, 3, tags=["vip"])
    make_clients(engine, 2, tags=["other"], first_phone=79000000100)

    code, out, _ = herald(
        capsys, "campaigns", "create", "--name", "Spring", "--text", "Hi {{ name }}",
        "--tags", "vip", "--ends-at", "+1d", "--window", "00:00-23:59", "--rate-limit", "5",
        "--yes",
    )  # fmt: skip

    assert code == 0
    assert "recipients     3 of 3 matching clients" in out
    assert "5/s (rate limit)" in out
    [cid] = campaign_ids(engine)
    assert f"campaign {cid} created (scheduled)" in out


@pytest.mark.parametrize(("answer", "created"), [("y\n", 1), ("n\n", 0), ("", 0)])
def test_create_asks_before_creating(
    capsys: pytest.CaptureFixture[str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    created: int,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))

    code, out, err = herald(
        capsys, "campaigns", "create", "--name", "Ask", "--text", "Hi", "--ends-at", "+2h"
    )

    assert "Preview of 'Ask'" in out
    assert len(campaign_ids(engine)) == created
    assert code == (0 if created else 1)
    assert created or "aborted" in err


def test_api_errors_are_printed_with_their_fields_and_exit_non_zero(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    code, out, err = herald(
        capsys, "campaigns", "create", "--name", "Bad", "--text", "Hi {{ nick",
        "--ends-at", "+1h", "--rate-limit", "0", "--yes",
    )  # fmt: skip

    assert code == 1
    assert err.startswith("error: 422 Unprocessable Entity")
    assert "  text: unclosed '{{' at character 4" in err
    assert "  rate_limit: Must be greater than or equal to 1" in err
    assert campaign_ids(engine) == []


def test_list_actions_stats_and_a_409(capsys: pytest.CaptureFixture[str], engine: Engine) -> None:
    herald(capsys, "campaigns", "create", "--name", "One", "--text", "Hi", "--ends-at", "+1d",
           "--starts-at", "+1h", "--yes")  # fmt: skip
    [cid] = campaign_ids(engine)

    listed = herald(capsys, "campaigns", "list")
    paused = herald(capsys, "campaigns", "pause", str(cid))
    cancelled = herald(capsys, "campaigns", "cancel", str(cid))
    resumed = herald(capsys, "campaigns", "resume", str(cid))
    stats = herald(capsys, "campaigns", "stats", str(cid))

    assert f"{cid:>6}  scheduled  http" in listed[1] and "One" in listed[1]
    assert (paused[0], paused[1]) == (0, f"campaign {cid}: paused\n")
    assert cancelled[1] == f"campaign {cid}: cancelled\n"
    assert resumed[0] == 1
    assert resumed[2].startswith("error: 409 Conflict: cannot resume a campaign that is cancelled")
    assert stats[0] == 0 and "done      0 / 0 (0.0%)" in stats[1] and "eta       0 s" in stats[1]


def test_retry_failed_requeues(capsys: pytest.CaptureFixture[str], engine: Engine) -> None:
    herald(capsys, "campaigns", "create", "--name", "R", "--text", "Hi", "--ends-at", "+1d",
           "--yes")  # fmt: skip
    [cid] = campaign_ids(engine)
    make_clients(engine, 2)
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaign SET status = 'running' WHERE id = :c"), {"c": cid})
        conn.execute(
            text("INSERT INTO message (campaign_id, client_id, status) SELECT :c, id, 'failed'"
                 " FROM client"),
            {"c": cid},
        )  # fmt: skip

    code, out, _ = herald(capsys, "campaigns", "retry-failed", str(cid))

    assert (code, out) == (0, f"campaign {cid}: 2 failed messages requeued\n")


def test_watch_draws_progress_until_the_campaign_completes(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    herald(capsys, "campaigns", "create", "--name", "W", "--text", "Hi", "--ends-at", "+1d",
           "--yes")  # fmt: skip
    [cid] = campaign_ids(engine)
    progress(engine, cid, "running", sent=1, pending=3)
    result: dict[str, Any] = {}
    watcher = threading.Thread(
        target=lambda: result.update(
            code=main(["campaigns", "watch", str(cid), "--interval", "0.05"])
        )
    )
    output: list[str] = []

    watcher.start()

    def has_shown_progress() -> bool:
        output.append(capsys.readouterr().out)
        return "1/4" in "".join(output)

    wait_until(has_shown_progress, 10)
    progress(engine, cid, "completed", sent=4, pending=0)
    watcher.join(timeout=10)

    output.append(capsys.readouterr().out)
    lines = "".join(output).splitlines()
    assert result["code"] == 0
    assert lines[0].startswith("[#######.......................]  1/4  25.0%")
    assert lines[-1].startswith("[##############################]  4/4  100.0%")
    assert lines[-1].endswith("completed")


def progress(engine: Engine, cid: int, status: str, sent: int, pending: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaign SET status = :s WHERE id = :c"), {"s": status, "c": cid})
        conn.execute(
            text("UPDATE campaign_progress SET total = 4, sent = :sent, pending = :pending"
                 " WHERE campaign_id = :c"),
            {"c": cid, "sent": sent, "pending": pending},
        )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HERALD_API_TOKEN": "nope"}, "error: 401 Unauthorized: a valid bearer token"),
        ({"HERALD_API_TOKEN": READ_TOKEN}, "error: 403 Forbidden"),
        ({"HERALD_API_URL": "http://127.0.0.1:9"}, "error: cannot reach the API"),
    ],
)
def test_auth_and_connection_failures_are_clear(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code, _, err = herald(capsys, "campaigns", "retry-failed", "1")

    assert code == 1
    assert err.startswith(message)


def test_the_token_comes_from_dot_env_when_not_in_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HERALD_API_TOKEN")
    (tmp_path / ".env").write_text(f"HERALD_API_TOKENS={READ_TOKEN}:read,{WRITE_TOKEN}:write\n")

    code, out, _ = herald(capsys, "campaigns", "list")

    assert code == 0 and out.startswith("    ID  STATUS")


def dead_batch(message_id: int, channel: str = "http") -> bytes:
    item = DeliveryItem(message_id, "+79123456789", "hi", 3, dt.datetime.now(dt.UTC).timestamp())
    return DeliveryBatch(1, channel, (item,)).encode()


def test_dead_letters_count_and_replay_to_their_channel(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    broker: str,
) -> None:
    monkeypatch.setenv("HERALD_AMQP_URL", broker)
    connection = connect(broker, "test-cli-dead-letters")
    channel = connection.channel()
    declare_all(channel, settings.retry_delays_ms)
    for queue in (DEAD_QUEUE, delivery_queue("http"), delivery_queue("email")):
        channel.queue_purge(queue)
    publisher = ConfirmingPublisher(channel)
    for message_id, channel_name in ((1, "http"), (2, "email"), (3, "http")):
        headers = {"x-herald-error": "HTTP 500", "x-correlation-id": f"c{message_id}"}
        publisher.publish(
            DEAD_EXCHANGE, channel_name, dead_batch(message_id, channel_name), headers
        )

    counted = herald(capsys, "dead-letters", "count")
    replayed = herald(capsys, "dead-letters", "replay", "--limit", "2")
    left = herald(capsys, "dead-letters", "count")

    assert counted[:2] == (0, f"3 messages in {DEAD_QUEUE}\n")
    assert replayed[0] == 0 and "2 messages replayed" in replayed[1]
    assert "1 to deliveries/email" in replayed[1] and "1 to deliveries/http" in replayed[1]
    assert left[1] == f"1 messages in {DEAD_QUEUE}\n"
    method, properties, body = channel.basic_get(delivery_queue("http"), auto_ack=True)
    assert properties is not None and properties.headers is not None and body is not None
    assert DeliveryBatch.decode(body).items[0].message_id == 1
    assert properties.headers["x-correlation-id"] == "c1"
    assert "x-herald-error" not in properties.headers
    assert properties.headers["x-herald-replays"] == 1
    email = channel.basic_get(delivery_queue("email"), auto_ack=True)
    assert email[2] is not None
    assert DeliveryBatch.decode(email[2]).items[0].message_id == 2
    connection.close()


def test_create_shows_segments_and_stats_show_gateways(
    capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    make_clients(engine, 2, attributes={"name": "Ann"})
    make_clients(engine, 1, attributes={"name": "Жанна"}, first_phone=79100000000)

    code, out, _ = herald(
        capsys, "campaigns", "create", "--name", "S", "--text", "Hi {{ name }}",
        "--ends-at", "+1d", "--yes",
    )  # fmt: skip
    [cid] = campaign_ids(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO message (campaign_id, status, gateway, segments)"
                " VALUES (:c, 'delivered', 'alpha', 1), (:c, 'sent', 'alpha', 2)"
            ),
            {"c": cid},
        )
    stats = herald(capsys, "campaigns", "stats", str(cid))

    assert code == 0
    assert "  sms            2 GSM-7, 1 UCS-2 (forced by 'Ж')" in out
    assert "  segments       3 (at most 10 per message)" in out
    assert "  cost           unknown: no price for default" in out
    assert "  segments  3 sent" in stats[1]
    assert "  alpha                        2         1         0         3" in stats[1]
