// The queue and workers panel on "/": GET /metrics, re-read with the runs list.
"use strict";

(function () {
  const { $, el } = D;
  const STATUSES = ["QUEUED", "RUNNING", "WAITING", "RETRYING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

  function figure(name, value, note, warn) {
    return el(
      "div",
      { className: "figure" + (warn ? " warn" : ""), dataset: { figure: name } },
      el("span", { className: "value" }, value == null ? "–" : value),
      el("span", { className: "label" }, note),
    );
  }

  const percent = (rate) => (rate == null ? "–" : Math.round(rate * 100) + " %");
  const secs = (value) => (value == null ? "–" : D.seconds(value));

  function statusCounts(byStatus) {
    const cell = el("td", { className: "counts" });
    for (const status of STATUSES) {
      const count = (byStatus || {})[status];
      if (count) cell.append(el("span", { className: "status " + status, title: status }, status.toLowerCase().replace("_", " ") + " " + count), " ");
    }
    if (!cell.childNodes.length) cell.append(el("span", { className: "muted" }, "none"));
    return cell;
  }

  // A task is shown when it has runs in any status or started one in the last hour.
  function active(task) {
    const counts = Object.values(task.by_status || {}).some((count) => count > 0);
    return counts || ((task.last_hour || {}).started || 0) > 0;
  }

  function taskRow(task) {
    const hour = task.last_hour || {};
    return el(
      "tr",
      { dataset: { task: task.task_id } },
      el("td", { className: "ellipsis", title: task.task_id }, task.task_id),
      statusCounts(task.by_status),
      el("td", { className: "num" }, hour.started || 0),
      el("td", { className: "num" }, hour.completed || 0),
      el("td", { className: "num" }, hour.failed || 0),
      el("td", { className: "num", title: "step and attempt retries per run started" }, percent(hour.retry_rate)),
      el("td", { className: "num" }, secs(hour.p50_seconds)),
      el("td", { className: "num" }, secs(hour.p95_seconds)),
    );
  }

  function render(metrics) {
    const queue = metrics.queue || {};
    const dead = metrics.dead_letter || {};
    const workers = metrics.workers || {};
    const limit = workers.limit == null ? "no limit" : "of " + workers.limit;
    const used = workers.limit ? Math.min(1, (workers.in_use || 0) / workers.limit) : 0;
    const left = el(
      "div",
      {},
      el(
        "div",
        { className: "figures" },
        figure("depth", queue.depth, "queued", queue.depth > 0),
        figure("in_flight", queue.in_flight, "in flight"),
        figure("delayed", queue.delayed, "delayed"),
        figure("dead_letter", dead.depth, "dead letters", dead.depth > 0),
        figure("workers", workers.in_use, "workers busy, " + limit, workers.limit && workers.in_use >= workers.limit),
      ),
      el("div", { className: "meter", title: "workers in use" }, el("span", { style: "width:" + Math.round(used * 100) + "%" })),
      el("p", { className: "muted small" }, "queue " + (queue.name || "?") + " · dead letters " + (dead.name || "?") + " · as of " + D.clock(metrics.generated_at) + " UTC"),
    );
    const heads = ["task", "runs by status", "started", "done", "failed", "retries", "p50", "p95"];
    const table = el("table", { className: "metrics-tasks" }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))));
    const tasks = metrics.tasks || [];
    const shown = tasks.filter(active);
    const body = el("tbody", {}, ...shown.map(taskRow));
    const idle = tasks.length - shown.length;
    if (!shown.length) body.append(el("tr", {}, el("td", { colSpan: heads.length, className: "muted" }, "No runs yet.")));
    table.append(body);
    const right = el(
      "div",
      {},
      el("div", { className: "muted small" }, "per task; started / done / failed, retries per run, p50 / p95 run time: the last hour" + (idle ? " · " + idle + " idle task(s) not shown" : "")),
      el("div", { className: "metrics-tasks-box" }, table),
    );
    $("metrics").replaceChildren(el("div", { className: "metrics-grid" }, left, right));
  }

  async function refresh() {
    try {
      render(await D.api("metrics"));
    } catch (error) {
      const note = error.status === 404 ? "GET /metrics is not served by this API." : "Metrics failed: " + error.message;
      $("metrics").replaceChildren(el("p", { className: "muted" }, note));
    }
  }

  D.metrics = { refresh };
})();
