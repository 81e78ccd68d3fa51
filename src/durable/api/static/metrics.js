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
      if (count) cell.append(el("span", { className: "status " + status, title: status }, status.slice(0, 4) + " " + count), " ");
    }
    if (!cell.childNodes.length) cell.append(el("span", { className: "muted" }, "none"));
    return cell;
  }

  function render(metrics) {
    const queue = metrics.queue || {};
    const dead = metrics.dead_letter || {};
    const workers = metrics.workers || {};
    const limit = workers.limit == null ? "no limit" : "of " + workers.limit;
    const used = workers.limit ? Math.min(1, (workers.in_use || 0) / workers.limit) : 0;
    const box = el("div", {});
    box.append(
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
    );
    const table = el(
      "table",
      { className: "metrics-tasks" },
      el(
        "thead",
        {},
        el("tr", {}, ...["task", "runs by status", "last hour", "retry rate", "p50 / p95"].map((h) => el("th", {}, h))),
      ),
    );
    const body = el("tbody", {});
    for (const task of metrics.tasks || []) {
      const hour = task.last_hour || {};
      body.append(
        el(
          "tr",
          { dataset: { task: task.task_id } },
          el("td", { className: "ellipsis", title: task.task_id }, task.task_id),
          statusCounts(task.by_status),
          el("td", { title: "started / completed / failed in the last hour" }, (hour.started || 0) + " / " + (hour.completed || 0) + " / " + (hour.failed || 0)),
          el("td", { className: "num" }, percent(hour.retry_rate)),
          el("td", {}, secs(hour.p50_seconds) + " / " + secs(hour.p95_seconds)),
        ),
      );
    }
    if (!body.children.length) body.append(el("tr", {}, el("td", { colSpan: 5, className: "muted" }, "No runs yet.")));
    table.append(body);
    box.append(
      el("h3", {}, "Per task"),
      el("div", { className: "muted small" }, "last hour: started / completed / failed; p50/p95: run duration"),
      table,
      el("p", { className: "muted small" }, "as of " + D.time(metrics.generated_at) + " UTC · queue " + (queue.name || "?")),
    );
    $("metrics").replaceChildren(box);
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
