// The queues panel on "/": GET /queues (each queue a task declares: its limits, its tasks,
// slots in use and runs waiting), re-read with the runs list. A click on a queue opens its
// concurrency keys (GET /queues/{name}), re-read with it until closed. The panel is hidden
// while no task declares a queue.
"use strict";

(function () {
  const { $, el } = D;
  let opened = null; // the queue whose keys are shown

  const yesNo = (value) => (value ? "yes" : "no");
  const none = (value, text) => (value == null ? el("span", { className: "muted" }, "–") : text);

  // A period in whole hours or minutes when it is one ("1 min"), else as D.seconds says it.
  function period(seconds) {
    if (seconds >= 3600 && seconds % 3600 === 0) return seconds / 3600 + " h";
    if (seconds >= 60 && seconds % 60 === 0) return seconds / 60 + " min";
    return D.seconds(seconds);
  }

  function rate(limit) {
    return limit ? limit.limit + " / " + period(limit.period_seconds) : null;
  }

  // "2 / 5" slots in use with a meter; a queue without a concurrency limit has no slots.
  function slots(queue) {
    if (queue.concurrency == null) return el("td", { className: "muted", dataset: { cell: "slots" } }, "no limit");
    const used = Math.min(1, queue.running / queue.concurrency);
    return el(
      "td",
      { dataset: { cell: "slots" }, title: "slots in use of the concurrency, summed over the keys" + (queue.keys_capped ? " (keys capped)" : "") },
      el("span", { className: "slot-count" }, queue.running + " / " + queue.concurrency),
      el("div", { className: "meter" }, el("span", { style: "width:" + Math.round(used * 100) + "%" })),
    );
  }

  function queueRow(queue) {
    const tr = el(
      "tr",
      { className: "queue-row" + (queue.name === opened ? " open" : ""), dataset: { queue: queue.name }, title: "show its concurrency keys" },
      el("td", { className: "ellipsis" }, el("button", { type: "button", className: "linkish", "aria-expanded": String(queue.name === opened) }, queue.name)),
      el("td", { className: "num", dataset: { cell: "concurrency" } }, none(queue.concurrency, queue.concurrency)),
      el("td", { dataset: { cell: "release" } }, none(queue.concurrency, yesNo(queue.release_on_wait))), // no slots: nothing to release
      el("td", { dataset: { cell: "rate" } }, none(queue.rate_limit, rate(queue.rate_limit))),
      el("td", { className: "num", dataset: { cell: "max_size" } }, none(queue.max_size, queue.max_size)),
      el("td", { dataset: { cell: "debounce" } }, none(queue.debounce_seconds, queue.debounce_seconds == null ? "" : period(queue.debounce_seconds))),
      el("td", { className: "ellipsis", dataset: { cell: "tasks" }, title: queue.tasks.join(", ") }, queue.tasks.join(", ")),
      slots(queue),
      el("td", { className: "num" + (queue.waiting > 0 ? " busy" : ""), dataset: { cell: "waiting" } }, queue.waiting + (queue.keys_capped ? "+" : "")),
    );
    return tr;
  }

  function keysRow(name, heads, detail) {
    const cell = el("td", { colSpan: heads.length, className: "queue-keys" });
    if (detail instanceof Error) cell.append(el("span", { className: "field-error" }, "Keys of " + name + ": " + detail.message));
    else if (!detail) cell.append(el("span", { className: "muted" }, "Loading keys…"));
    else if (!(detail.keys || []).length) cell.append(el("span", { className: "muted" }, detail.concurrency == null ? "No concurrency limit: no slots are kept per key." : "No run holds or waits for a slot."));
    else {
      const rows = detail.keys.map((key) =>
        el(
          "tr",
          { dataset: { key: key.key == null ? "" : key.key } },
          el("td", { className: "ellipsis", title: key.key == null ? "runs triggered without a key" : key.key }, key.key == null ? el("span", { className: "muted" }, "(no key)") : el("code", {}, key.key)),
          el("td", { className: "num" }, key.running + " / " + detail.concurrency),
          el("td", { className: "num" }, key.waiting),
        ),
      );
      cell.append(
        el(
          "table",
          { className: "keys" },
          el("thead", {}, el("tr", {}, el("th", {}, "concurrency key"), el("th", { className: "num" }, "slots in use"), el("th", { className: "num" }, "waiting"))),
          el("tbody", {}, ...rows),
        ),
      );
      if (detail.keys_capped) cell.append(el("p", { className: "muted small" }, "More keys than were read: the list is cut."));
    }
    return el("tr", { className: "keys-row", dataset: { keysOf: name } }, cell);
  }

  const NUMERIC = new Set(["concurrency", "max size", "waiting"]);
  const HEADS = ["queue", "concurrency", "release on wait", "rate limit", "max size", "debounce", "tasks", "slots in use", "waiting"];

  function render(queues, detail) {
    // No task declares a queue: the panel is not shown (nothing holds a run back).
    $("queues-panel").hidden = !queues.length;
    if (!queues.length) {
      $("queues").replaceChildren(el("p", { className: "muted" }, "No task declares a queue (durable.Queue)."));
      return;
    }
    const body = el("tbody", {});
    for (const queue of queues) {
      body.append(queueRow(queue));
      if (queue.name === opened) body.append(keysRow(queue.name, HEADS, detail));
    }
    const table = el("table", { className: "queues" }, el("thead", {}, el("tr", {}, ...HEADS.map((head) => el("th", { className: NUMERIC.has(head) ? "num" : "" }, head)))), body);
    $("queues").replaceChildren(table);
  }

  let last = [];
  let sent = 0;
  async function refresh() {
    const mine = ++sent;
    try {
      const name = opened;
      const [list, detail] = await Promise.all([
        D.api("queues"),
        name ? D.api("queues/" + encodeURIComponent(name)).catch((error) => error) : null,
      ]);
      if (mine !== sent) return;
      last = list.queues || [];
      if (name && !last.some((queue) => queue.name === name)) opened = null;
      render(last, detail);
    } catch (error) {
      if (mine !== sent) return;
      // An API without GET /queues (an older deployment) has no queues to show.
      $("queues-panel").hidden = error.status === 404;
      $("queues").replaceChildren(el("p", { className: "muted" }, "Queues failed: " + error.message));
    }
  }

  function toggle(name) {
    opened = opened === name ? null : name;
    render(last, null);
    refresh();
  }

  D.queues = { refresh };

  document.addEventListener("DOMContentLoaded", () => {
    $("queues").addEventListener("click", (event) => {
      const row = event.target.closest("tr.queue-row");
      if (row) toggle(row.dataset.queue);
    });
  });
})();
