// Typeset every pymdownx.arithmatex element (generic mode) with the KaTeX copied into assets/katex/ at build time.
// Inline math arrives as <span class="arithmatex">\( … \)</span>, display math as <div class="arithmatex">\[ … \]</div>.
// The same extraction and the same options, in strict mode, are checked at build time by docs/tools/check_math.mjs.
(function () {
  "use strict";

  function typeset(root) {
    var nodes = (root || document).querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (el.querySelector(".katex")) continue;            // already typeset (instant navigation)
      var text = el.textContent.trim();
      var display = el.tagName === "DIV";
      var m = /^\\\(([\s\S]*)\\\)$/.exec(text) || /^\\\[([\s\S]*)\\\]$/.exec(text);
      if (m) {
        display = text.charAt(1) === "[";
        text = m[1];
      }
      try {
        katex.render(text, el, { displayMode: display, throwOnError: false, strict: "warn", output: "htmlAndMathml" });
      } catch (err) {
        console.error("KaTeX failed on", text, err);
      }
    }
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { typeset(document); });  // Material: every page load, instant or not
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { typeset(document); });
  } else {
    typeset(document);
  }
})();
