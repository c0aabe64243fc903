-- Argo CD health of a driftwatch.dev DriftEvent, from status.phase.
--   NeedsReview      -> Suspended   (waits for a human decision; Progressing once a decision is recorded)
--   Packaging        -> Progressing (the retrain-packaging Job runs)
--   Actioned         -> Healthy     (data on S3, retraining webhook called)
--   Ignored          -> Healthy
--   RetrainingFailed -> Degraded    (status.retraining.lastError says why)
--   no status yet    -> Progressing / Suspended as NeedsReview
local hs = {}
local status = obj.status or {}
local phase = status.phase or "NeedsReview"
local retraining = status.retraining or {}
local decided = obj.spec ~= nil and obj.spec.approval ~= nil and obj.spec.approval.decision ~= nil

if phase == "NeedsReview" then
  if decided then
    hs.status = "Progressing"
    hs.message = obj.spec.approval.decision .. " by " .. (obj.spec.approval.approvedBy or "?")
      .. "; waiting for the controller"
  else
    hs.status = "Suspended"
    local monitor = (obj.spec ~= nil and obj.spec.monitorRef ~= nil and obj.spec.monitorRef.name) or "?"
    local score = (obj.spec ~= nil and obj.spec.driftScore ~= nil) and tostring(obj.spec.driftScore) or "?"
    hs.message = "Drift on monitor " .. monitor .. " (score " .. score .. ") awaits review: approve or ignore"
  end
elseif phase == "Packaging" then
  hs.status = "Progressing"
  hs.message = "Packaging retraining data"
  if retraining.jobName ~= nil then
    hs.message = hs.message .. " (Job " .. retraining.jobName .. ")"
  end
elseif phase == "Actioned" then
  hs.status = "Healthy"
  hs.message = "Retraining triggered"
  if retraining.retrainingJobId ~= nil then
    hs.message = hs.message .. ": job " .. retraining.retrainingJobId
  end
  if retraining.s3Uri ~= nil then
    hs.message = hs.message .. ", data at " .. retraining.s3Uri
  end
elseif phase == "Ignored" then
  hs.status = "Healthy"
  hs.message = "Ignored"
  if decided and obj.spec.approval.approvedBy ~= nil then
    hs.message = hs.message .. " by " .. obj.spec.approval.approvedBy
  end
elseif phase == "RetrainingFailed" then
  hs.status = "Degraded"
  hs.message = "Retraining hand-off failed"
  if retraining.lastError ~= nil then
    hs.message = hs.message .. ": " .. retraining.lastError
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
