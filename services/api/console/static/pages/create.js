// A new campaign: the form, a live preview beside it (checked by the API as on create, so its
// reasons show at the fields before anything is stored), a test send, and create.

import { post } from "../api.js";
import { h, replace } from "../dom.js";
import { count, duration, fromLocalInput, localInput, rate, when } from "../format.js";
import { testSendForm } from "./testsend.js";

const DAY_MS = 24 * 3600 * 1000;

export function createPage(view) {
  const inputs = {
    name: h("input", { id: "f-name", name: "name", required: true, maxlength: 200 }),
    channel: h("select", { id: "f-channel", name: "channel" }, h("option", { value: "http" }, "SMS (http gateway)"), h("option", { value: "email" }, "E-mail")),
    text: h("textarea", { id: "f-text", name: "text", rows: 4, placeholder: "Hello {{first_name}}, …" }),
    template: h("input", { id: "f-template", name: "template", placeholder: "a stored template's name" }),
    subject: h("input", { id: "f-subject", name: "subject" }),
    html: h("textarea", { id: "f-html", name: "html", rows: 3 }),
    tags: h("input", { id: "f-tags", name: "tags", placeholder: "vip, moscow (any of them; empty: everyone)" }),
    operator_codes: h("input", { id: "f-codes", name: "operator_codes", placeholder: "912, 926 (any of them; empty: any)" }),
    starts_at: h("input", { id: "f-starts", name: "starts_at", type: "datetime-local" }),
    ends_at: h("input", { id: "f-ends", name: "ends_at", type: "datetime-local", value: localInput(new Date(Date.now() + DAY_MS)) }),
    window_start: h("input", { id: "f-window-start", name: "window_start", type: "time" }),
    window_end: h("input", { id: "f-window-end", name: "window_end", type: "time" }),
    rate_limit: h("input", { id: "f-rate", name: "rate_limit", type: "number", min: 1, placeholder: "messages per second (empty: the channel's)" }),
  };
  const formError = h("p", { class: "error", id: "form-error", role: "alert" });
  const preview = h("div", { id: "preview", class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Fill in the form to see who it reaches."));
  const create = h("button", { type: "submit", id: "create" }, "Create campaign");

  const field = (key, label, errorKeys, hint) =>
    h("div", { class: "field", dataset: { field: errorKeys || key } }, h("label", { for: inputs[key].id }, label), inputs[key], hint ? h("small", { class: "muted" }, hint) : null, h("p", { class: "field-error" }));
  const emailOnly = [field("subject", "Subject"), field("html", "HTML body (optional)")];
  const form = h(
    "form",
    { id: "campaign-form", class: "campaign-form", novalidate: true },
    field("name", "Name"),
    field("channel", "Channel"),
    field("text", "Text", "text", "Variables: {{first_name}}, {{phone}}, … any client attribute."),
    field("template", "or a template"),
    emailOnly,
    h("fieldset", {}, h("legend", {}, "Recipients"), field("tags", "Tags", "filter.tags"), field("operator_codes", "Operator codes", "filter.operator_codes")),
    h("fieldset", {}, h("legend", {}, "When"), field("starts_at", "Starts (empty: now)"), field("ends_at", "Ends"), field("window_start", "Send window from", "send_window.start"), field("window_end", "to (recipient's time)", "send_window.end"), field("rate_limit", "Rate limit")),
    formError,
    create,
  );
  const test = testSendForm(({ address }) => post("/campaigns/preview/test", { ...body(), test_address: address }));

  replace(
    view,
    h("h1", {}, "New campaign"),
    h("div", { class: "two-columns" }, form, h("aside", {}, h("h2", {}, "Preview"), preview, h("h2", {}, "Test send"), h("p", { class: "muted" }, "One message, now, rendered for the client with that address if there is one."), test)),
  );

  const showEmailFields = () => {
    for (const el of emailOnly) el.hidden = inputs.channel.value !== "email";
  };
  showEmailFields();
  inputs.channel.addEventListener("change", showEmailFields);

  function body() {
    const list = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);
    const campaign = {
      name: inputs.name.value,
      channel: inputs.channel.value,
      filter: { tags: list(inputs.tags.value), operator_codes: list(inputs.operator_codes.value) },
      ends_at: fromLocalInput(inputs.ends_at.value),
    };
    if (inputs.template.value.trim()) campaign.template = inputs.template.value.trim();
    else campaign.text = inputs.text.value;
    if (inputs.channel.value === "email") {
      if (inputs.subject.value) campaign.subject = inputs.subject.value;
      if (inputs.html.value) campaign.html = inputs.html.value;
    }
    if (inputs.starts_at.value) campaign.starts_at = fromLocalInput(inputs.starts_at.value);
    if (inputs.window_start.value || inputs.window_end.value) {
      campaign.send_window = { start: inputs.window_start.value, end: inputs.window_end.value };
    }
    if (inputs.rate_limit.value !== "") campaign.rate_limit = Number(inputs.rate_limit.value);
    if (campaign.ends_at === undefined) delete campaign.ends_at;
    return campaign;
  }

  function showErrors(fields, message) {
    const shown = new Set();
    for (const wrap of form.querySelectorAll(".field")) {
      const key = wrap.dataset.field;
      const reasons = Object.entries(fields)
        .filter(([path]) => path === key || path.startsWith(`${key}.`))
        .flatMap(([path, list]) => {
          shown.add(path);
          return list;
        });
      wrap.classList.toggle("invalid", reasons.length > 0);
      wrap.querySelector(".field-error").textContent = reasons.join(" ");
    }
    const rest = Object.entries(fields).filter(([path]) => !shown.has(path));
    formError.textContent = rest.length ? rest.map(([path, list]) => `${path}: ${list.join(" ")}`).join(" · ") : message || "";
  }

  let sequence = 0;
  let timer = null;
  async function refreshPreview() {
    const mine = ++sequence;
    try {
      const answer = await post("/campaigns/preview", body());
      if (mine !== sequence) return;
      showErrors({}, "");
      drawPreview(preview, answer);
    } catch (err) {
      if (mine !== sequence) return;
      showErrors(err.fields || {}, err.status === 422 ? "" : err.message);
      replace(preview, h("p", { class: "muted" }, "Fix the fields marked to see the preview."));
    }
  }
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 350);
  });
  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 50);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    try {
      const campaign = await post("/campaigns", body());
      location.hash = `#/campaigns/${campaign.id}`;
    } catch (err) {
      showErrors(err.fields || {}, err.message);
    } finally {
      create.disabled = false;
    }
  });
  return () => clearTimeout(timer);
}

