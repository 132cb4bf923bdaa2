// metalboot status page: live updates over server-sent events, and a
// confirmation before arming or disarming. Without JavaScript the page
// still works: the server asks for the confirmation itself.
"use strict";

function confirmForms(root) {
  root.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.dataset.confirm)) { ev.preventDefault(); return; }
      var c = document.createElement("input");
      c.type = "hidden"; c.name = "confirm"; c.value = "yes";
      f.appendChild(c);
    });
  });
}

function replace(html) {
  var t = document.createElement("template");
  t.innerHTML = html.trim();
  var fresh = t.content.firstElementChild;
  var old = fresh && document.getElementById(fresh.id);
  if (!old) { return; }
  // keep what the operator opened
  old.querySelectorAll("details[data-key]").forEach(function (d) {
    var n = fresh.querySelector('details[data-key="' + d.dataset.key + '"]');
    if (n) { n.open = d.open; }
  });
  old.replaceWith(fresh);
  confirmForms(fresh);
}

document.addEventListener("DOMContentLoaded", function () {
  confirmForms(document);
  var live = document.getElementById("live");
  var es = new EventSource("/ui/events");
  es.addEventListener("open", function () { live.textContent = "Live updates: on"; });
  es.addEventListener("error", function () { live.textContent = "Live updates: reconnecting…"; });
  es.addEventListener("host", function (ev) { replace(ev.data); });
  es.addEventListener("summary", function (ev) { replace(ev.data); });
  es.addEventListener("reload", function () { window.location.reload(); });
});
