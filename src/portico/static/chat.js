// Portico's chat page. No dependencies. The private key arrives in the URL fragment, which
// browsers never send to servers; this script sends it only in request bodies.
(function () {
  "use strict";

  var SENTENCES = {
    not_found: "This assistant does not exist. The link may have been changed or removed.",
    not_published: "This assistant is not ready yet. Please try again later.",
    assistant_offline: "This assistant is offline right now. Please try again later.",
    assistant_deleted: "This assistant was removed, so this conversation has ended.",
    link_invalid: "This link is not valid. Check that you copied all of it.",
    link_revoked: "This link has been turned off by the assistant's owner.",
    link_exhausted: "This link has no sessions left. Ask the person who shared it for more.",
    key_required: "This assistant is private. Open it with the personal link you were given.",
    origin_not_allowed: "This assistant cannot be used on this website.",
    session_ended: "This conversation has ended. Start a new one to keep talking.",
    message_too_long: "That message is too long. Please shorten it and send it again.",
    inactivity: "This conversation ended after a period without messages.",
    max_duration: "This conversation reached its time limit.",
    guest: "You ended this conversation.",
    completed: "This conversation has ended.",
    engine_error: "The assistant could not answer just now. Please try again in a moment.",
    engine_timeout: "The assistant took too long to answer. Please try again in a moment.",
    engine_unreachable: "The assistant could not answer just now. Please try again in a moment.",
    network: "The connection was lost. Check your internet connection and try again."
  };
  var ENDING = { assistant_offline: 1, assistant_deleted: 1, link_revoked: 1, session_ended: 1, not_found: 1 };

  var app = document.getElementById("app");
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendButton = document.getElementById("send");
  var endButton = document.getElementById("end");
  var notice = document.getElementById("notice");
  var restartWrap = document.getElementById("restart-wrap");
  var uses = document.getElementById("uses");

  var publicId = app.dataset.publicId || null;
  var channel = app.dataset.channel || "link";
  function fragment(name) {
    var found = new RegExp("(?:^|[#&])" + name + "=([^&]+)").exec(location.hash);
    return found ? decodeURIComponent(found[1]) : null;
  }
  var key = fragment("k");
  // In the widget's frame: the host page's origin, for allowed domains and for talking to it.
  var hostOrigin = channel === "widget" ? fragment("o") : null;
  var storageKey = "portico:" + channel + ":" + (key ? "k:" + key : "p:" + publicId);
  var session = null;
  var busy = false;
  var greeted = false; // the greeting was shown before the session started

  function sentence(code, fallback) { return SENTENCES[code] || fallback || SENTENCES.engine_error; }

  function store(value) {
    try {
      if (value) sessionStorage.setItem(storageKey, JSON.stringify(value));
      else sessionStorage.removeItem(storageKey);
    } catch (e) { /* storage may be disabled; the session then lasts as long as the page */ }
  }
  function stored() {
    try { return JSON.parse(sessionStorage.getItem(storageKey) || "null"); } catch (e) { return null; }
  }

  function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

  function setAssistant(assistant, link) {
    document.getElementById("name").textContent = assistant.name;
    document.getElementById("description").textContent = assistant.description || "";
    document.querySelector(".avatar").textContent = (assistant.name || "P").charAt(0).toUpperCase();
    document.title = assistant.name;
    publicId = assistant.public_id;
    showUses(link);
  }

  function showUses(link) {
    if (!link || link.sessions_left === null || link.sessions_left === undefined) { uses.hidden = true; return; }
    var n = link.sessions_left;
    uses.textContent = n === 0 ? "This is the last session on your link."
      : n === 1 ? "Your link has 1 more session after this one." : "Your link has " + n + " more sessions after this one.";
    uses.hidden = false;
  }

  function showUsesBeforeStart(link) {
    if (!link || link.sessions_left === null || link.sessions_left === undefined) return;
    var n = link.sessions_left;
    uses.textContent = n === 1 ? "Your link has 1 session left." : "Your link has " + n + " sessions left.";
    uses.hidden = false;
  }

  function bubble(role, text) {
    var item = document.createElement("li");
    item.className = "msg " + role;
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = role === "guest" ? "You: " : "Assistant: ";
    var body = document.createElement("span");
    body.textContent = text || "";
    item.appendChild(who);
    item.appendChild(body);
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return body;
  }

  function tellHost(message) {
    if (hostOrigin && window.parent !== window) window.parent.postMessage(message, hostOrigin);
  }
  if (hostOrigin) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") tellHost({ portico: "close" });
    });
  }

  function ended(code) {
    if (session) tellHost({ portico: "session-end", session_id: session.id, reason: code });
    busy = false;
    store(null);
    session = null;
    form.hidden = true;
    endButton.hidden = true;
    uses.hidden = true; // a count for a session that is over, or a link that no longer works
    showNotice(sentence(code, SENTENCES.session_ended));
    restartWrap.hidden = code === "link_revoked" || code === "assistant_offline" || code === "assistant_deleted" || code === "not_found";
    if (!restartWrap.hidden) document.getElementById("restart").focus();
  }

  function refused(code, message) {
    form.hidden = true;
    endButton.hidden = true;
    uses.hidden = true;
    restartWrap.hidden = true;
    showNotice(sentence(code, message));
  }

  function api(method, path, body, token, accept) {
    var headers = { "Accept": accept || "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, {
      method: method, headers: headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
  }

  function errorOf(response) {
    return response.json().then(function (b) { return (b && b.error) || {}; }, function () { return {}; });
  }

  function startSession() {
    var body = { channel: channel };
    if (key) body.key = key;
    if (publicId) body.public_id = publicId;
    if (hostOrigin) body.origin = hostOrigin;
    return api("POST", "/api/v1/chat/sessions", body).then(function (response) {
      if (!response.ok) return errorOf(response).then(function (e) { refused(e.code, e.message); return null; });
      return response.json().then(function (started) {
        session = { id: started.session_id, token: started.token };
        store(session);
        tellHost({ portico: "session-start", session_id: started.session_id });
        setAssistant(started.assistant, started.link);
        if (started.greeting && !greeted) {
          var first = bubble("assistant", started.greeting).parentNode;
          log.insertBefore(first, log.firstChild);
        }
        greeted = false;
        endButton.hidden = false;
        return session;
      });
    });
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

  function send(text) {
    busy = true;
    sendButton.disabled = true;
    bubble("guest", text);
    var ready = session ? Promise.resolve(session) : startSession();
    return ready.then(function (current) {
      if (!current) return;
      var reply = null;
      var outcome = null;
      return api("POST", "/api/v1/chat/sessions/" + current.id + "/messages", { content: text }, current.token, "text/event-stream")
        .then(function (response) {
          if (!response.ok) {
            return errorOf(response).then(function (e) {
              if (ENDING[e.code] || response.status === 401) ended(e.code || "session_ended");
              else showNotice(sentence(e.code, e.message));
            });
          }
          reply = bubble("assistant", "");
          reply.parentNode.classList.add("typing");
          return readEvents(response, function (name, data) {
            if (name === "token") { reply.textContent += data.text; reply.parentNode.scrollIntoView({ block: "end" }); }
            else if (name === "error") outcome = data;
            else if (name === "done") outcome = null;
          }).then(function () {
            reply.parentNode.classList.remove("typing");
            if (outcome) {
              if (!reply.textContent) reply.parentNode.remove(); else reply.parentNode.classList.add("failed");
              if (ENDING[outcome.code]) ended(outcome.code); else showNotice(sentence(outcome.code, outcome.message));
            }
          });
        });
    }).catch(function () {
      showNotice(SENTENCES.network);
    }).then(function () {
      busy = false;
      sendButton.disabled = false;
      if (!form.hidden) input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (busy || !text.trim()) return;
    input.value = "";
    grow();
    showNotice("");
    send(text);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  function grow() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 160) + "px"; }
  input.addEventListener("input", grow);

  endButton.addEventListener("click", function () {
    if (!session) return;
    var current = session;
    api("POST", "/api/v1/chat/sessions/" + current.id + "/end", {}, current.token).then(function (response) {
      if (response.ok) ended("guest");
      else errorOf(response).then(function (e) { ended(e.code || "session_ended"); });
    }, function () { showNotice(SENTENCES.network); });
  });

  document.getElementById("restart").addEventListener("click", function () {
    log.textContent = "";
    showNotice("");
    restartWrap.hidden = true;
    form.hidden = false;
    lookup().then(function () { input.focus(); });
  });

  function lookup() {
    if (!key && !publicId) { refused("link_invalid"); return Promise.resolve(); }
    var body = key ? { key: key } : { public_id: publicId };
    return api("POST", "/api/v1/chat/lookup", body).then(function (response) {
      if (!response.ok) return errorOf(response).then(function (e) { refused(e.code, e.message); });
      return response.json().then(function (found) {
        setAssistant(found.assistant, null);
        showUsesBeforeStart(found.link);
        if (found.greeting) { bubble("assistant", found.greeting); greeted = true; }
      });
    }, function () { showNotice(SENTENCES.network); });
  }

  function resume(saved) {
    return api("GET", "/api/v1/chat/sessions/" + saved.id, undefined, saved.token).then(function (response) {
      if (response.status === 401) { store(null); return lookup(); }
      if (!response.ok) return errorOf(response).then(function (e) { store(null); refused(e.code, e.message); });
      return response.json().then(function (state) {
        setAssistant(state.assistant, state.link);
        if (state.greeting) bubble("assistant", state.greeting);
        state.messages.forEach(function (m) {
          if (m.content !== null && (m.content || !m.error_code)) bubble(m.role, m.content);
        });
        if (state.state === "ended") { ended(state.end_reason); return; }
        session = saved;
        endButton.hidden = false;
      });
    }, function () { showNotice(SENTENCES.network); });
  }

  // Opening another link in the same tab changes only the fragment, which reloads nothing.
  window.addEventListener("hashchange", function () { location.reload(); });
  if (app.dataset.refusal) return;
  var saved = stored();
  (saved ? resume(saved) : lookup());
})();
