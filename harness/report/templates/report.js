// Optional niceties; the page reads fine without JavaScript.
(function () {
  "use strict";
  // "copy" buttons next to reproduce commands.
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var code = button.parentElement.querySelector("code");
      var text = code ? code.textContent : "";
      var done = function () {
        button.textContent = "copied";
        setTimeout(function () { button.textContent = "copy"; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(code); });
      } else {
        select(code);
        try { if (document.execCommand("copy")) { done(); } } catch (e) { /* selected: Ctrl+C */ }
      }
    });
  });
  function select(node) {
    if (!node) { return; }
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  // A link to a check or to a piece of evidence (from "Look here first") opens it, and the
  // check it sits in, then brings it into view.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target) { return; }
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  // Print everything expanded, then restore what the reader had open.
  var wasOpen = [];
  window.addEventListener("beforeprint", function () {
    wasOpen = [];
    document.querySelectorAll("details").forEach(function (d) {
      wasOpen.push([d, d.open]);
      d.open = true;
    });
  });
  window.addEventListener("afterprint", function () {
    wasOpen.forEach(function (pair) { pair[0].open = pair[1]; });
  });
})();
