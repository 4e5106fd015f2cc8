/*
 * Residuals — batch import: upload a session's files one at a time.
 *
 * Progressive enhancement of the import page's plain multi-file form
 * (form[data-import-upload]): files chosen or dropped are matched to their
 * manifest rows by name, then sent ONE BY ONE to the form's action with
 * XMLHttpRequest (Accept: application/json), each with its own progress bar
 * and an overall bar. The JSON answer gives each row's new status, and the
 * row in the results table updates in place. Without this script the form
 * posts every file at once and the server imports them in turn.
 */
(function () {
  "use strict";

  var form = document.querySelector("[data-import-upload]");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;

  var input = form.querySelector('input[type="file"]');
  var dropzone = form.querySelector("[data-dropzone]");
  var panel = document.querySelector("[data-progress]");
  var overallBar = document.querySelector("[data-overall-bar]");
  var overallText = document.querySelector("[data-overall-text]");
  var list = document.querySelector("[data-upload-list]");
  var announcer = document.querySelector("[data-announce]");
  var finishedNote = document.querySelector("[data-finished-note]");
  var csrfField = form.querySelector('input[name="csrfmiddlewaretoken"]');
  var url = form.getAttribute("data-file-url") || form.action;
  var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;

  document.documentElement.classList.add("has-import-js");
  var nojsSubmit = form.querySelector("[data-nojs-submit]");
  if (nojsSubmit) nojsSubmit.hidden = true;

  var rowsByName = {};
  // A file name may appear on several rows when the manifest repeats it:
  // the repeats are refused, and the file belongs to the row that takes it.
  Array.prototype.forEach.call(document.querySelectorAll("[data-row]"), function (tr) {
    var name = tr.getAttribute("data-file-name");
    if (!name) return;
    var key = name.toLowerCase();
    var seen = rowsByName[key];
    if (!seen || (!takesFile(seen) && takesFile(tr))) rowsByName[key] = tr;
  });

  function takesFile(tr) {
    return tr.getAttribute("data-accepts-file") === "true";
  }

  var queue = [];
  var busy = false;
  var totals = { files: 0, done: 0, bytes: 0, doneBytes: 0 };
  var outcome = { imported: 0, already_imported: 0, refused: 0, failed: 0 };

  function announce(message) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = message;
    }, 50);
  }

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(0) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function makeItem(file) {
    var item = element("li", "upload-item");
    item.setAttribute("data-state", "queued");
    var head = element("div", "upload-item__head");
    head.appendChild(element("span", "upload-item__name mono", file.name));
    head.appendChild(element("span", "upload-item__size", humanSize(file.size)));
    var bar = element("progress", "upload-item__bar");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    item.appendChild(head);
    item.appendChild(bar);
    item.appendChild(element("p", "upload-item__status", "Waiting its turn"));
    list.appendChild(item);
    return item;
  }

  function setItem(item, state, text) {
    item.setAttribute("data-state", state);
    item.querySelector(".upload-item__status").textContent = text;
    var bar = item.querySelector("progress");
    if (state === "processing") {
      bar.removeAttribute("value"); // indeterminate while the server imports it
    } else if (state !== "uploading" && state !== "queued") {
      bar.value = 100;
    }
  }

  function updateOverall(currentLoaded) {
    var bytes = totals.bytes || 1;
    var percent = Math.min(100, Math.round(((totals.doneBytes + currentLoaded) / bytes) * 100));
    overallBar.value = percent;
    if (busy) {
      overallText.textContent =
        "Importing file " + Math.min(totals.done + 1, totals.files) + " of " + totals.files +
        " · " + percent + "% uploaded";
    }
  }

  function badge(row) {
    return element("span", "badge " + row.badge, row.status_label);
  }

  function updateRow(tr, row) {
    tr.setAttribute("data-status", row.status);
    tr.setAttribute("data-accepts-file", row.accepts_file ? "true" : "false");
    tr.classList.remove("is-uploading");
    tr.classList.add("is-updated");
    var statusCell = tr.querySelector('[data-cell="status"]');
    statusCell.textContent = "";
    statusCell.appendChild(badge(row));
    var messageCell = tr.querySelector('[data-cell="message"]');
    messageCell.textContent = "";
    if (row.recording) {
      var link = element("a", "", row.recording.uid);
      link.href = row.recording.url;
      messageCell.appendChild(link);
      messageCell.appendChild(element("span", "cell-sub", row.message));
    } else {
      messageCell.appendChild(document.createTextNode(row.message + " "));
      if (row.error_code) messageCell.appendChild(element("span", "cell-sub mono", row.error_code));
    }
  }

  function updateCounts(summary) {
    if (!summary) return;
    Object.keys(summary).forEach(function (key) {
      var node = document.querySelector('[data-count="' + key + '"]');
      if (node) node.textContent = summary[key];
    });
  }

  function errorMessage(xhr, data) {
    if (data && data.error && data.error.message) return data.error.message;
    if (xhr.responseURL && xhr.responseURL.indexOf("/accounts/login") !== -1) {
      return "You are signed out. Sign in again in another tab, then retry this file.";
    }
    if (xhr.status === 403) return "The page is out of date. Reload it and try this file again.";
    if (xhr.status === 413) return "The file is too large to upload.";
    return "The server could not import this file (HTTP " + xhr.status + "). Try it again.";
  }

  function handleAnswer(job, xhr) {
    var data = null;
    try {
      data = JSON.parse(xhr.responseText);
    } catch (error) {
      data = null;
    }
    var result = data && data.results && data.results[0];
    if (xhr.status >= 200 && xhr.status < 300 && result) {
      updateCounts(data.summary);
      if (result.row) {
        updateRow(job.tr, result.row);
        var state = result.row.status === "refused" ? "error" : "done";
        setItem(job.item, state, result.row.message);
        if (outcome[result.row.status] !== undefined) outcome[result.row.status] += 1;
        return;
      }
      setItem(job.item, "error", result.error.message);
    } else {
      setItem(job.item, "error", errorMessage(xhr, data));
    }
    job.tr.classList.remove("is-uploading");
    outcome.failed += 1;
  }

  function next() {
    var job = queue.shift();
    if (!job) {
      busy = false;
      finish();
      return;
    }
    busy = true;
    setItem(job.item, "uploading", "Uploading…");
    job.tr.classList.add("is-uploading");
    job.item.scrollIntoView({ block: "nearest" });
    var bar = job.item.querySelector("progress");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    if (csrfField) xhr.setRequestHeader("X-CSRFToken", csrfField.value);
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      bar.value = Math.round((event.loaded / event.total) * 100);
      updateOverall(Math.min(event.loaded, job.file.size));
    });
    xhr.upload.addEventListener("load", function () {
      setItem(job.item, "processing", "Uploaded. Checking and importing…");
    });
    xhr.addEventListener("load", function () {
      handleAnswer(job, xhr);
      done(job);
    });
    xhr.addEventListener("error", function () {
      setItem(job.item, "error", "The upload failed. Check your connection and try this file again.");
      job.tr.classList.remove("is-uploading");
      outcome.failed += 1;
      done(job);
    });
    var data = new FormData();
    data.append("files", job.file, job.file.name);
    xhr.send(data);
  }

  function done(job) {
    totals.done += 1;
    totals.doneBytes += job.file.size;
    updateOverall(0);
    next();
  }

  function finish() {
    var parts = [outcome.imported + " imported"];
    if (outcome.already_imported) parts.push(outcome.already_imported + " already imported");
    if (outcome.refused) parts.push(outcome.refused + " refused");
    if (outcome.failed) parts.push(outcome.failed + " not uploaded");
    var text = "Done: " + parts.join(", ") + ".";
    overallBar.value = 100;
    overallText.textContent = text;
    announce(text + " The table below says row by row what happened.");
    var waiting = document.querySelectorAll('[data-row][data-accepts-file="true"]').length;
    var waitingNote = document.querySelector("[data-waiting-note]");
    if (waitingNote) {
      waitingNote.textContent = waiting + " row" + (waiting === 1 ? "" : "s") + " can take a file";
    }
    if (finishedNote) {
      finishedNote.textContent = waiting
        ? waiting + " row" + (waiting === 1 ? " still takes a file." : "s still take a file.")
        : "Every row has an outcome.";
    }
  }

  function addFiles(files) {
    if (!files || !files.length) return;
    panel.hidden = false;
    var added = 0;
    Array.prototype.forEach.call(files, function (file) {
      var item = makeItem(file);
      var tr = rowsByName[file.name.toLowerCase()];
      if (!tr) {
        setItem(item, "skipped", "Not in the manifest, so not uploaded.");
        return;
      }
      var queued = queue.some(function (job) {
        return job.tr === tr;
      });
      if (queued || tr.classList.contains("is-uploading")) {
        setItem(item, "skipped", "Already in this upload.");
        return;
      }
      if (maxBytes && file.size > maxBytes) {
        setItem(item, "error", "Larger than the " + humanSize(maxBytes) + " limit, so not uploaded.");
        return;
      }
      if (!takesFile(tr)) {
        var status = tr.getAttribute("data-status");
        setItem(
          item,
          "skipped",
          status === "refused"
            ? "Its row was refused: fix the manifest and start a new import."
            : "Its row is already done."
        );
        return;
      }
      queue.push({ file: file, item: item, tr: tr });
      totals.files += 1;
      totals.bytes += file.size;
      added += 1;
    });
    if (added) {
      announce("Uploading " + added + " file" + (added === 1 ? "" : "s") + ", one at a time.");
    }
    if (!busy && queue.length) {
      busy = true;
      updateOverall(0);
      next();
    }
  }

  input.addEventListener("change", function () {
    addFiles(input.files);
    input.value = "";
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    addFiles(input.files);
    input.value = "";
  });

  ["dragenter", "dragover"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      event.preventDefault();
      dropzone.classList.add("is-dragging");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (type) {
    dropzone.addEventListener(type, function (event) {
      if (type === "dragleave" && dropzone.contains(event.relatedTarget)) return;
      dropzone.classList.remove("is-dragging");
    });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", function (event) {
    event.preventDefault();
  });
  window.addEventListener("drop", function (event) {
    event.preventDefault();
  });

  window.addEventListener("beforeunload", function (event) {
    if (!busy) return;
    event.preventDefault();
    event.returnValue = "";
  });
})();
