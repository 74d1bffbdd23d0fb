/*! Portico widget loader. <script src=".../widget.js" data-assistant="WIDGET_ID" async></script>
 * Options: data-key, data-lang, data-position (bottom-right|bottom-left), data-color, data-title, data-open,
 * data-mode="inline" with data-target="#element". API: Portico.open(id?), Portico.close(id?),
 * Portico.on("session-start"|"session-end"|"open"|"close", fn); the same as window events "portico:*". */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.assistant) return;
  var d = script.dataset;
  var base = new URL(script.src).origin;
  var VERSION = "__PORTICO_VERSION__";
  // The loader's own words in each language the server ships (put in by the server, from its catalogue).
  var WORDS = {/*__PORTICO_WORDS__*/};
  function words() {
    var tags = [d.lang, navigator.language];
    for (var i = 0; i < tags.length; i++) {
      var tag = (tags[i] || "").toLowerCase().replace("_", "-");
      var found = WORDS[tag] || WORDS[tag.split("-")[0]];
      if (found) return found;
    }
    return WORDS.en;
  }
  var api = window.Portico = window.Portico || { widgets: [], handlers: {} };
  if (!api.open) {
    api.on = function (name, fn) { (api.handlers[name] = api.handlers[name] || []).push(fn); };
    api.open = function (id) { each(id, function (w) { w.open(); }); };
    api.close = function (id) { each(id, function (w) { w.close(); }); };
  }
  function each(id, fn) { api.widgets.forEach(function (w) { if (!id || w.id === id) fn(w); }); }
  function emit(name, detail) {
    (api.handlers[name] || []).forEach(function (fn) { try { fn(detail); } catch (e) { /* the host's handler */ } });
    window.dispatchEvent(new CustomEvent("portico:" + name, { detail: detail }));
  }
  // Inline !important styles: a host page's own CSS (even "* { all: unset }") cannot undo them.
  function css(el, rules) { for (var k in rules) el.style.setProperty(k, rules[k], "important"); }

  function boot() {
    var id = d.assistant;
    var color = /^#[0-9a-f]{3,8}$|^[a-z]+$/i.test(d.color || "") ? d.color : "#1f5fbf";
    var said = words();
    var title = d.title || said.title;
    var left = d.position === "bottom-left";
    var inline = d.mode === "inline";
    var target = inline ? document.querySelector(d.target || "") : null;
    if (inline && !target) return;
    var host = document.createElement("div");
    host.setAttribute("data-portico-widget", id);
    css(host, { all: "initial", position: inline ? "relative" : "fixed", "z-index": "2147483647", display: "block",
      width: inline ? "100%" : "0", height: inline ? "100%" : "0", bottom: "0", left: left ? "0" : "auto", right: left ? "auto" : "0" });
    var root = host.attachShadow({ mode: "closed" });
    var side = left ? "left" : "right";
    var rules = ":host{all:initial}*{box-sizing:border-box}" +
      ".b{position:fixed;bottom:20px;" + side + ":20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;" +
      "background:" + color + ";color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;padding:0}" +
      ".b:focus-visible,.x:focus-visible{outline:3px solid #0969da;outline-offset:3px}.b svg{width:26px;height:26px}" +
      ".p{position:fixed;bottom:88px;" + side + ":20px;width:380px;height:min(600px,calc(100vh - 108px));background:#fff;" +
      "border-radius:14px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.28);display:none}" +
      ".p.o{display:block}.i{position:static;width:100%;height:100%;border-radius:0;box-shadow:none;display:block}" +
      "iframe{border:0;width:100%;height:100%;display:block}" +
      ".x{position:absolute;top:8px;right:8px;width:32px;height:32px;border-radius:50%;border:0;" +
      "background:rgba(0,0,0,.06);color:#1b1f24;font:20px/32px system-ui,sans-serif;cursor:pointer;padding:0}" +
      "@media (max-width:480px){.p{inset:0;width:100%;height:100%;border-radius:0;bottom:0}}";
    // A constructed style sheet: a host page whose CSP has no 'unsafe-inline' in style-src blocks
    // a <style> element, even in a shadow root, but not this.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(rules);
      root.adoptedStyleSheets = [sheet];
    } catch (e) { root.innerHTML = "<style>" + rules + "</style>"; }
    var panel = document.createElement("div");
    panel.className = inline ? "p i o" : "p";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", title);
    var button = null;
    var frame = null;
    var widget = { id: id, open: open, close: close };

    function load() {
      if (frame) return;
      frame = document.createElement("iframe");
      frame.title = title;
      frame.allow = "clipboard-write";
      var fragment = "#o=" + encodeURIComponent(location.origin) + (d.key ? "&k=" + encodeURIComponent(d.key) : "");
      // The frame is named by the widget id (rotating the public link leaves it alone).
      var lang = d.lang ? "&lang=" + encodeURIComponent(d.lang) : "";
      frame.src = base + "/c/" + encodeURIComponent(id) + "?embed=1&v=" + VERSION + lang + fragment;
      panel.insertBefore(frame, panel.firstChild);
    }
    function open() {
      load();
      if (inline || panel.classList.contains("o")) return;
      panel.classList.add("o");
      button.setAttribute("aria-expanded", "true");
      frame.focus();
      emit("open", { assistant: id });
    }
    function close() {
      if (inline || !panel.classList.contains("o")) return;
      panel.classList.remove("o");
      button.setAttribute("aria-expanded", "false");
      button.focus();
      emit("close", { assistant: id });
    }
    if (!inline) {
      button = document.createElement("button");
      button.className = "b";
      button.type = "button";
      button.setAttribute("aria-label", said.open.replace("{title}", title));
      button.setAttribute("aria-expanded", "false");
      button.innerHTML = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">' +
        '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg>';
      button.addEventListener("click", function () { panel.classList.contains("o") ? close() : open(); });
      var x = document.createElement("button");
      x.className = "x";
      x.type = "button";
      x.setAttribute("aria-label", said.close);
      x.textContent = "\u00d7";
      x.addEventListener("click", close);
      panel.appendChild(x);
      root.appendChild(button);
    }
    root.appendChild(panel);
    (target || document.body).appendChild(host);
    root.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
    window.addEventListener("message", function (e) {
      if (e.origin !== base || !frame || e.source !== frame.contentWindow || !e.data || !e.data.portico) return;
      var kind = e.data.portico;
      if (kind === "close") close();
      else emit(kind, { assistant: id, session_id: e.data.session_id, reason: e.data.reason });
    });
    api.widgets.push(widget);
    if (inline || d.open !== undefined) open();
  }
  // Ask first (one small request): a snippet that reaches no assistant, or a website not allowed,
  // shows nothing and says why on the console, in the server's words. If the question fails, the
  // bubble shows as before and the frame says what is wrong.
  function check() {
    var body = new URLSearchParams({ widget_id: d.assistant });
    if (d.key) body.set("key", d.key);
    fetch(base + "/widget/check", { method: "POST", body: body, credentials: "omit" })
      .then(function (r) { return r.json(); })
      .then(function (a) { if (a.show === false) console.warn(a.message); else boot(); }, boot);
  }
  // Nothing is requested, and nothing added to the page, until the host page has loaded.
  if (document.readyState === "complete") check(); else window.addEventListener("load", check);
})();
