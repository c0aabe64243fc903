-- Argo CD health of a driftwatch.dev DriftMonitor, from its conditions (Ready, Degraded, Drifted).
--   spec.suspend                                  -> Suspended
--   no status yet, or status of an older spec    -> Progressing (the controller has not caught up)
--   Ready=False (e.g. InvalidSpec) or Degraded=True -> Degraded
--   Ready=True, no successful check yet           -> Progressing
--   Ready=True                                    -> Healthy (drift is reported in the message; the
--                                                    DriftEvent it raised shows as Suspended for review)
local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or fallback
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Checks are suspended (spec.suspend)"
  return hs
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to schedule the first check"
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe the latest spec"
  return hs
end

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")
local drifted = condition(status.conditions, "Drifted")

if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "NotReady")
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "CheckFailed")
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for the controller")
  return hs
end
if status.lastSuccessfulTime == nil then
  hs.status = "Progressing"
  hs.message = "Scheduled; no successful check yet"
  return hs
end
hs.status = "Healthy"
if drifted ~= nil and drifted.status == "True" then
  hs.message = "Drift detected"
  if status.openEvent ~= nil then
    hs.message = hs.message .. "; DriftEvent " .. status.openEvent .. " awaits review"
  end
else
  hs.message = "Last check at " .. status.lastSuccessfulTime .. ": no drift"
end
return hs
