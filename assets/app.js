// Aura's small client script. Loaded from /assets (the CSP allows no inline
// script). Pages work without it; it only adds conveniences.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true;
    });
  }
});

// The schema editor: "Add another field" copies the last blank row with the
// next index.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-add-row]")) {
    button.addEventListener("click", () => {
      const body = document.querySelector(button.dataset.addRow + " tbody");
      const rows = body.querySelectorAll("tr.field-row");
      const last = rows[rows.length - 1];
      const copy = last.cloneNode(true);
      const next = rows.length;
      for (const el of copy.querySelectorAll("[name]")) {
        el.name = el.name.replace(/^f\d+\./, "f" + next + ".");
        if (el.type === "checkbox") el.checked = false;
        else if (el.tagName !== "SELECT") el.value = "";
        el.disabled = false;
      }
      body.appendChild(copy);
    });
  }
});

// CSV import: sends the chosen file to the API as text/csv and shows the
// result, or every problem with its line and column.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-import]");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = document.getElementById("import-result");
    const file = document.getElementById("import-file").files[0];
    const button = form.querySelector("button[type=submit]");
    if (!file) return;
    out.textContent = "Importing…";
    try {
      const resp = await fetch(form.dataset.import, {
        method: "POST",
        headers: { "content-type": "text/csv" },
        credentials: "same-origin",
        body: await file.text(),
      });
      const body = await resp.json();
      out.replaceChildren();
      if (resp.ok) {
        out.textContent = "Imported " + body.imported + " records. ";
        const a = document.createElement("a");
        a.href = location.pathname;
        a.textContent = "Show them";
        out.appendChild(a);
      } else {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = (body.detail || body.title) + " Nothing was imported.";
        out.appendChild(p);
        const ul = document.createElement("ul");
        for (const e of body.errors || []) {
          const li = document.createElement("li");
          li.textContent = e.field + ": " + e.message;
          ul.appendChild(li);
        }
        out.appendChild(ul);
      }
    } catch (e) {
      out.textContent = "The import could not be sent: " + e;
    } finally {
      button.disabled = false;
    }
  });
});
