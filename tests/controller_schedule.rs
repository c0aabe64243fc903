//! The DriftMonitor controller's scheduling on a real API server, with a manual clock: a due slot creates
//! exactly one check Job with the contract's spec; run-now, suspend, missed slots, concurrency Forbid and
//! invalid schedules behave like a CronJob user expects.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/controller_harness.rs"]
mod harness;

use std::sync::Arc;

use control_plane::ControlPlane;
use driftwatch::{api::v1alpha1::DriftMonitor, controller::ManualClock, job::result::CheckReport};
use harness::*;
use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[tokio::test]
async fn a_due_slot_creates_exactly_one_check_job_with_the_expected_spec() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("sched").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let running = start(client.clone(), &ns, clock.clone(), None).await;

    // Before the slot: nothing runs, nextScheduleTime is the slot.
    let slot = next_hour(created(&monitor));
    let status = eventually("status with nextScheduleTime", || async {
        get_monitor(&client, &ns, "frames")
            .await
            .status
            .filter(|s| s.next_schedule_time.is_some())
    })
    .await;
    assert_eq!(status.next_schedule_time.unwrap().0, slot);
    assert!(jobs(&client, &ns).await.is_empty());

    clock.set(after(slot, 20));
    let jobs_now = wait_for_jobs(&client, &ns, 1).await;
    let job = &jobs_now[0];
    let stamp = slot.strftime("%Y%m%d%H%M").to_string();
    assert_eq!(job.name_any(), format!("frames-{stamp}"));
    let labels = job.labels();
    assert_eq!(labels["driftwatch.dev/monitor"], "frames");
    assert_eq!(labels["app.kubernetes.io/component"], "drift-check");
    let owner = &job.owner_references()[0];
    assert_eq!(owner.uid, monitor.metadata.uid.clone().unwrap());
    assert_eq!(owner.controller, Some(true));
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    let args = container.args.clone().unwrap();
    assert_eq!(args[0], "check");
    assert_eq!(arg(&args, "--at"), Some(slot.to_string().as_str()));
    assert_eq!(arg(&args, "--check-id"), Some(job.name_any().as_str()));
    assert_eq!(arg(&args, "--collection"), Some("video_frames"));

    // Later reconciles in the same slot create nothing more.
    clock.set(after(slot, 40));
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    let status = get_monitor(&client, &ns, "frames").await.status.unwrap();
    assert_eq!(status.last_schedule_time.unwrap().0, slot);
    assert_eq!(status.active_job.as_deref(), Some(job.name_any().as_str()));
    assert_eq!(status.next_schedule_time.unwrap().0, after(slot, 3600));
    let scheduled = k8s_events(&client, &ns, "frames", "CheckScheduled").await;
    assert_eq!(scheduled.len(), 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_active_check_forbids_the_next_slot_until_it_finishes() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("forbid").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let slot = next_hour(created(&monitor));
    clock.set(after(slot, 10));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let first = wait_for_jobs(&client, &ns, 1).await[0].name_any();

    // The next slot comes while the first check still runs: nothing new.
    clock.set(after(slot, 3600 + 10));
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);

    // Once it finishes, the missed slot (within the starting deadline) runs.
    finish_job(
        &client,
        &ns,
        &first,
        &CheckReport::success(&first, outcome(0.01, false)),
        true,
    )
    .await;
    let all = wait_for_jobs(&client, &ns, 2).await;
    let stamp = after(slot, 3600).strftime("%Y%m%d%H%M").to_string();
    assert!(all.iter().any(|j| j.name_any() == format!("frames-{stamp}")));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_run_now_annotation_runs_one_check_per_new_value() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("runnow").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let mut manifest = monitor_manifest("frames", "0 2 * * *");
    manifest.spec.suspend = true;
    create_monitor(&client, &ns, &manifest).await;
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let api: Api<DriftMonitor> = Api::namespaced(client.clone(), &ns);
    let annotate = |value: &'static str| {
        let api = api.clone();
        async move {
            let patch = json!({"metadata": {"annotations": {"driftwatch.dev/run-now": value}}});
            api.patch("frames", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    settle().await;
    assert!(
        jobs(&client, &ns).await.is_empty(),
        "suspended: no scheduled check"
    );

    annotate("2026-11-26T10:00:00Z").await;
    let first = wait_for_jobs(&client, &ns, 1).await[0].clone();
    assert_eq!(
        first.annotations()["driftwatch.dev/run-now"],
        "2026-11-26T10:00:00Z"
    );
    let status = eventually("run-now recorded", || async {
        get_monitor(&client, &ns, "frames")
            .await
            .status
            .filter(|s| s.last_run_now.is_some())
    })
    .await;
    assert_eq!(status.last_run_now.as_deref(), Some("2026-11-26T10:00:00Z"));

    // The same value again does nothing.
    clock.advance(jiff::SignedDuration::from_mins(5));
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);

    // A new value runs again once the first check finished.
    let first_name = first.name_any();
    finish_job(
        &client,
        &ns,
        &first_name,
        &CheckReport::success(&first_name, outcome(0.01, false)),
        true,
    )
    .await;
    annotate("2026-11-26T10:05:00Z").await;
    wait_for_jobs(&client, &ns, 2).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_suspended_monitor_schedules_nothing() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("suspend").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let mut manifest = monitor_manifest("frames", "* * * * *");
    manifest.spec.suspend = true;
    let monitor = create_monitor(&client, &ns, &manifest).await;
    clock.set(after(created(&monitor), 300));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let status = eventually("Ready condition", || async {
        get_monitor(&client, &ns, "frames")
            .await
            .status
            .filter(|s| !s.conditions.is_empty())
    })
    .await;
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Suspended")
    );
    assert_eq!(status.next_schedule_time, None);
    clock.advance(jiff::SignedDuration::from_mins(3));
    settle().await;
    assert!(jobs(&client, &ns).await.is_empty());

    // Resuming runs the latest missed slot.
    let patch = json!({"spec": {"suspend": false}});
    Api::<DriftMonitor>::namespaced(client.clone(), &ns)
        .patch("frames", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for_jobs(&client, &ns, 1).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn slots_missed_while_the_controller_was_down_run_once() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("missed").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "*/10 * * * *")).await;
    // The controller starts 35 minutes after creation: three slots were missed.
    let now = after(created(&monitor), 35 * 60);
    let clock = Arc::new(ManualClock::new(now));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = wait_for_jobs(&client, &ns, 1).await[0].clone();
    let s = now.as_second();
    let latest = Timestamp::from_second(s - s.rem_euclid(600)).unwrap();
    assert_eq!(job.annotations()["driftwatch.dev/slot"], latest.to_string());
    clock.advance(jiff::SignedDuration::from_secs(30));
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    running.stop().await.unwrap();

    // A restart does not run it again either.
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_slot_missed_beyond_the_starting_deadline_is_skipped() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("deadline").await;
    let mut manifest = monitor_manifest("frames", "0 * * * *");
    manifest.spec.starting_deadline_seconds = Some(60);
    let monitor = create_monitor(&client, &ns, &manifest).await;
    let clock = Arc::new(ManualClock::new(after(next_hour(created(&monitor)), 600)));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    eventually("status", || async {
        get_monitor(&client, &ns, "frames").await.status
    })
    .await;
    settle().await;
    assert!(jobs(&client, &ns).await.is_empty());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_invalid_schedule_sets_ready_false_invalid_spec_with_a_warning_and_no_job() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("invalid").await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    create_monitor(&client, &ns, &monitor_manifest("bad-cron", "61 * * * *")).await;
    let mut tz = monitor_manifest("bad-tz", "0 * * * *");
    tz.spec.time_zone = Some("Mars/Olympus".into());
    create_monitor(&client, &ns, &tz).await;
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    for (name, needle) in [("bad-cron", "minute"), ("bad-tz", "Mars/Olympus")] {
        let status = eventually("InvalidSpec", || async {
            get_monitor(&client, &ns, name)
                .await
                .status
                .filter(|s| !s.conditions.is_empty())
        })
        .await;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.contains(needle), "{}", ready.message);
        let warnings = eventually("InvalidSpec event", || async {
            let events = k8s_events(&client, &ns, name, "InvalidSpec").await;
            (!events.is_empty()).then_some(events)
        })
        .await;
        assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    }
    // Time passing does not produce more warnings or any Job.
    clock.advance(jiff::SignedDuration::from_hours(2));
    settle().await;
    assert!(jobs(&client, &ns).await.is_empty());
    assert_eq!(k8s_events(&client, &ns, "bad-cron", "InvalidSpec").await.len(), 1);

    // Fixing the spec makes it Ready.
    let patch = json!({"spec": {"schedule": "0 * * * *"}});
    Api::<DriftMonitor>::namespaced(client.clone(), &ns)
        .patch("bad-cron", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("Ready=True", || async {
        let status = get_monitor(&client, &ns, "bad-cron").await.status?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    running.stop().await.unwrap();
}
