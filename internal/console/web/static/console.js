// Live updates: the event stream (GET /events) changes the folder rows in
// place and lists the events; a change of the page's shape reloads it.
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) { if (!confirm(f.dataset.confirm)) ev.preventDefault(); });
  });
  var live = document.getElementById("live");
  var es = new EventSource("/events");
  // A change of the page's shape reloads it, but not while a form is being
  // sent (its answer is a fresh page, and a reload would cancel it) or
  // filled in (a reload would drop what was typed): the list says so then.
  var sending = false, stale = false;
  document.addEventListener("submit", function (ev) { if (!ev.defaultPrevented) sending = true; });
  function editing() {
    return Array.prototype.some.call(document.querySelectorAll("input, select, textarea"), function (f) {
      if (f.type === "hidden" || f.type === "submit") return false;
      if (f.type === "checkbox") return f.checked !== f.defaultChecked;
      if (f.tagName === "SELECT") return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
      return f.value !== f.defaultValue;
    });
  }
  function reload() {
    if (sending) return;
    if (!editing()) { location.reload(); return; }
    if (stale) return;
    stale = true;
    var li = document.createElement("li");
    li.className = "warning";
    li.id = "stale-page";
    li.textContent = "This page is out of date: reload it once you are done with the form.";
    if (!live) return;
    if (live.firstElementChild && live.firstElementChild.classList.contains("muted")) live.innerHTML = "";
    live.insertBefore(li, live.firstChild);
  }
  function note(e) {
    var li = document.createElement("li");
    li.textContent = new Date(e.time).toLocaleTimeString() + " " + e.type + " " + (e.data.name || e.data.to || e.data.leader_name || e.data.message || e.data.error || "");
    if (live.firstElementChild && live.firstElementChild.classList.contains("muted")) live.innerHTML = "";
    live.insertBefore(li, live.firstChild);
    while (live.children.length > 20) live.removeChild(live.lastChild);
  }
  function bytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  // A folder's page (body data-folder) shows one folder: the others'
  // events do not change it, and its own say when the history moved.
  var only = document.body.dataset.folder;
  function folder(e) {
    var row = document.querySelector('tr[data-folder="' + e.data.folder + '"]');
    if (only) {
      if (e.data.folder !== only) return;
      var stale = document.getElementById("stale");
      if (stale && e.type === "FolderProgress") stale.hidden = false;
    }
    if (!row) { if (!only) reload(); return; }
    function set(f, t) { var c = row.querySelector('[data-field="' + f + '"]'); if (c) c.textContent = t; }
    set("state", e.data.state + (e.data.in_sync ? " · in sync" : ""));
    var pc = row.querySelector('[data-field="progress"]');
    if (pc) {
      var bar = pc.querySelector("progress"), txt = pc.querySelector("span");
      if (bar) bar.value = e.data.progress || 0;
      if (txt) txt.textContent = Math.round((e.data.progress || 0) * 100) + "%";
    }
    set("here", e.data.local_files + " files, " + bytes(e.data.local_bytes || 0));
    set("needed", e.data.need_files + " files, " + bytes(e.data.need_bytes || 0));
    set("rate", e.data.rate >= 1 ? bytes(e.data.rate) + "/s" : "–");
  }
  ["FolderStateChanged", "FolderProgress"].forEach(function (t) {
    es.addEventListener(t, function (m) { var e = JSON.parse(m.data); folder(e); note(e); });
  });
  ["FolderAdded", "FolderRemoved"].forEach(function (t) {
    es.addEventListener(t, function (m) {
      var e = JSON.parse(m.data);
      if (!only || e.data.folder === only) reload();
    });
  });
  es.addEventListener("RoleChanged", function (m) {
    var e = JSON.parse(m.data), r = document.getElementById("role");
    if (e.data.from && r && r.textContent.indexOf(e.data.to) !== 0) reload();
  });
  ["LeaderChanged", "Conflict", "FolderError", "PeerConnected", "PeerDisconnected", "Quarantine", "Security", "Error"].forEach(function (t) {
    es.addEventListener(t, function (m) {
      var e = JSON.parse(m.data);
      if (t === "Conflict") {
        var row = document.querySelector('tr[data-folder="' + e.data.folder + '"] [data-field="conflicts"]');
        if (row) row.textContent = String((parseInt(row.textContent, 10) || 0) + 1);
      }
      if (t === "LeaderChanged") {
        var l = document.getElementById("leader"), tm = document.getElementById("term");
        if (l) l.textContent = e.data.leader_name || "none";
        if (tm) tm.textContent = e.data.term;
      }
      note(e);
    });
  });
})();
