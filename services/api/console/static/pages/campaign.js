// One campaign: counts by status, rate, ETA, deliveries over time, actions, failed messages.

import { get, post, query, session } from "../api.js";
import { deliveriesChart } from "../chart.js";
import { confirmDialog, h, progressBar, replace, setBar } from "../dom.js";
import { count, duration, percent, rate, when } from "../format.js";
import { every } from "./poll.js";
import { testSendForm } from "./testsend.js";

const COUNTS = [
  ["total", "Recipients"],
  ["pending", "Pending"],
  ["queued", "Queued"],
  ["sent", "Sent"],
  ["delivered", "Delivered"],
  ["undelivered", "Undelivered"],
  ["awaiting_receipt", "Awaiting receipt"],
  ["failed", "Failed"],
  ["expired", "Expired"],
  ["cancelled", "Cancelled"],
];

const ACTIONS = {
  scheduled: ["cancel"],
  running: ["pause", "cancel"],
  paused: ["resume", "cancel"],
};

const QUESTIONS = {
  pause: "Pause this campaign? Deliveries stop within seconds; resume picks up where it stopped.",
  resume: "Resume this campaign?",
  cancel: "Cancel this campaign? Messages not yet sent are cancelled; this cannot be undone.",
};

export function campaignPage(view, id) {
  const header = h("div", { class: "title" });
  const note = h("p", { class: "muted", id: "campaign-note" });
  const actions = h("div", { class: "actions", id: "actions" });
  const bar = progressBar(0, "done");
  const summary = h("p", { class: "summary", id: "summary" });
  const grid = h("dl", { class: "counts", id: "counts" });
  const gateways = h("div", { id: "gateways" });
  const chart = h("div", { class: "chart", id: "chart" });
  const details = h("dl", { class: "details", id: "details" });
  const failedBody = h("tbody");
  const failedNote = h("p", { class: "muted", id: "failed-note" });
  const retryResult = h("p", { class: "muted", id: "retry-result", role: "status" });
  const retry = h("button", { type: "button", id: "retry-failed", "data-write": "" }, "Retry failed");
  const timeline = { bucket: null, points: new Map() };
  let campaign = null;

  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      const { requeued } = await post(`/campaigns/${id}/retry-failed`);
      retryResult.textContent = `${count(requeued)} failed messages put back to pending.`;
    } catch (err) {
      retryResult.textContent = err.message;
    } finally {
      retry.disabled = false;
      poller.now();
    }
  });

  replace(
    view,
    header,
    note,
    actions,
    h("section", { class: "progress-block" }, bar, summary),
    grid,
    gateways,
    h("section", {}, h("h2", {}, "Deliveries over time"), chart),
    h("section", {}, h("h2", {}, "Campaign"), details),
    h(
      "section",
      {},
      h("div", { class: "title" }, h("h2", {}, "Failed messages"), retry),
      retryResult,
      h(
        "table",
        { class: "list", id: "failed" },
        h("thead", {}, h("tr", {}, ["Message", "Client", "Attempts", "Reason", "Updated"].map((t) => h("th", {}, t)))),
        failedBody,
      ),
      failedNote,
    ),
    session.canWrite ? h("section", {}, h("h2", {}, "Test send"), testSendForm((body) => post(`/campaigns/${id}/test`, body))) : null,
  );

  async function act(action) {
    if (!(await confirmDialog(QUESTIONS[action], `${action[0].toUpperCase()}${action.slice(1)}`))) return;
    try {
      campaign = await post(`/campaigns/${id}/${action}`);
      note.textContent = `Campaign ${campaign.status}.`;
    } catch (err) {
      note.textContent = err.message;
    }
    poller.now();
  }

  function drawActions() {
    const allowed = session.canWrite ? ACTIONS[campaign.status] || [] : [];
    replace(
      actions,
      allowed.map((action) =>
        h("button", { type: "button", id: action, class: action === "cancel" ? "danger" : "", onclick: () => act(action) }, action[0].toUpperCase() + action.slice(1)),
      ),
    );
  }

  async function refresh() {
    const since = timeline.bucket ? lastPoint(timeline) : null;
    const [fresh, stats, series, failed] = await Promise.all([
      get(`/campaigns/${id}`),
      get(`/campaigns/${id}/stats`),
      get(`/campaigns/${id}/timeline${query(since ? { bucket_s: timeline.bucket, since } : {})}`),
      get(`/campaigns/${id}/messages${query({ status: "failed", limit: 50 })}`),
    ]);
    campaign = fresh;
    replace(header, h("h1", { id: "campaign-name" }, campaign.name), h("span", { class: `status ${campaign.status}`, id: "campaign-status" }, campaign.status), h("span", { class: "muted" }, `#${campaign.id} · ${campaign.channel}`));
    drawActions();
    setBar(bar, stats.percent_done, `${percent(stats.percent_done)} done`);
    summary.textContent = `${percent(stats.percent_done)} done · ${rate(stats.rate_per_s)} · ETA ${stats.eta_s === null ? "–" : duration(stats.eta_s)}`;
    drawCounts(grid, stats);
    drawGateways(gateways, stats.by_gateway || {});
    mergeTimeline(timeline, series);
    replace(chart, deliveriesChart([...timeline.points.entries()], timeline.bucket));
    drawDetails(details, campaign);
    replace(failedBody, failed.items.map(failedRow));
    failedNote.textContent = failed.items.length ? (failed.next_after ? "Showing the first 50." : "") : "No failed messages.";
    retry.hidden = !session.canWrite || stats.failed === 0;
  }

  const poller = every(1500, refresh, note);
  return poller.stop;
}

