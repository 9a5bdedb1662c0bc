// Reloads the page every 30 seconds while it is shown, so that a new scan
// or print appears by itself; the message of an action is dropped then. The
// page works without it.
"use strict";
setInterval(function () {
  if (document.visibilityState !== "visible") {
    return;
  }
  if (location.search) {
    location.replace(location.pathname);
  } else {
    location.reload();
  }
}, 30000);
