// Operations at a glance: totals, campaigns by status, the parking queue, the breakers.

import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { count, when } from "../format.js";
import { every } from "./poll.js";

const TOTALS = ["total", "pending", "queued", "sent", "delivered", "undelivered", "failed", "expired", "cancelled"];

export function operationsPage(view) {
  const note = h("p", { class: "muted", id: "operations-note" });
  const tiles = h("div", { class: "tiles", id: "tiles" });
  const totals = h("dl", { class: "counts", id: "totals" });
  const byStatus = h("dl", { class: "counts", id: "by-status" });
  const senders = h("tbody");
  const links = h("ul", { class: "links", id: "links" });
  replace(
    view,
    h("h1", {}, "Operations"),
    note,
    tiles,
    h("h2", {}, "Campaign messages"),
    totals,
    h("h2", {}, "Campaigns"),
    byStatus,
    h("h2", {}, "Senders"),
    h("table", { class: "list", id: "senders" }, h("thead", {}, h("tr", {}, ["Sender", "Last heard", "Channel breakers", "Gateway breakers"].map((t) => h("th", {}, t)))), senders),
    h("h2", {}, "Elsewhere"),
    links,
  );

  async function refresh() {
    const ops = await get("/operations");
    const dead = ops.dead_letters;
    replace(
      tiles,
      tile("Breaker", ops.breaker, `breaker ${ops.breaker}`, "breaker"),
      tile("Dead letters", dead === null ? "broker unreachable" : count(dead), dead ? "warn" : "", "dead-letters"),
      tile("Live senders", count(ops.senders.length), ops.senders.length ? "" : "warn", "senders-live"),
    );
    replace(totals, TOTALS.map((key) => h("div", { dataset: { count: key } }, h("dt", {}, key), h("dd", {}, count(ops.totals[key])))));
    replace(byStatus, Object.entries(ops.campaigns_by_status).map(([status, n]) => h("div", { dataset: { count: status } }, h("dt", {}, status), h("dd", {}, count(n)))));
    replace(senders, ops.senders.map((s) => h("tr", {}, h("td", {}, s.instance), h("td", {}, when(s.seen_at)), h("td", {}, states(s.circuits)), h("td", {}, states(s.gateways)))));
    const ui = (ops.links && ops.links.broker_ui) || [];
    replace(
      links,
      h("li", {}, h("a", { href: "/docs", target: "_blank", rel: "noopener" }, "API reference (/docs)")),
      h("li", {}, h("a", { href: "/metrics", target: "_blank", rel: "noopener" }, "API metrics (/metrics)")),
      ui.map((url) => h("li", {}, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, `RabbitMQ management UI (${url})`))),
    );
  }
  const poller = every(2000, refresh, note);
  return poller.stop;
}

function tile(label, value, kind, id) {
  return h("div", { class: `tile ${kind}`, id }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
}

function states(map) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([name, state]) => h("span", { class: `state ${state}` }, `${name}: ${state}`)) : "–";
}
