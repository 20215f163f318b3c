// Live updates of the request page: the server sends the request as this viewer sees it
// whenever it changes; the page updates state and approvals in place and the status line is an
// aria-live region, so screen readers hear the change. The page works without this script.
(function () {
  "use strict";
  var root = document.getElementById("request");
  if (!root || !window.EventSource || root.getAttribute("data-state") !== "pending") {
    return;
  }
  var byId = function (id) { return document.getElementById(id); };
  var labelOf = { pending: "Pending", approved: "Approved", denied: "Denied", expired: "Expired" };
  var source = new EventSource(root.getAttribute("data-events"));

  function setText(id, text) {
    var el = byId(id);
    if (el) { el.textContent = text; }
  }

  function renderApprovals(list) {
    var ul = byId("approvals");
    if (!ul) { return; }
    while (ul.firstChild) { ul.removeChild(ul.firstChild); }
    (list || []).forEach(function (a) {
      var li = document.createElement("li");
      var who = document.createElement("strong");
      who.textContent = a.by;
      li.appendChild(who);
      li.appendChild(document.createTextNode(" approved "));
      var t = document.createElement("time");
      t.setAttribute("datetime", a.at.iso);
      t.title = a.at.absolute;
      t.textContent = a.at.relative;
      li.appendChild(t);
      if (a.comment) {
        li.appendChild(document.createTextNode(": "));
        var q = document.createElement("q");
        q.textContent = a.comment;
        li.appendChild(q);
      }
      ul.appendChild(li);
    });
  }

  source.addEventListener("request", function (e) {
    var d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    var state = byId("state");
    if (state) {
      state.className = "badge state-" + d.state;
      state.textContent = d.state_label || labelOf[d.state] || d.state;
    }
    setText("have", String(d.have));
    setText("needed", d.needed + " more " + (d.needed === 1 ? "approval" : "approvals") + " needed.");
    renderApprovals(d.approvals);
    var live = byId("live");
    if (live && live.textContent !== d.summary) { live.textContent = d.summary; }
    root.setAttribute("data-state", d.state);
    if (d.state === "pending") {
      // Someone may have approved in the meantime (this viewer too, in another tab).
      var approve = byId("approve");
      if (approve && !d.can_approve) { approve.hidden = true; }
      if (d.why_not) { explain(d.why_not); }
      return;
    }
    // Decided: stop listening (else the browser reconnects) and retire the form.
    source.close();
    if (d.decided) {
      setText("decided", d.decided.relative + " (" + d.decided.absolute + ")");
    }
    var needed = byId("needed");
    if (needed) { needed.hidden = true; }
    if (d.denied_by) {
      setText("denied", d.denied_by + " denied" + (d.deny_comment ? ": \u201c" + d.deny_comment + "\u201d" : ""));
      var denied = byId("denied");
      if (denied) { denied.hidden = false; }
    }
    var form = byId("decide-form");
    if (form) {
      Array.prototype.forEach.call(form.querySelectorAll("button, textarea"), function (el) { el.disabled = true; });
    }
    explain(d.why_not || "This request is " + d.state + ": no further decision is possible.");
  });

  function explain(text) {
    var why = byId("why-not");
    var form = byId("decide-form");
    if (!why && form) {
      why = document.createElement("p");
      why.id = "why-not";
      why.className = "why-not";
      form.parentNode.appendChild(why);
    }
    if (why) { why.textContent = text; }
  }
})();
