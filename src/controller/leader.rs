//! Leader election with a coordination.k8s.io/v1 Lease, the way client-go does it: one instance acts, the
//! others stand by. The leader renews every retry period and stops acting once it could not renew within
//! the renew deadline, which is shorter than the lease duration. A follower counts another holder's lease
//! as expired only after it has seen the same record, unchanged, for the lease duration on its own
//! monotonic clock; it never compares the holder's `renewTime` with its own wall clock, so clock skew
//! between nodes cannot make two leaders. Does I/O (the Lease); the decisions are the pure functions
//! [`observe`], [`held_by_another`] and [`renewal_deadline_passed`].

use std::{fmt, sync::Arc, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::{sync::watch, time::Instant};
use tracing::warn;

use super::clock::{Clock, SystemClock};

/// Settings of the leader lease.
#[derive(Clone)]
pub struct LeaderElection {
    /// Lease name, e.g. `driftwatch-controller`.
    pub lease_name: String,
    /// Namespace of the Lease (the controller's own).
    pub namespace: String,
    /// This instance's identity (its Pod name).
    pub identity: String,
    /// How long a follower waits, after it last saw the record change, before it takes over.
    pub lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal; shorter than `lease_duration`, so
    /// the leader has stopped before any follower may take over.
    pub renew_deadline: Duration,
    /// How often the leader renews and followers retry.
    pub retry_period: Duration,
    /// Wall clock for the times written into the Lease (`acquireTime`, `renewTime`); informational only:
    /// expiry is never computed from them.
    pub clock: Arc<dyn Clock>,
}

impl LeaderElection {
    /// Settings with client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(
        lease_name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            clock: Arc::new(SystemClock),
        }
    }

    /// Refuses durations that could let two instances act at once.
    ///
    /// # Errors
    /// [`SettingsError`] naming the offending durations.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.retry_period.is_zero() {
            return Err(SettingsError::ZeroRetryPeriod);
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(SettingsError::RenewDeadlineNotShorter {
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        if self.retry_period >= self.renew_deadline {
            return Err(SettingsError::RetryNotShorter {
                retry_period: self.retry_period,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for LeaderElection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElection")
            .field("lease_name", &self.lease_name)
            .field("namespace", &self.namespace)
            .field("identity", &self.identity)
            .field("lease_duration", &self.lease_duration)
            .field("renew_deadline", &self.renew_deadline)
            .field("retry_period", &self.retry_period)
            .finish_non_exhaustive()
    }
}

/// Leader election settings that could let two instances act at once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease_duration:?}): \
         the leader has to stop acting before a follower may take over"
    )]
    RenewDeadlineNotShorter {
        renew_deadline: Duration,
        lease_duration: Duration,
    },
    #[error(
        "the retry period ({retry_period:?}) must be shorter than the renew deadline ({renew_deadline:?}), or \
         the leader never gets a second try at renewing"
    )]
    RetryNotShorter {
        retry_period: Duration,
        renew_deadline: Duration,
    },
    #[error("the retry period must be longer than zero")]
    ZeroRetryPeriod,
}

/// The fields of a Lease that change with every renewal or takeover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub holder: Option<String>,
    pub lease_duration_seconds: Option<i32>,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub transitions: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        Self {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            lease_duration_seconds: spec.lease_duration_seconds,
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions,
        }
    }
}

/// A record as this instance saw it, and when (its own monotonic clock) it saw it change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub record: Record,
    pub since: Instant,
}

/// Folds a read of the Lease into what was seen before: the time of observation moves only when the
/// record changed.
pub fn observe(previous: Option<&Observed>, record: Record, now: Instant) -> Observed {
    match previous {
        Some(seen) if seen.record == record => seen.clone(),
        _ => Observed { record, since: now },
    }
}

/// Whether another instance still holds the lease, as seen by `me`: its record changed less than the
/// lease duration ago (the holder's own `leaseDurationSeconds`, else `default_duration`).
pub fn held_by_another(observed: &Observed, me: &str, default_duration: Duration, now: Instant) -> bool {
    match observed.record.holder.as_deref() {
        None => false,
        Some(holder) if holder == me => false,
        Some(_) => {
            let duration = observed
                .record
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(default_duration, Duration::from_secs);
            now < observed.since + duration
        }
    }
}

/// Whether the leader must stop acting: its last successful renewal began `renew_deadline` ago or more.
pub fn renewal_deadline_passed(last_renewal: Instant, renew_deadline: Duration, now: Instant) -> bool {
    now >= last_renewal + renew_deadline
}

