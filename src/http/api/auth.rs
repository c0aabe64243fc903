//! Authentication and authorization of API calls in the manner of kube-rbac-proxy: the bearer token is
//! checked with a TokenReview, the caller's right with a SubjectAccessReview, both by the API server.
//!
//! Writes (decisions) have two modes:
//! - default, trusted writer: after the reviews the controller writes the decision itself with
//!   `approvedBy` set to the authenticated caller. The approval admission policy exempts exactly the
//!   controller's ServiceAccount, which needs no `impersonate` right.
//! - `--impersonate-callers` (chart `rbac.impersonation=true`): writes are made *as the caller*, so RBAC and
//!   the admission policy judge the real user; the ServiceAccount then needs `impersonate` on `users`,
//!   `groups`, `serviceaccounts` and `userextras/*`.
//!
//! Either way the ServiceAccount needs `create` on `tokenreviews` and `subjectaccessreviews` (the
//! `system:auth-delegator` ClusterRole). Does I/O (API server calls).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

use super::ApiError;

/// API group of the driftwatch kinds.
pub const GROUP: &str = "driftwatch.dev";
/// The custom verb that allows deciding on a monitor's events (docs/approval.md).
pub const APPROVE_VERB: &str = "approve";
/// `approvedBy` when authentication is switched off.
pub const NO_AUTH_USER: &str = "driftwatch:insecure-no-auth";
/// How long a successful TokenReview or SubjectAccessReview is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
const CACHE_MAX: usize = 4096;

/// Whether calls are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// TokenReview + SubjectAccessReview (the default).
    Enabled,
    /// `--insecure-no-auth`: everybody may read and decide; decisions are written by the controller's own
    /// identity with `approvedBy: driftwatch:insecure-no-auth`. Local use only.
    InsecureNoAuth,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a caller wants to do, in RBAC terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub verb: &'static str,
    pub resource: &'static str,
    /// Empty: cluster-wide.
    pub namespace: String,
    pub name: Option<String>,
}

impl Access {
    /// `list driftevents` in `namespace` (all namespaces when `None`).
    pub fn list_events(namespace: Option<&str>) -> Self {
        Self {
            verb: "list",
            resource: "driftevents",
            namespace: namespace.unwrap_or_default().to_string(),
            name: None,
        }
    }

    /// `list driftmonitors` in `namespace` (all namespaces when `None`).
    pub fn list_monitors(namespace: Option<&str>) -> Self {
        Self {
            verb: "list",
            resource: "driftmonitors",
            namespace: namespace.unwrap_or_default().to_string(),
            name: None,
        }
    }

    /// `get driftevents/<name>` in `namespace`.
    pub fn get_event(namespace: &str, name: &str) -> Self {
        Self {
            verb: "get",
            resource: "driftevents",
            namespace: namespace.to_string(),
            name: Some(name.to_string()),
        }
    }

    /// The approval right: `approve` on `driftmonitors/<monitor>`.
    pub fn approve(namespace: &str, monitor: &str) -> Self {
        Self {
            verb: APPROVE_VERB,
            resource: "driftmonitors",
            namespace: namespace.to_string(),
            name: Some(monitor.to_string()),
        }
    }

    /// `create driftevents` in `namespace` (the Alertmanager receiver's caller).
    pub fn create_events(namespace: &str) -> Self {
        Self {
            verb: "create",
            resource: "driftevents",
            namespace: namespace.to_string(),
            name: None,
        }
    }

    fn describe(&self) -> String {
        let scope = if self.namespace.is_empty() {
            "in all namespaces".to_string()
        } else {
            format!("in namespace {}", self.namespace)
        };
        match &self.name {
            Some(name) => format!("{} {}.{}/{name} {scope}", self.verb, self.resource, GROUP),
            None => format!("{} {}.{} {scope}", self.verb, self.resource, GROUP),
        }
    }
}

type Cache<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// Checks callers and builds clients that act as them.
pub struct Authenticator {
    mode: AuthMode,
    client: Client,
    /// The controller's client configuration, from which impersonating clients are built.
    config: Option<kube::Config>,
    tokens: Cache<String, User>,
    grants: Cache<(String, Vec<String>, Access), ()>,
}

