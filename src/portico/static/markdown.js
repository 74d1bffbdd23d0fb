// Replies as Markdown, safely: the chat page, the widget's frame, the owner's preview and transcript.
// Two independent layers keep a reply's own HTML out of the DOM: marked (vendor/marked.js) is told
// to write any raw HTML in the text as text, and DOMPurify (vendor/purify.js) then keeps only the
// tags Markdown makes and links to http(s), mailto and tel. Images are shown as links, never loaded.
(function () {
  "use strict";
  if (!window.marked || !window.DOMPurify) return; // the page then shows replies as plain text

  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var parser = new window.marked.Marked({
    gfm: true,
    breaks: true, // engines end lines where they mean a line break, as plain text did before
    renderer: {
      html: function (token) { return escape(token.text); },
      image: function (token) { return '<a href="' + escape(token.href) + '">' + escape(token.text || token.href) + "</a>"; }
    }
  });

  var purify = window.DOMPurify;
  var ALLOWED = {
    ALLOWED_TAGS: ["p", "br", "strong", "em", "del", "code", "pre", "ul", "ol", "li", "a", "blockquote",
      "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td"],
    ALLOWED_ATTR: ["href", "start", "align"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|tel:)/i
  };
  purify.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });

  // Replaces what `element` shows with `text` rendered; returns the time it took, in ms.
  function render(element, text) {
    var began = performance.now();
    var html = parser.parse(text || "", { async: false });
    element.replaceChildren(purify.sanitize(html, Object.assign({ RETURN_DOM_FRAGMENT: true }, ALLOWED)));
    return performance.now() - began;
  }

  // Renders a growing text at most once per animation frame, and less often when one rendering
  // takes long (a huge reply): the page keeps answering while the text streams in.
  function live(element) {
    var text = "", pending = false, finished = false, notBefore = 0;
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
    return {
      update: function (next) { text = next; schedule(); },
      finish: function (last) { finished = true; render(element, last); }
    };
  }

  window.PorticoMarkdown = { render: render, live: live };
})();
