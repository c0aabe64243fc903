//! Leader election on a real API server with two controllers: clock skew between them never gives two
//! leaders (expiry is measured on the follower's own clock from when it saw the Lease change), and a
//! leader cut off from the API server stops acting at its renew deadline, before the follower takes over.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/controller_harness.rs"]
mod harness;
#[path = "support/tcp_proxy.rs"]
mod tcp_proxy;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use control_plane::ControlPlane;
use driftwatch::{
    controller::{Clock, LeaderElection, ManualClock, SystemClock},
    error::Error,
};
use harness::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tcp_proxy::TcpProxy;

/// The system clock, off by a fixed amount (a node whose clock is wrong).
struct SkewedClock(SignedDuration);

impl Clock for SkewedClock {
    fn now(&self) -> Timestamp {
        Timestamp::now() + self.0
    }
}

const LEASE: &str = "driftwatch-controller";

fn election(ns: &str, identity: &str, clock: Arc<dyn Clock>) -> LeaderElection {
    LeaderElection {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        clock,
        ..LeaderElection::new(LEASE, ns, identity)
    }
}

fn leading(running: &Running) -> bool {
    running.handles.leading.load(Ordering::SeqCst)
}

async fn holder(client: &kube::Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get(LEASE)
        .await
        .expect("the Lease")
        .spec
        .and_then(|s| s.holder_identity)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::now()))
}

#[tokio::test]
async fn a_follower_whose_clock_runs_an_hour_ahead_never_takes_over_from_a_renewing_leader() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("skew").await;
    let a = start(
        client.clone(),
        &ns,
        clock(),
        Some(election(&ns, "a", Arc::new(SystemClock))),
    )
    .await;
    eventually("a leads", || async { leading(&a).then_some(()) }).await;

    // To b, every renewTime a writes looks an hour old.
    let skew = SignedDuration::from_hours(1);
    let b = start(
        client.clone(),
        &ns,
        clock(),
        Some(election(&ns, "b", Arc::new(SkewedClock(skew)))),
    )
    .await;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(12) {
        assert!(
            !leading(&b),
            "b took over from a renewing leader after {:?}",
            watched.elapsed()
        );
        assert!(leading(&a), "a stopped leading after {:?}", watched.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("a"));

    // a steps down (releasing the lease): b takes over at once, skew or not.
    a.stop().await.expect("a stops cleanly");
    eventually("b leads", || async { leading(&b).then_some(()) }).await;
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("b"));
    b.stop().await.expect("b stops cleanly");
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_acting_before_a_follower_takes_over() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("partition").await;
    let upstream = cp
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .expect("API server address");
    let proxy = TcpProxy::start(upstream).await;
    let through_proxy = cp.client_at(&format!("https://{}", proxy.addr())).await;
    let a = start(
        through_proxy,
        &ns,
        clock(),
        Some(election(&ns, "a", Arc::new(SystemClock))),
    )
    .await;
    eventually("a leads", || async { leading(&a).then_some(()) }).await;
    let b = start(
        client.clone(),
        &ns,
        clock(),
        Some(election(&ns, "b", Arc::new(SystemClock))),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(leading(&a) && !leading(&b));

    // Partition a from the API server: its renewals hang.
    proxy.cut();
    let cut = Instant::now();
    let mut a_stopped = None;
    let b_started = loop {
        let (la, lb) = (leading(&a), leading(&b));
        assert!(!(la && lb), "two leaders {:?} after the cut", cut.elapsed());
        if !la && a_stopped.is_none() {
            a_stopped = Some(cut.elapsed());
        }
        if lb {
            break cut.elapsed();
        }
        assert!(cut.elapsed() < Duration::from_secs(30), "b never took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let a_stopped = a_stopped.expect("a stopped leading");
    assert!(
        a_stopped < b_started,
        "a stopped at {a_stopped:?}, b started at {b_started:?}"
    );
    // a stopped within its renew deadline (2 s after its last renewal), b after the lease (4 s).
    assert!(
        a_stopped <= Duration::from_secs(3),
        "a stopped after {a_stopped:?}"
    );
    eprintln!("after the cut: a stopped at {a_stopped:?}, b took over at {b_started:?}");
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("b"));
    assert!(matches!(a.stop().await, Err(Error::LeadershipLost)));
    b.stop().await.expect("b stops cleanly");
}

#[tokio::test]
async fn settings_that_could_give_two_leaders_are_refused_before_anything_runs() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let mut settings = election("default", "a", Arc::new(SystemClock));
    settings.renew_deadline = settings.lease_duration;
    let running = start(client, "default", clock(), Some(settings)).await;
    assert!(matches!(running.stop().await, Err(Error::LeaderSettings(_))));
}
