// The console's shell: sign-in with an API token, the navigation, and a hash router that
// gives each page the view to draw in. A page returns a function that stops its polling.

import { call, session, whenSignedOut } from "./api.js";
import { h, replace } from "./dom.js";
import { campaignPage } from "./pages/campaign.js";
import { campaignsPage } from "./pages/campaigns.js";
import { clientsPage } from "./pages/clients.js";
import { createPage } from "./pages/create.js";
import { operationsPage } from "./pages/operations.js";

const view = document.getElementById("view");
let stopPage = () => {};

const ROUTES = [
  [/^#\/campaigns\/new$/, "new", () => createPage],
  [/^#\/campaigns\/(\d+)$/, "campaigns", (m) => (el) => campaignPage(el, Number(m[1]))],
  [/^#\/campaigns$/, "campaigns", () => campaignsPage],
  [/^#\/clients$/, "clients", () => clientsPage],
  [/^#\/operations$/, "operations", () => operationsPage],
];

function route() {
  stopPage();
  stopPage = () => {};
  if (!session.scope) {
    signIn();
    return;
  }
  const hash = location.hash || "#/campaigns";
  for (const [pattern, nav, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      markNav(nav);
      stopPage = page(match)(view) || (() => {});
      return;
    }
  }
  replace(view, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/campaigns" }, "Campaigns")));
}

function markNav(current) {
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.nav === current);
  }
}

function showShell(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  const who = document.getElementById("who");
  who.hidden = !signedIn;
  who.textContent = signedIn ? `${session.scope} token` : "";
  document.body.classList.toggle("read-only", signedIn && !session.canWrite);
  for (const link of document.querySelectorAll("#nav [data-write]")) {
    link.hidden = !session.canWrite;
  }
}

function signIn(reason) {
  showShell(false);
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" }, reason || "");
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-label": "API token",
  });
  const form = h(
    "form",
    { class: "sign-in", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "With an API token (HERALD_API_TOKENS). It is kept for this tab only."),
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const token = input.value.trim();
    try {
      const { scope } = await call("GET", "/token", undefined, { token });
      session.keep(token, scope);
      showShell(true);
      route();
    } catch (err) {
      error.textContent =
        err.status === 401 ? "That token is not valid." : err.status === 403 ? "That token cannot use the console: it needs read or write scope." : err.message;
    }
  });
  replace(view, form);
  input.focus();
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", () => {
    session.forget();
    stopPage();
    location.hash = "#/campaigns";
    signIn();
  });
  whenSignedOut((message) => {
    session.forget();
    stopPage();
    signIn(`Signed out: ${message}`);
  });
  window.addEventListener("hashchange", route);
  if (session.token) {
    try {
      const { scope } = await call("GET", "/token");
      session.scope = scope;
      showShell(true);
    } catch {
      session.forget();
    }
  }
  route();
}

start();
