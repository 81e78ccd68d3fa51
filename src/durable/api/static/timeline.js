// The run page's timeline: GET /runs/{id}/timeline drawn as bars on a time axis.
//
//   ┌ label ─────┬ lane (time →) ───────────────────────────────────────────┐
//   │            │ [ task attempt 1 band ][ task attempt 2 band .......... ] │
//   │ step fetch │ ▮                                                        │
//   │ step charge│   ▮▮ ─backoff 1 s─ ▮▮ ──backoff 2 s── ▮▮                 │
//   │ sleep nap  │                                         ░░░░░░ timer     │
//   └────────────┴──────────────────────────────────────────────────────────┘
//
// Bars are positioned in percent of the lane, so the drawing follows the page's width.
// Selecting a bar (a button; child runs are links) shows its details below the drawing.
// Audit entries (`actions`: retry, rerun, fork, resume, cancel) are markers on their own row.
"use strict";

(function () {
  const { el } = D;
  let selected = null; // {op: "1.3", attempt: 2 | null} or {band: 1}
  let shownKey = null; // what the details panel shows, to leave it alone when unchanged
  let last = null; // the last timeline drawn

  const KIND_LABELS = { wait_for_event: "event", compensation: "undo" };
  const NICE = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

  function domain(timeline) {
    const starts = [];
    const ends = [];
    const add = (from, until) => {
      if (from) starts.push(D.ms(from));
      if (until) ends.push(D.ms(until));
    };
    add(timeline.started_at, timeline.finished_at);
    for (const attempt of timeline.attempts || []) add(attempt.started_at, attempt.ended_at);
    for (const action of timeline.actions || []) add(null, action.at);
    for (const op of timeline.operations || []) {
      add(op.started_at, op.ended_at);
      for (const attempt of op.attempts || []) add(attempt.started_at, attempt.ended_at);
    }
    const valid = starts.filter((value) => !isNaN(value));
    if (!valid.length) return null;
    const from = Math.min(...valid);
    let until = Math.max(from, ...ends.filter((value) => !isNaN(value)));
    if (timeline.live || !timeline.finished_at) until = Math.max(until, D.ms(timeline.now) || Date.now());
    until = Math.max(until, from + 1000);
    const pad = (until - from) * 0.02;
    return { from: from - pad, until: until + pad, origin: from };
  }

  function place(node, scale, from, until) {
    const start = Math.max(scale.from, D.ms(from));
    const end = Math.min(scale.until, isNaN(D.ms(until)) ? scale.now : D.ms(until));
    const span = scale.until - scale.from;
    node.style.left = ((start - scale.from) / span) * 100 + "%";
    node.style.width = (Math.max(0, end - start) / span) * 100 + "%";
    return node;
  }

  function axis(scale) {
    const span = (scale.until - scale.from) / 1000;
    const step = NICE.find((value) => span / value <= 7) || 86400;
    const ticks = el("div", { className: "tl-axis" });
    for (let index = 0; index * step <= (scale.until - scale.origin) / 1000; index++) {
      const at = scale.origin + index * step * 1000;
      const left = ((at - scale.from) / (scale.until - scale.from)) * 100;
      const side = left > 88 ? "tl-tick end" : "tl-tick"; // the last labels end at their tick
      ticks.append(el("span", { className: side, style: "left:" + left + "%" }, index ? "+" + D.seconds(index * step) : D.clock(new Date(at).toISOString())));
    }
    return ticks;
  }

  function bar(className, scale, from, until, text, data, title) {
    const node = el("button", { type: "button", className: "tl-bar " + className, title: title || text, dataset: data }, el("span", {}, text));
    return place(node, scale, from, until);
  }

  function waitText(op) {
    const ended = op.ended_by ? " · ended by " + op.ended_by : op.wake_at ? " · until " + D.time(op.wake_at) : " · waiting";
    return op.kind.replace(/_/g, " ") + " " + op.name + ended;
  }

  function lane(op, scale, runId) {
    const lane = el("div", { className: "tl-lane" });
    const data = { opId: op.id };
    if (op.kind === "step" && (op.attempts || []).length) {
      for (const attempt of op.attempts) {
        const from = attempt.started_at || attempt.ended_at;
        const text = "#" + attempt.attempt;
        const title = op.name + " attempt " + attempt.attempt + ": " + attempt.outcome + (attempt.error ? " (" + attempt.error.type + ")" : "");
        lane.append(bar("tl-attempt " + attempt.outcome, scale, from, attempt.ended_at, text, Object.assign({ attempt: attempt.attempt }, data), title));
      }
      for (const gap of op.gaps || []) {
        const node = place(el("div", { className: "tl-gap", title: gap.label }, el("span", { className: "tl-gap-label" }, gap.label)), scale, gap.from, gap.until);
        node.dataset.afterAttempt = gap.after_attempt;
        lane.append(node);
      }
    } else if (op.child_run_id && (op.kind === "invoke" || op.kind === "trigger")) {
      const link = el("a", { className: "tl-bar child " + op.status, href: D.runUrl(op.child_run_id), dataset: Object.assign({ nav: "", childRunId: op.child_run_id }, data), title: "child run " + op.child_run_id }, el("span", {}, op.kind + " → " + op.child_run_id));
      lane.append(place(link, scale, op.started_at, op.ended_at));
    } else if (op.kind === "batch") {
      const batch = op.batch || { total: 0, completed: 0, failed: 0 };
      const text = "batch " + op.name + ": " + batch.completed + "/" + batch.total + " done" + (batch.failed ? ", " + batch.failed + " failed" : "");
      const node = bar("batch " + op.status, scale, op.started_at, op.ended_at, text, data);
      const share = batch.total ? (batch.completed + batch.failed) / batch.total : 0;
      node.prepend(el("i", { className: "tl-progress", style: "width:" + Math.round(share * 100) + "%" }));
      lane.append(node);
    } else if (op.kind === "sleep" || op.kind === "wait_for_event" || op.kind === "callback") {
      lane.append(bar("wait " + op.status, scale, op.started_at, op.ended_at, waitText(op), data));
    } else if (op.kind === "value" || op.kind === "patch") {
      lane.append(bar("mark " + op.kind, scale, op.started_at, op.started_at, op.kind + " " + op.name, data));
    } else {
      lane.append(bar(op.kind + " " + op.status, scale, op.started_at, op.ended_at, op.kind + " " + op.name, data));
    }
    lane.dataset.runId = runId;
    return lane;
  }

  function draw(container, timeline) {
    last = timeline;
    const range = domain(timeline);
    if (!range) {
      container.replaceChildren(el("p", { className: "muted" }, timeline.live ? "Not started yet." : "Nothing ran."));
      return;
    }
    const now = D.ms(timeline.now) || Date.now();
    const scale = { from: range.from, until: range.until, now: Math.min(now, range.until), origin: range.origin };
    const body = el("div", { className: "tl-body" });
    const shades = el("div", { className: "tl-shades" });
    const bands = el("div", { className: "tl-lane" });
    for (const attempt of timeline.attempts || []) {
      shades.append(place(el("div", { className: "tl-shade " + attempt.outcome }), scale, attempt.started_at, attempt.ended_at));
      const text = "attempt " + attempt.task_attempt + " · " + attempt.outcome.replace(/_/g, " ");
      const title = "task attempt " + attempt.task_attempt + ": " + attempt.outcome + (attempt.error ? " (" + attempt.error.type + ": " + attempt.error.message + ")" : "");
      bands.append(bar("tl-band " + attempt.outcome, scale, attempt.started_at, attempt.ended_at, text, { band: attempt.task_attempt }, title));
    }
    body.append(shades, el("div", { className: "tl-row tl-attempts" }, el("div", { className: "tl-label muted" }, "task attempts"), bands));
    for (const op of timeline.operations || []) {
      const row = el("div", { className: "tl-row kind-" + op.kind, dataset: { opId: op.id } });
      row.append(el("div", { className: "tl-label", title: op.kind + " " + op.name + " (" + op.id + ")" }, el("span", { className: "tl-kind" }, KIND_LABELS[op.kind] || op.kind), " ", op.name), lane(op, scale, timeline.run_id));
      body.append(row);
    }
    if ((timeline.actions || []).length) {
      // Audit entries: who did what to the run (retry, rerun, fork, resume, cancel), when.
      const marks = el("div", { className: "tl-lane" });
      for (const action of timeline.actions) {
        const title = action.name + " by " + (action.by || "unknown") + " at " + D.time(action.at);
        marks.append(bar("tl-action mark", scale, action.at, action.at, action.name, { actionSeq: action.seq }, title));
        shades.append(place(el("div", { className: "tl-action-line" }), scale, action.at, action.at));
      }
      body.append(el("div", { className: "tl-row tl-actions" }, el("div", { className: "tl-label muted" }, "actions"), marks));
    }
    if (!(timeline.operations || []).length) body.append(el("div", { className: "tl-row" }, el("div", { className: "tl-label muted" }, "no operations yet"), el("div", { className: "tl-lane" })));
    const head = el("div", { className: "tl-row tl-head" }, el("div", { className: "tl-label muted small" }, "UTC " + D.time(new Date(scale.origin).toISOString()).slice(0, 10)), el("div", { className: "tl-lane" }, axis(scale)));
    container.replaceChildren(el("div", { className: "tl" }, head, body));
    mark(container);
  }

  function mark(container) {
    for (const node of container.querySelectorAll(".selected")) node.classList.remove("selected");
    if (!selected) return;
    const query = selected.action != null ? '[data-action-seq="' + selected.action + '"]' : selected.band != null ? '[data-band="' + selected.band + '"]' : '.tl-bar[data-op-id="' + CSS.escape(selected.op) + '"]' + (selected.attempt != null ? '[data-attempt="' + selected.attempt + '"]' : "");
    for (const node of container.querySelectorAll(query)) node.classList.add("selected");
  }

  // -- the details of what is selected ---------------------------------------------------

  function errorBox(error) {
    if (!error) return null;
    const box = el("div", { className: "error-box" }, el("strong", {}, error.type + ": "), el("span", {}, error.message));
    if (error.traceback) box.append(el("details", { className: "traceback" }, el("summary", {}, "traceback"), el("pre", {}, error.traceback)));
    return box;
  }

  function facts(pairs) {
    const list = el("dl", { className: "facts" });
    for (const [name, value] of pairs) {
      if (value == null || value === "") continue;
      list.append(el("dt", {}, name), el("dd", {}, value));
    }
    return list;
  }

  function took(from, until) {
    return from && until ? D.seconds(D.between(from, until)) : until ? "" : "still going";
  }

  function opDetails(op, attemptNumber, timeline) {
    const attempt = (op.attempts || []).find((item) => item.attempt === attemptNumber) || null;
    const stepId = op.step_id || (op.kind === "step" ? timeline.run_id + ":" + op.name + ":" + op.position : null);
    const box = el("div", {}, el("h3", {}, op.kind.replace(/_/g, " ") + " " + op.name + (attempt ? " · step attempt " + attempt.attempt : "")));
    box.append(
      facts([
        ["id", op.id],
        ["step id", stepId],
        ["status", attempt ? attempt.outcome : op.status],
        ["task attempt", attempt ? attempt.task_attempt : op.task_attempt],
        ["step attempt", attempt ? attempt.attempt + " of " + op.attempts.length : op.attempts && op.attempts.length ? op.attempts.length + " attempt(s)" : null],
        ["started", D.time(attempt ? attempt.started_at : op.started_at)],
        ["ended", D.time(attempt ? attempt.ended_at : op.ended_at)],
        ["took", took(attempt ? attempt.started_at : op.started_at, attempt ? attempt.ended_at : op.ended_at)],
        ["ended by", attempt ? null : op.ended_by],
        ["wakes at", D.time(op.wake_at)],
        ["retry at", attempt ? D.time(attempt.retry_at) : null],
        ["checkpoints", (op.seqs || []).join(", ")],
      ]),
    );
    if (op.child_run_id) box.append(el("p", {}, "child run ", el("a", { href: D.runUrl(op.child_run_id), dataset: { nav: "" } }, op.child_run_id)));
    if (op.batch) {
      const links = (op.batch.child_run_ids || []).slice(0, 20).map((id) => el("a", { href: D.runUrl(id), dataset: { nav: "" } }, id.slice(-12)));
      box.append(el("p", {}, op.batch.completed + " of " + op.batch.total + " done, " + op.batch.failed + " failed"), el("p", { className: "links" }, ...links.flatMap((link) => [link, " "])));
    }
    // A step attempt's input (its arguments, or a note of why they were left out), above
    // what came out of it; a step's bar shows its latest attempt's.
    const input = attempt ? attempt.input : op.input;
    if (input !== null && input !== undefined) box.append(el("h4", {}, "input"), el("pre", { className: "json", dataset: { part: "input" } }, D.pretty(input)));
    const error = errorBox(attempt ? attempt.error : op.error);
    if (error) box.append(error);
    if (!attempt || attempt.outcome === "completed") {
      if (op.value !== null && op.value !== undefined) box.append(el("h4", {}, "output"), el("pre", { className: "json", dataset: { part: "output" } }, D.pretty(op.value)));
    }
    const others = (op.attempts || []).filter((item) => item !== attempt && item.error);
    if (others.length) {
      const list = el("details", {}, el("summary", {}, "errors of the other attempts"));
      for (const item of others) list.append(el("p", {}, "attempt " + item.attempt + " (task attempt " + item.task_attempt + ")"), errorBox(item.error));
      box.append(list);
    }
    return box;
  }

  function bandDetails(attempt) {
    return el(
      "div",
      {},
      el("h3", {}, "task attempt " + attempt.task_attempt),
      facts([
        ["outcome", attempt.outcome],
        ["started", D.time(attempt.started_at)],
        ["ended", D.time(attempt.ended_at)],
        ["took", took(attempt.started_at, attempt.ended_at)],
        ["retry at", D.time(attempt.retry_at)],
      ]),
      errorBox(attempt.error),
    );
  }

  function actionDetails(action) {
    const shown = Object.entries(action.details || {}).map(([name, value]) => {
      if ((name === "run_id" || name === "original") && typeof value === "string") return [name, el("a", { href: D.runUrl(value), dataset: { nav: "" } }, value)];
      return [name, typeof value === "object" ? JSON.stringify(value) : String(value)];
    });
    return el("div", { className: "action-details" }, el("h3", {}, action.name), facts([["by", action.by || "unknown"], ["at", D.time(action.at)], ["task attempt", action.task_attempt], ["log entry", action.seq], ...shown]));
  }

  function details(panel) {
    if (!selected || !last) return;
    let node = null;
    let key = null;
    if (selected.action != null) {
      const action = (last.actions || []).find((item) => item.seq === selected.action);
      if (action) [key, node] = [JSON.stringify(action), () => actionDetails(action)];
    } else if (selected.band != null) {
      const attempt = (last.attempts || []).find((item) => item.task_attempt === selected.band);
      if (attempt) [key, node] = [JSON.stringify(attempt), () => bandDetails(attempt)];
    } else {
      const op = (last.operations || []).find((item) => item.id === selected.op);
      if (op) [key, node] = [JSON.stringify([op, selected.attempt]), () => opDetails(op, selected.attempt, last)];
    }
    if (!node || key === shownKey) return; // unchanged: open <details> stay open
    shownKey = key;
    panel.replaceChildren(node());
  }

  function cut() {
    if (!selected || selected.op == null || !last) return null;
    const op = (last.operations || []).find((item) => item.id === selected.op);
    const seqs = op ? op.seqs || [] : [];
    return seqs.length ? Math.min(...seqs) - 1 : null;
  }

  D.timeline = {
    draw(container, panel, timeline) {
      draw(container, timeline);
      details(panel);
    },
    reset(panel) {
      selected = null;
      shownKey = null;
      last = null;
      panel.replaceChildren(el("p", { className: "muted" }, "Select a bar to see its details."));
    },
    // One listener for the drawing's lifetime: clicks on bars and bands select them.
    attach(container, panel) {
      container.addEventListener("click", (event) => {
        const target = event.target.closest(".tl-bar, .tl-label");
        if (!target || target.tagName === "A") return;
        if (target.dataset.actionSeq) selected = { action: Number(target.dataset.actionSeq) };
        else if (target.dataset.band) selected = { band: Number(target.dataset.band) };
        else {
          const opId = target.dataset.opId || target.closest(".tl-row").dataset.opId;
          if (!opId) return;
          selected = { op: opId, attempt: target.dataset.attempt ? Number(target.dataset.attempt) : null };
        }
        shownKey = null;
        mark(container);
        details(panel);
        container.dispatchEvent(new CustomEvent("tl-select", { detail: { cut: cut() } }));
      });
    },
    // Where a fork "from here" cuts: before the selected operation's first log entry (the
    // entries copied), null when no operation is selected.
    cut,
  };
})();
