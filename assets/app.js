// Aura's small client script. Loaded from /assets (the CSP allows no inline
// script). Pages work without it; it only adds conveniences.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true;
    });
  }
});

// The schema editor: a new row's type-specific settings (choices, currency,
// related collection; `data-for` names their types) show only for the type
// chosen. Without this script every setting shows, each labelled.
function showSettingsFor(row) {
  const type = row.querySelector("select[data-field-type]");
  if (!type || type.disabled) return;
  for (const opt of row.querySelectorAll("[data-for]")) {
    opt.hidden = !opt.dataset.for.split(" ").includes(type.value);
  }
}

document.addEventListener("change", (ev) => {
  if (!(ev.target instanceof HTMLSelectElement) || !ev.target.matches("[data-field-type]")) return;
  const row = ev.target.closest("tr.field-row");
  if (row) showSettingsFor(row);
});

// "Add another field" copies the last blank row with the next index.
document.addEventListener("DOMContentLoaded", () => {
  for (const row of document.querySelectorAll("tr.field-row")) showSettingsFor(row);
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
      for (const el of copy.querySelectorAll("[id]")) {
        el.id = el.id.replace(/^(in|err)-f\d+-/, "$1-f" + next + "-");
      }
      body.appendChild(copy);
      showSettingsFor(copy);
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

// Passkeys (WebAuthn). The server sends options with binary fields in
// base64url and takes the credential back the same way.
const b64u = {
  enc(buf) {
    let s = "";
    for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  dec(str) {
    const s = atob(str.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((str.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  },
};

async function postJson(url, body) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const field = (data.errors || []).map((e) => e.field + " " + e.message).join("; ");
    throw new Error(field || data.detail || data.title || "failed (" + r.status + ")");
  }
  return data;
}

async function passkeyCreate(options) {
  const pk = options.publicKey;
  pk.challenge = b64u.dec(pk.challenge);
  pk.user.id = b64u.dec(pk.user.id);
  for (const c of pk.excludeCredentials || []) c.id = b64u.dec(c.id);
  // A discoverable credential, so it can also sign in on its own.
  pk.authenticatorSelection = Object.assign({}, pk.authenticatorSelection, {
    residentKey: "required",
    requireResidentKey: true,
  });
  const cred = await navigator.credentials.create({ publicKey: pk });
  return {
    id: cred.id,
    rawId: b64u.enc(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: b64u.enc(cred.response.attestationObject),
      clientDataJSON: b64u.enc(cred.response.clientDataJSON),
    },
    extensions: cred.getClientExtensionResults(),
  };
}

async function passkeyGet(options) {
  const pk = options.publicKey;
  pk.challenge = b64u.dec(pk.challenge);
  for (const c of pk.allowCredentials || []) c.id = b64u.dec(c.id);
  const cred = await navigator.credentials.get({ publicKey: pk });
  return {
    id: cred.id,
    rawId: b64u.enc(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: b64u.enc(cred.response.authenticatorData),
      clientDataJSON: b64u.enc(cred.response.clientDataJSON),
      signature: b64u.enc(cred.response.signature),
      userHandle: cred.response.userHandle ? b64u.enc(cred.response.userHandle) : null,
    },
    extensions: cred.getClientExtensionResults(),
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const status = (el, text) => {
    const out = document.querySelector(el.dataset.status || "#passkey-status");
    if (out) out.textContent = text;
  };
  for (const button of document.querySelectorAll("[data-passkey]")) {
    button.addEventListener("click", async (ev) => {
      ev.preventDefault();
      try {
        if (button.dataset.passkey === "register") {
          const start = await postJson("/api/v1/me/passkeys/register/start", {
            name: document.querySelector("#passkey-name").value,
            password: document.querySelector("#passkey-password").value,
          });
          const credential = await passkeyCreate(start.options);
          await postJson("/api/v1/me/passkeys/register/finish", {
            ceremony: start.ceremony,
            credential,
          });
          window.location.assign("/account?added=passkey#passkeys");
        } else {
          const token = button.dataset.mfaToken;
          const start = await postJson("/api/v1/auth/passkey/start", token ? { mfa_token: token } : {});
          const credential = await passkeyGet(start.options);
          await postJson("/api/v1/auth/passkey/finish", { ceremony: start.ceremony, credential });
          // The server checked `next` is a path on this site before writing it.
          const next = button.dataset.next;
          window.location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/workspaces");
        }
      } catch (e) {
        status(button, "Passkey: " + e.message);
      }
    });
  }
});

// Copy buttons: `data-copy` names the element whose text goes to the
// clipboard; a `data-copy-status` beside it says whether it worked.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      const status = button.parentElement.querySelector("[data-copy-status]");
      try {
        await navigator.clipboard.writeText(source.innerText);
        if (status) status.textContent = "Copied.";
      } catch (e) {
        if (status) status.textContent = "Could not copy here; select the codes and copy them.";
      }
    });
  }
});

// Destructive actions ask first: a form with data-confirm opens a dialog
// (Cancel keeps everything as it is). Without this script the form posts
// at once, as before.
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (form.dataset.confirmed === "1") return;
  ev.preventDefault();
  ev.stopImmediatePropagation();
  const dialog = document.createElement("dialog");
  dialog.className = "confirm";
  dialog.setAttribute("aria-labelledby", "confirm-text");
  const text = document.createElement("p");
  text.id = "confirm-text";
  text.textContent = form.dataset.confirm;
  const actions = document.createElement("div");
  actions.className = "actions";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "secondary";
  cancel.id = "confirm-cancel";
  cancel.textContent = "Cancel";
  const ok = document.createElement("button");
  ok.type = "button";
  ok.className = "danger";
  ok.id = "confirm-ok";
  ok.textContent = form.dataset.confirmLabel || "Yes, go ahead";
  actions.append(cancel, ok);
  dialog.append(text, actions);
  document.body.appendChild(dialog);
  // Gone at once (the close event comes later; Escape closes through it).
  const dismiss = () => { dialog.close(); dialog.remove(); };
  cancel.addEventListener("click", dismiss);
  dialog.addEventListener("close", () => dialog.remove());
  ok.addEventListener("click", () => {
    form.dataset.confirmed = "1";
    dismiss();
    form.requestSubmit();
  });
  dialog.showModal();
  cancel.focus();
}, true);

// File uploads (form[data-upload]): the same multipart post, sent with a
// progress bar. The answer (the record's page, with the new file or the
// error at the field) replaces the page. Without this script the form
// posts as it is and the browser shows that page itself.
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement) || !("upload" in form.dataset)) return;
  ev.preventDefault();
  const bar = form.querySelector("progress");
  const button = form.querySelector("button[type=submit]");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  const token = new URL(form.action, location.href).searchParams.get("csrf");
  if (token) xhr.setRequestHeader("x-csrf-token", token);
  if (bar) { bar.hidden = false; bar.value = 0; }
  if (button) button.disabled = true;
  xhr.upload.addEventListener("progress", (e) => {
    if (bar && e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
  });
  xhr.addEventListener("load", () => {
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    if (xhr.responseURL) history.replaceState(null, "", xhr.responseURL);
    const files = document.getElementById("files");
    if (files) files.scrollIntoView();
  });
  xhr.addEventListener("error", () => {
    if (button) button.disabled = false;
    if (bar) bar.hidden = true;
    const note = document.createElement("p");
    note.className = "field-error";
    note.setAttribute("role", "alert");
    note.textContent = "The upload did not finish; check the connection and try again.";
    form.append(note);
  });
  xhr.send(new FormData(form));
});
