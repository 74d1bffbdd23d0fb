// Portico's chat page. The private key arrives in the URL fragment, which browsers never send to
// servers; this script sends it only in request bodies. Replies are drawn by chat-reply.js.
(function () {
  "use strict";

  // Every sentence the guest reads comes from the server: a refusal's or an error's `message`,
  // an ending's `end_message`, and the page's own (data-network-message, the #strings block and
  // the <template>s chat-reply.js copies). This script holds codes, never sentences.
  // message_limit_reached: the session is still open, but it takes no more messages; a new one helps.
  var ENDING = {
    assistant_offline: 1, assistant_deleted: 1, link_revoked: 1, link_reissued: 1, session_ended: 1, not_found: 1,
    message_limit_reached: 1
  };
  // No new conversation helps (a reissued link's old key: only the new link does).
  var FINAL = { assistant_offline: 1, assistant_deleted: 1, link_revoked: 1, link_reissued: 1, not_found: 1 };

  var app = document.getElementById("app");
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendButton = document.getElementById("send");
  var endButton = document.getElementById("end");
  var notice = document.getElementById("notice");
  var restartWrap = document.getElementById("restart-wrap");
  var uses = document.getElementById("uses");
  var startersBox = document.getElementById("starters");
  var counter = document.getElementById("counter");
  var tooLong = document.getElementById("too-long");
  var avatar = document.querySelector(".avatar");
  var NETWORK = app.dataset.networkMessage;
  var replies = window.PorticoReply;
  var strings = replies.strings;

  var publicId = app.dataset.publicId || null;
  // The widget's frame names its assistant by the widget id, which outlives public link rotations.
  var widgetId = app.dataset.widgetId || null;
  var channel = app.dataset.channel || "link";
  function fragment(name) {
    var found = new RegExp("(?:^|[#&])" + name + "=([^&]+)").exec(location.hash);
    return found ? decodeURIComponent(found[1]) : null;
  }
  var key = fragment("k");
  // In the widget's frame: the host page's origin, for allowed domains and for talking to it.
  var hostOrigin = channel === "widget" ? fragment("o") : null;
  var named = widgetId ? "w:" + widgetId : "p:" + publicId;
  var storageKey = "portico:" + channel + ":" + (key ? "k:" + key : named);
  // The public link's access code, if its owner set one: kept for this tab only, sent only in
  // request bodies, never in a URL.
  var codeKey = "portico:code:" + named;
  var CODE_REFUSALS = { access_code_required: 1, access_code_invalid: 1 };
  var codeForm = document.getElementById("code-form");
  var codeInput = document.getElementById("access-code");
  var session = null;
  var busy = false;
  var closed = false; // the conversation is over: the box keeps its text, but nothing is sent
  var greeted = false; // the greeting was shown before the session started
  var maxLength = null; // the assistant's longest guest message, once lookup or the session says
  // Metrics count a refused lookup at most once per page load: the first lookup asks for it,
  // and so do later ones (a new conversation) until one has been refused.
  var countLookup = true;

  // A reply that is not Portico's JSON (a proxy's error page) has no sentence: say what we know.
  function messageOf(error) { return (error && error.message) || NETWORK; }

  function store(value) {
    try {
      if (value) sessionStorage.setItem(storageKey, JSON.stringify(value));
      else sessionStorage.removeItem(storageKey);
    } catch (e) { /* storage may be disabled; the session then lasts as long as the page */ }
  }
  function stored() {
    try { return JSON.parse(sessionStorage.getItem(storageKey) || "null"); } catch (e) { return null; }
  }
  function accessCode() {
    try { return sessionStorage.getItem(codeKey); } catch (e) { return null; }
  }
  var typedCode = null; // when storage is disabled, the code lasts as long as the page
  function rememberCode(code) {
    typedCode = code;
    try {
      if (code) sessionStorage.setItem(codeKey, code); else sessionStorage.removeItem(codeKey);
    } catch (e) { /* kept in typedCode */ }
  }
  function whom(body) {
    if (widgetId) body.widget_id = widgetId;
    else if (publicId) body.public_id = publicId;
    var code = key ? null : (accessCode() || typedCode);
    if (code) body.access_code = code;
    return body;
  }

  // The server said a code is needed (or the one given is wrong): ask for it, with its sentence.
  function askCode(error) {
    unwatch();
    rememberCode(null);
    form.hidden = true;
    endButton.hidden = true;
    restartWrap.hidden = true;
    showStarters(null);
    showNotice(messageOf(error));
    codeForm.hidden = false;
    codeInput.value = "";
    codeInput.focus();
  }
  codeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!codeInput.value) return;
    rememberCode(codeInput.value);
    codeInput.value = "";
    codeForm.hidden = true;
    lookup().then(function () { if (!form.hidden) input.focus(); });
  });

  function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

  function setAssistant(assistant, link) {
    document.getElementById("name").textContent = assistant.name;
    document.getElementById("description").textContent = assistant.description || "";
    avatar.textContent = assistant.name.charAt(0).toUpperCase();
    avatar.hidden = !assistant.name;
    document.title = assistant.name;
    if (!widgetId) publicId = assistant.public_id;
    showUses(link);
  }

  // No assistant can be named (a refused key, an unknown id): no placeholder heading, no letter.
  function unnamed() {
    if (!avatar.hidden) return;
    document.getElementById("name").textContent = app.dataset.unavailable;
    document.getElementById("description").textContent = "";
    document.title = app.dataset.unavailable;
  }

  // The server words the count (before a session, and during one).
  function showUses(link) {
    if (!link || !link.uses_message) { uses.hidden = true; return; }
    uses.textContent = link.uses_message;
    uses.hidden = false;
  }

  function showUsesBeforeStart(link) {
    if (link && link.uses_message) showUses(link);
  }

  // Suggested first questions, until the first message is sent.
  function showStarters(starters) {
    startersBox.textContent = "";
    (starters || []).forEach(function (text) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "starter";
      button.textContent = text;
      button.addEventListener("click", function () {
        if (busy || closed) return;
        showNotice("");
        send(text);
      });
      startersBox.appendChild(button);
    });
    startersBox.hidden = !startersBox.firstChild;
  }

  function guestBubble(text) {
    var item = replies.item("guest");
    var body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    item.appendChild(body);
    log.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }
  function greetingBubble(text) {
    var made = replies.bubble(log, text);
    return made.item;
  }

  // The limit, said as soon as a message is longer, and a counter as it gets near.
  function setMaxLength(limit) { if (limit) { maxLength = limit; checkLength(); } }
  function checkLength() {
    var length = input.value.length;
    var over = !!maxLength && length > maxLength;
    counter.hidden = !maxLength || length < maxLength * 0.9;
    if (!counter.hidden) counter.textContent = replies.number(length) + " / " + replies.number(maxLength);
    counter.classList.toggle("over", over);
    input.setAttribute("aria-invalid", over ? "true" : "false");
    tooLong.hidden = !over;
    if (over) tooLong.textContent = strings.too_long.replace("{limit}", replies.number(maxLength));
    return !over;
  }

  function tellHost(message) {
    if (hostOrigin && window.parent !== window) window.parent.postMessage(message, hostOrigin);
  }
  if (hostOrigin) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") tellHost({ portico: "close" });
    });
  }

  // What the guest typed but the server did not take goes back into the box: nothing typed is lost.
  function keep(unsent) {
    if (!unsent) return "";
    if (unsent.bubble) unsent.bubble.remove();
    if (!input.value) input.value = unsent.text;
    grow();
    return " " + strings.kept;
  }

  // The conversation cannot go on: the box stays (with anything the guest wrote) but sends nothing.
  function close(unsent) {
    closed = true;
    busy = false;
    sendButton.disabled = true;
    endButton.hidden = true;
    uses.hidden = true; // a count for a session that is over, or a link that no longer works
    showStarters(null);
    var kept = keep(unsent);
    form.hidden = !input.value;
    return kept;
  }

  function ended(code, message, unsent) {
    if (session) tellHost({ portico: "session-end", session_id: session.id, reason: code });
    store(null);
    session = null;
    showNotice(messageOf({ message: message }) + close(unsent));
    restartWrap.hidden = !!FINAL[code];
    if (!restartWrap.hidden) document.getElementById("restart").focus();
    if (code === "assistant_offline") watch();
  }

  function refused(error, unsent) {
    restartWrap.hidden = true;
    unnamed();
    showNotice(messageOf(error) + close(unsent));
    if (error.code === "assistant_offline") watch();
  }

  // Offline is the one ending that can be undone: until the assistant answers lookups again, ask
  // now and then, waiting longer each time (10 s up to a minute, a guest's page far within the
  // lookup rate limit even with a classroom behind one address), spread so pages that went
  // offline together do not ask together. A hidden page does not ask; it asks when shown again.
  // Then the conversation stays readable and a new one is offered; nothing starts on its own.
  var watching = null; // { timer, wait } while waiting for the assistant to come back
  function watch() {
    unwatch();
    watching = { timer: null, wait: 10 };
    later();
  }
  function unwatch() {
    if (watching) clearTimeout(watching.timer);
    watching = null;
  }
  function later() {
    watching.timer = setTimeout(askAgain, watching.wait * (1000 + Math.random() * 250));
    watching.wait = Math.min(watching.wait * 2, 60);
  }
  function askAgain() {
    if (!watching || document.hidden) return;
    var asked = watching;
    api("POST", "/api/v1/chat/lookup", lookupBody()).then(function (response) {
      if (watching !== asked) return;
      if (response.ok) {
        unwatch();
        showNotice(strings.back);
        restartWrap.hidden = false;
        return;
      }
      return errorOf(response).then(function (e) {
        if (watching !== asked) return;
        if (e.code === "assistant_offline" || response.status === 429) { later(); return; }
        // Back, but refused for another reason (the link was deleted, a code was set): say which;
        // a new conversation asks for a code.
        unwatch();
        showNotice(messageOf(e));
        restartWrap.hidden = !CODE_REFUSALS[e.code];
      });
    }, function () { if (watching === asked) later(); });
  }
  document.addEventListener("visibilitychange", function () {
    if (watching && !document.hidden) { clearTimeout(watching.timer); askAgain(); }
  });

  function reopen() {
    closed = false;
    sendButton.disabled = false;
    form.hidden = false;
  }

  function api(method, path, body, token, accept) {
    var headers = { "Accept": accept || "application/json", "Accept-Language": replies.lang };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, {
      method: method, headers: headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
  }
  replies.api = api;

  function errorOf(response) {
    return response.json().then(function (b) { return (b && b.error) || {}; }, function () { return {}; });
  }

  function startSession(unsent) {
    var body = whom({ channel: channel });
    if (key) body.key = key;
    if (hostOrigin) body.origin = hostOrigin;
    return api("POST", "/api/v1/chat/sessions", body).then(function (response) {
      if (!response.ok) {
        return errorOf(response).then(function (e) {
          if (CODE_REFUSALS[e.code]) { keep(unsent); askCode(e); } else refused(e, unsent);
          return null;
        });
      }
      return response.json().then(function (started) {
        session = { id: started.session_id, token: started.token };
        store(session);
        tellHost({ portico: "session-start", session_id: started.session_id });
        setAssistant(started.assistant, started.link);
        setMaxLength(started.max_message_length);
        if (started.greeting && !greeted) log.insertBefore(greetingBubble(started.greeting), log.firstChild);
        greeted = false;
        endButton.hidden = false;
        return session;
      });
    });
  }

  function send(text) {
    busy = true;
    sendButton.disabled = true;
    showStarters(null);
    var unsent = { text: text, bubble: guestBubble(text) };
    var reply = null;
    var ready = session ? Promise.resolve(session) : startSession(unsent);
    return ready.then(function (current) {
      if (!current) return;
      return api("POST", "/api/v1/chat/sessions/" + current.id + "/messages", { content: text }, current.token, "text/event-stream")
        .then(function (response) {
          if (!response.ok) {
            return errorOf(response).then(function (e) {
              if (ENDING[e.code] || response.status === 401) ended(e.code, messageOf(e), unsent);
              else { keep(unsent); showNotice(messageOf(e)); }
            });
          }
          unsent = null; // the server saved the message
          reply = replies.bubble(log, "", { streaming: true });
          return replies.stream(response, reply, current).then(function (outcome) {
            if (outcome && ENDING[outcome.code]) ended(outcome.code, messageOf(outcome));
          });
        });
    }).catch(function () {
      if (reply) replies.settle(reply, "", { state: "cut", message: NETWORK });
      keep(unsent);
      showNotice(NETWORK);
    }).then(function () {
      busy = false;
      sendButton.disabled = closed;
      if (!form.hidden && !closed) input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (busy || closed || !text.trim()) return;
    if (!checkLength()) { input.focus(); return; }
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
  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
    checkLength();
  }
  input.addEventListener("input", grow);

  endButton.addEventListener("click", function () {
    if (!session) return;
    var current = session;
    api("POST", "/api/v1/chat/sessions/" + current.id + "/end", {}, current.token).then(function (response) {
      if (response.ok) response.json().then(function (state) { ended(state.end_reason, state.end_message); });
      else errorOf(response).then(function (e) { ended(e.code || "session_ended", messageOf(e)); });
    }, function () { showNotice(NETWORK); });
  });

  document.getElementById("restart").addEventListener("click", function () {
    unwatch();
    log.textContent = "";
    showNotice("");
    restartWrap.hidden = true;
    reopen();
    lookup().then(function () { input.focus(); });
  });

  // Asked before any session starts, and again for a new conversation: a refusal here means
  // no session is started at all.
  function lookupBody() {
    var body = whom({});
    // No key and no assistant (`/c` opened without its fragment): an empty key, which the
    // server refuses as an invalid link, in its own words.
    if (key || !(publicId || widgetId)) body.key = key || "";
    return body;
  }
  function lookup() {
    var body = lookupBody();
    if (countLookup) body.count = true;
    return api("POST", "/api/v1/chat/lookup", body).then(function (response) {
      if (!response.ok) {
        countLookup = false;
        return errorOf(response).then(function (e) { if (CODE_REFUSALS[e.code]) askCode(e); else refused(e); });
      }
      return response.json().then(function (found) {
        // A private link's page is rendered before its assistant is known: when the assistant has
        // a language of its own and the link named none, show the page in it.
        if (found.language && found.language !== document.documentElement.lang && !/[?&]lang=/.test(location.search)) {
          location.replace(location.pathname + "?lang=" + encodeURIComponent(found.language) + location.hash);
          return;
        }
        // The page may have been rendered with a refusal that no longer holds.
        reopen();
        showNotice("");
        setAssistant(found.assistant, null);
        showUsesBeforeStart(found.link);
        setMaxLength(found.max_message_length);
        if (found.greeting) { greetingBubble(found.greeting); greeted = true; }
        showStarters(found.starters);
      });
    }, function () { unnamed(); showNotice(NETWORK); });
  }

  function resume(saved) {
    return api("GET", "/api/v1/chat/sessions/" + saved.id, undefined, saved.token).then(function (response) {
      if (response.status === 401) { store(null); return lookup(); }
      if (!response.ok) return errorOf(response).then(function (e) { store(null); refused(e); });
      return response.json().then(function (state) {
        setAssistant(state.assistant, state.link);
        setMaxLength(state.max_message_length);
        if (state.greeting) greetingBubble(state.greeting);
        state.messages.forEach(function (m) {
          if (m.role === "guest") { if (m.content !== null) guestBubble(m.content); }
          else replies.restore(log, m, saved);
        });
        if (state.state === "ended") { ended(state.end_reason, state.end_message); return; }
        session = saved;
        endButton.hidden = false;
      });
    }, function () { unnamed(); showNotice(NETWORK); });
  }

  // Opening another link in the same tab changes only the fragment, which reloads nothing.
  window.addEventListener("hashchange", function () { location.reload(); });
  sendButton.disabled = false; // the page renders it disabled until this script has taken the form
  var saved = stored();
  (saved ? resume(saved) : lookup());
})();
