// Live updates of the Relais dashboard: when central reports that an agent
// changed (Server-Sent Events from /events), reload the page's live part
// (#live, from its data-live URL), only for the agent of data-key when set.
// While the keyboard focus is inside that part, the reload waits until the
// focus leaves it. Without this script the page works, and is reloaded by
// hand.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region || !window.EventSource || !window.fetch) {
    return;
  }
  var url = region.getAttribute("data-live");
  var key = region.getAttribute("data-key");
  var busy = false, again = false, waiting = false;

  function reload() {
    if (busy) {
      again = true;
      return;
    }
    if (region.contains(document.activeElement)) {
      if (!waiting) {
        waiting = true;
        region.addEventListener("focusout", function () {
          waiting = false;
          reload();
        }, {once: true});
      }
      return;
    }
    busy = true;
    region.setAttribute("aria-busy", "true");
    fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (!r.ok || r.redirected) {
        // The session ended: the full page shows the login form.
        window.location.reload();
        throw new Error("reload");
      }
      return r.text();
    }).then(function (html) {
      region.innerHTML = html;
    }).catch(function () {}).finally(function () {
      busy = false;
      region.removeAttribute("aria-busy");
      if (again) {
        again = false;
        reload();
      }
    });
  }

  var events = new EventSource("/events");
  events.addEventListener("update", function (e) {
    var keys = String(e.data || "").split(" ");
    if (!key || keys.indexOf("*") >= 0 || keys.indexOf(key) >= 0) {
      reload();
    }
  });
})();
