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
      if (d && !d.open) {
        d._opener = opener; // focus goes back here when the dialog closes
        d.showModal();
        var f = d.querySelector("[autofocus]"); if (f) { f.focus(); }
      }
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
  // <input type=checkbox data-select-all="form-id"> ticks every row checkbox of that form.
  document.addEventListener("change", function (e) {
    var all = e.target.closest("[data-select-all]");
    if (!all) { return; }
    var form = all.getAttribute("data-select-all");
    document.querySelectorAll('input[type=checkbox][form="' + form + '"]').forEach(function (b) { b.checked = all.checked; });
  });
  // A dialog rendered with data-open-on-load opens itself (e.g. a running bulk job after a reload).
  function openOnLoad(root) {
    (root || document).querySelectorAll("dialog[data-open-on-load]").forEach(function (d) {
      if (!d.open) { d.showModal(); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { openOnLoad(document); });
  // Closing a dialog (button or Escape) returns focus to what opened it.
  document.addEventListener("close", function (e) {
    var d = e.target;
    if (d && d.tagName === "DIALOG" && d._opener && document.contains(d._opener)) { d._opener.focus(); }
  }, true);
  document.addEventListener("htmx:afterSettle", function (e) { openOnLoad(e.target); });
})();