function drawPreview(el, p) {
  const f = p.forecast;
  const rows = [
    ["Recipients", count(p.recipients), "recipients"],
    ["Matched by the filter", count(p.matched), "matched"],
    ["Left out", `${count(p.left_out.total)}: ${count(p.left_out.no_phone)} no phone, ${count(p.left_out.no_email)} no e-mail, ${count(p.left_out.opted_out)} opted out`, "left-out"],
    ["Inside the send window now", count(p.in_window_now), "in-window"],
    ["Forecast finish", `${when(f.finishes_at)} (${duration(f.duration_s)} at ${rate(f.rate_per_s)})`, "finish"],
  ];
  const fits = f.fits_before_end ? null : h("p", { class: "warning", id: "not-before-end" }, "It would not finish before the campaign ends: the rest would expire.");
  const sms = p.sms
    ? ["SMS", `${count(p.sms.segments)} segments (${count(p.sms.messages["GSM-7"])} GSM-7, ${count(p.sms.messages["UCS-2"])} UCS-2)${p.sms.cost ? `, cost ${p.sms.cost}` : ""}`, "sms"]
    : null;
  if (sms) rows.push(sms);
  const sample = p.sample
    ? h("div", { class: "sample", id: "sample" }, h("h3", {}, `As client ${p.sample.client_id} (${p.sample.address}) gets it`), p.sample.subject ? h("p", { class: "subject" }, p.sample.subject) : null, h("pre", { class: "text" }, p.sample.text))
    : h("p", { class: "muted", id: "sample" }, "No client would get it yet.");
  const list = h("dl", { class: "details" }, rows.map(([k, v, key]) => h("div", { dataset: { preview: key } }, h("dt", {}, k), h("dd", {}, v))));
  replace(el, list, fits, sample);
}
