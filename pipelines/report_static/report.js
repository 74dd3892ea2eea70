// video_lstm report: a click on a segment (timeline, table row, confidence curve) seeks the player.
(function () {
  "use strict";
  var player = document.getElementById("player");
  if (!player) return;
  var duration = parseFloat(player.dataset.duration) || 0;

  function seek(seconds) {
    var t = Math.max(0, seconds);
    player.currentTime = t;
    movePlayhead(t);
  }

  function movePlayhead(t) {
    var d = player.duration || duration;
    if (!d) return;
    var pct = Math.min(100, Math.max(0, (100 * t) / d)) + "%";
    document.querySelectorAll(".playhead").forEach(function (el) { el.style.left = pct; });
  }

  document.querySelectorAll("[data-seek]").forEach(function (el) {
    el.addEventListener("click", function (ev) {
      ev.preventDefault();
      ev.stopPropagation();
      seek(parseFloat(el.dataset.seek));
    });
  });

  // A click anywhere else on the timeline or the curve seeks to that point in time.
  document.querySelectorAll(".timeline, svg.curve").forEach(function (el) {
    el.addEventListener("click", function (ev) {
      var box = el.getBoundingClientRect();
      var d = player.duration || duration;
      if (box.width > 0 && d) seek(((ev.clientX - box.left) / box.width) * d);
    });
  });

  player.addEventListener("timeupdate", function () { movePlayhead(player.currentTime); });
})();
