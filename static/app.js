// Unifi for Go: the little JavaScript the pages need (no inline scripts: CSP).
(function () {
  "use strict";
  // Send the CSRF token with every htmx request.
  document.addEventListener("htmx:configRequest", function (e) {
    var m = document.querySelector('meta[name="csrf-token"]');
    if (m) { e.detail.headers["X-CSRF-Token"] = m.content; }
  });
  // <button data-open-dialog="id"> opens a dialog; [data-close-dialog] closes the enclosing one.
  document.addEventListener("click", function (e) {
    var opener = e.target.closest("[data-open-dialog]");
    if (opener) {
      var d = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (d && !d.open) { d.showModal(); var f = d.querySelector("[autofocus]"); if (f) { f.focus(); } }
      e.preventDefault();
      return;
    }
    var closer = e.target.closest("[data-close-dialog]");
    if (closer) {
      var dlg = closer.closest("dialog");
      if (dlg) { dlg.close(); }
      e.preventDefault();
    }
  });
  // A dialog rendered with data-open-on-load opens itself (e.g. a running bulk job after a reload).
  function openOnLoad(root) {
    (root || document).querySelectorAll("dialog[data-open-on-load]").forEach(function (d) {
      if (!d.open) { d.showModal(); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { openOnLoad(document); });
  document.addEventListener("htmx:afterSettle", function (e) { openOnLoad(e.target); });
})();
