/* Order page: while the payment is being confirmed, ask the server every
   2 seconds and reload once the order's status changes. Without JavaScript
   the page refreshes itself (<noscript> meta refresh). */
(function () {
  "use strict";
  var box = document.getElementById("order-state");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-status-url");
  var status = box.getAttribute("data-status");
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && data.status !== status) { window.location.reload(); return; }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }
  window.setTimeout(poll, 2000);
})();
