// The page's two views and the way between them: "/" (runs, metrics, queues, trigger form) and
// "/runs/{id}" (one run). Links marked data-nav change the view with history.pushState,
// so each run has a real URL, the back button works and a deep link loads the run.
"use strict";

(function () {
  const { $ } = D;
  const LIST_REFRESH_MS = 3000;
  let listTimer = null;

  // The run id in the path after the page's base ("" on the runs list).
  function route() {
    const base = new URL(document.baseURI).pathname;
    const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "";
    const match = /^runs\/([^/]+)\/?$/.exec(path);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function refreshList() {
    if ($("live").checked) {
      D.runs.refresh();
      D.metrics.refresh();
      D.queues.refresh();
    }
  }

  function render() {
    const runId = route();
    $("list-view").hidden = Boolean(runId);
    $("run-view").hidden = !runId;
    clearInterval(listTimer);
    if (runId) {
      D.run.show(runId);
    } else {
      D.run.stop();
      document.title = "durable: runs";
      D.runs.show();
      D.metrics.refresh();
      D.queues.refresh();
      listTimer = setInterval(refreshList, LIST_REFRESH_MS);
    }
  }

  D.navigate = function (href) {
    const url = new URL(href, document.baseURI);
    if (url.href !== location.href) history.pushState(null, "", url.href);
    render();
    window.scrollTo(0, 0);
  };

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // a new tab
    event.preventDefault();
    D.navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", render);

  document.addEventListener("DOMContentLoaded", () => {
    D.trigger.load();
    render();
  });
})();
