#!/usr/bin/env bash
# `make sam-local`: the template's functions in Lambda-like containers (`sam local`), against
# a running `durable dev --host <Docker bridge>` (the README's "sam local" section).
#
#   1. a Docker daemon (scripts/docker-daemon.sh) and the stand-in Lambda image
#      (scripts/lambda-standin-image.sh; built once, then found by `docker image inspect`)
#   2. sam build (into .aws-sam/sam-local, cached)
#   3. sam local invoke: the API function on events/api-trigger-process-order.json (202 and
#      a run id), the worker on events/sqs-wake-up-batch.json rewritten to name that run
#      ({"batchItemFailures": []}), the sweeper on events/schedule-sweeper.json
#   4. sam local start-api, driven over HTTP: a trigger, then the run until it completes
#
# Every function gets the dev stack's env.json (`--env-vars`, the path read from
# /.well-known/durable-dev) and fake credentials. DURABLE_URL names the dev stack (default:
# http://<bridge address>:8000).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SAM=.venv-sam/bin/sam
BUILD=.aws-sam/sam-local
export SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

json() {  # json FIELD.PATH < document: one value of a JSON document on stdin
  "$PY" -c 'import json, sys
value = json.loads(sys.stdin.read().strip().splitlines()[-1])
for key in sys.argv[1].split("."):
    value = json.loads(value) if isinstance(value, str) else value
    value = value[key]
print(value if isinstance(value, str) else json.dumps(value))' "$1"
}
step() { printf '\n==> %s\n' "$*"; }

step "Docker daemon and the stand-in image"
scripts/docker-daemon.sh
scripts/lambda-standin-image.sh
BRIDGE=$("$PY" -c 'from durable.local.samlocal import bridge_address; print(bridge_address())')
URL="${DURABLE_URL:-http://$BRIDGE:8000}"

step "durable dev at $URL"
INFO=$(curl -fsS "$URL/.well-known/durable-dev") || {
  echo "no durable dev answers at $URL: start one in another terminal with" >&2
  echo "    .venv/bin/durable dev --host $BRIDGE" >&2
  echo "(or set DURABLE_URL to the one you run)" >&2
  exit 1
}
ENV_JSON=$(json env_json <<<"$INFO")
CONTAINER_MOTO=$(json container_moto_url <<<"$INFO")
case "$CONTAINER_MOTO" in
  http://127.*|http://localhost*)
    echo "durable dev listens on $CONTAINER_MOTO, which no container reaches:" >&2
    echo "restart it with --host $BRIDGE (or --host 0.0.0.0)" >&2
    exit 1 ;;
esac
echo "code version $(json code_version <<<"$INFO"), moto for containers $CONTAINER_MOTO"
echo "env.json $ENV_JSON"

step "sam build"
start=$(date +%s)
"$SAM" build --build-dir "$BUILD" --cached --cache-dir .aws-sam/cache >"$BUILD.log" 2>&1 ||
  { tail -30 "$BUILD.log" >&2; exit 1; }
echo "built in $(( $(date +%s) - start ))s"

invoke() {  # invoke FUNCTION EVENT_FILE: the function's answer on stdout
  local start answer
  start=$(date +%s)
  answer=$("$SAM" local invoke --template "$BUILD/template.yaml" --skip-pull-image \
    --env-vars "$ENV_JSON" --event "$2" "$1" 2>"$BUILD.invoke.log") ||
    { tail -30 "$BUILD.invoke.log" >&2; return 1; }
  echo "$1: $answer ($(( $(date +%s) - start ))s)" >&2
  printf '%s\n' "$answer"
}

wait_completed() {  # wait_completed BASE_URL RUN_ID
  local status=""
  for _ in $(seq 1 60); do
    status=$(curl -fsS "$1/runs/$2" | json status)
    case "$status" in
      COMPLETED) echo "run $2 COMPLETED"; return 0 ;;
      FAILED|CANCELLED|TIMED_OUT) echo "run $2 ended $status" >&2; return 1 ;;
    esac
    sleep 1
  done
  echo "run $2 is still $status after 60 s" >&2
  return 1
}

step "sam local invoke IamApiFunction (events/api-trigger-process-order.json)"
ANSWER=$(invoke IamApiFunction events/api-trigger-process-order.json)
[ "$(json statusCode <<<"$ANSWER")" = 202 ] || { echo "expected 202" >&2; exit 1; }
RUN_ID=$(json body.run_id <<<"$ANSWER")

step "sam local invoke WorkerFunction (events/sqs-wake-up-batch.json, for $RUN_ID)"
EVENT="$BUILD.sqs-event.json"
sed "s/run_0000000000000example000000000000/$RUN_ID/g" events/sqs-wake-up-batch.json >"$EVENT"
ANSWER=$(invoke WorkerFunction "$EVENT")
[ "$(json batchItemFailures <<<"$ANSWER")" = "[]" ] || { echo "records failed" >&2; exit 1; }
wait_completed "$URL" "$RUN_ID"

step "sam local invoke SweeperFunction (events/schedule-sweeper.json)"
invoke SweeperFunction events/schedule-sweeper.json >/dev/null

step "sam local start-api, over HTTP"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SAM" local start-api --template "$BUILD/template.yaml" --skip-pull-image \
  --env-vars "$ENV_JSON" --host 127.0.0.1 --port "$PORT" --warm-containers LAZY \
  >"$BUILD.start-api.log" 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null || true; wait $API_PID 2>/dev/null || true' EXIT
API="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do
  curl -s -o /dev/null "$API/openapi.json" && break
  kill -0 $API_PID 2>/dev/null || { tail -30 "$BUILD.start-api.log" >&2; exit 1; }
  sleep 1
done
ANSWER=$(curl -sS -w '\n%{http_code}' -X POST "$API/tasks/process-order/runs" \
  -H 'content-type: application/json' -d '{"payload": {"order_id": "o-sam-local"}}')
echo "POST $API/tasks/process-order/runs -> $(tail -1 <<<"$ANSWER") $(head -1 <<<"$ANSWER")"
[ "$(tail -1 <<<"$ANSWER")" = 202 ] || exit 1
wait_completed "$API" "$(head -1 <<<"$ANSWER" | json run_id)"

step "sam local: the API, worker and sweeper functions ran in containers against durable dev"
