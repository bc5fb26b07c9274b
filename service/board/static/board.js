// The board follows the live stream and reloads itself when an event is committed. Without
// JavaScript the page is a plain page: reloading it shows the same thing.
(function () {
  "use strict";
  var body = document.body;
  var stream = body.getAttribute("data-stream");
  // A programme's page changes only with that programme's events.
  var program = body.getAttribute("data-program");
  var status = document.getElementById("live");
  if (!stream || !window.EventSource) {
    return;
  }
  var source = null;
  var reloading = null;

  function say(text) {
    if (status && text) {
      status.textContent = text;
    }
  }

  function reloadSoon() {
    // A decision records many events at once: one reload for all of them.
    if (reloading === null) {
      reloading = window.setTimeout(function () { window.location.reload(); }, 400);
    }
  }

  function listen() {
    source = new EventSource(stream);
    source.onopen = function () { say(body.getAttribute("data-live-on")); };
    source.onerror = function () {
      // The browser reconnects by itself (sending Last-Event-ID); say so meanwhile.
      say(body.getAttribute("data-live-off"));
    };
    source.onmessage = function (message) {
      if (program !== null) {
        try {
          if (JSON.parse(message.data).program !== program) {
            return;
          }
        } catch (error) {
          // Not an event as the feed has them: reload, to be safe.
        }
      }
      reloadSoon();
    };
  }

  // A page kept in the back/forward cache must not keep its stream open: browsers allow six
  // connections per host, and six such pages would stall the seventh.
  window.addEventListener("pagehide", function () {
    if (source !== null) {
      source.close();
      source = null;
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      // Back from the cache: what it shows may be stale; the stream resumes from the page's
      // own cursor, so anything recorded meanwhile reloads it at once.
      listen();
    }
  });
  listen();
})();
