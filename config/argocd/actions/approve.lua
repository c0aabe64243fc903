-- Argo CD action "approve" on a DriftEvent: sets spec.approval (decision Approve).
-- Argo CD applies the change with its own Kubernetes identity, not the clicking user's, so approvedBy is
-- that identity (the admission policy admits only approvedBy == requesting user). Set it to the user Argo
-- CD's server talks to the cluster as. Who clicked is in Argo CD's own audit trail (ResourceActionRan).
local approver = "system:serviceaccount:argocd:argocd-server"
if obj.spec == nil then
  obj.spec = {}
end
if obj.spec.approval == nil then
  obj.spec.approval = {
    decision = "Approve",
    approvedBy = approver,
    reason = "Approved in Argo CD",
  }
end
return obj
