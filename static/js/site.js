/*
 * Residuals — small progressive enhancements. Every page works without it.
 *
 *  - [data-copy-target="#id"]  copies the target's text (or value) to the clipboard
 *  - form[data-confirm="…"]    asks before submitting (also on a submit button)
 *  - details.account-menu      closes on Escape and on a click elsewhere
 */
(function () {
  "use strict";

  var liveRegion = null;

  function announce(message) {
    if (!liveRegion) {
      liveRegion = document.createElement("div");
      liveRegion.className = "sr-only";
      liveRegion.setAttribute("role", "status");
      liveRegion.setAttribute("aria-live", "polite");
      document.body.appendChild(liveRegion);
    }
    liveRegion.textContent = "";
    window.setTimeout(function () {
      liveRegion.textContent = message;
    }, 50);
  }

  function textOf(element) {
    if ("value" in element && typeof element.value === "string" && element.tagName !== "BUTTON") {
      return element.value;
    }
    return (element.textContent || "").trim();
  }

  function legacyCopy(text) {
    var scratch = document.createElement("textarea");
    scratch.value = text;
    scratch.setAttribute("readonly", "");
    scratch.style.position = "fixed";
    scratch.style.top = "-1000px";
    scratch.style.opacity = "0";
    document.body.appendChild(scratch);
    scratch.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(scratch);
    return copied;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () {
          return true;
        },
        function () {
          return legacyCopy(text);
        }
      );
    }
    return Promise.resolve(legacyCopy(text));
  }

  function selectContents(element) {
    var selection = window.getSelection();
    if (!selection) return;
    var range = document.createRange();
    range.selectNodeContents(element);
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function showCopied(button) {
    if (!button.hasAttribute("data-copy-label")) {
      button.setAttribute("data-copy-label", button.textContent.trim());
    }
    window.clearTimeout(Number(button.getAttribute("data-copy-timer")) || 0);
    button.textContent = "Copied";
    button.classList.add("is-copied");
    var timer = window.setTimeout(function () {
      button.textContent = button.getAttribute("data-copy-label");
      button.classList.remove("is-copied");
    }, 2000);
    button.setAttribute("data-copy-timer", String(timer));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    event.preventDefault();
    var target = document.querySelector(button.getAttribute("data-copy-target"));
    if (!target) return;
    copyText(textOf(target)).then(function (copied) {
      if (copied) {
        showCopied(button);
        announce("Copied to clipboard");
      } else {
        // Leave the text selected so it can be copied by hand.
        selectContents(target);
        announce("Press Control+C or Command+C to copy");
      }
    });
  });

  // Confirmation before destructive submissions.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      var submitter = event.submitter;
      var message =
        (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
      if (message && !window.confirm(message)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  // Account menu: close on Escape or on a click outside it.
  function openMenus() {
    return document.querySelectorAll("details.account-menu[open]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });

  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
})();
