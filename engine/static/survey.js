// Progressive enhancement for the survey page: questions that follow a positive or a negative rating are shown
// only after that rating is chosen. Without JavaScript every question shows with its "answer this if" hint, and
// the server keeps only the branch that applies.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  var dependents = document.querySelectorAll("[data-show-if]");
  if (!dependents.length) { return; }
  function update() {
    dependents.forEach(function (block) {
      var parent = block.getAttribute("data-show-if");
      var wanted = block.getAttribute("data-show-rating");
      var positive = (block.getAttribute("data-positive") || "").split(" ");
      var chosen = document.querySelector('input[name="q-' + parent + '"]:checked');
      var show = false;
      if (chosen) {
        var isPositive = positive.indexOf(chosen.value) !== -1;
        show = (wanted === "positive") === isPositive;
      }
      block.hidden = !show;
      if (!show) {
        block.querySelectorAll("input").forEach(function (input) { input.checked = false; });
      }
      var hint = block.querySelector(".hint[id$='-condition']");
      if (hint) { hint.hidden = true; }
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.name && event.target.type === "radio") { update(); }
  });
  update();
})();
