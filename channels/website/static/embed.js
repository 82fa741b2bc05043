// The feedback page inside the button's dialog: Escape pressed in the survey asks the page around it to close
// the dialog (a key pressed inside a frame never reaches the page's own dialog). Outside a frame: nothing.
(function () {
  "use strict";
  if (window.parent === window) { return; }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { window.parent.postMessage({ surveyFeedback: "close" }, "*"); }
  });
})();