function lastPoint(timeline) {
  let last = null;
  for (const at of timeline.points.keys()) if (last === null || at > last) last = at;
  return last === null ? null : new Date(last).toISOString();
}

function mergeTimeline(timeline, series) {
  // A new width (the campaign grew past the chart's points) starts the series over.
  if (timeline.bucket !== series.bucket_s) {
    timeline.bucket = series.bucket_s;
    timeline.points = new Map();
  }
  for (const point of series.points) timeline.points.set(Date.parse(point.at), point.sent);
  if (timeline.points.size > 120) timeline.bucket = null;
}

function drawCounts(grid, stats) {
  replace(
    grid,
    COUNTS.map(([key, label]) => h("div", { dataset: { count: key } }, h("dt", {}, label), h("dd", {}, count(stats[key])))),
    h("div", { dataset: { count: "left_out" } }, h("dt", {}, "Left out"), h("dd", {}, `${count(stats.left_out.no_address)} no address · ${count(stats.left_out.opted_out)} opted out`)),
  );
}

function drawGateways(el, byGateway) {
  const names = Object.keys(byGateway);
  if (!names.length) {
    replace(el);
    return;
  }
  replace(
    el,
    h("h2", {}, "By gateway"),
    h(
      "table",
      { class: "list" },
      h("thead", {}, h("tr", {}, ["Gateway", "Sent", "Delivered", "Undelivered", "Segments"].map((t) => h("th", {}, t)))),
      h("tbody", {}, names.map((name) => h("tr", {}, h("td", {}, name), ["sent", "delivered", "undelivered", "segments"].map((k) => h("td", { class: "num" }, count(byGateway[name][k])))))),
    ),
  );
}

function drawDetails(el, c) {
  const filter = c.filter || {};
  const window = c.send_window ? `${c.send_window.start}–${c.send_window.end} recipient's time` : "any time";
  const rows = [
    ["Text", c.text],
    c.subject ? ["Subject", c.subject] : null,
    c.template ? ["Template", c.template] : null,
    ["Tags", (filter.tags || []).join(", ") || "any"],
    ["Operator codes", (filter.operator_codes || []).join(", ") || "any"],
    ["Starts", when(c.starts_at)],
    ["Ends", when(c.ends_at)],
    ["Send window", window],
    ["Rate limit", c.rate_limit ? `${count(c.rate_limit)}/s` : "the channel's"],
    ["Started", when(c.started_at)],
    ["Finished", when(c.finished_at)],
  ];
  replace(el, rows.filter(Boolean).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", { class: k === "Text" ? "text" : "" }, v))));
}

function failedRow(m) {
  return h("tr", {}, h("td", {}, m.id), h("td", {}, m.client_id ?? "–"), h("td", { class: "num" }, m.attempts), h("td", { class: "reason" }, m.last_error || "–"), h("td", {}, when(m.updated_at)));
}
