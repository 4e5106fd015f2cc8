/*
 * Residuals — small helpers for the splits and listing forms. Every form
 * works without them; the server checks everything again.
 *
 *  - form[data-splits]          live percentages and total for basis points
 *  - [data-duration-years]      a license duration in days shown as years/months
 *  - [data-listing-form]        which uses every chosen recording's consent allows
 *  - [data-territories]         countries list only when "only in" is chosen
 */
(function () {
  "use strict";

  function percentOf(bps) {
    var value = bps / 100;
    return (Math.round(value * 100) / 100).toString() + "%";
  }

  function setUpSplits(form) {
    var body = form.querySelector("[data-split-rows]");
    var totalBps = form.querySelector("[data-split-total-bps]");
    var totalPct = form.querySelector("[data-split-total-pct]");
    function update() {
      var total = 0;
      body.querySelectorAll("tr").forEach(function (row) {
        var input = row.querySelector("[data-split-bps]");
        var cell = row.querySelector("[data-split-pct]");
        var bps = parseInt(input.value, 10);
        if (!isNaN(bps) && String(bps) === input.value.trim()) {
          total += bps;
          cell.textContent = percentOf(bps);
        } else {
          cell.textContent = "";
        }
      });
      totalBps.textContent = String(total);
      totalPct.textContent = percentOf(total);
      [totalBps, totalPct].forEach(function (el) {
        el.classList.toggle("is-off", total !== 10000);
      });
    }
    var add = form.querySelector("[data-split-add]");
    if (add) {
      add.hidden = false;
      add.addEventListener("click", function () {
        var rows = body.querySelectorAll("tr");
        var copy = rows[rows.length - 1].cloneNode(true);
        var n = rows.length + 1;
        copy.querySelector("td").textContent = String(n);
        copy.querySelectorAll("input").forEach(function (input) {
          input.value = "";
          input.setAttribute(
            "aria-label",
            input.name === "split_email"
              ? "Row " + n + " performer email"
              : "Row " + n + " share in basis points"
          );
        });
        copy.querySelector("[data-split-pct]").textContent = "";
        body.appendChild(copy);
        copy.querySelector("input").focus();
      });
    }
    form.addEventListener("input", update);
    update();
  }

  function durationText(days) {
    if (!days || days < 1) return "";
    var years = Math.floor(days / 365);
    var months = Math.round((days % 365) / (365 / 12));
    if (months === 12) {
      years += 1;
      months = 0;
    }
    var parts = [];
    if (years) parts.push(years + (years === 1 ? " year" : " years"));
    if (months) parts.push(months + (months === 1 ? " month" : " months"));
    return parts.length ? "≈ " + parts.join(", ") : days + " days";
  }

  function setUpDuration(output) {
    var input = document.getElementById(output.getAttribute("data-duration-years"));
    if (!input) return;
    function update() {
      output.textContent = durationText(parseInt(input.value, 10));
    }
    input.addEventListener("input", update);
    update();
  }

  function setUpListing(form) {
    var summary = form.querySelector("[data-uses-summary]");
    var useBoxes = form.querySelectorAll('input[name="permitted_uses"]');
    var labels = {};
    useBoxes.forEach(function (box) {
      labels[box.value] = (box.closest("label") || box).textContent.trim();
    });
    function update() {
      var chosen = form.querySelectorAll('input[name="recordings"]:checked');
      var common = null;
      chosen.forEach(function (box) {
        var uses = (box.getAttribute("data-uses") || "").split(" ").filter(Boolean);
        common =
          common === null
            ? uses
            : common.filter(function (u) {
                return uses.indexOf(u) !== -1;
              });
      });
      useBoxes.forEach(function (box) {
        var item = box.closest("li");
        var allowed = common === null || common.indexOf(box.value) !== -1;
        if (item) item.classList.toggle("is-not-consented", !allowed);
        var note = item && item.querySelector(".choice__note");
        if (note) note.textContent = allowed ? "" : "Not allowed by every chosen recording";
      });
      if (summary) {
        if (common === null) {
          summary.textContent = "Choose recordings to see which uses their consent allows.";
        } else if (!common.length) {
          summary.textContent = "The chosen recordings have no use in common: choose fewer.";
        } else {
          summary.textContent =
            "Every chosen recording allows: " +
            common
              .map(function (u) {
                return labels[u] || u;
              })
              .join(", ") +
            ".";
        }
      }
    }
    form.addEventListener("change", update);
    update();
  }

  function setUpTerritories(box) {
    var form = box.closest("form");
    function update() {
      var scope = form.querySelector('input[name="territory_scope"]:checked');
      box.hidden = scope && scope.value === "worldwide";
    }
    form.addEventListener("change", update);
    update();
  }

  function init() {
    document.querySelectorAll("form[data-splits]").forEach(setUpSplits);
    document.querySelectorAll("[data-duration-years]").forEach(setUpDuration);
    document.querySelectorAll("form[data-listing-form]").forEach(setUpListing);
    document.querySelectorAll("[data-territories]").forEach(setUpTerritories);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
