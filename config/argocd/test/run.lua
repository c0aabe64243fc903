-- Runs the Argo CD health and action scripts on sample objects with a Lua 5.1 interpreter, the way Argo CD
-- does (a global `obj`, the script's return value), and checks the results.
-- Usage: lua5.1 config/argocd/test/run.lua <dir of argocd-cm scripts>
-- The directory holds the scripts as extracted from config/argocd/argocd-cm.yaml (hack/ops-argocd-extract.py),
-- so the code tested is the code deployed. Prints "argocd-lua: N passed, M failed"; exits 1 on failure.
local dir = arg[1] or "config/argocd"
local passed, failed = 0, 0

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deepcopy(x) end
  return t
end

local function run(file, object)
  local chunk, err = loadfile(dir .. "/" .. file)
  if chunk == nil then error("cannot load " .. file .. ": " .. err) end
  -- A fresh environment per run, like Argo CD's fresh VM: standard functions plus `obj`.
  local env = setmetatable({obj = deepcopy(object)}, {__index = _G})
  setfenv(chunk, env)
  return chunk()
end

local function check(name, ok, detail)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. name .. (detail and (": " .. detail) or ""))
  end
end

local function expect_health(file, name, object, status, message_part)
  local ok, hs = pcall(run, file, object)
  if not ok then
    check(file .. " / " .. name, false, "script error: " .. tostring(hs))
    return
  end
  local msg = hs.message or ""
  check(file .. " / " .. name, hs.status == status and (message_part == nil or string.find(msg, message_part, 1, true) ~= nil),
    "got " .. tostring(hs.status) .. " (" .. msg .. "), want " .. status .. (message_part and (" with '" .. message_part .. "'") or ""))
end

local function cond(type, status, reason, message)
  return {type = type, status = status, reason = reason, message = message, lastTransitionTime = "2026-11-26T02:00:00Z"}
end

local function monitor(status, spec, generation)
  return {
    apiVersion = "driftwatch.dev/v1alpha1", kind = "DriftMonitor",
    metadata = {name = "frames", namespace = "ml", generation = generation or 1},
    spec = spec or {schedule = "0 2 * * *"},
    status = status,
  }
end

-- DriftMonitor health -------------------------------------------------------------------------------------
local M = "health_DriftMonitor.lua"
expect_health(M, "new monitor without status", monitor(nil), "Progressing", "first check")
expect_health(M, "status of an older generation", monitor({observedGeneration = 1,
  conditions = {cond("Ready", "True", "Scheduled")}, lastSuccessfulTime = "2026-11-26T02:01:00Z"}, nil, 2),
  "Progressing", "latest spec")
expect_health(M, "suspended", monitor({conditions = {cond("Ready", "True", "Suspended")}},
  {schedule = "0 2 * * *", suspend = true}), "Suspended", "suspend")
expect_health(M, "invalid spec", monitor({observedGeneration = 1,
  conditions = {cond("Ready", "False", "InvalidSpec", "schedule: expected 5 fields")}}),
  "Degraded", "InvalidSpec: schedule: expected 5 fields")
expect_health(M, "failing checks", monitor({observedGeneration = 1, lastSuccessfulTime = "2026-11-25T02:01:00Z",
  conditions = {cond("Ready", "True", "Scheduled"), cond("Degraded", "True", "CheckFailed", "qdrant unreachable")}}),
  "Degraded", "CheckFailed: qdrant unreachable")
expect_health(M, "scheduled, awaiting first check", monitor({observedGeneration = 1,
  conditions = {cond("Ready", "True", "Scheduled"), cond("Degraded", "False", "AwaitingFirstCheck")}}),
  "Progressing", "no successful check yet")
expect_health(M, "ready condition unknown", monitor({conditions = {cond("Ready", "Unknown", "Reconciling")}}),
  "Progressing", "Reconciling")
expect_health(M, "healthy without drift", monitor({observedGeneration = 1, lastSuccessfulTime = "2026-11-26T02:01:00Z",
  conditions = {cond("Ready", "True", "Scheduled"), cond("Degraded", "False", "CheckSucceeded"),
    cond("Drifted", "False", "NoDrift")}}), "Healthy", "no drift")
