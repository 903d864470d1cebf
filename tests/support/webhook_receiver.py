"""A webhook subscriber on loopback: keeps every POST, answers as told (or hangs)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Subscriber:
    """Every POST's headers and body, as received. `delay_s` before answering; `hang`
    never answers (until stop)."""

    delay_s: float = 0.0
    hang: bool = False
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Serve on a free loopback port; returns the URL to subscribe."""
        subscriber = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if subscriber.hang:
                    subscriber.stopping.wait()
                    return
                time.sleep(subscriber.delay_s)
                with subscriber.lock:
                    subscriber.posts.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/herald"

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every event of every verified POST, once per webhook-id (retries are repeats)."""
        verifier = Webhook(secret)
        seen: dict[str, list[dict[str, Any]]] = {}
        with self.lock:
            posts = list(self.posts)
        for headers, body in posts:
            lowered = {k.lower(): v for k, v in headers.items()}
            verifier.verify(body, lowered)  # raises on a bad or missing signature
            seen.setdefault(lowered["webhook-id"], json.loads(body))
        return [event for batch in seen.values() for event in batch]
