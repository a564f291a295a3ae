// Aura's small client script. Loaded from /assets (the CSP allows no inline
// script). Pages work without it; it only adds conveniences.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true;
    });
  }
});
