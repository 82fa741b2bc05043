// The website channel's "Feedback" button (SPEC §4 'website'): no dependencies, no cookies, no storage, no
// tracking. Loaded with <script src="https://SURVEYS/f/SERVICE/button.js" defer></script> on a page of one of the
// service's allowed origins, it adds a persistent button that opens the feedback survey in a modal dialog:
// reachable by keyboard and screen reader, focus kept inside, Escape closes, focus goes back to the button. The
// survey opens in the page's language (<html lang>) and records the page (origin and path, never the query).
// Closed half-answered, it opens again as it was left.
(function () {
  "use strict";
  var settings = /*SETTINGS*/null;
  var script = document.currentScript;
  if (!settings || !script || !window.HTMLDialogElement) { return; }
  if (settings.origins.indexOf(window.location.origin.toLowerCase()) === -1) { return; }
  var survey = script.src.replace(/\/button\.js(?:[?#].*)?$/, "");
  var surveyOrigin = new URL(survey).origin;

  function language() {
    var tag = (document.documentElement.getAttribute("lang") || "").split("-")[0].toLowerCase();
    return settings.languages.indexOf(tag) === -1 ? settings.languages[0] : tag;
  }

  function start() {
    if (document.getElementById("survey-feedback-button")) { return; }
    var lang = language();
    var words = settings.words[lang];
    var button = document.createElement("button");
    button.type = "button";
    button.id = "survey-feedback-button";
    button.textContent = words.button;
    button.setAttribute("aria-haspopup", "dialog");
    var s = button.style;
    s.position = "fixed"; s.right = "1rem"; s.bottom = "1rem"; s.zIndex = "2147483000";
    s.padding = "0.75rem 1.25rem"; s.font = "600 1rem/1.2 system-ui, sans-serif"; s.minHeight = "44px";
    s.color = "#ffffff"; s.background = "#1a4480"; s.border = "2px solid #ffffff"; s.borderRadius = "0.25rem";
    s.boxShadow = "0 2px 6px rgba(0,0,0,.35)"; s.cursor = "pointer";

    var dialog = document.createElement("dialog");
    dialog.id = "survey-feedback-dialog";
    dialog.setAttribute("aria-labelledby", "survey-feedback-title");
    var d = dialog.style;
    d.width = "min(40rem, calc(100vw - 2rem))"; d.height = "min(48rem, calc(100vh - 2rem))"; d.padding = "0";
    d.border = "0"; d.borderRadius = "0.5rem"; d.maxWidth = "100vw"; d.maxHeight = "100vh";

    var bar = document.createElement("div");
    bar.style.display = "flex"; bar.style.alignItems = "center"; bar.style.justifyContent = "space-between";
    bar.style.padding = "0.5rem 0.75rem"; bar.style.background = "#1a4480"; bar.style.color = "#ffffff";
    var title = document.createElement("h2");
    title.id = "survey-feedback-title";
    title.textContent = words.title;
    title.style.margin = "0"; title.style.font = "600 1.1rem/1.3 system-ui, sans-serif";
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = words.close;
    close.style.font = "600 1rem/1.2 system-ui, sans-serif"; close.style.minHeight = "44px";
    close.style.padding = "0.5rem 1rem"; close.style.color = "#1a4480"; close.style.background = "#ffffff";
    close.style.border = "0"; close.style.borderRadius = "0.25rem"; close.style.cursor = "pointer";
    bar.appendChild(title);
    bar.appendChild(close);
    dialog.appendChild(bar);
    // Focus stays in the dialog: Tab past the survey comes back to Close, Shift+Tab from Close goes into it.
    var wrap = document.createElement("span");
    wrap.tabIndex = 0;
    wrap.addEventListener("focus", function () { close.focus(); });
    dialog.appendChild(wrap);
    close.addEventListener("keydown", function (event) {
      if (event.key === "Tab" && event.shiftKey && frame) { event.preventDefault(); frame.focus(); }
    });

    // The survey page stays loaded while the dialog is closed, so that closing it by mistake loses nothing typed;
    // once the survey says it is done (sent, or nothing left to answer), the next opening loads a fresh one.
    var frame = null;
    var finished = false;
    function open() {
      if (dialog.open) { return; }
      if (frame) { dialog.showModal(); close.focus(); return; }
      finished = false;
      frame = document.createElement("iframe");
      frame.title = words.title;
      frame.src = survey + "?embed=1&lang=" + encodeURIComponent(lang) + "&from=" +
        encodeURIComponent(window.location.origin + window.location.pathname);
      frame.style.width = "100%"; frame.style.height = "calc(100% - 60px)"; frame.style.border = "0";
      frame.style.display = "block";
      dialog.insertBefore(frame, wrap);
      dialog.showModal();
      close.focus();
    }
    function shut() {
      if (dialog.open) { dialog.close(); }
    }
    dialog.addEventListener("close", function () {
      if (frame && finished) { frame.remove(); frame = null; }  // a new page load (and form token) next time
      button.focus();
    });
    dialog.addEventListener("click", function (event) { if (event.target === dialog) { shut(); } });
    close.addEventListener("click", shut);
    button.addEventListener("click", open);
    window.addEventListener("message", function (event) {
      if (!frame || event.origin !== surveyOrigin || event.source !== frame.contentWindow || !event.data) { return; }
      if (event.data.surveyFeedback === "close") { shut(); }
      if (event.data.surveyFeedback === "done") { finished = true; }
    });
    document.body.appendChild(button);
    document.body.appendChild(dialog);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