fn cached<K: std::hash::Hash + Eq + Clone, V: Clone>(cache: &Cache<K, V>, key: &K) -> Option<V> {
    let map = cache.lock().ok()?;
    map.get(key)
        .filter(|(at, _)| at.elapsed() < CACHE_TTL)
        .map(|(_, v)| v.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(cache: &Cache<K, V>, key: K, value: V) {
    if let Ok(mut map) = cache.lock() {
        if map.len() >= CACHE_MAX {
            map.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }
}

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Authenticator {
    /// `config` is the controller's client configuration (needed to act as callers when auth is on).
    pub fn new(mode: AuthMode, client: Client, config: Option<kube::Config>) -> Self {
        if mode == AuthMode::InsecureNoAuth {
            tracing::warn!(
                "AUTHENTICATION IS OFF (--insecure-no-auth): anybody who reaches the HTTP port can read every \
                 DriftEvent and approve or ignore it. Use this for local development only."
            );
        }
        Self {
            mode,
            client,
            config,
            tokens: Mutex::default(),
            grants: Mutex::default(),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The caller of a request: 401 without a valid bearer token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<User, ApiError> {
        if self.mode == AuthMode::InsecureNoAuth {
            return Ok(User {
                name: NO_AUTH_USER.to_string(),
                uid: None,
                groups: Vec::new(),
                extra: BTreeMap::new(),
            });
        }
        let token = bearer_token(headers).ok_or_else(|| {
            ApiError::unauthorized("send a Kubernetes bearer token: Authorization: Bearer <token>")
        })?;
        if let Some(user) = cached(&self.tokens, &token.to_string()) {
            return Ok(user);
        }
        let review = TokenReview {
            metadata: ObjectMeta::default(),
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            status: None,
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ApiError::from_kube(&e, "TokenReview").unavailable_unless_client())?;
        let status = reviewed.status.unwrap_or_default();
        let info = status.user.unwrap_or_default();
        match (status.authenticated, info.username) {
            (Some(true), Some(name)) if !name.is_empty() => {
                let user = User {
                    name,
                    uid: info.uid,
                    groups: info.groups.unwrap_or_default(),
                    extra: info.extra.unwrap_or_default(),
                };
                remember(&self.tokens, token.to_string(), user.clone());
                Ok(user)
            }
            _ => Err(ApiError::unauthorized(match status.error {
                Some(error) if !error.is_empty() => format!("the token was not accepted: {error}"),
                _ => "the token was not accepted by the API server".to_string(),
            })),
        }
    }

    /// 403 unless `user` may do `access` (SubjectAccessReview).
    pub async fn authorize(&self, user: &User, access: &Access) -> Result<(), ApiError> {
        if self.mode == AuthMode::InsecureNoAuth {
            return Ok(());
        }
        let key = (user.name.clone(), user.groups.clone(), access.clone());
        if cached(&self.grants, &key).is_some() {
            return Ok(());
        }
        let review = SubjectAccessReview {
            metadata: ObjectMeta::default(),
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.to_string()),
                    resource: Some(access.resource.to_string()),
                    verb: Some(access.verb.to_string()),
                    namespace: Some(access.namespace.clone()),
                    name: access.name.clone(),
                    ..ResourceAttributes::default()
                }),
                non_resource_attributes: None,
            },
            status: None,
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| ApiError::from_kube(&e, "SubjectAccessReview").unavailable_unless_client())?;
        let status = reviewed.status.unwrap_or_default();
        if status.allowed && status.denied != Some(true) {
            remember(&self.grants, key, ());
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "user {:?} may not {}{}",
            user.name,
            access.describe(),
            status
                .reason
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )))
    }

    /// The client that writes `user`'s decision: one acting as `user` (impersonation) when this server was
    /// given a client configuration to impersonate with, else the controller's own (trusted writer, and
    /// with auth off).
    pub fn client_as(&self, user: &User) -> Result<Client, ApiError> {
        let Some(mut config) = self
            .config
            .clone()
            .filter(|_| self.mode != AuthMode::InsecureNoAuth)
        else {
            return Ok(self.client.clone());
        };
        config.auth_info.impersonate = Some(user.name.clone());
        config.auth_info.impersonate_groups = Some(user.groups.clone());
        Client::try_from(config).map_err(|e| ApiError::internal(format!("cannot build a client: {e}")))
    }
}

impl ApiError {
    /// The controller's own review calls failing is the server's trouble, never the caller's: 503.
    fn unavailable_unless_client(self) -> Self {
        if self.status.is_server_error() {
            self
        } else {
            ApiError::unavailable(self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_bearer_token_is_read_from_the_authorization_header() {
        assert_eq!(bearer_token(&headers("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&headers("bearer   xyz ")), Some("xyz"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_no_token() {
        assert_eq!(bearer_token(&headers("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_approval_right_names_the_monitor() {
        let access = Access::approve("ml", "frames");
        assert_eq!(access.verb, "approve");
        assert_eq!(
            access.describe(),
            "approve driftmonitors.driftwatch.dev/frames in namespace ml"
        );
    }
}
