/*
 * Residuals — the ARC editor and the valence/arousal sliders on a recording's
 * emotional-signature page. Plain JavaScript, no dependencies. Without it the
 * page still works: the form offers six blank segment rows and number inputs.
 *
 *  - [data-arc-editor]   add and remove segment rows, keep their numbers and
 *                        labels in order, and draw a live preview timeline
 *  - input[data-sync]    a range slider mirroring the number input it names
 */
(function () {
  "use strict";

  function renumber(editor) {
    var rows = editor.querySelectorAll("[data-arc-rows] > tr");
    rows.forEach(function (row, index) {
      var n = index + 1;
      var cell = row.querySelector("[data-arc-number]");
      if (cell) cell.textContent = String(n);
      var labels = {
        arc_start: "Segment " + n + " start, seconds",
        arc_end: "Segment " + n + " end, seconds",
        arc_emotion: "Segment " + n + " emotion",
        arc_intensity: "Segment " + n + " intensity",
        arc_note: "Segment " + n + " note",
      };
      Object.keys(labels).forEach(function (name) {
        var input = row.querySelector('[name="' + name + '"]');
        if (input) input.setAttribute("aria-label", labels[name]);
      });
      var remove = row.querySelector("[data-arc-remove]");
      if (remove) remove.setAttribute("aria-label", "Remove segment " + n);
    });
  }

  function drawPreview(editor) {
    var preview = editor.querySelector("[data-arc-preview]");
    if (!preview) return;
    var duration = parseFloat(editor.getAttribute("data-duration")) || 0;
    preview.textContent = "";
    if (!duration) return;
    var drawn = 0;
    editor.querySelectorAll("[data-arc-rows] > tr").forEach(function (row) {
      var start = parseFloat(row.querySelector('[name="arc_start"]').value);
      var end = parseFloat(row.querySelector('[name="arc_end"]').value);
      var emotion = row.querySelector('[name="arc_emotion"]').value;
      var intensity = row.querySelector('[name="arc_intensity"]').value || "3";
      if (isNaN(start) || isNaN(end) || end <= start || !emotion) return;
      var left = Math.max(0, Math.min(100, (start / duration) * 100));
      var width = Math.max(0.5, Math.min(100 - left, ((end - start) / duration) * 100));
      var seg = document.createElement("span");
      seg.className = "arc-timeline__seg emo-" + emotion;
      seg.style.left = left + "%";
      seg.style.width = width + "%";
      seg.style.setProperty("--intensity", intensity);
      var outOfRange = end > duration + 1e-6 || start < 0;
      if (outOfRange) seg.style.outline = "2px solid #b0261b";
      preview.appendChild(seg);
      drawn += 1;
    });
    preview.hidden = drawn === 0;
  }

  function addRow(editor, focus) {
    var template = editor.querySelector("template[data-arc-template]");
    var body = editor.querySelector("[data-arc-rows]");
    if (!template || !body) return null;
    var row = template.content.firstElementChild.cloneNode(true);
    body.appendChild(row);
    renumber(editor);
    if (focus) {
      var first = row.querySelector("input");
      if (first) first.focus();
    }
    return row;
  }

  function setUpEditor(editor) {
    editor.querySelectorAll("[data-arc-remove], [data-arc-add]").forEach(function (button) {
      button.hidden = false;
    });
    editor.addEventListener("click", function (event) {
      var add = event.target.closest("[data-arc-add]");
      if (add) {
        event.preventDefault();
        addRow(editor, true);
        return;
      }
      var remove = event.target.closest("[data-arc-remove]");
      if (remove) {
        event.preventDefault();
        var row = remove.closest("tr");
        var next = row.nextElementSibling || row.previousElementSibling;
        row.parentNode.removeChild(row);
        if (!editor.querySelector("[data-arc-rows] > tr")) next = addRow(editor, false);
        renumber(editor);
        drawPreview(editor);
        var focusTarget = next && next.querySelector("input");
        if (focusTarget) focusTarget.focus();
        else editor.querySelector("[data-arc-add]").focus();
      }
    });
    editor.addEventListener("input", function () {
      drawPreview(editor);
    });
    editor.addEventListener("change", function () {
      drawPreview(editor);
    });
    renumber(editor);
    drawPreview(editor);
  }

  function setUpSlider(slider) {
    var number = document.getElementById(slider.getAttribute("data-sync"));
    if (!number) return;
    slider.hidden = false;
    if (number.value !== "") slider.value = number.value;
    slider.addEventListener("input", function () {
      number.value = slider.value;
    });
    number.addEventListener("input", function () {
      if (number.value !== "" && !isNaN(parseFloat(number.value))) slider.value = number.value;
    });
  }

  function init() {
    document.querySelectorAll("[data-arc-editor]").forEach(setUpEditor);
    document.querySelectorAll('input[type="range"][data-sync]').forEach(setUpSlider);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
