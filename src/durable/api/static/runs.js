// The runs list at "/": summaries from GET /runs, filtered and paged on the server.
// Filters apply when submitted; a refresh re-reads the page shown with the filters applied,
// updating rows in place, so it never touches what the user is typing or has selected.
"use strict";

(function () {
  const { $, el, setText } = D;
  const applied = new URLSearchParams(); // the filters of the page shown
  let cursors = [null]; // cursors[i]: the cursor of page i (null: the newest runs)
  let nextCursor = null;
  let loading = false;

  // "2026-11-30T11:00:05" from a datetime-local input, read as UTC → an ISO instant.
  function instant(value) {
    if (!value) return null;
    const date = new Date(value + (value.length === 16 ? ":00" : "") + "Z");
    return isNaN(date) ? null : date.toISOString();
  }

  function readFilters() {
    for (const key of [...applied.keys()]) applied.delete(key);
    const task = $("filter-task").value.trim();
    if (task) applied.set("task_id", task);
    if ($("filter-status").value) applied.set("status", $("filter-status").value);
    const after = instant($("filter-after").value);
    const before = instant($("filter-before").value);
    if (after) applied.set("created_after", after);
    if (before) applied.set("created_before", before);
  }

  // What the last column says: what a live run waits for, or how a finished one ended.
  function info(run) {
    if (D.TERMINAL.has(run.status)) {
      const took = run.started_at && run.finished_at ? D.between(run.started_at, run.finished_at) : null;
      const error = run.error ? run.error.type + ": " + run.error.message : "";
      return [error || "finished " + D.clock(run.finished_at), took != null ? " (" + D.seconds(took) + ")" : ""].join("");
    }
    return D.describeWait(run);
  }

  function row(run) {
    const tr = el("tr", { dataset: { runId: run.run_id } });
    const link = el("a", { href: D.runUrl(run.run_id), dataset: { nav: "" }, className: "run-link" });
    tr.append(
      el("td", { className: "ellipsis" }, link),
      el("td", { className: "ellipsis" }),
      el("td", {}, el("span", { className: "status" })),
      el("td", { className: "num" }),
      el("td", { className: "created" }),
      el("td", { className: "info" }),
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a") || String(window.getSelection())) return;
      D.navigate(D.runUrl(run.run_id));
    });
    return tr;
  }

  function fill(tr, run) {
    const [id, task, status, attempts, created, more] = tr.children;
    setText(id.firstChild, run.run_id);
    id.title = run.run_id;
    setText(task, run.task_id);
    task.title = run.task_id;
    const badge = status.firstChild;
    if (badge.textContent !== run.status) {
      badge.className = "status " + run.status;
      badge.textContent = run.status;
    }
    setText(attempts, run.attempts);
    setText(created, D.time(run.created_at).slice(5));
    created.title = D.time(run.created_at) + " UTC";
    const text = info(run);
    setText(more, text);
    more.title = text;
    tr.classList.toggle("failed", Boolean(run.error));
  }

  // Each load supersedes the ones before it: an answer that comes back after a newer
  // request was sent is dropped. A refresh is skipped while a load is on its way.
  let sent = 0;
  async function load(isRefresh) {
    if (isRefresh && loading) return;
    const mine = ++sent;
    loading = true;
    if (!isRefresh) {
      // Until this page is in, the pager's cursors are another page's: no paging meanwhile.
      nextCursor = null;
      $("next").disabled = $("prev").disabled = true;
    }
    const params = new URLSearchParams(applied);
    params.set("limit", $("page-size").value);
    const cursor = cursors[cursors.length - 1];
    if (cursor) params.set("cursor", cursor);
    try {
      const page = await D.api("runs?" + params.toString());
      if (mine !== sent) return;
      const tbody = $("runs");
      const existing = new Map([...tbody.children].map((tr) => [tr.dataset.runId, tr]));
      page.runs.forEach((run, index) => {
        const tr = existing.get(run.run_id) || row(run);
        existing.delete(run.run_id);
        fill(tr, run);
        if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
      });
      for (const stale of existing.values()) stale.remove();
      nextCursor = page.next_cursor;
      $("runs-empty").hidden = page.runs.length > 0;
      $("next").disabled = !nextCursor;
      $("prev").disabled = cursors.length <= 1;
      setText($("page-info"), "page " + cursors.length + " \u00b7 " + page.runs.length + " runs");
    } catch (error) {
      if (cursors.length > 1 && error.code === "invalid_cursor") cursors = [null];
      throw error;
    } finally {
      if (mine === sent) loading = false;
    }
  }

  function show(report) {
    return load(!report).catch((error) => {
      if (report) D.failed("Listing runs", error);
      else setText($("page-info"), "refresh failed: " + error.message);
    });
  }

  D.runs = {
    // Called when "/" is shown, and every few seconds while it is (live refresh).
    show: () => show(true),
    refresh: () => show(false),
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      readFilters();
      cursors = [null];
      show(true);
    });
    $("filter-clear").addEventListener("click", () => {
      $("filters").reset();
      readFilters();
      cursors = [null];
      show(true);
    });
    $("page-size").addEventListener("change", () => {
      cursors = [null];
      show(true);
    });
    $("next").addEventListener("click", () => {
      if (!nextCursor) return;
      cursors.push(nextCursor);
      show(true);
    });
    $("prev").addEventListener("click", () => {
      if (cursors.length > 1) cursors.pop();
      show(true);
    });
  });
})();
