//! Check results on a real API server: success → status, conditions, history, gauges; drift → one
//! DriftEvent, repeats update it, Ignore starts a cooldown; failures → Degraded, Warning, counter; a
//! controller restart mid-check neither duplicates nor loses anything; with leader election only one acts.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/controller_harness.rs"]
mod harness;

use std::{sync::Arc, time::Duration};

use control_plane::ControlPlane;
use driftwatch::{
    api::v1alpha1::{
        DriftEvent, ExamplePoint, Explanation, Phase, RegionSummary, SamplingMethod, SliceSummary,
    },
    controller::{LeaderElection, ManualClock},
    job::result::CheckReport,
};
use harness::*;
use jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

fn condition(monitor: &driftwatch::api::v1alpha1::DriftMonitor, type_: &str) -> (String, String) {
    let c = monitor
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

async fn wait_processed(client: &Client, ns: &str, name: &str, check_id: &str) {
    eventually(&format!("{check_id} processed"), || async {
        let status = get_monitor(client, ns, name).await.status?;
        (status.last_processed_check_id.as_deref() == Some(check_id)).then_some(())
    })
    .await;
}

async fn events(client: &Client, ns: &str) -> Vec<DriftEvent> {
    Api::<DriftEvent>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
}

/// Sets the clock to `slot` + 10 s and returns the Job name created for it.
async fn run_slot(client: &Client, ns: &str, clock: &ManualClock, slot: Timestamp, n: usize) -> String {
    clock.set(after(slot, 10));
    let stamp = slot.strftime("%Y%m%d%H%M").to_string();
    eventually("the slot's Job", || async {
        let all = jobs(client, ns).await;
        let found = all
            .iter()
            .find(|j| j.name_any().ends_with(&stamp))
            .map(|j| j.name_any());
        let _ = n;
        found
    })
    .await
}

#[tokio::test]
async fn a_successful_check_fills_status_conditions_history_and_gauges() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("success").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let slot = next_hour(created(&monitor));
    let job = run_slot(&client, &ns, &clock, slot, 1).await;
    finish_job(
        &client,
        &ns,
        &job,
        &CheckReport::success(&job, outcome(0.042, false)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job).await;

    let monitor = get_monitor(&client, &ns, "frames").await;
    let status = monitor.status.clone().unwrap();
    assert_eq!(status.last_score, Some(0.042));
    let last = status.last_result.clone().unwrap();
    assert_eq!(last.check_id, job);
    assert!(!last.drift_detected);
    assert_eq!(last.samples.reference, 2000);
    // How each window was sampled and how much was read reaches the status.
    assert_eq!(last.samples.reference_sampling, Some(SamplingMethod::All));
    assert_eq!(last.samples.comparison_sampling, Some(SamplingMethod::Random));
    assert_eq!(last.samples.comparison_read, Some(500));
    assert_eq!(status.history.len(), 1);
    assert!(status.last_successful_time.is_some());
    assert_eq!(status.active_job, None);
    assert_eq!(status.observed_generation, monitor.metadata.generation);
    assert_eq!(condition(&monitor, "Ready"), ("True".into(), "Scheduled".into()));
    assert_eq!(condition(&monitor, "Drifted"), ("False".into(), "NoDrift".into()));
    assert_eq!(
        condition(&monitor, "Degraded"),
        ("False".into(), "CheckSucceeded".into())
    );
    assert!(events(&client, &ns).await.is_empty());

    let text = eventually("gauges", || async {
        let text = running.metrics.render();
        text.contains("video_ai_drift_score{").then_some(text)
    })
    .await;
    let score = format!(
        "video_ai_drift_score{{method=\"kl_divergence\",monitor=\"frames\",namespace=\"{ns}\",source=\"embeddings\"}} 0.042"
    );
    assert!(text.contains(&score), "{text}");
    assert!(text.contains("video_ai_drift_threshold{"));
    assert!(text.contains("video_ai_drift_last_success_timestamp_seconds{"));
    // The hourly schedule's interval, for DriftCheckStale.
    assert!(
        text.contains(&format!(
            "video_ai_drift_schedule_interval_seconds{{monitor=\"frames\",namespace=\"{ns}\"}} 3600"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "video_ai_drift_check_duration_seconds_count{{monitor=\"frames\",namespace=\"{ns}\"}} 1"
    )));
    assert!(k8s_events(&client, &ns, "frames", "CheckSucceeded").await.len() == 1);

    // HTTP: /metrics and /readyz answer.
    let addr = running.handles.http_addr().unwrap();
    let body = http_get(addr, "/metrics").await;
    assert!(body.contains("video_ai_drift_score"));
    promtool_check_metrics(&body);
    assert!(http_get(addr, "/readyz").await.contains("ok"));
    running.stop().await.unwrap();
}

/// `promtool check metrics` (Prometheus' own linter) on a real scrape: names, types, HELP, units.
fn promtool_check_metrics(response: &str) {
    use std::io::Write;
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    let promtool = std::env::var("DRIFTWATCH_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {promtool} (hack/ops-deps.sh installs it): {e}"));
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test]
async fn drift_raises_one_event_repeats_update_it_and_ignore_starts_a_cooldown() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("drift").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let slot1 = next_hour(created(&monitor));

    // First drift: one event in review.
    let job1 = run_slot(&client, &ns, &clock, slot1, 1).await;
    finish_job(
        &client,
        &ns,
        &job1,
        &CheckReport::success(&job1, outcome(0.35, true)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job1).await;
    let all = events(&client, &ns).await;
    assert_eq!(all.len(), 1);
    let event = &all[0];
    let stamp1 = slot1.strftime("%Y%m%d%H%M").to_string();
    assert_eq!(event.name_any(), format!("frames-{stamp1}"));
    assert_eq!(event.spec.drift_score, 0.35);
    assert_eq!(event.spec.monitor_ref.name, "frames");
    assert_eq!(event.status.as_ref().unwrap().phase, Some(Phase::NeedsReview));
    let monitor_now = get_monitor(&client, &ns, "frames").await;
    assert_eq!(condition(&monitor_now, "Drifted").0, "True");
    assert_eq!(monitor_now.status.unwrap().open_event, Some(event.name_any()));

    // Second drift: the same event counts two occurrences.
    let slot2 = after(slot1, 3600);
    let job2 = run_slot(&client, &ns, &clock, slot2, 2).await;
    finish_job(
        &client,
        &ns,
        &job2,
        &CheckReport::success(&job2, outcome(0.5, true)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job2).await;
    let all = events(&client, &ns).await;
    assert_eq!(all.len(), 1);
    let status = all[0].status.clone().unwrap();
    assert_eq!(status.occurrences, Some(2));
    assert_eq!(status.latest_score, Some(0.5));
    assert_eq!(status.latest_check_id.as_deref(), Some(job2.as_str()));

    // Ignore: the event becomes Ignored with the audit trail.
    let patch =
        json!({"spec": {"approval": {"decision": "Ignore", "approvedBy": "alice", "reason": "seasonal"}}});
    Api::<DriftEvent>::namespaced(client.clone(), &ns)
        .patch(&all[0].name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let ignored = eventually("Ignored", || async {
        let e = events(&client, &ns).await.pop()?;
        (e.status.as_ref()?.phase == Some(Phase::Ignored)).then_some(e)
    })
    .await;
    let trail = &ignored.status.unwrap().transitions;
    assert_eq!(trail.last().unwrap().actor.as_deref(), Some("alice"));
    eventually("monitor notes the ignore", || async {
        let status = get_monitor(&client, &ns, "frames").await.status?;
        (status.last_ignored_time.is_some() && status.open_event.is_none()).then_some(())
    })
    .await;

    // Third drift within the 24 h cooldown: no new event.
    let slot3 = after(slot2, 3600);
    let job3 = run_slot(&client, &ns, &clock, slot3, 3).await;
    finish_job(
        &client,
        &ns,
        &job3,
        &CheckReport::success(&job3, outcome(0.6, true)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job3).await;
    assert_eq!(events(&client, &ns).await.len(), 1);

    let text = running.metrics.render();
    assert!(text.contains(&format!(
        "video_ai_drift_detected_total{{monitor=\"frames\",namespace=\"{ns}\"}} 3"
    )));
    assert!(text.contains(&format!(
        "video_ai_drift_events{{monitor=\"frames\",namespace=\"{ns}\",phase=\"Ignored\"}} 1"
    )));
    // Finished Jobs are pruned to the history limit (3) only beyond it: all three remain.
    assert_eq!(jobs(&client, &ns).await.len(), 3);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_check_marks_the_monitor_degraded_with_a_warning_and_a_counter() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("failed").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = run_slot(&client, &ns, &clock, next_hour(created(&monitor)), 1).await;
    let report = CheckReport::failure(&job, "SourceUnavailable", "qdrant: connection refused");
    finish_job(&client, &ns, &job, &report, false).await;
    wait_processed(&client, &ns, "frames", &job).await;
    let monitor = get_monitor(&client, &ns, "frames").await;
    assert_eq!(
        condition(&monitor, "Degraded"),
        ("True".into(), "CheckFailed".into())
    );
    let status = monitor.status.unwrap();
    assert_eq!(status.history[0].error.as_deref(), Some("SourceUnavailable"));
    assert_eq!(status.last_result, None);
    let warnings = eventually("CheckFailed event", || async {
        let e = k8s_events(&client, &ns, "frames", "CheckFailed").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    assert!(
        warnings[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("connection refused")
    );
    assert!(running.metrics.render().contains(&format!(
        "video_ai_drift_check_failures_total{{kind=\"SourceUnavailable\",monitor=\"frames\",namespace=\"{ns}\"}} 1"
    )));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_restart_mid_check_processes_the_result_once_and_rebuilds_the_gauges() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("restart").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = run_slot(&client, &ns, &clock, next_hour(created(&monitor)), 1).await;
    running.stop().await.unwrap();

    // While the controller is down the check finishes with drift.
    finish_job(
        &client,
        &ns,
        &job,
        &CheckReport::success(&job, outcome(0.3, true)),
        true,
    )
    .await;
    clock.advance(jiff::SignedDuration::from_mins(5));

    let running = start(client.clone(), &ns, clock.clone(), None).await;
    wait_processed(&client, &ns, "frames", &job).await;
    let text = eventually("rebuilt gauges", || async {
        let t = running.metrics.render();
        t.contains("video_ai_drift_score{").then_some(t)
    })
    .await;
    assert!(text.contains("} 0.3"));
    assert_eq!(events(&client, &ns).await.len(), 1);
    running.stop().await.unwrap();

    // Another restart: nothing is processed or raised twice.
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    eventually("ready", || async {
        running
            .handles
            .ready
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
    })
    .await;
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    assert_eq!(events(&client, &ns).await.len(), 1);
    assert_eq!(
        events(&client, &ns).await[0].status.as_ref().unwrap().occurrences,
        Some(1)
    );
    let text = running.metrics.render();
    assert!(
        !text.contains("video_ai_drift_detected_total{"),
        "counters count only results processed by this run"
    );
    assert!(text.contains("video_ai_drift_score{"));
    assert_eq!(
        get_monitor(&client, &ns, "frames")
            .await
            .status
            .unwrap()
            .history
            .len(),
        1
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn with_leader_election_only_the_leader_acts_and_a_follower_takes_over() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("leader").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let election = |identity: &str| LeaderElection {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        ..LeaderElection::new("driftwatch-controller", &ns, identity)
    };
    let a = start(client.clone(), &ns, clock.clone(), Some(election("a"))).await;
    eventually("a leads", || async {
        a.handles
            .leading
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
    })
    .await;
    let b = start(client.clone(), &ns, clock.clone(), Some(election("b"))).await;
    let slot = next_hour(created(&monitor));
    let job = run_slot(&client, &ns, &clock, slot, 1).await;
    settle().await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    assert!(!b.handles.leading.load(std::sync::atomic::Ordering::Relaxed));
    // The follower serves health and reports ready while standing by.
    assert!(b.handles.ready.load(std::sync::atomic::Ordering::Relaxed));

    // The leader stops (and releases the lease); the follower takes over and processes the result.
    a.stop().await.unwrap();
    eventually("b leads", || async {
        b.handles
            .leading
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
    })
    .await;
    finish_job(
        &client,
        &ns,
        &job,
        &CheckReport::success(&job, outcome(0.01, false)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job).await;
    assert_eq!(jobs(&client, &ns).await.len(), 1);
    b.stop().await.unwrap();
}

#[tokio::test]
async fn a_status_computed_from_a_stale_read_conflicts_instead_of_overwriting_a_newer_write() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("stale").await;
    create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    // A reconcile starts from this read (e.g. a lagging cache, or a replica that still thinks it leads)…
    let stale = get_monitor(&client, &ns, "frames").await;
    // …while another controller instance records something in the status, under the same field manager.
    let api: Api<driftwatch::api::v1alpha1::DriftMonitor> = Api::namespaced(client.clone(), &ns);
    let newer = driftwatch::api::v1alpha1::DriftMonitorStatus {
        last_run_now: Some("handled-by-the-other-writer".into()),
        last_processed_check_id: Some("frames-202601010000".into()),
        ..Default::default()
    };
    driftwatch::k8s::apply::apply_status(&api, "frames", &newer, None)
        .await
        .expect("the other writer's status");

    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let ctx = context(client.clone(), clock);
    let outcome = driftwatch::controller::drift_monitor::reconcile(Arc::new(stale), ctx.clone()).await;
    let err = outcome.expect_err("a write from a stale read must fail");
    assert!(err.is_conflict(), "409 Conflict, got {err}");
    let status = get_monitor(&client, &ns, "frames").await.status.unwrap();
    assert_eq!(
        status.last_run_now.as_deref(),
        Some("handled-by-the-other-writer"),
        "the newer write survives"
    );

    // The retry reads again and keeps what the other writer recorded.
    let fresh = get_monitor(&client, &ns, "frames").await;
    driftwatch::controller::drift_monitor::reconcile(Arc::new(fresh), ctx)
        .await
        .expect("a reconcile from a fresh read");
    let status = get_monitor(&client, &ns, "frames").await.status.unwrap();
    assert_eq!(
        status.last_run_now.as_deref(),
        Some("handled-by-the-other-writer")
    );
    assert_eq!(
        status.last_processed_check_id.as_deref(),
        Some("frames-202601010000")
    );
    assert_eq!(
        condition(&get_monitor(&client, &ns, "frames").await, "Ready").0,
        "True"
    );
}

/// The cells of `kubectl get <plural>` as the API server renders them (server-side printing).
async fn table(client: &Client, ns: &str, plural: &str) -> Vec<(String, serde_json::Value)> {
    let request = http::Request::get(format!("/apis/driftwatch.dev/v1alpha1/namespaces/{ns}/{plural}"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value = client.request(request).await.unwrap();
    let names: Vec<String> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let row = table["rows"][0]["cells"].as_array().unwrap().clone();
    names.into_iter().zip(row).collect()
}

fn cell(cells: &[(String, serde_json::Value)], name: &str) -> serde_json::Value {
    cells
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no column {name} in {cells:?}"))
        .1
        .clone()
}

#[tokio::test]
async fn printer_columns_show_four_significant_digits_while_status_keeps_full_precision() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("columns").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = run_slot(&client, &ns, &clock, next_hour(created(&monitor)), 1).await;
    let score = 0.111_588_532_403_535_96;
    finish_job(
        &client,
        &ns,
        &job,
        &CheckReport::success(&job, outcome(score, true)),
        true,
    )
    .await;
    wait_processed(&client, &ns, "frames", &job).await;
    let event = eventually("the event's status", || async {
        let event = events(&client, &ns).await.into_iter().next()?;
        event.status.as_ref()?.phase.map(|_| event)
    })
    .await;

    let monitor = get_monitor(&client, &ns, "frames").await;
    assert_eq!(monitor.status.unwrap().last_score, Some(score));
    assert_eq!(event.spec.drift_score, score);
    let monitors = table(&client, &ns, "driftmonitors").await;
    assert_eq!(cell(&monitors, "Last Score"), json!(0.1116), "{monitors:?}");
    let events = table(&client, &ns, "driftevents").await;
    assert_eq!(cell(&events, "Score"), json!(0.1116), "{events:?}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn finished_checks_beyond_the_status_history_are_processed_once_and_pruned_to_the_history_limit() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("many-jobs").await;
    // More finished Jobs kept (historyLimit) than status.history holds (50).
    let mut manifest = monitor_manifest("frames", "0 0 1 1 *");
    manifest.spec.job_template = Some(driftwatch::api::v1alpha1::JobTemplateSpec {
        history_limit: Some(52),
        ..Default::default()
    });
    let monitor = create_monitor(&client, &ns, &manifest).await;
    let first = next_hour(created(&monitor)) - jiff::SignedDuration::from_hours(100);
    let settings = driftwatch::controller::JobSettings::new(IMAGE);
    let jobs_api: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), &ns);
    let mut names = Vec::new();
    for i in 0..55 {
        let slot = first + jiff::SignedDuration::from_hours(i);
        let job = driftwatch::controller::drift_monitor::desired::check_job(&monitor, slot, None, &settings)
            .unwrap();
        let job = jobs_api
            .create(&kube::api::PostParams::default(), &job)
            .await
            .unwrap();
        let name = job.name_any();
        finish_job(
            &client,
            &ns,
            &name,
            &CheckReport::success(&name, outcome(0.01 + i as f64 / 1000.0, false)),
            true,
        )
        .await;
        names.push(name);
    }
    let newest = names.last().unwrap().clone();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    wait_processed(&client, &ns, "frames", &newest).await;
    let kept = eventually("pruning to the history limit", || async {
        let kept = jobs(&client, &ns).await;
        (kept.len() == 52).then_some(kept)
    })
    .await;
    let mut kept: Vec<String> = kept.iter().map(|j| j.name_any()).collect();
    kept.sort();
    let mut newest_52 = names[3..].to_vec();
    newest_52.sort();
    assert_eq!(kept, newest_52, "the oldest are pruned");

    // Further reconciles change nothing: no check is folded in again.
    settle().await;
    let before = get_monitor(&client, &ns, "frames").await;
    Api::<driftwatch::api::v1alpha1::DriftMonitor>::namespaced(client.clone(), &ns)
        .patch(
            "frames",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    settle().await;
    let after = get_monitor(&client, &ns, "frames").await;
    assert_eq!(before.status, after.status);
    let status = after.status.unwrap();
    assert_eq!(status.last_processed_check_id.as_deref(), Some(newest.as_str()));
    assert_eq!(status.last_result.unwrap().check_id, newest);
    let metrics = running.metrics.render();
    assert!(
        metrics.contains(&format!(
            "video_ai_drift_check_duration_seconds_count{{monitor=\"frames\",namespace=\"{ns}\"}} 55"
        )),
        "each check counted once: {metrics}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_result_naming_another_check_is_unreadable_and_raises_no_event() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("other-check").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let job = run_slot(&client, &ns, &clock, next_hour(created(&monitor)), 1).await;
    // A drifting result, but about another check (copied from elsewhere, or forged).
    let report = CheckReport::success("frames-190001010000", outcome(0.9, true));
    finish_job(&client, &ns, &job, &report, true).await;
    wait_processed(&client, &ns, "frames", &job).await;
    let monitor = get_monitor(&client, &ns, "frames").await;
    assert_eq!(
        condition(&monitor, "Degraded"),
        ("True".into(), "CheckFailed".into())
    );
    let status = monitor.status.unwrap();
    assert_eq!(status.history[0].error.as_deref(), Some("ResultUnreadable"));
    assert_eq!(status.last_result, None);
    let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
    assert!(
        degraded.message.contains("frames-190001010000"),
        "{}",
        degraded.message
    );
    assert!(
        events(&client, &ns).await.is_empty(),
        "no DriftEvent from a foreign result"
    );
    running.stop().await.unwrap();
}

fn explanation(camera: &str, example: &str) -> Explanation {
    let point = ExamplePoint {
        id: example.into(),
        fields: [(
            "frame_url".to_string(),
            format!("https://frames.example.com/{example}.jpg"),
        )]
        .into(),
    };
    Explanation {
        slices: vec![SliceSummary {
            field: "camera_id".into(),
            value: camera.into(),
            status: "drifted".into(),
            counts: [400, 120],
            shares: [0.2, 0.24],
            p_value: Some(0.001),
            adjusted_p_value: Some(0.004),
            examples: vec![point.clone()],
        }],
        slices_tested: Some(5),
        regions: vec![RegionSummary {
            region: 2,
            kind: "new".into(),
            counts: [0, 25],
            shares: [0.0, 0.05],
            examples: vec![point],
        }],
        seconds: Some(0.4),
        truncated: false,
    }
}

#[tokio::test]
async fn a_check_job_s_explanation_reaches_the_event_and_a_repeat_replaces_it() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let ns = cp.namespace("explained").await;
    let monitor = create_monitor(&client, &ns, &monitor_manifest("frames", "0 * * * *")).await;
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let running = start(client.clone(), &ns, clock.clone(), None).await;
    let slot1 = next_hour(created(&monitor));

    // The explanation travels in the Job's termination message, as a check Job writes it.
    let job1 = run_slot(&client, &ns, &clock, slot1, 1).await;
    let mut first = outcome(0.35, true);
    first.explanation = Some(explanation("cam-7", "frame-1"));
    finish_job(&client, &ns, &job1, &CheckReport::success(&job1, first), true).await;
    wait_processed(&client, &ns, "frames", &job1).await;
    let event = events(&client, &ns).await.pop().expect("an event");
    assert_eq!(
        event.status.unwrap().explanation,
        Some(explanation("cam-7", "frame-1"))
    );

    // The next drifted check of the open event brings its own explanation.
    let slot2 = after(slot1, 3600);
    let job2 = run_slot(&client, &ns, &clock, slot2, 2).await;
    let mut second = outcome(0.5, true);
    second.explanation = Some(explanation("cam-9", "frame-2"));
    finish_job(&client, &ns, &job2, &CheckReport::success(&job2, second), true).await;
    wait_processed(&client, &ns, "frames", &job2).await;
    let all = events(&client, &ns).await;
    assert_eq!(all.len(), 1);
    let status = all[0].status.clone().unwrap();
    assert_eq!(status.occurrences, Some(2));
    assert_eq!(status.explanation, Some(explanation("cam-9", "frame-2")));
    running.stop().await.unwrap();
}
