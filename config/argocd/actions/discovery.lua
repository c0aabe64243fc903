-- Argo CD resource actions of a DriftEvent: approve and ignore, enabled only while it waits for review and
-- no decision is recorded (a decision is settable once).
local actions = {}
local phase = (obj.status ~= nil and obj.status.phase) or "NeedsReview"
local decided = obj.spec ~= nil and obj.spec.approval ~= nil
local open = phase == "NeedsReview" and not decided
actions["approve"] = {["disabled"] = not open, ["iconClass"] = "fa fa-fw fa-check"}
actions["ignore"] = {["disabled"] = not open, ["iconClass"] = "fa fa-fw fa-ban"}
return actions
