// The feedback page inside the button's dialog: Escape pressed in the survey asks the page around it to close
// the dialog (a key pressed inside a frame never reaches the page's own dialog), and a page that holds no survey
// form (thanks, already received, closed) tells it that this page load is done, so the next opening loads a fresh
// survey while a half-answered one is kept. Outside a frame: nothing.
(function () {
  "use strict";
  if (window.parent === window) { return; }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { window.parent.postMessage({ surveyFeedback: "close" }, "*"); }
  });
  if (!document.querySelector("form.survey")) { window.parent.postMessage({ surveyFeedback: "done" }, "*"); }
})();
