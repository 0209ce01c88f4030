// Progressive enhancement only: every page works without this file, except that the identity
// link opens in the same tab instead of a popup.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Confirmations before destructive posts.
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  // Allowing an integration with an identity link: open its popup window now, while the click
  // counts as the user's gesture (browsers block popups opened later by a page load); the page
  // that answers the POST then only sends that window to the identity link.
  const allow = document.querySelector("form[data-opens-popup]");
  if (allow) {
    allow.addEventListener("submit", () => {
      window.open("about:blank", "integration_identity_link", "popup,width=980,height=640");
      sessionStorage.setItem("identityPopupPending", "1");
    });
  }
  // The identity link opens in a popup; its success callback closes it and reloads this page.
  const link = document.querySelector("a[data-popup]");
  if (!link && sessionStorage.getItem("identityPopupPending")) {
    // The activation failed before reaching the identity link: close the waiting popup.
    sessionStorage.removeItem("identityPopupPending");
    const waiting = window.open("", "integration_identity_link");
    if (waiting) waiting.close();
  }
  if (link) {
    sessionStorage.removeItem("identityPopupPending");
    const open = (event) => {
      const popup = window.open(link.href, "integration_identity_link", "popup,width=980,height=640");
      if (popup) {
        if (event) event.preventDefault();
        window.integrationPopup = popup;
      }
    };
    link.addEventListener("click", open);
    open(null);
  }
  // Custom resources only matter when "Custom" is chosen.
  const all = document.getElementById("all_resources");
  const tree = document.getElementById("resource-tree");
  if (all && tree) {
    const sync = () => { tree.hidden = all.value === "1"; };
    all.addEventListener("change", sync);
    sync();
  }
});
