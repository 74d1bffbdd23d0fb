// The chat page's replies: Markdown while streaming (markdown.js), then their time, a copy button,
// the sources they came from, thumbs up or down with an optional reason, and what went wrong if
// they were cut or failed. The words come from the page (#strings and its <template>s).
(function () {
  "use strict";

  var strings = JSON.parse(document.getElementById("strings").textContent);
  var lang = document.documentElement.lang || "en";
  var numbers = new Intl.NumberFormat(lang);
  var clock = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
  var dated = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  var markdown = window.PorticoMarkdown;
  var feedbackForms = 0;
  var exported = { strings: strings, lang: lang, api: null };

  function number(n) { return numbers.format(n); }
  function copyOf(id) { return document.getElementById(id).content.firstElementChild.cloneNode(true); }

  function item(role) {
    var li = document.createElement("li");
    li.className = "msg " + role;
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = (role === "guest" ? strings.you : strings.assistant) + " ";
    li.appendChild(who);
    return li;
  }

  function draw(body, text) {
    if (markdown) markdown.render(body, text); else body.textContent = text;
  }

  // An assistant bubble: the greeting, a reply being streamed or one from the transcript.
  function bubble(log, text, options) {
    var li = item("assistant");
    var body = document.createElement("div");
    body.className = "text md";
    li.appendChild(body);
    log.appendChild(li);
    var reply = { item: li, body: body, text: text || "", live: null };
    if (options && options.streaming) {
      li.classList.add("typing");
      reply.live = markdown ? markdown.live(body) : null;
    } else {
      draw(body, reply.text);
    }
    li.scrollIntoView({ block: "end" });
    return reply;
  }

  function grow(reply, piece) {
    reply.text += piece;
    if (reply.live) reply.live.update(reply.text); else reply.body.textContent = reply.text;
    reply.item.scrollIntoView({ block: "end" });
  }

  function when(at) {
    var time = document.createElement("time");
    var moment = at ? new Date(at) : new Date();
    time.dateTime = moment.toISOString();
    var today = moment.toDateString() === new Date().toDateString();
    time.textContent = (today ? clock : dated).format(moment);
    return time;
  }

  function copy(button, text) {
    var label = button.querySelector(".label");
    var done = function () {
      var before = label.textContent;
      label.textContent = strings.copied;
      setTimeout(function () { label.textContent = before; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { /* the guest may select the text */ });
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selectable */ }
    area.remove();
  }

  // Thumbs up or down, changeable; a thumbs down opens a reason and a comment, both optional. The
  // thanks come once the guest is done: at once for a thumbs up, after the reason is sent or skipped
  // for a thumbs down (the rating itself is saved at the click, reason or not).
  function rating(reply, tools, messageId, session, saved) {
    var buttons = tools.querySelectorAll(".rate");
    var status = document.createElement("p");
    status.className = "thanks";
    status.setAttribute("role", "status");
    var form = null;
    var last = saved || {};
    function show(rated) {
      buttons.forEach(function (b) { b.setAttribute("aria-pressed", b.dataset.rating === rated ? "true" : "false"); });
    }
    function post(body, thank) {
      var path = "/api/v1/chat/sessions/" + session.id + "/messages/" + messageId + "/feedback";
      return exported.api("POST", path, body, session.token).then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) throw answer.error || {};
          show(answer.rating);
          last = answer;
          status.textContent = thank ? strings.thanks : "";
          return answer;
        });
      }).catch(function (error) { status.textContent = (error && error.message) || document.getElementById("app").dataset.networkMessage; });
    }
    function reasons(chosen) {
      status.textContent = "";
      if (form) { form.hidden = false; return; }
      form = copyOf("feedback-form");
      var name = "reason-" + (++feedbackForms);
      form.querySelectorAll("input[type=radio]").forEach(function (r) {
        r.name = name;
        r.checked = r.value === (chosen && chosen.reason);
      });
      form.elements.comment.value = (chosen && chosen.comment) || "";
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var picked = form.querySelector("input[type=radio]:checked");
        var comment = form.elements.comment.value.trim();
        post({ rating: "down", reason: picked ? picked.value : null, comment: comment || null }, true).then(function (answer) {
          if (answer) form.hidden = true;
        });
      });
      form.querySelector(".skip").addEventListener("click", function () {
        form.hidden = true;
        status.textContent = strings.thanks;
      });
      reply.item.insertBefore(form, status);
    }
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var up = button.dataset.rating === "up";
        // Pressed again: nothing to change, but a thumbs down may still get (or change) its reason.
        if (button.getAttribute("aria-pressed") === "true") { if (!up) reasons(last); return; }
        if (up && form) form.hidden = true;
        post({ rating: button.dataset.rating, reason: null, comment: null }, up).then(function (answer) {
          if (answer && !up) { reasons(last); form.querySelector("input").focus(); }
        });
      });
    });
    reply.item.appendChild(status);
    if (last.rating) show(last.rating);
  }

  // The reply is complete, cut or failed: what happened, where it came from and what to do with it.
  function settle(reply, text, details) {
    var li = reply.item;
    li.classList.remove("typing");
    if (reply.live) reply.live.finish(text); else draw(reply.body, text);
    reply.text = text;
    if (details.state) {
      var note = copyOf("reply-state");
      li.classList.add(details.state);
      note.querySelector(".words").textContent = strings[details.state];
      li.appendChild(note);
      if (details.message) {
        var why = document.createElement("p");
        why.className = "why";
        why.textContent = details.message;
        li.appendChild(why);
      }
    }
    if (details.sources && details.sources.length) {
      var sources = copyOf("reply-sources");
      var list = sources.querySelector("ul");
      details.sources.forEach(function (title) {
        var entry = document.createElement("li");
        entry.textContent = title;
        list.appendChild(entry);
      });
      li.appendChild(sources);
    }
    var tools = copyOf("reply-tools");
    tools.querySelector(".when").replaceWith(when(details.at));
    var copyButton = tools.querySelector(".copy");
    if (text) copyButton.addEventListener("click", function () { copy(copyButton, reply.text); });
    else copyButton.remove();
    // Only a finished reply can be rated, in a session of the guest's own.
    var rateable = !details.state && details.messageId && details.session;
    if (!rateable) tools.querySelectorAll(".rate").forEach(function (b) { b.remove(); });
    li.appendChild(tools);
    if (rateable) rating(reply, tools, details.messageId, details.session, details.saved);
    li.scrollIntoView({ block: "end" }); // the tools under the reply, too
  }

  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (frame) {
          var name = "message", data = [];
          frame.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) name = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        });
        return pump();
      });
    }
    return pump();
  }

  // Streams a reply into its bubble; resolves with the `error` event's data, or null when done.
  function stream(response, reply, session) {
    var outcome = null, done = null;
    return readEvents(response, function (name, data) {
      if (name === "token") grow(reply, data.text);
      else if (name === "error") outcome = data;
      else if (name === "done") done = data;
    }).then(function () {
      if (outcome) {
        settle(reply, reply.text, { state: reply.text ? "cut" : "failed", message: outcome.message });
      } else {
        settle(reply, reply.text, { messageId: done && done.message_id, sources: done && done.sources, session: session });
      }
      return outcome;
    });
  }

  // A reply from the transcript of a resumed session.
  function restore(log, m, session) {
    if (m.content === null) return; // the owner keeps no transcripts
    var reply = bubble(log, "", { streaming: true });
    var state = m.error_code ? (m.content ? "cut" : "failed") : null;
    settle(reply, m.content, {
      state: state, at: m.created_at, messageId: m.id, sources: m.sources, session: session,
      saved: { rating: m.rating, reason: m.reason, comment: m.comment }
    });
  }

  exported.number = number;
  exported.item = item;
  exported.bubble = bubble;
  exported.stream = stream;
  exported.settle = settle;
  exported.restore = restore;
  window.PorticoReply = exported;
})();
