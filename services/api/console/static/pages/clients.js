// Clients: search by phone prefix, tag and operator code (keyset pages), edit one, import a CSV.

import { call, flatten, get, query, session } from "../api.js";
import { h, progressBar, replace, setBar } from "../dom.js";
import { count } from "../format.js";
import { splitRecords } from "./csv.js";

const PAGE = 50;
const CHUNK_RECORDS = 2000;
const MAX_REASONS = 1000;

export function clientsPage(view) {
  const state = { cursors: [null], next: null, filters: {} };
  const phone = h("input", { id: "q-phone", name: "phone", placeholder: "+7 912…", "aria-label": "Phone starts with" });
  const tag = h("input", { id: "q-tag", name: "tag", placeholder: "tag", "aria-label": "Tag" });
  const code = h("input", { id: "q-code", name: "operator_code", placeholder: "operator code", "aria-label": "Operator code" });
  const note = h("p", { class: "muted", id: "clients-note", role: "status" });
  const body = h("tbody");
  const older = h("button", { type: "button", class: "secondary", id: "next-page" }, "Next page");
  const first = h("button", { type: "button", class: "secondary", id: "first-page" }, "First page");
  const editor = h("div", { id: "editor" });
  const search = h("form", { class: "toolbar", id: "client-search" }, phone, tag, code, h("button", { type: "submit" }, "Search"));

  search.addEventListener("submit", (event) => {
    event.preventDefault();
    state.filters = { phone: phone.value.trim(), tag: tag.value.trim(), operator_code: code.value.trim() };
    state.cursors = [null];
    load();
  });
  older.addEventListener("click", () => {
    state.cursors.push(state.next);
    load();
  });
  first.addEventListener("click", () => {
    state.cursors = [null];
    load();
  });

  async function load() {
    const after = state.cursors[state.cursors.length - 1];
    try {
      const page = await get(`/clients${query({ ...state.filters, limit: PAGE, after })}`);
      state.next = page.next_after;
      older.disabled = page.next_after === null;
      first.disabled = state.cursors.length === 1;
      replace(body, page.items.map((client) => row(client, () => edit(editor, client, load))));
      note.textContent = page.items.length ? "" : "No client matches.";
    } catch (err) {
      const reasons = Object.entries(err.fields || {}).map(([k, v]) => `${k}: ${v.join(" ")}`);
      note.textContent = reasons.length ? reasons.join(" · ") : err.message;
      replace(body);
    }
  }

  replace(
    view,
    h("h1", {}, "Clients"),
    search,
    note,
    h("div", { class: "two-columns" },
      h("div", {},
        h("table", { class: "list", id: "clients" },
          h("thead", {}, h("tr", {}, ["#", "Phone", "E-mail", "Operator", "Tags", "Time zone", "Opted out"].map((t) => h("th", {}, t)))),
          body),
        h("div", { class: "pager" }, first, older)),
      h("aside", {}, editor, session.canWrite ? importPanel(load) : null)),
  );
  load();
  return () => {};
}

function row(client, onOpen) {
  return h(
    "tr",
    { dataset: { clientId: client.id } },
    h("td", {}, client.id),
    h("td", {}, h("a", { href: "#/clients", class: "phone", onclick: (e) => { e.preventDefault(); onOpen(); } }, client.phone)),
    h("td", {}, client.email || "–"),
    h("td", {}, client.operator_code),
    h("td", {}, client.tags.join(", ")),
    h("td", {}, client.timezone),
    h("td", { class: "opted-out" }, client.opted_out.join(", ") || "–"),
  );
}

