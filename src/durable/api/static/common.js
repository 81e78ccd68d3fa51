// What every view uses: the API, elements, messages, times and status badges.
// URLs are relative: the page's <base> is the API's root (see index.html).
"use strict";

const D = (window.D = {});

D.$ = (id) => document.getElementById(id);

// An element: el("td", {className: "x", title: "y"}, "text", child, ...).
D.el = function (tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && key !== "list") node[key] = value;  // list: an attribute only
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
};

// Sets text only when it changed: a refresh keeps the user's text selection.
D.setText = function (node, text) {
  const value = text == null ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
};

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null; // the error body's `details`, when it has them
  }
}
D.ApiError = ApiError;

// JSON in, JSON out; a non-2xx answer throws an ApiError with the API's own message.
D.CALLER_HEADER = "X-Durable-Caller";
D.CALLER = "dashboard";

D.api = async function (path, options) {
  const init = Object.assign({}, options || {});
  init.headers = Object.assign({ Accept: "application/json" }, init.headers || {});
  // What the dashboard does is audited as "unverified:dashboard" unless the API Gateway
  // authenticated the request (then its principal is recorded: durable.api.caller).
  if (init.method && init.method !== "GET") init.headers[D.CALLER_HEADER] = D.CALLER;
  if (init.json !== undefined) {
    init.body = JSON.stringify(init.json);
    init.headers["Content-Type"] = "application/json";
    delete init.json;
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    const message = error.message || body.message || response.statusText;
    throw new ApiError(response.status, error.code || String(response.status), message, error.details);
  }
  return body;
};

D.runUrl = (runId) => "runs/" + encodeURIComponent(runId);

// -- messages: they stay until the user dismisses them ----------------------------------

D.message = function (kind, text, link) {
  const box = D.el("div", { className: "message " + kind, role: kind === "error" ? "alert" : "status" });
  box.append(D.el("span", { className: "text" }, text));
  if (link) box.append(" ", D.el("a", { href: link.href, dataset: { nav: "" } }, link.text));
  const close = D.el("button", { type: "button", className: "close", title: "Dismiss" }, "\u00d7");
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => box.remove());
  box.append(close);
  D.$("messages").append(box);
  return box;
};
D.error = (text) => D.message("error", text);
D.info = (text, link) => D.message("info", text, link);
D.failed = (what, error) =>
  D.error(what + ": " + (error.code ? error.code + ": " : "") + error.message);

// -- times ------------------------------------------------------------------------------

D.ms = (iso) => (iso ? Date.parse(iso) : NaN);

// "2026-11-30 11:32:18" (UTC, as the CLI prints).
D.time = function (iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? String(iso) : date.toISOString().slice(0, 19).replace("T", " ");
};
D.clock = (iso) => D.time(iso).slice(11);

D.seconds = function (seconds) {
  if (seconds == null || isNaN(seconds)) return "";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1).replace(/\.?0+$/, "") + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  return (seconds / 3600).toFixed(1) + " h";
};
D.between = (from, until) => (D.ms(until) - D.ms(from)) / 1000;

// -- runs -------------------------------------------------------------------------------

D.TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

D.badge = function (status) {
  return D.el("span", { className: "status " + status }, status);
};

// The event a run waits for, if it waits for one (event names never hold a colon).
D.waitedEvent = function (run) {
  const what = run.waiting_for;
  return run.status === "WAITING" && what && !what.includes(":") ? what : null;
};

// Whether a run is held until someone resumes it (a code fix, or a code version nobody runs).
D.isHeld = function (run) {
  const what = run.waiting_for || "";
  const busy = D.TERMINAL.has(run.status) || run.status === "RUNNING";
  return !busy && (what.startsWith("fix:") || what.startsWith("code-version:"));
};

// What a run is waiting for, and until when, in words ("" when it is not waiting).
D.describeWait = function (run) {
  const until = run.wake_at ? " until " + D.time(run.wake_at) : "";
  const what = run.waiting_for || "";
  if (run.status === "RETRYING") return "retry" + (run.wake_at ? " at " + D.time(run.wake_at) : "");
  if (run.status === "QUEUED") return D.describeQueued(run) || (run.wake_at ? "delayed" + until : "");
  if (run.status !== "WAITING") return "";
  if (!what) return "sleep" + until;
  if (!what.includes(":")) return 'event "' + what + '"' + until;
  const [kind, rest] = [what.slice(0, what.indexOf(":")), what.slice(what.indexOf(":") + 1)];
  if (kind === "callback") return "callback" + until;
  if (kind === "child") return "child run " + rest + until;
  if (kind === "batch") return "batch of child runs" + until;
  if (kind === "code-version") return "code version " + rest + " (held)";
  if (kind === "fix") return "a code fix (held: " + rest + ")";
  return what + until;
};

// "1st", "2nd", "3rd", "4th", "11th", "22nd".
D.ordinal = function (n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th";
  return n + suffix;
};

// What holds a QUEUED run back by its queue ("" when nothing does): a slot (with its place
// in line when the run's own page knows it), the rate limit, or the debounce period.
D.describeQueued = function (run) {
  const what = run.status === "QUEUED" ? run.waiting_for || "" : "";
  const name = what.slice(what.indexOf(":") + 1);
  if (what.startsWith("queue:")) {
    const place = run.queue_position ? ", " + D.ordinal(run.queue_position) + " in line" : "";
    return "a slot in queue " + name + place;
  }
  if (what.startsWith("rate:")) return "its turn under queue " + name + "'s rate limit" + (run.wake_at ? " until " + D.time(run.wake_at) : "");
  if (what.startsWith("debounce:")) return "queue " + name + "'s debounce" + (run.wake_at ? " until " + D.time(run.wake_at) : "");
  return "";
};

// Asks before an action; false when the user says no.
D.confirm = (text) => window.confirm(text);

D.pretty = (value) => (value === undefined ? "" : JSON.stringify(value, null, 2));
