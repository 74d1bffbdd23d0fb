// The dashboard works without this script; it adds copy buttons, confirmations and the preview chat.
(function () {
  "use strict";

  // A question from the unanswered report waits at the end of the knowledge: put the caret there.
  var answering = document.querySelector("textarea[data-caret-end]");
  if (answering) {
    answering.focus();
    answering.setSelectionRange(answering.value.length, answering.value.length);
    answering.scrollTop = answering.scrollHeight;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var field = document.querySelector(button.dataset.copy);
    if (!field) return;
    var done = function () {
      var label = button.firstChild;
      var before = label.textContent;
      label.textContent = "Copied";
      setTimeout(function () { label.textContent = before; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.focus();
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected for Ctrl+C */ }
    }
  });

  // A form that failed comes back at its POST address: show the page's own address instead, so a
  // reload asks for the page and never sends the form again.
  var pageUrl = document.body.dataset.pageUrl;
  if (pageUrl && window.history.replaceState) window.history.replaceState(null, "", pageUrl + window.location.hash);

  // Take the owner to the first problem: the field that is wrong (focused, ready to retype), else
  // the message that says what went wrong.
  var problem = document.querySelector("[aria-invalid=true]");
  if (!problem) {
    problem = document.querySelector(".field-error, .alert[role=alert]");
    if (problem) problem.setAttribute("tabindex", "-1");
  }
  if (problem) {
    problem.focus({ preventScroll: true });
    problem.scrollIntoView({ block: "center" });
  }

  function selected() { return document.querySelectorAll("input.select-user:checked").length; }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.dataset.confirm;
    if (form.id === "bulk") {
      // The chosen action's own question, with the count ("Pause 3 links?"); printing changes nothing: none.
      var n = selected();
      question = (form.elements.action.selectedOptions[0].dataset.confirm || "")
        .replace("{n}", n).replace("{s}", n === 1 ? "" : "s");
    }
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // Bulk actions wait for a selection: Apply is disabled until a user is selected, and says how many are.
  var bulkApply = document.getElementById("bulk-apply");
  var syncBulk = function () {
    if (!bulkApply) return;
    var n = selected();
    bulkApply.disabled = n === 0;
    document.getElementById("bulk-count").textContent = n ? n + " selected" : "Select users to act on them";
  };
  syncBulk();
  document.addEventListener("change", function (event) {
    if (event.target.classList.contains("select-user") || event.target.id === "select-all") syncBulk();
  });

  // Share page: one box selects every user shown (without JavaScript it stays hidden).
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    var boxes = function () { return document.querySelectorAll("input.select-user"); };
    selectAll.hidden = false;
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = selectAll.checked; });
    });
    document.addEventListener("change", function (event) {
      if (!event.target.classList.contains("select-user")) return;
      var all = Array.prototype.every.call(boxes(), function (box) { return box.checked; });
      var some = Array.prototype.some.call(boxes(), function (box) { return box.checked; });
      selectAll.checked = all;
      selectAll.indeterminate = some && !all;
    });
  }
  var printButton = document.querySelector("[data-print]");
  if (printButton) printButton.addEventListener("click", function () { window.print(); });

  // On a narrow screen the assistant's tabs scroll sideways: bring the current one into view.
  var tabs = document.querySelector(".tabs");
  var currentTab = tabs && tabs.querySelector("[aria-current=page]");
  var showCurrentTab = function () {
    if (tabs.scrollWidth > tabs.clientWidth) {
      tabs.scrollLeft = currentTab.offsetLeft - (tabs.clientWidth - currentTab.offsetWidth) / 2;
    }
  };
  if (currentTab) {
    showCurrentTab();
    window.addEventListener("resize", showCurrentTab);
  }

  // A provider's own fields show only while it is the one chosen (data-choice names the radio buttons).
  document.querySelectorAll("[data-provider]").forEach(function (fields) {
    var radios = document.querySelectorAll("input[name=" + fields.dataset.choice + "]");
    var sync = function () {
      var chosen = document.querySelector("input[name=" + fields.dataset.choice + "]:checked");
      fields.hidden = !chosen || chosen.value !== fields.dataset.provider;
    };
    radios.forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  });

  // The owner's transcript: replies as Markdown, as the guest saw them.
  var markdown = window.PorticoMarkdown;
  if (markdown) {
    document.querySelectorAll("[data-markdown]").forEach(function (el) { markdown.render(el, el.textContent); });
  }

  var preview = document.getElementById("preview");
  if (!preview) return;
  var log = document.getElementById("preview-log");
  var form = document.getElementById("preview-form");
  var input = document.getElementById("preview-message");
  var errorBox = document.getElementById("preview-error");
  var startersBox = document.getElementById("preview-starters");
  var intro = JSON.parse(document.getElementById("preview-intro").textContent);
  var session = null;
  var greeted = false;

  function line(role, text) {
    var item = document.createElement("li");
    item.className = role;
    var body = document.createElement("div");
    body.className = role === "assistant" ? "text md" : "text";
    if (role === "assistant" && markdown) markdown.render(body, text); else body.textContent = text;
    item.appendChild(body);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }
  function chosen() { return document.querySelector("input[name=use]:checked").value; }
  // Before the first message: the greeting and starter questions of the version chosen, as guests see them.
  function welcome() {
    var shown = intro[chosen()] || { greeting: "", starters: [] };
    greeted = !!shown.greeting;
    if (shown.greeting) line("assistant", shown.greeting);
    startersBox.textContent = "";
    shown.starters.forEach(function (text) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "small starter";
      button.textContent = text;
      button.addEventListener("click", function () { input.value = text; form.requestSubmit(); });
      startersBox.appendChild(button);
    });
    startersBox.hidden = !startersBox.firstChild;
  }
  function body(fields) {
    var data = new URLSearchParams();
    data.set("csrf", preview.dataset.csrf);
    Object.keys(fields).forEach(function (k) { data.set(k, fields[k]); });
    return data;
  }
  function fail(message) { errorBox.textContent = message; errorBox.hidden = false; }
  function start() {
    return fetch(preview.dataset.start, { method: "POST", body: body({ use: chosen() }), credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error((data.error && data.error.message) || "The preview could not start.");
          session = data.session_id;
          // Unless the welcome showed it, the greeting goes above the first message, already shown.
          if (data.greeting && !greeted) log.insertBefore(line("assistant", data.greeting), log.firstChild);
          return session;
        });
      });
  }
  function sources(item, titles) {
    if (!titles || !titles.length) return;
    var box = document.getElementById("preview-sources").content.firstElementChild.cloneNode(true);
    titles.forEach(function (title) {
      var entry = document.createElement("li");
      entry.textContent = title;
      box.querySelector("ul").appendChild(entry);
    });
    item.appendChild(box);
  }
  function reset() { session = null; log.textContent = ""; errorBox.hidden = true; welcome(); }
  document.getElementById("preview-reset").addEventListener("click", reset);
  document.querySelectorAll("input[name=use]").forEach(function (r) { r.addEventListener("change", reset); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    errorBox.hidden = true;
    startersBox.hidden = true;
    line("guest", text);
    (session ? Promise.resolve(session) : start()).then(function (id) {
      return fetch(preview.dataset.start + "/" + id + "/messages", {
        method: "POST", body: body({ content: text }), credentials: "same-origin", headers: { "Accept": "text/event-stream" }
      });
    }).then(function (r) {
      if (!r.ok) return r.json().then(function (data) { fail((data.error && data.error.message) || "No reply."); });
      var reply = line("assistant", "");
      var replyText = "";
      var live = markdown ? markdown.live(reply.firstChild) : null;
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            if (live) live.finish(replyText);
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
          var frames = buffer.split("\n\n");
          buffer = frames.pop();
          frames.forEach(function (frame) {
            var name = "message", data = "";
            frame.split("\n").forEach(function (l) {
              if (l.indexOf("event:") === 0) name = l.slice(6).trim();
              else if (l.indexOf("data:") === 0) data += l.slice(5).trim();
            });
            if (!data) return;
            var payload = JSON.parse(data);
            if (name === "token") {
              replyText += payload.text;
              if (live) live.update(replyText); else reply.firstChild.textContent = replyText;
              log.scrollTop = log.scrollHeight;
            } else if (name === "error") {
              reply.classList.add("failed");
              fail(payload.message);
            } else if (name === "done") sources(reply, payload.sources);
          });
          return pump();
        });
      }
      return pump();
    }).catch(function (e) { fail(e.message || "The connection was lost."); });
  });
  welcome();
  form.querySelector("button[type=submit]").disabled = false; // the page renders it disabled until now
})();
