// The invitation's secret travels in the URL fragment (#i=...), which browsers never send to a
// server; this copies it into the form that joins the team. It holds no sentence of its own.
(function () {
  "use strict";
  var match = /(?:^#|&)i=([^&]+)/.exec(window.location.hash);
  var field = document.getElementById("join-invitation");
  if (match && field) {
    field.value = decodeURIComponent(match[1]);
    // The heading names the team and the role the invitation gives (the server's words), or why it cannot be used.
    var form = document.getElementById("join-form");
    var body = new URLSearchParams({ csrf: form.elements.csrf.value, invitation: field.value });
    fetch(form.dataset.about, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.heading) {
          document.getElementById("join-heading").textContent = data.heading;
        } else if (data.error) {
          var missing = document.getElementById("join-missing");
          missing.textContent = data.error.message;
          missing.hidden = false;
        }
      }, function () { /* the heading stays general; joining still works */ });
  } else if (!field || !field.value) {
    var missing = document.getElementById("join-missing");
    if (missing) missing.hidden = false;
  }
})();