expect_health(M, "healthy with drift and open event", monitor({observedGeneration = 1,
  lastSuccessfulTime = "2026-11-26T02:01:00Z", openEvent = "frames-202611260200",
  conditions = {cond("Ready", "True", "Scheduled"), cond("Drifted", "True", "DriftDetected")}}),
  "Healthy", "DriftEvent frames-202611260200 awaits review")

-- DriftEvent health ---------------------------------------------------------------------------------------
local function event(phase, approval, retraining)
  local status = nil
  if phase ~= nil then status = {phase = phase, retraining = retraining} end
  return {
    apiVersion = "driftwatch.dev/v1alpha1", kind = "DriftEvent",
    metadata = {name = "frames-202611260200", namespace = "ml"},
    spec = {monitorRef = {name = "frames"}, detectedAt = "2026-11-26T02:00:00Z", driftScore = 0.31, approval = approval},
    status = status,
  }
end
local approved = {decision = "Approve", approvedBy = "alice@example.com", reason = "new camera firmware"}
local ignored = {decision = "Ignore", approvedBy = "bob@example.com"}
local E = "health_DriftEvent.lua"
expect_health(E, "new event without status", event(nil), "Suspended", "awaits review")
expect_health(E, "needs review", event("NeedsReview"), "Suspended", "monitor frames (score 0.31)")
expect_health(E, "decided, controller not caught up", event("NeedsReview", approved), "Progressing",
  "Approve by alice@example.com")
expect_health(E, "packaging", event("Packaging", approved, {jobName = "frames-202611260200-package"}),
  "Progressing", "Job frames-202611260200-package")
expect_health(E, "actioned", event("Actioned", approved, {retrainingJobId = "rt-42",
  s3Uri = "s3://bucket/batches/ml/frames-202611260200/batch.tar.gz"}), "Healthy", "job rt-42, data at s3://")
expect_health(E, "ignored", event("Ignored", ignored), "Healthy", "Ignored by bob@example.com")
expect_health(E, "retraining failed", event("RetrainingFailed", approved, {lastError = "webhook returned 500"}),
  "Degraded", "webhook returned 500")
expect_health(E, "unknown phase", event("Exploded"), "Unknown", "Exploded")

-- DriftEvent actions --------------------------------------------------------------------------------------
local function expect_actions(name, object, approve_disabled, ignore_disabled)
  local ok, actions = pcall(run, "actions_discovery.lua", object)
  if not ok then
    check("discovery / " .. name, false, "script error: " .. tostring(actions))
    return
  end
  check("discovery / " .. name,
    actions.approve ~= nil and actions.ignore ~= nil
      and actions.approve.disabled == approve_disabled and actions.ignore.disabled == ignore_disabled,
    "approve.disabled=" .. tostring(actions.approve and actions.approve.disabled)
      .. " ignore.disabled=" .. tostring(actions.ignore and actions.ignore.disabled))
end
expect_actions("open event offers both", event("NeedsReview"), false, false)
expect_actions("new event without status offers both", event(nil), false, false)
expect_actions("decided event offers none", event("NeedsReview", approved), true, true)
expect_actions("packaging event offers none", event("Packaging", approved), true, true)
expect_actions("actioned event offers none", event("Actioned", approved), true, true)
expect_actions("ignored event offers none", event("Ignored", ignored), true, true)
expect_actions("failed event offers none", event("RetrainingFailed", approved), true, true)

local function expect_decision(file, decision)
  local before = event("NeedsReview")
  local ok, after = pcall(run, file, before)
  if not ok then
    check(file, false, "script error: " .. tostring(after))
    return
  end
  local a = after.spec.approval
  check(file .. " sets the decision", a ~= nil and a.decision == decision and a.approvedBy ~= nil and a.approvedBy ~= ""
    and a.reason ~= nil, "approval = " .. tostring(a and a.decision))
  check(file .. " keeps the detection facts", after.spec.driftScore == 0.31 and after.spec.monitorRef.name == "frames"
    and after.metadata.name == before.metadata.name)
  -- A decision is settable once: running the action on a decided event changes nothing.
  local ok2, again = pcall(run, file, event("NeedsReview", ignored))
  check(file .. " never overwrites a decision", ok2 and again.spec.approval.decision == "Ignore"
    and again.spec.approval.approvedBy == "bob@example.com")
end
expect_decision("actions_approve.lua", "Approve")
expect_decision("actions_ignore.lua", "Ignore")

print(string.format("argocd-lua: %d passed, %d failed", passed, failed))
if failed > 0 then os.exit(1) end
