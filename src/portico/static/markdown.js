// Replies as Markdown, safely: the chat page, the widget's frame, the owner's preview and transcript.
// Two independent layers keep a reply's own HTML out of the DOM: marked (vendor/marked.js) is told
// to write any raw HTML in the text as text, and DOMPurify (vendor/purify.js) then keeps only the
// tags Markdown makes and links to http(s), mailto and tel. Images are shown as links, never loaded.
//
// The two libraries are most of what a guest's first open would weigh, so the chat page does not
// load them up front: this script names them (data-marked, data-purify) and fetches them the first
// time there is Markdown to draw, a reply starts, or the guest presses a key or a pointer. Until
// they arrive, a text with nothing Markdown would change is drawn as the same paragraphs and line
// breaks marked makes of it; any other text is drawn as plain text and drawn again once they are
// here. Dashboard pages load both libraries before this script, so they render at once.
(function () {
  "use strict";

  var script = document.currentScript;
  var sources = script ? [script.getAttribute("data-marked"), script.getAttribute("data-purify")] : [];
  var parse = null; // text -> sanitised fragment, once both libraries are here
  var requested = false;
  var waiting = new Map(); // element -> text drawn as plain text, to draw again with the libraries
  var listeners = []; // live renderers to redraw once the libraries are here

  // What marked would read as something other than paragraphs of text with line breaks.
  var MARKDOWN = /[\\`*_~[\]<>|&@]|^\s*(?:[-+=#]|\d+[.)])|^ {4}|\t|https?:|www\./im;

  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function setup() {
    if (parse || !window.marked || !window.DOMPurify) return !!parse;
    var parser = new window.marked.Marked({
      gfm: true,
      breaks: true, // engines end lines where they mean a line break, as plain text did before
      renderer: {
        html: function (token) { return escape(token.text); },
        image: function (token) { return '<a href="' + escape(token.href) + '">' + escape(token.text || token.href) + "</a>"; }
      }
    });
    var purify = window.DOMPurify;
    var allowed = {
      ALLOWED_TAGS: ["p", "br", "strong", "em", "del", "code", "pre", "ul", "ol", "li", "a", "blockquote",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td"],
      ALLOWED_ATTR: ["href", "start", "align"],
      ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|tel:)/i,
      RETURN_DOM_FRAGMENT: true
    };
    purify.addHook("afterSanitizeAttributes", function (node) {
      if (node.tagName === "A" && node.hasAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
    parse = function (text) { return purify.sanitize(parser.parse(text || "", { async: false }), allowed); };
    return true;
  }

  function arrived() {
    if (!setup()) return;
    waiting.forEach(function (text, element) { render(element, text); });
    waiting.clear();
    listeners.forEach(function (redraw) { redraw(); });
    listeners = [];
  }

  // Fetches both libraries once, in order; a page that has them already just sets them up.
  function load() {
    if (setup() || requested || !sources[0] || !sources[1]) return;
    requested = true;
    var left = sources.length;
    sources.forEach(function (src) {
      var tag = document.createElement("script");
      tag.src = src;
      tag.async = false; // run in the order added: marked, then DOMPurify
      tag.onload = function () { if (--left === 0) arrived(); };
      document.head.appendChild(tag);
    });
  }

  // Paragraphs and line breaks, as marked draws a text without Markdown in it.
  function plain(text) {
    var fragment = document.createDocumentFragment();
    String(text).trim().split(/\n[ \t]*\n\s*/).forEach(function (paragraph) {
      if (!paragraph) return;
      var p = document.createElement("p");
      paragraph.split("\n").forEach(function (line, index) {
        if (index) p.appendChild(document.createElement("br"));
        p.appendChild(document.createTextNode(line.trim()));
      });
      fragment.appendChild(p);
    });
    return fragment;
  }

  // Replaces what `element` shows with `text` rendered; returns the time it took, in ms.
  function render(element, text) {
    var began = performance.now();
    if (parse || setup()) {
      waiting.delete(element);
      element.replaceChildren(parse(text));
    } else {
      element.replaceChildren(plain(text || ""));
      if (MARKDOWN.test(text || "")) {
        waiting.set(element, text);
        load();
      }
    }
    return performance.now() - began;
  }

  // Renders a growing text at most once per animation frame, and less often when one rendering
  // takes long (a huge reply): the page keeps answering while the text streams in.
  function live(element) {
    var text = "", pending = false, finished = false, notBefore = 0;
    load(); // a reply is coming: it will most likely want the libraries
    function draw() {
      pending = false;
      if (finished) return;
      var now = performance.now();
      if (now < notBefore) { schedule(); return; }
      notBefore = now + 4 * render(element, text);
    }
    function schedule() {
      if (!pending) { pending = true; requestAnimationFrame(draw); }
    }
    if (!parse) listeners.push(function () { if (!finished) schedule(); });
    return {
      update: function (next) { text = next; schedule(); },
      finish: function (last) { finished = true; render(element, last); }
    };
  }

  // A guest about to ask: fetch the libraries while they type.
  ["keydown", "pointerdown"].forEach(function (type) {
    document.addEventListener(type, load, { once: true, capture: true, passive: true });
  });

  window.PorticoMarkdown = { render: render, live: live };
})();
