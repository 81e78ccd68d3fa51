// The trigger form on "/": built from GET /tasks. A task's payload_schema becomes one
// labelled input per property (by type; anything complex is a JSON textarea), prefilled
// from payload_example, and the payload is checked against the schema before it is sent.
// A task with no object schema (or one GET /tasks does not know) gets a JSON textarea.
"use strict";

(function () {
  const { $, el } = D;
  let tasks = new Map(); // task_id → GET /tasks item
  let current = null; // {task, schema, fields: [{name, schema, input, kind, required}]}

  // -- schemas: resolve $ref, unwrap Optional (anyOf [X, null]) ----------------------------

  function resolve(schema, root) {
    let node = schema || {};
    for (let depth = 0; node.$ref && depth < 20; depth++) {
      const path = node.$ref.replace(/^#\//, "").split("/");
      node = path.reduce((at, key) => (at || {})[key], root) || {};
    }
    return node;
  }

  function unwrap(schema, root) {
    const node = resolve(schema, root);
    const options = node.anyOf || node.oneOf;
    if (options) {
      const real = options.filter((option) => resolve(option, root).type !== "null");
      if (real.length === 1) return Object.assign({}, node, resolve(real[0], root), { anyOf: undefined, oneOf: undefined, nullable: true });
    }
    return node;
  }

  const typeOf = (value) =>
    value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;

  function fitsType(value, type) {
    const actual = typeOf(value);
    return actual === type || (type === "number" && actual === "integer");
  }

  // The first few problems of `value` against `schema`, as [{path, message}].
  function validate(value, schema, root, path, problems) {
    const node = resolve(schema, root);
    if (problems.length > 20 || node === true || !node || typeof node !== "object") return problems;
    const options = node.anyOf || node.oneOf;
    if (options) {
      const fits = options.some((option) => validate(value, option, root, path, []).length === 0);
      if (!fits) problems.push({ path, message: "does not match any allowed shape" });
      return problems;
    }
    if (node.type) {
      const types = [].concat(node.type);
      if (!types.some((type) => fitsType(value, type))) {
        problems.push({ path, message: "must be " + types.join(" or ") + (value === undefined ? "" : ", not " + typeOf(value)) });
        return problems;
      }
    }
    if ("const" in node && JSON.stringify(node.const) !== JSON.stringify(value)) problems.push({ path, message: "must be " + JSON.stringify(node.const) });
    if (node.enum && !node.enum.some((option) => JSON.stringify(option) === JSON.stringify(value))) {
      problems.push({ path, message: "must be one of " + node.enum.map((option) => JSON.stringify(option)).join(", ") });
    }
    if (typeof value === "number") {
      if (node.minimum != null && value < node.minimum) problems.push({ path, message: "must be ≥ " + node.minimum });
      if (node.maximum != null && value > node.maximum) problems.push({ path, message: "must be ≤ " + node.maximum });
      if (node.exclusiveMinimum != null && value <= node.exclusiveMinimum) problems.push({ path, message: "must be > " + node.exclusiveMinimum });
      if (node.exclusiveMaximum != null && value >= node.exclusiveMaximum) problems.push({ path, message: "must be < " + node.exclusiveMaximum });
    }
    if (typeof value === "string") {
      if (node.minLength != null && value.length < node.minLength) problems.push({ path, message: "needs at least " + node.minLength + " character(s)" });
      if (node.maxLength != null && value.length > node.maxLength) problems.push({ path, message: "takes at most " + node.maxLength + " characters" });
      if (node.pattern && !new RegExp(node.pattern, "u").test(value)) problems.push({ path, message: "must match " + node.pattern });
    }
    if (Array.isArray(value)) {
      if (node.minItems != null && value.length < node.minItems) problems.push({ path, message: "needs at least " + node.minItems + " item(s)" });
      if (node.maxItems != null && value.length > node.maxItems) problems.push({ path, message: "takes at most " + node.maxItems + " items" });
      if (node.items) value.forEach((item, index) => validate(item, node.items, root, path.concat(index), problems));
    }
    if (typeOf(value) === "object") {
      for (const name of node.required || []) {
        if (!(name in value)) problems.push({ path: path.concat(name), message: "is required" });
      }
      for (const [name, item] of Object.entries(value)) {
        const property = (node.properties || {})[name];
        if (property) validate(item, property, root, path.concat(name), problems);
        else if (node.additionalProperties === false) problems.push({ path: path.concat(name), message: "is not a known field" });
        else if (node.additionalProperties && typeof node.additionalProperties === "object") validate(item, node.additionalProperties, root, path.concat(name), problems);
      }
    }
    return problems;
  }

  // -- the form --------------------------------------------------------------------------

  function kindOf(schema) {
    if (schema.enum) return "enum";
    if (schema.type === "boolean") return "boolean";
    if (schema.type === "integer" || schema.type === "number") return "number";
    if (schema.type === "string") return "string";
    return "json";
  }

  function input(field, initial) {
    const id = "payload-" + field.name;
    const attrs = { id, name: field.name, dataset: { field: field.name } };
    if (field.kind === "enum") {
      const select = el("select", attrs, field.required ? null : el("option", { value: "" }, "—"));
      for (const option of field.schema.enum) select.append(el("option", { value: JSON.stringify(option) }, String(option)));
      if (initial !== undefined) select.value = JSON.stringify(initial);
      return select;
    }
    if (field.kind === "boolean") return el("input", Object.assign(attrs, { type: "checkbox", checked: initial === true }));
    if (field.kind === "number") {
      const number = el("input", Object.assign(attrs, { type: "number", step: field.schema.type === "integer" ? "1" : "any" }));
      if (initial != null) number.value = String(initial);
      return number;
    }
    if (field.kind === "string") {
      const text = el("input", Object.assign(attrs, { type: "text" }));
      if (initial != null) text.value = String(initial);
      return text;
    }
    const area = el("textarea", Object.assign(attrs, { rows: 3, spellcheck: false }));
    if (initial !== undefined) area.value = JSON.stringify(initial, null, 1);
    return area;
  }

  function build(taskId) {
    const task = tasks.get(taskId);
    $("trigger-fields").replaceChildren();
    clearErrors();
    const root = task ? task.payload_schema || {} : {};
    const schema = unwrap(root, root);
    const example = task ? task.payload_example : undefined;
    D.setText($("trigger-description"), task ? task.description || "" : taskId && tasks.size ? "not a task this API knows" : "");
    if (!task || schema.type !== "object" || !schema.properties) {
      current = task ? { task, root, fields: null } : null;
      $("trigger-json").hidden = false;
      if (task) $("trigger-payload").value = example == null ? "" : JSON.stringify(example, null, 1);
      return;
    }
    $("trigger-json").hidden = true;
    const required = new Set(schema.required || []);
    const fields = [];
    for (const [name, property] of Object.entries(schema.properties)) {
      const fieldSchema = unwrap(property, root);
      const field = { name, schema: fieldSchema, kind: kindOf(fieldSchema), required: required.has(name) };
      const initial = example && name in example ? example[name] : fieldSchema.default;
      field.input = input(field, initial);
      const title = fieldSchema.title || name;
      const hint = [fieldSchema.type || "JSON", field.required ? "required" : "optional"].join(", ");
      $("trigger-fields").append(
        el(
          "div",
          { className: "field" + (field.kind === "boolean" ? " check" : "") },
          el("label", { htmlFor: field.input.id }, title + " ", el("span", { className: "muted small" }, "(" + hint + ")")),
          field.input,
          fieldSchema.description ? el("span", { className: "muted small" }, fieldSchema.description) : null,
          el("span", { className: "field-error", dataset: { errorFor: name } }),
        ),
      );
      fields.push(field);
    }
    current = { task, root, fields };
  }

  function clearErrors() {
    for (const node of document.querySelectorAll("#trigger .field-error")) node.textContent = "";
  }

  function showError(name, text) {
    const node = document.querySelector('#trigger .field-error[data-error-for="' + CSS.escape(name) + '"]');
    if (node) node.textContent = text;
    else D.error("payload: " + text);
  }

  // The payload the form describes; problems it finds on the way are shown per field.
  function collect() {
    const problems = [];
    if (!current || !current.fields) {
      const text = $("trigger-payload").value.trim();
      try {
        return { payload: text ? JSON.parse(text) : null, problems };
      } catch (error) {
        problems.push({ path: ["payload"], message: "is not JSON: " + error.message });
        return { payload: undefined, problems };
      }
    }
    const payload = {};
    for (const field of current.fields) {
      const raw = field.input.value;
      if (field.kind === "boolean") payload[field.name] = field.input.checked;
      else if (field.kind === "enum") {
        if (raw !== "") payload[field.name] = JSON.parse(raw);
      } else if (field.kind === "number") {
        if (raw.trim() !== "") payload[field.name] = Number(raw);
        else if (field.input.validity && field.input.validity.badInput) problems.push({ path: [field.name], message: "is not a number" });
      } else if (field.kind === "string") {
        if (raw !== "" || field.required) payload[field.name] = raw;
      } else if (raw.trim() !== "") {
        try {
          payload[field.name] = JSON.parse(raw);
        } catch (error) {
          problems.push({ path: [field.name], message: "is not JSON: " + error.message });
        }
      }
    }
    return { payload, problems };
  }

  // Tags "a, b" → ["a", "b"]; metadata "key=value" lines → {key: value}. Problems are
  // shown by the field; the API checks the rest (its 400 names the field).
  function labels(problems) {
    const tags = $("trigger-tags").value.split(",").map((tag) => tag.trim()).filter(Boolean);
    const metadata = {};
    $("trigger-metadata").value.split("\n").forEach((line, index) => {
      if (!line.trim()) return;
      const at = line.indexOf("=");
      if (at <= 0) problems.push({ path: ["metadata"], message: "line " + (index + 1) + " is not key=value" });
      else metadata[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    });
    const extra = {};
    if (tags.length) extra.tags = tags;
    if (Object.keys(metadata).length) extra.metadata = metadata;
    return Object.assign(extra, flow(problems));
  }

  // The queue options: `concurrency_key`, `priority` (an integer ≥ 0) and `ttl_seconds` (an
  // integer ≥ 1), each sent only when filled in; the API checks the key's characters.
  function flow(problems) {
    const extra = {};
    const key = $("trigger-key").value.trim();
    if (key) extra.concurrency_key = key;
    const whole = (id, name, least) => {
      const input = $(id);
      const raw = input.value.trim();
      if (raw === "" && !(input.validity && input.validity.badInput)) return;
      const value = Number(raw);
      if (raw === "" || !Number.isInteger(value) || value < least) {
        problems.push({ path: ["flow"], message: name + " must be a whole number ≥ " + least });
      } else extra[name] = value;
    };
    whole("trigger-priority", "priority", 0);
    whole("trigger-ttl", "ttl_seconds", 1);
    return extra;
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    const taskId = $("trigger-task").value.trim();
    if (!taskId) return showError("task", "choose a task");
    const { payload, problems } = collect();
    if (current && current.task && payload !== undefined && problems.length === 0) {
      validate(payload, current.root, current.root, [], problems);
    }
    const labelProblems = [];
    const extra = labels(labelProblems);
    for (const problem of labelProblems) showError(problem.path[0], problem.message);
    if (problems.length) {
      for (const problem of problems) {
        const [first, ...rest] = problem.path;
        const name = current && current.fields && first !== undefined ? String(first) : "payload";
        const where = (current && current.fields ? rest : problem.path).join(".");
        showError(name, (where ? where + " " : "") + problem.message);
      }
      return;
    }
    if (labelProblems.length) return;
    try {
      const run = await D.api("tasks/" + encodeURIComponent(taskId) + "/runs", { method: "POST", json: Object.assign({ payload }, extra) });
      D.info("Started " + taskId + ": ", { href: D.runUrl(run.run_id), text: run.run_id });
      for (const id of ["trigger-tags", "trigger-metadata", "trigger-key", "trigger-priority", "trigger-ttl"]) $(id).value = "";
      D.navigate(D.runUrl(run.run_id));
    } catch (error) {
      // A full queue (429 queue_full) is said by the queue fields as well: try again later.
      if (error.code === "queue_full") showError("flow", error.message);
      D.failed("Trigger " + taskId, error);
    }
  }

  async function load() {
    try {
      const answer = await D.api("tasks");
      tasks = new Map(answer.tasks.map((task) => [task.task_id, task]));
    } catch (error) {
      tasks = new Map(); // no GET /tasks: the task id is typed, the payload is JSON
    }
    $("task-ids").replaceChildren(...[...tasks.keys()].sort().map((id) => el("option", { value: id })));
    build($("trigger-task").value.trim());
  }

  D.trigger = { load, validate };

  document.addEventListener("DOMContentLoaded", () => {
    $("trigger").addEventListener("submit", submit);
    // Rebuilt when the task changes, not on every event: what was typed in the fields stays.
    const chosen = () => {
      const taskId = $("trigger-task").value.trim();
      const shown = current && current.task ? current.task.task_id : null;
      if (taskId !== shown && (tasks.has(taskId) || shown !== null)) build(taskId);
    };
    $("trigger-task").addEventListener("change", chosen);
    $("trigger-task").addEventListener("input", chosen);
  });
})();
