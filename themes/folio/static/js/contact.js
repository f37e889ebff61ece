// The contact form, in place: posts to /api/contact with fetch and shows the Worker's
// answer beside the fields. Without this script the form still works (plain post,
// 303 to the thank-you page or the form again with the errors).
(() => {
  const form = document.querySelector("[data-contact-form]");
  if (!form) return;
  const status = form.querySelector("[data-contact-status]");
  const errorOf = (f) => form.querySelector(`[data-folio-error="${f}"]`);
  const controlOf = (f) => form.querySelector(`[data-folio-invalid="${f}"]`);
  const clear = () => {
    form.querySelectorAll("[data-folio-error]").forEach((p) => { p.textContent = ""; p.hidden = true; });
    form.querySelectorAll("[aria-invalid]").forEach((c) => c.removeAttribute("aria-invalid"));
    status.textContent = "";
  };
  const show = (field, text) => {
    const p = errorOf(field);
    if (p) { p.textContent = text; p.hidden = false; }
    const c = controlOf(field);
    if (c) c.setAttribute("aria-invalid", "true");
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear();
    // The build's minifier drops type="submit" (a button's default): match by what it is.
    const button = ev.submitter ?? form.querySelector("button:not([type]), button[type=submit]");
    if (button) button.disabled = true;
    status.textContent = "Sending…";
    try {
      const resp = await fetch(form.action, {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
      });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) {
        form.reset();
        form.querySelectorAll(".field, button").forEach((el) => { el.hidden = true; });
        status.textContent = body.message || "Thank you: your message was sent.";
        return;
      }
      status.textContent = "";
      if (body.fields) {
        for (const [field, text] of Object.entries(body.fields)) show(field, text);
        show("form", body.message || "Please correct the highlighted fields.");
        const first = form.querySelector("[aria-invalid=true]");
        if (first) first.focus();
      } else {
        show("form", body.message || `The message could not be sent (${resp.status}).`);
      }
    } catch {
      status.textContent = "";
      show("form", "The message could not be sent: check your connection and try again.");
    } finally {
      if (button) button.disabled = false;
    }
  });
})();