function edit(el, client, reload) {
  const canWrite = session.canWrite;
  const input = (name, value) => h("input", { id: `c-${name}`, name, value: value ?? "", disabled: !canWrite });
  const inputs = {
    phone: input("phone", client.phone),
    email: input("email", client.email),
    operator_code: input("operator_code", client.operator_code),
    tags: input("tags", client.tags.join(", ")),
    timezone: input("timezone", client.timezone),
    attributes: h("textarea", { id: "c-attributes", name: "attributes", rows: 4, value: JSON.stringify(client.attributes, null, 1), disabled: !canWrite }),
    opted_out: input("opted_out", client.opted_out.join(", ")),
  };
  const result = h("p", { class: "muted", id: "edit-result", role: "status" });
  const fields = Object.entries(inputs).map(([name, control]) =>
    h("div", { class: "field", dataset: { field: name } }, h("label", { for: control.id }, name.replace("_", " ")), control, h("p", { class: "field-error" })),
  );
  const form = h("form", { id: "client-form" }, h("h2", {}, `Client ${client.id}`), fields, canWrite ? h("button", { type: "submit" }, "Save") : null, result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const wrap of form.querySelectorAll(".field")) {
      wrap.classList.remove("invalid");
      wrap.querySelector(".field-error").textContent = "";
    }
    let attributes;
    try {
      attributes = JSON.parse(inputs.attributes.value || "{}");
    } catch {
      markField(form, "attributes", ["must be a JSON object"]);
      return;
    }
    const list = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);
    const changes = {
      phone: inputs.phone.value.trim(),
      email: inputs.email.value.trim() || null,
      operator_code: inputs.operator_code.value.trim(),
      tags: list(inputs.tags.value),
      timezone: inputs.timezone.value.trim(),
      attributes,
      opted_out: list(inputs.opted_out.value),
    };
    try {
      const saved = await call("PATCH", `/clients/${client.id}`, changes);
      result.textContent = `Saved client ${saved.id}.`;
      reload();
    } catch (err) {
      for (const [path, reasons] of Object.entries(err.fields || {})) markField(form, path.split(".")[0], reasons);
      result.textContent = err.message;
    }
  });
  replace(el, form);
}

function markField(form, name, reasons) {
  const wrap = form.querySelector(`.field[data-field="${name}"]`);
  if (!wrap) return;
  wrap.classList.add("invalid");
  wrap.querySelector(".field-error").textContent = reasons.join(" ");
}

function importPanel(reload) {
  const file = h("input", { type: "file", id: "import-file", accept: ".csv,text/csv", "aria-label": "CSV file" });
  const bar = progressBar(0, "import");
  bar.hidden = true;
  const status = h("p", { class: "muted", id: "import-status", role: "status" });
  const reasonsBody = h("tbody");
  const reasons = h("table", { class: "list", id: "import-reasons", hidden: true }, h("thead", {}, h("tr", {}, ["Record", "Phone", "Why not"].map((t) => h("th", {}, t)))), reasonsBody);
  const start = h("button", { type: "submit", id: "import-start" }, "Import");
  const form = h("form", { id: "import" }, h("h2", {}, "Import a CSV file"), h("p", { class: "muted" }, "A header row naming phone (and operator_code, tags, timezone, email); other columns become attributes. Existing phones are updated."), file, start, bar, status, reasons);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) {
      status.textContent = "Choose a CSV file first.";
      return;
    }
    start.disabled = true;
    bar.hidden = false;
    reasons.hidden = true;
    replace(reasonsBody);
    const totals = { created: 0, updated: 0, rejected: 0 };
    try {
      const { header, records } = splitRecords(await file.files[0].text());
      let done = 0;
      for (let at = 0; at < records.length || at === 0; at += CHUNK_RECORDS) {
        const chunk = records.slice(at, at + CHUNK_RECORDS);
        const report = await call("POST", "/clients/import", [header, ...chunk].join("\n") + "\n", { contentType: "text/csv" });
        totals.created += report.created;
        totals.updated += report.updated;
        totals.rejected += report.rejected;
        for (const rejected of report.errors) {
          if (reasonsBody.childElementCount >= MAX_REASONS) break;
          const why = Object.entries(flatten(rejected.errors)).map(([k, v]) => `${k}: ${v.join(" ")}`).join("; ");
          reasonsBody.append(h("tr", {}, h("td", {}, at + rejected.row), h("td", {}, rejected.phone ?? "–"), h("td", { class: "reason" }, why)));
        }
        done += chunk.length;
        setBar(bar, records.length ? (100 * done) / records.length : 100, "import");
        status.textContent = `${count(done)} of ${count(records.length)} records: ${count(totals.created)} created, ${count(totals.updated)} updated, ${count(totals.rejected)} rejected`;
        if (records.length === 0) break;
      }
      status.textContent = `Imported ${count(records.length)} records: ${count(totals.created)} created, ${count(totals.updated)} updated, ${count(totals.rejected)} rejected.`;
      reasons.hidden = reasonsBody.childElementCount === 0;
      reload();
    } catch (err) {
      status.textContent = `Import stopped: ${err.message}`;
    } finally {
      start.disabled = false;
    }
  });
  return form;
}
