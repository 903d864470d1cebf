// "Send one to": a preview of the message to one address, through the campaign's channel.

import { h } from "../dom.js";

export function testSendForm(send) {
  const address = h("input", { id: "test-address", name: "test_address", autocomplete: "off", placeholder: "+79123456789 or ann@example.com", "aria-label": "Test address" });
  const result = h("p", { class: "muted", id: "test-result", role: "status" });
  const form = h("form", { class: "inline", id: "test-send" }, address, h("button", { type: "submit", class: "secondary" }, "Send test"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "Sending…";
    try {
      const answer = await send({ address: address.value.trim() });
      const to = `${answer.address}${answer.client_id ? ` (client ${answer.client_id})` : ""}`;
      result.textContent = answer.kind === "sent" ? `Sent to ${to}.` : `Not sent (${answer.kind}): ${answer.error || "no reason given"}`;
    } catch (err) {
      const reasons = Object.values(err.fields || {}).flat();
      result.textContent = reasons.length ? `${err.message}: ${reasons.join("; ")}` : err.message;
    }
  });
  return form;
}
