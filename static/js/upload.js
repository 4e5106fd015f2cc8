/*
 * Residuals — the recording upload form, with progress.
 *
 * Without this script the form posts normally and the server answers with
 * the page (errors shown on the form) or a redirect to the new recording.
 * With it, the same form is sent with XMLHttpRequest so the upload's
 * progress can be shown; the server answers JSON:
 *   201 {"redirect": url, "recording": uid}
 *   4xx {"error": {"code", "message", "details": {"fields": {name: [msg]}}}}
 * Files over the limit or empty are caught here before anything is sent.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-upload-form]");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;

  var fileInput = form.querySelector('input[type="file"]');
  var summary = form.querySelector("[data-upload-summary]");
  var progress = form.querySelector("[data-upload-progress]");
  var bar = form.querySelector("[data-upload-bar]");
  var statusText = form.querySelector("[data-upload-status]");
  var numbers = form.querySelector("[data-upload-numbers]");
  var announcer = form.querySelector("[data-upload-announce]");
  var submit = form.querySelector("[data-upload-submit]");
  var cancel = form.querySelector("[data-upload-cancel]");
  var back = form.querySelector("[data-upload-back]");
  var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;
  var maxLabel = form.getAttribute("data-max-label") || "";
  var request = null;
  var lastAnnounced = -1;

  function humanSize(bytes) {
    var units = ["bytes", "KB", "MB", "GB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(value) : value.toFixed(value < 10 ? 1 : 0)) + " " + units[unit];
  }

  function fieldInput(name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll("ul.errorlist[data-js-error]"), function (list) {
      list.parentNode.removeChild(list);
    });
    Array.prototype.forEach.call(form.querySelectorAll("ul.errorlist:not([data-js-error])"), function (list) {
      // Errors the server rendered on the last full page load.
      list.parentNode.removeChild(list);
    });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid="true"]'), function (input) {
      input.removeAttribute("aria-invalid");
      var described = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (id) {
          return id && !/_error$/.test(id);
        })
        .join(" ");
      if (described) input.setAttribute("aria-describedby", described);
      else input.removeAttribute("aria-describedby");
    });
    var duplicate = form.querySelector("[data-upload-duplicate]");
    if (duplicate) duplicate.parentNode.removeChild(duplicate);
    form.querySelector("[data-upload-file]").classList.remove("has-error");
    summary.hidden = true;
    summary.textContent = "";
  }

  function showFieldError(name, messages) {
    var input = fieldInput(name);
    if (!input) return false;
    var list = document.createElement("ul");
    var id = (input.id || "id_" + name) + "_error";
    list.className = "errorlist";
    list.id = id;
    list.setAttribute("data-js-error", "");
    messages.forEach(function (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
    });
    input.parentNode.insertBefore(list, input);
    input.setAttribute("aria-invalid", "true");
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", described ? described + " " + id : id);
    if (name === "file") form.querySelector("[data-upload-file]").classList.add("has-error");
    return true;
  }

  function showSummary(title, message, link) {
    summary.textContent = "";
    var heading = document.createElement("p");
    heading.className = "upload-summary__title";
    heading.textContent = title;
    summary.appendChild(heading);
    if (message) {
      var text = document.createElement("p");
      text.className = "mb-0";
      text.textContent = message;
      summary.appendChild(text);
    }
    if (link) {
      var para = document.createElement("p");
      para.className = "mb-0 mt-4";
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      para.appendChild(anchor);
      summary.appendChild(para);
    }
    summary.hidden = false;
    summary.focus();
  }

  function showError(payload, status) {
    var error = (payload && payload.error) || {};
    var details = error.details || {};
    var fields = details.fields || {};
    var placed = 0;
    Object.keys(fields).forEach(function (name) {
      if (showFieldError(name, fields[name])) placed += 1;
    });
    var link = null;
    if (error.code === "duplicate_recording" && details.url) {
      link = { href: details.url, text: "Open " + details.recording + ", the recording you already uploaded" };
    }
    var message = error.message || "The server answered " + status + ". Please try again.";
    if (placed && error.code === "validation_error") {
      // The field messages say what is wrong; the summary points to them.
      message = placed > 1 ? "Check the fields marked below." : "Check the field marked below.";
    }
    showSummary("The recording was not uploaded.", message, link);
  }

  function setBusy(busy) {
    submit.disabled = busy;
    submit.textContent = busy ? "Uploading…" : "Upload recording";
    cancel.hidden = !busy;
    if (back) back.hidden = busy;
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element !== cancel && element.type !== "hidden" && element.tagName !== "BUTTON") {
        element.readOnly = busy;
        if (element.type === "file") element.disabled = busy;
      }
    });
  }

  function setProgress(loaded, total) {
    var percent = total ? Math.min(100, Math.round((loaded / total) * 100)) : 0;
    bar.value = percent;
    bar.textContent = percent + "%";
    numbers.textContent = humanSize(loaded) + " of " + humanSize(total) + " (" + percent + "%)";
    // Tell screen readers every 10%, not every event.
    var step = Math.floor(percent / 10) * 10;
    if (step !== lastAnnounced) {
      lastAnnounced = step;
      announcer.textContent = "Uploaded " + step + " percent";
    }
  }

  function finish() {
    request = null;
    setBusy(false);
    progress.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    if (request) {
      event.preventDefault();
      return;
    }
    var file = fileInput && fileInput.files && fileInput.files[0];
    clearErrors();
    if (!file) {
      event.preventDefault();
      showFieldError("file", ["Choose the recording's file."]);
      showSummary("The recording was not uploaded.", "Choose a file to upload.");
      return;
    }
    if (file.size === 0) {
      event.preventDefault();
      showFieldError("file", ["The file is empty (0 bytes)."]);
      showSummary("The recording was not uploaded.", "The file is empty (0 bytes).");
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      event.preventDefault();
      var tooLarge = "The file is " + humanSize(file.size) + ", larger than the " + maxLabel + " limit.";
      showFieldError("file", [tooLarge]);
      showSummary("The recording was not uploaded.", tooLarge);
      return;
    }
    event.preventDefault();

    // Built before the inputs are made read-only (disabled inputs are not sent).
    var data = new FormData(form);
    // The text fields first: if the server stops reading at the file, it has them.
    data.delete(fileInput.name);
    data.append(fileInput.name, file, file.name);

    request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action") || window.location.href);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    if (token) request.setRequestHeader("X-CSRFToken", token.value);

    lastAnnounced = -1;
    setBusy(true);
    progress.hidden = false;
    statusText.textContent = "Uploading " + file.name + "…";
    setProgress(0, file.size);

    request.upload.addEventListener("progress", function (progressEvent) {
      // The body is slightly larger than the file (the form's other fields):
      // show the progress in terms of the file.
      if (progressEvent.lengthComputable && progressEvent.total) {
        setProgress(Math.round((progressEvent.loaded / progressEvent.total) * file.size), file.size);
      }
    });
    request.upload.addEventListener("load", function () {
      setProgress(file.size, file.size);
      statusText.textContent = "Uploaded. Checking the file…";
      announcer.textContent = "Upload complete. Checking the file.";
      cancel.hidden = true;
    });
    request.addEventListener("load", function () {
      var xhr = request;
      var payload = null;
      try {
        payload = JSON.parse(xhr.responseText);
      } catch (error) {
        payload = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && payload && payload.redirect) {
        statusText.textContent = "Done. Opening the recording…";
        window.location.assign(payload.redirect);
        return;
      }
      finish();
      showError(payload, xhr.status);
    });
    request.addEventListener("error", function () {
      finish();
      showSummary(
        "The upload was interrupted.",
        "The connection dropped before the server answered. Check your connection and try again" +
          (maxLabel ? "; files over " + maxLabel + " are refused." : ".")
      );
    });
    request.addEventListener("abort", function () {
      finish();
      showSummary("Upload cancelled.", "Nothing was saved. You can choose the file again when you are ready.");
    });
    request.send(data);
  });

  cancel.addEventListener("click", function () {
    if (request) request.abort();
  });

  // A new file choice clears the old file error and suggests a title.
  if (fileInput) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      var title = fieldInput("title");
      if (file && title && !title.value) {
        title.value = file.name.replace(/\.[^.]+$/, "").replace(/[_-]+/g, " ").trim();
      }
    });
  }
})();
