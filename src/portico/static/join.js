// The invitation's secret travels in the URL fragment (#i=...), which browsers never send to a
// server; this copies it into the form that joins the team. It holds no sentence of its own.
(function () {
  "use strict";
  var match = /(?:^#|&)i=([^&]+)/.exec(window.location.hash);
  var field = document.getElementById("join-invitation");
  if (match && field) {
    field.value = decodeURIComponent(match[1]);
  } else if (!field || !field.value) {
    var missing = document.getElementById("join-missing");
    if (missing) missing.hidden = false;
  }
})();
