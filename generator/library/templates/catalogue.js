// Filters work on data-* attributes and the `hidden` property only: no string from a sidecar is ever
// parsed as HTML here, so a title like "<script>" stays text.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card"));
  var genre = document.getElementById("genre-filter");
  var minInput = document.getElementById("min-duration");
  var maxInput = document.getElementById("max-duration");
  var search = document.getElementById("search");
  var count = document.getElementById("count");
  var none = document.getElementById("no-match");

  function limit(input) {
    var value = parseFloat(input.value);
    return isNaN(value) ? null : value;
  }

  function apply() {
    var wanted = genre.value;
    var lo = limit(minInput), hi = limit(maxInput);
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    cards.forEach(function (card) {
      var duration = parseFloat(card.dataset.duration);
      var text = card.dataset.search || "";
      var ok = (!wanted || card.dataset.genre === wanted) &&
        (lo === null || duration >= lo) && (hi === null || duration <= hi) &&
        words.every(function (w) { return text.indexOf(w) !== -1; });
      card.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + cards.length + " tracks";
    none.hidden = shown !== 0;
  }

  [genre, minInput, maxInput, search].forEach(function (el) { el.addEventListener("input", apply); });
  genre.addEventListener("change", apply);
  document.getElementById("filters").addEventListener("reset", function () { setTimeout(apply, 0); });
  apply();
})();
