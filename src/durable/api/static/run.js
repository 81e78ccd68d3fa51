// The run page, /runs/{id}: the run (GET /runs/{id} as JSON), its timeline, its log lines
// (GET /runs/{id}/logs, followed with next_cursor) and its checkpoint log. While the run is
// live the timeline and the logs are polled every 1.5 s; polling stops once it is over.
// Its actions (each asked first): cancel, send an event, resume a held run, retry, rerun,
// and fork (from a step's name, a count of log entries, or the selected bar).
"use strict";

(function () {
  const { $, el, setText } = D;
  const POLL_MS = 1500;
  const RETRYABLE = new Set(["FAILED", "TIMED_OUT", "CANCELLED"]);
  const HOLD_REASONS = {
    nondeterminism: "its replay diverged from its log (non-determinism)",
    "unknown-task": "its task is not deployed (unknown task)",
    "code-version": "pinned to a code version no worker runs:",
  };
  let state = null; // {runId, run, logCursor, timer, live, generation}
  let generation = 0;

  function fact(name, value) {
    if (value == null || value === "") return [];
    return [el("dt", {}, name), el("dd", {}, value)];
  }

  function renderRun(run) {
    setText($("run-id"), run.run_id);
    const status = $("run-status");
    status.className = "status " + run.status;
    setText(status, run.status);
    document.title = run.task_id + " " + run.run_id.slice(-8) + ": " + run.status;
    const version = run.version || {};
    const parent = run.parent_run_id ? el("a", { href: D.runUrl(run.parent_run_id), dataset: { nav: "" }, id: "run-parent" }, run.parent_run_id) : null;
    const took = run.started_at && run.finished_at ? D.seconds(D.between(run.started_at, run.finished_at)) : "";
    $("run-facts").replaceChildren(
      ...fact("task", run.task_id),
      ...fact("attempts", run.attempts),
      ...fact("created", D.time(run.created_at)),
      ...fact("started", D.time(run.started_at)),
      ...fact("finished", run.finished_at ? D.time(run.finished_at) + (took ? " (" + took + ")" : "") : ""),
      ...fact("version", [version.task && "task " + version.task, version.code && "code " + version.code].filter(Boolean).join(", ") || "—"),
      ...fact("parent", parent),
      ...fact("queue", run.queue ? el("span", { id: "run-queue" }, run.queue) : null),
      ...fact("concurrency key", run.concurrency_key ? el("code", { id: "run-key" }, run.concurrency_key) : null),
      ...fact("priority", run.queue || run.priority ? el("span", { id: "run-priority" }, run.priority || 0) : null),
      // Its ttl matters only until it starts.
      ...fact("start by", run.start_by && !run.started_at ? el("span", { id: "run-start-by" }, D.time(run.start_by)) : null),
      ...fact("idempotency key", run.idempotency_key),
      ...fact("origin", originLink(run.origin)),
      ...fact("tags", (run.tags || []).length ? el("span", { id: "run-tags" }, ...run.tags.map((tag) => el("span", { className: "tag" }, tag))) : null),
      ...fact("metadata", Object.keys(run.metadata || {}).length ? el("span", { id: "run-metadata" }, Object.entries(run.metadata).map(([key, value]) => key + "=" + value).join(", ")) : null),
    );
    renderHeld(run);
    // What it waits for, and until when (the timeline's words when it has them).
    // A held run waits for a person, not an event: the banner says so instead.
    // A run held back by its queue says which and, waiting for a slot, its place in line.
    $("run-waiting").hidden = !waitingText(run);
    setText($("run-waiting"), waitingText(run));
    $("run-waiting").dataset.queuePosition = run.queue_position || "";
    // Actions that cannot apply are hidden: no cancel once over, no event unless awaited,
    // a retry only after a failure, a timeout or a cancel, a rerun once ended; a fork copies
    // the log's first entries of any run (a held one's: from before the divergence).
    $("cancel").hidden = D.TERMINAL.has(run.status);
    $("retry").hidden = !RETRYABLE.has(run.status);
    $("rerun").hidden = !D.TERMINAL.has(run.status);
    $("fork-form").hidden = false;
    const event = awaitedEvent(run);
    $("event-form").hidden = !event;
    if (event && !$("event-name").value) $("event-name").value = event;
    setText($("run-payload"), D.pretty(run.payload));
    setText($("run-result"), run.result === null && !D.TERMINAL.has(run.status) ? "(not finished)" : D.pretty(run.result));
    const error = run.error;
    const box = $("run-error");
    if (!error) box.replaceChildren();
    else if (box.dataset.shown !== JSON.stringify(error)) {
      box.replaceChildren(el("div", { className: "error-box" }, el("strong", {}, error.type + ": "), el("span", {}, error.message), error.traceback ? el("details", { className: "traceback" }, el("summary", {}, "traceback"), el("pre", {}, error.traceback)) : null));
    }
    box.dataset.shown = error ? JSON.stringify(error) : "";
  }

  function waitingText(run) {
    if (run.held) return "";
    const queued = D.describeQueued(run);
    if (queued) return "Waiting for " + queued;
    const description = state.waiting ? state.waiting.description : "";
    if (description.startsWith("waits for ")) return "Waiting for " + description.slice(10);
    if (description) return description[0].toUpperCase() + description.slice(1);
    const wait = D.describeWait(run);
    return wait ? "Waiting for " + wait : "";
  }

  // "rerun of X" / "fork of X at N", X a link to the original run.
  function originLink(origin) {
    if (!origin) return null;
    const link = el("a", { href: D.runUrl(origin.run_id), dataset: { nav: "" }, id: "run-origin" }, origin.run_id);
    const cut = origin.kind === "fork" && origin.from_step != null ? " at " + origin.from_step : "";
    return el("span", {}, origin.kind + " of ", link, cut);
  }

  // A held run: why, since when, what diverged, and the Resume button.
  function renderHeld(run) {
    const held = run.held;
    $("run-held").hidden = !held;
    if (!held) return;
    const reason = HOLD_REASONS[held.reason] || held.reason;
    const version = run.version && run.version.code ? " " + run.version.code : "";
    setText($("held-title"), "Held: " + reason + (held.reason === "code-version" ? version : ""));
    setText($("held-since"), "since " + D.time(held.since) + " UTC");
    setText($("held-message"), held.error ? held.error.type + ": " + held.error.message : "");
    $("run-held").dataset.reason = held.reason;
  }

  function awaitedEvent(run) {
    if (run.held) return null;
    const waiting = state.waiting;
    if (waiting && waiting.for && waiting.for.startsWith("event:")) return waiting.for.slice(6);
    return D.waitedEvent(run);
  }

  function renderHistory(history) {
    const list = $("history");
    const entries = history.history || [];
    if (list.children.length === entries.length && list.dataset.runId === history.run_id) return;
    list.dataset.runId = history.run_id;
    list.replaceChildren(
      ...entries.map((entry) => {
        const attempt = "task attempt " + entry.task_attempt + (entry.kind.startsWith("step_") ? " · step attempt " + entry.attempt : "");
        const item = el("li", {}, el("div", {}, entry.kind + " " + entry.name + " (" + attempt + ") at " + D.time(entry.at)));
        const shown = entry.error || entry.value;
        if (shown != null) item.append(el("pre", { className: "json" }, D.pretty(shown)));
        return item;
      }),
    );
  }

  function appendLogs(lines) {
    const box = $("logs");
    if (!lines.length) return;
    if (!box.querySelector(".log-line")) box.replaceChildren();
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    for (const line of lines) {
      const extra = line.data && Object.keys(line.data).length ? " " + JSON.stringify(line.data) : "";
      box.append(
        el(
          "div",
          { className: "log-line level-" + line.level },
          el("span", { className: "log-time" }, D.clock(line.at)),
          el("span", { className: "log-level" }, line.level),
          el(
            "span",
            { className: "log-message" },
            // `attempt` is the run's (task) attempt that logged the line, not the step's.
            line.step ? el("span", { className: "log-step", title: "step " + line.step }, line.step) : null,
            line.attempt > 1 ? el("span", { className: "log-attempt", title: "task attempt " + line.attempt }, "attempt " + line.attempt) : null,
            line.message + extra,
          ),
        ),
      );
    }
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  // One round: the run, its timeline, new log lines; then the next round if still live.
  async function poll(mine) {
    const runPath = D.runUrl(state.runId);
    try {
      const [run, timeline] = await Promise.all([
        D.api(runPath),
        D.api(runPath + "/timeline").catch((error) => (error.status === 404 && error.code !== "run_not_found" ? null : Promise.reject(error))),
      ]);
      if (mine !== generation) return;
      state.run = run;
      state.waiting = timeline ? timeline.waiting : null;
      renderRun(run);
      if (timeline) D.timeline.draw($("timeline"), $("op-details"), timeline);
      else setText($("timeline"), "GET /runs/{id}/timeline is not served by this API.");
      await followLogs(runPath, mine);
      if (mine !== generation) return;
      // Read at nearly the same time, the run and its timeline may disagree on whether it is
      // over: one more round until both say so.
      state.live = Boolean(timeline && timeline.live) || !D.TERMINAL.has(run.status);
      // The checkpoint log is read when it is open, and once the run is over.
      if (!state.live || $("history-box").open) await loadHistory(mine);
    } catch (error) {
      if (mine !== generation) return;
      if (!state.reported) D.failed("Run " + state.runId, error);
      state.reported = true;
      if (error.status === 404) state.live = false;
    }
    setText($("run-live"), state.live ? "live" : "");
    if (state.live && mine === generation) state.timer = setTimeout(() => poll(mine), POLL_MS);
  }

  async function loadHistory(mine) {
    const history = await D.api(D.runUrl(state.runId) + "/history");
    if (mine === generation) renderHistory(history);
  }

  async function followLogs(runPath, mine) {
    if (state.logs === false) return;
    try {
      for (let page = 0; page < 10; page++) {
        const answer = await D.api(runPath + "/logs" + (state.logCursor ? "?cursor=" + encodeURIComponent(state.logCursor) : ""));
        if (mine !== generation) return;
        appendLogs(answer.logs || []);
        const moved = answer.next_cursor && answer.next_cursor !== state.logCursor;
        state.logCursor = answer.next_cursor || state.logCursor;
        if (!moved || !(answer.logs || []).length) break;
      }
    } catch (error) {
      if (error.status === 404 && error.code !== "run_not_found") {
        state.logs = false;
        $("logs").replaceChildren(el("p", { className: "muted" }, "GET /runs/{id}/logs is not served by this API."));
      } else throw error;
    }
  }

  function show(runId) {
    stop();
    generation += 1;
    state = { runId, run: null, waiting: null, logCursor: null, live: true, timer: null, reported: false, logs: true };
    for (const id of ["run-id", "run-payload", "run-result", "run-live"]) setText($(id), "");
    $("run-status").className = "status";
    setText($("run-status"), "…");
    $("run-facts").replaceChildren();
    $("run-error").replaceChildren();
    $("history").replaceChildren();
    $("history").dataset.runId = "";
    $("timeline").replaceChildren(el("p", { className: "muted" }, "Loading…"));
    $("logs").replaceChildren(el("p", { className: "muted" }, "No log lines yet."));
    $("event-name").value = "";
    $("event-data").value = "";
    $("event-form").hidden = true;
    $("cancel").hidden = true;
    for (const id of ["retry", "rerun", "fork-form", "run-held", "fork-problem"]) $(id).hidden = true;
    $("fork-step").value = "";
    D.timeline.reset($("op-details"));
    poll(generation);
  }

  function stop() {
    if (state && state.timer) clearTimeout(state.timer);
    generation += 1;
  }

  // After an action: poll again now (and keep polling if the run came alive).
  function again() {
    if (state.timer) clearTimeout(state.timer);
    generation += 1;
    state.live = true;
    poll(generation);
  }

  // A repairing action, asked first: POST /runs/{id}/<verb>; the run it answers is shown
  // (a rerun's or a fork's new run: its own page).
  async function act(verb, question, json) {
    if (!D.confirm(question)) return null;
    const runId = state.runId;
    try {
      const run = await D.api(D.runUrl(runId) + "/" + verb, json === undefined ? { method: "POST" } : { method: "POST", json });
      if (run.run_id !== runId) {
        D.info(verb[0].toUpperCase() + verb.slice(1) + " of " + runId + ": ", { href: D.runUrl(run.run_id), text: run.run_id });
        D.navigate(D.runUrl(run.run_id));
      } else {
        D.info(verb[0].toUpperCase() + verb.slice(1) + ": " + runId + " is " + run.status + ".");
        again();
      }
      return run;
    } catch (error) {
      if (runId === state.runId) again();
      throw error;
    }
  }

  function showForkProblem(error) {
    const box = $("fork-problem");
    const valid = ((error.details || [])[0] || {}).valid_from_steps || [];
    box.replaceChildren(
      el("strong", {}, "Fork refused: "),
      el("span", {}, error.message),
      el("div", { className: "fork-cuts" }, "Valid cut points: ", ...(valid.length ? valid.flatMap((cut) => [el("button", { type: "button", className: "cut", dataset: { cut: cut } }, String(cut)), " "]) : ["none"])),
    );
    box.hidden = false;
  }

  D.run = { show, stop };

  document.addEventListener("DOMContentLoaded", () => {
    D.timeline.attach($("timeline"), $("op-details"));
    $("history-box").addEventListener("toggle", () => {
      if ($("history-box").open && state) loadHistory(generation).catch((error) => D.failed("Checkpoint log", error));
    });
    $("timeline").addEventListener("tl-select", (event) => {
      if (event.detail.cut != null) $("fork-step").value = String(event.detail.cut);
    });
    $("resume").addEventListener("click", () => {
      const held = state.run && state.run.held;
      const how = held && held.reason === "code-version" ? " with this API's code version" : " with the code deployed now";
      act("resume", "Resume " + state.runId + how + "?").catch((error) => D.failed("Resume", error));
    });
    $("retry").addEventListener("click", () => {
      act("retry", "Retry " + state.runId + " from its failure point (completed steps are kept)?").catch((error) => D.failed("Retry", error));
    });
    $("rerun").addEventListener("click", () => {
      act("rerun", "Run " + state.runId + "'s task again with its payload, as a new run?").catch((error) => D.failed("Rerun", error));
    });
    $("fork-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("fork-step").value.trim();
      if (!text) return;
      const fromStep = /^\d+$/.test(text) ? Number(text) : text;
      const where = typeof fromStep === "number" ? "its first " + fromStep + " log entries" : "what ran before step \"" + fromStep + "\"";
      $("fork-problem").hidden = true;
      act("fork", "Fork " + state.runId + " into a new run that keeps " + where + " and runs the rest?", { from_step: fromStep }).catch((error) => {
        if (error.code === "invalid_fork_point") showForkProblem(error);
        else D.failed("Fork", error);
      });
    });
    $("fork-problem").addEventListener("click", (event) => {
      const button = event.target.closest("button.cut");
      if (button) $("fork-step").value = button.dataset.cut;
    });
    $("cancel").addEventListener("click", async () => {
      if (!D.confirm("Cancel run " + state.runId + " (and its child runs)?")) return;
      try {
        await D.api(D.runUrl(state.runId) + "/cancel", { method: "POST" });
        D.info("Cancelled " + state.runId + ".");
      } catch (error) {
        D.failed("Cancel", error);
      }
      again();
    });
    $("event-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = $("event-name").value.trim();
      let data = null;
      try {
        const text = $("event-data").value.trim();
        data = text ? JSON.parse(text) : null;
      } catch (error) {
        D.error("Event data is not JSON: " + error.message);
        return;
      }
      try {
        await D.api(D.runUrl(state.runId) + "/events/" + encodeURIComponent(name), { method: "POST", json: { data } });
        D.info('Sent event "' + name + '" to ' + state.runId + ".");
        $("event-data").value = "";
      } catch (error) {
        D.failed('Send event "' + name + '"', error);
      }
      again();
    });
  });
})();
