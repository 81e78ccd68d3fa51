// The runs list at "/": summaries from GET /runs, filtered and paged on the server, and
// bulk jobs (POST /bulk) on the applied filter. Filters apply when submitted; a refresh re-reads the page shown with the filters applied,
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
    const tag = $("filter-tag").value.trim();
    if (tag) applied.set("tag", tag);
    const finishedAfter = instant($("filter-finished-after").value);
    const finishedBefore = instant($("filter-finished-before").value);
    if (finishedAfter) applied.set("finished_after", finishedAfter);
    if (finishedBefore) applied.set("finished_before", finishedBefore);
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
    const tags = (run.tags || []).join(" ");
    if (more.dataset.shown !== tags + "\n" + text) {
      more.dataset.shown = tags + "\n" + text;
      more.replaceChildren(...(run.tags || []).map((tag) => el("span", { className: "tag" }, tag)), text);
    }
    more.title = (tags ? "tags: " + tags + "\n" : "") + text;
    tr.classList.toggle("failed", Boolean(run.error));
    tr.classList.toggle("held", D.isHeld(run));
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

  // -- bulk jobs: POST /bulk with the applied filter, then GET /bulk/{id} until it ends ----

  const BULK_POLL_MS = 1000;
  const BULK_FILTERS = ["task_id", "status", "created_after", "created_before", "tag"];
  let bulkJob = null; // the job id followed

  function bulkFilter() {
    const filter = {};
    for (const key of BULK_FILTERS) if (applied.has(key)) filter[key] = applied.get(key);
    return filter;
  }

  function describeFilter(filter) {
    const parts = Object.entries(filter).map(([key, value]) => key + "=" + value);
    return parts.length ? parts.join(", ") : "no filter: EVERY run";
  }

  function showJob(job) {
    const box = $("bulk-job");
    box.hidden = false;
    box.dataset.state = job.state;
    box.className = "bulk-job " + job.state;
    const counts = ["matched", "acted", "skipped", "errors"].map((key) => el("span", { className: "count", dataset: { count: key } }, key + " ", el("strong", {}, job[key])));
    const close = el("button", { type: "button", className: "close", title: "Dismiss" }, "\u00d7");
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => {
      bulkJob = null;
      box.hidden = true;
    });
    const lines = [job.reason, ...(job.error_messages || [])].filter(Boolean);
    box.replaceChildren(
      el("div", { className: "bulk-head" }, el("strong", {}, "Bulk " + job.action), " ", el("code", {}, job.job_id), " ", el("span", { className: "state" }, job.state), close),
      el("div", { className: "counts" }, ...counts),
      ...lines.map((text) => el("div", { className: "field-error" }, text)),
    );
  }

  async function followJob(jobId) {
    bulkJob = jobId;
    for (;;) {
      let job;
      try {
        job = await D.api("bulk/" + encodeURIComponent(jobId));
      } catch (error) {
        if (bulkJob === jobId) D.failed("Bulk job " + jobId, error);
        return;
      }
      if (bulkJob !== jobId) return;
      showJob(job);
      D.runs.refresh();
      if (job.done) {
        D.info("Bulk " + job.action + " " + job.state + ": " + job.acted + " of " + job.matched + " matching runs acted on.");
        return show(true);
      }
      await new Promise((resolve) => setTimeout(resolve, BULK_POLL_MS));
    }
  }

  async function startBulk(action) {
    if (applied.has("finished_after") || applied.has("finished_before")) {
      D.error("Bulk jobs do not filter by finish time: clear the finished-time filters first.");
      return;
    }
    const filter = bulkFilter();
    const every = Object.keys(filter).length === 0;
    const question = every
      ? "No filter is applied: " + action + " EVERY run there is? This cannot be undone."
      : action[0].toUpperCase() + action.slice(1) + " every run matching " + describeFilter(filter) + " (on all pages)?";
    if (!D.confirm(question)) return;
    if (every) filter.all = true;
    try {
      const job = await D.api("bulk", { method: "POST", json: { action, filter } });
      showJob(job);
      followJob(job.job_id);
    } catch (error) {
      D.failed("Bulk " + action, error);
    }
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
    $("bulk").addEventListener("submit", (event) => {
      event.preventDefault();
      const button = event.submitter;
      if (button && button.dataset.action) startBulk(button.dataset.action);
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