/// The outcome of one attempt to take or renew the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This instance holds the lease (taken or renewed).
    Acquired,
    /// Another instance holds a live lease.
    HeldBy(String),
    /// The write lost a race with another writer (409); try again.
    Conflict,
}

/// Why a leader stopped leading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Another instance holds the lease.
    TakenBy(String),
    /// No renewal succeeded within the renew deadline.
    RenewDeadline,
}

/// Reads and writes the Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    settings: LeaderElection,
    observed: std::sync::Mutex<Option<Observed>>,
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

impl LeaseLock {
    pub fn new(client: Client, settings: LeaderElection) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: std::sync::Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &LeaderElection {
        &self.settings
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    fn remember(&self, record: Record, now: Instant) -> Observed {
        let mut slot = self
            .observed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let observed = observe(slot.as_ref(), record, now);
        *slot = Some(observed.clone());
        observed
    }

    /// Takes or renews the lease.
    ///
    /// # Errors
    /// The API server's answer when the Lease cannot be read or written (other than a lost race).
    pub async fn try_acquire(&self) -> Result<Attempt, kube::Error> {
        let me = &self.settings.identity;
        let wall = self.settings.clock.now();
        let Some(existing) = self.api.get_opt(&self.settings.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.lease_name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(MicroTime(wall)),
                    renew_time: Some(MicroTime(wall)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.remember(Record::of(&created.spec.unwrap_or_default()), Instant::now());
                    Ok(Attempt::Acquired)
                }
                Err(err) if is_status(&err, 409) => Ok(Attempt::Conflict),
                Err(err) => Err(err),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let record = Record::of(&spec);
        let observed = self.remember(record.clone(), Instant::now());
        if held_by_another(&observed, me, self.settings.lease_duration, Instant::now()) {
            return Ok(Attempt::HeldBy(record.holder.unwrap_or_default()));
        }
        let mine = record.holder.as_deref() == Some(me.as_str());
        // Every renewal changes the record, even when the wall clock stands still or steps back.
        let renewed = match record.renew_time {
            Some(previous) if mine && wall <= previous => previous
                .checked_add(jiff::SignedDuration::from_micros(1))
                .unwrap_or(wall),
            _ => wall,
        };
        let transitions = spec.lease_transitions.unwrap_or(0);
        let mut lease = existing;
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(me.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if mine {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(wall))
            },
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
            ..spec
        });
        match self
            .api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.remember(Record::of(&written.spec.unwrap_or_default()), Instant::now());
                Ok(Attempt::Acquired)
            }
            Err(err) if is_status(&err, 409) => Ok(Attempt::Conflict),
            Err(err) => Err(err),
        }
    }

    /// Tries every retry period until this instance holds the lease; returns when the attempt that took
    /// it began (the start of its first renew deadline), or `None` when `stop` turned true first.
    pub async fn acquire(&self, stop: &mut watch::Receiver<bool>) -> Option<Instant> {
        loop {
            let started = Instant::now();
            match self.try_acquire().await {
                Ok(Attempt::Acquired) => return Some(started),
                Ok(Attempt::HeldBy(_) | Attempt::Conflict) => {}
                Err(err) => warn!(error = %err, "leader election: cannot reach the lease"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.retry_period) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }

    /// Renews every retry period while leading; returns as soon as leadership is lost: another holder
    /// took the lease, or no renewal succeeded within the renew deadline (an attempt still in flight at
    /// the deadline is abandoned).
    pub async fn hold(&self, acquired: Instant) -> Lost {
        let settings = &self.settings;
        let mut last_renewal = acquired;
        loop {
            tokio::time::sleep(settings.retry_period).await;
            let started = Instant::now();
            if renewal_deadline_passed(last_renewal, settings.renew_deadline, started) {
                return Lost::RenewDeadline;
            }
            let deadline = last_renewal + settings.renew_deadline;
            match tokio::time::timeout_at(deadline, self.try_acquire()).await {
                Ok(Ok(Attempt::Acquired)) => last_renewal = started,
                Ok(Ok(Attempt::HeldBy(holder))) => return Lost::TakenBy(holder),
                Ok(Ok(Attempt::Conflict)) => warn!("leader election: renewal lost a write race; retrying"),
                Ok(Err(err)) => warn!(error = %err, "leader election: renewal failed; retrying"),
                Err(_) => return Lost::RenewDeadline,
            }
        }
    }

    /// Gives the lease up so a follower takes over at once.
    ///
    /// # Errors
    /// The API server's answer when the Lease cannot be read or written.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_status(&err, 409) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renewed: &str) -> Record {
        Record {
            holder: Some(holder.to_string()),
            lease_duration_seconds: Some(15),
            acquire_time: Some("2026-03-01T10:00:00Z".parse().unwrap()),
            renew_time: Some(renewed.parse().unwrap()),
            transitions: Some(1),
        }
    }

    fn settings() -> LeaderElection {
        LeaderElection::new("lease", "ns", "me")
    }

    #[test]
    fn a_holder_that_keeps_renewing_stays_leader_however_old_its_renew_time_looks() {
        // The holder's clock is an hour behind: its renewTime always looks an hour old. What counts is
        // that the record keeps changing.
        let t0 = Instant::now();
        let mut seen = observe(None, record("a", "2026-03-01T09:00:00Z"), t0);
        for (k, renewed) in [
            "2026-03-01T09:00:05Z",
            "2026-03-01T09:00:10Z",
            "2026-03-01T09:00:15Z",
        ]
        .iter()
        .enumerate()
        {
            let now = t0 + Duration::from_secs(5 * (k as u64 + 1));
            seen = observe(Some(&seen), record("a", renewed), now);
            assert!(held_by_another(&seen, "me", Duration::from_secs(15), now));
        }
    }

    #[test]
    fn a_record_unchanged_for_the_lease_duration_has_expired() {
        let t0 = Instant::now();
        let first = observe(None, record("a", "2026-03-01T10:00:00Z"), t0);
        let later = t0 + Duration::from_secs(14);
        let seen = observe(Some(&first), record("a", "2026-03-01T10:00:00Z"), later);
        assert_eq!(
            seen.since, t0,
            "an unchanged record keeps its first observation time"
        );
        assert!(held_by_another(&seen, "me", Duration::from_secs(15), later));
        assert!(!held_by_another(
            &seen,
            "me",
            Duration::from_secs(15),
            t0 + Duration::from_secs(15)
        ));
    }

    #[test]
    fn a_renew_time_far_in_the_past_does_not_expire_a_lease_just_seen() {
        // A follower whose clock runs an hour ahead: before the fix it took over at once.
        let now = Instant::now();
        let seen = observe(None, record("a", "2026-03-01T09:00:00Z"), now);
        assert!(held_by_another(&seen, "me", Duration::from_secs(15), now));
    }

    #[test]
    fn the_holders_own_lease_duration_counts() {
        let t0 = Instant::now();
        let mut rec = record("a", "2026-03-01T10:00:00Z");
        rec.lease_duration_seconds = Some(60);
        let seen = observe(None, rec, t0);
        assert!(held_by_another(
            &seen,
            "me",
            Duration::from_secs(15),
            t0 + Duration::from_secs(30)
        ));
    }

    #[test]
    fn a_released_or_own_lease_is_free() {
        let now = Instant::now();
        let released = observe(None, Record::default(), now);
        assert!(!held_by_another(&released, "me", Duration::from_secs(15), now));
        let mine = observe(None, record("me", "2026-03-01T10:00:00Z"), now);
        assert!(!held_by_another(&mine, "me", Duration::from_secs(15), now));
    }

    #[test]
    fn the_leader_stops_at_the_renew_deadline_before_a_follower_may_take_over() {
        let s = settings();
        let renewal = Instant::now();
        // The follower read the renewed record no earlier than the renewal began.
        let seen = observe(None, record("leader", "2026-03-01T10:00:00Z"), renewal);
        let stop = renewal + s.renew_deadline;
        assert!(!renewal_deadline_passed(
            renewal,
            s.renew_deadline,
            stop - Duration::from_millis(1)
        ));
        assert!(renewal_deadline_passed(renewal, s.renew_deadline, stop));
        assert!(held_by_another(&seen, "follower", s.lease_duration, stop));
    }

    #[test]
    fn client_go_defaults_are_valid() {
        assert_eq!(settings().validate(), Ok(()));
    }

    #[test]
    fn a_renew_deadline_not_shorter_than_the_lease_is_refused() {
        let mut s = settings();
        s.renew_deadline = s.lease_duration;
        assert!(matches!(
            s.validate(),
            Err(SettingsError::RenewDeadlineNotShorter { .. })
        ));
    }

    #[test]
    fn a_retry_period_not_shorter_than_the_renew_deadline_is_refused() {
        let mut s = settings();
        s.retry_period = s.renew_deadline;
        assert!(matches!(s.validate(), Err(SettingsError::RetryNotShorter { .. })));
        s.retry_period = Duration::ZERO;
        assert_eq!(s.validate(), Err(SettingsError::ZeroRetryPeriod));
    }
}
