// The identity link's success callback: tell the admin page and close this popup.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (window.opener && !window.opener.closed) {
    try { window.opener.location.href = "/admin/integration/"; } catch (e) { /* another origin */ }
    window.close();
  }
});
