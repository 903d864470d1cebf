// Campaigns, newest first, a keyset page at a time, refreshed every 2 s.

import { get, query } from "../api.js";
import { h, progressBar, replace } from "../dom.js";
import { count, percent, when } from "../format.js";
import { every } from "./poll.js";

const STATUSES = ["", "scheduled", "running", "paused", "completed", "cancelled", "expired"];
const PAGE = 50;

export function campaignsPage(view) {
  const state = { status: "", cursors: [null] };
  const body = h("tbody");
  const note = h("p", { class: "muted", id: "campaigns-note" });
  const older = h("button", { type: "button", class: "secondary", id: "older" }, "Older");
  const newer = h("button", { type: "button", class: "secondary", id: "newer" }, "Newer");
  const status = h(
    "select",
    { id: "status-filter", "aria-label": "Status" },
    STATUSES.map((s) => h("option", { value: s }, s || "any status")),
  );
  status.addEventListener("change", () => {
    state.status = status.value;
    state.cursors = [null];
    poller.now();
  });
  older.addEventListener("click", () => {
    state.cursors.push(state.next);
    poller.now();
  });
  newer.addEventListener("click", () => {
    state.cursors.pop();
    poller.now();
  });
  replace(
    view,
    h("div", { class: "title" }, h("h1", {}, "Campaigns"), h("a", { class: "button", href: "#/campaigns/new", "data-write": "" }, "New campaign")),
    h("div", { class: "toolbar" }, status),
    h(
      "table",
      { class: "list", id: "campaigns" },
      h("thead", {}, h("tr", {}, ["#", "Name", "Channel", "Status", "Recipients", "Sent", "Delivered", "Failed", "Progress", "Created"].map((t) => h("th", {}, t)))),
      body,
    ),
    note,
    h("div", { class: "pager" }, newer, older),
  );

  async function refresh() {
    const after = state.cursors[state.cursors.length - 1];
    const page = await get(`/campaigns${query({ order: "-id", limit: PAGE, after, status: state.status })}`);
    state.next = page.next_after;
    older.disabled = page.next_after === null;
    newer.disabled = state.cursors.length === 1;
    replace(body, page.items.map(row));
    note.textContent = page.items.length ? "" : "No campaigns yet.";
  }
  const poller = every(2000, refresh, note);
  return poller.stop;
}

function row(campaign) {
  const p = campaign.progress;
  return h(
    "tr",
    { dataset: { campaignId: campaign.id, status: campaign.status } },
    h("td", {}, campaign.id),
    h("td", {}, h("a", { href: `#/campaigns/${campaign.id}`, class: "name" }, campaign.name)),
    h("td", {}, campaign.channel),
    h("td", {}, h("span", { class: `status ${campaign.status}` }, campaign.status)),
    h("td", { class: "num" }, count(p.total)),
    h("td", { class: "num" }, count(p.sent)),
    h("td", { class: "num" }, count(p.delivered)),
    h("td", { class: "num" }, count(p.failed)),
    h("td", { class: "progress" }, progressBar(p.percent_done, `${campaign.name}: ${percent(p.percent_done)} done`), h("span", { class: "pct" }, percent(p.percent_done))),
    h("td", {}, when(campaign.created_at)),
  );
}
