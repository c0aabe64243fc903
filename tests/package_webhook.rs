//! The retraining webhook against a real HTTP receiver: retries, backoff, Retry-After, timeouts, 4xx,
//! idempotency key, bearer token and HMAC signature.

#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::time::Duration;

use driftwatch::job::package::webhook::{
    self, Attempt, RetryPolicy, WebhookBody, WebhookError, WebhookSettings, WindowBody,
};
use webhook_receiver::{Receiver, Reply};

fn body() -> WebhookBody {
    WebhookBody {
        event_id: "ml/frames-20261126t020000z".into(),
        monitor: "frames".into(),
        s3_uri: "s3://retrain/batches/ml/frames-20261126t020000z/batch.tar.gz".into(),
        sha256: "ab".repeat(32),
        sample_size: 1000,
        reference_window: WindowBody {
            start_time: Some("2026-11-18T00:00:00Z".into()),
            end_time: Some("2026-11-25T00:00:00Z".into()),
        },
        comparison_window: WindowBody {
            start_time: Some("2026-11-25T00:00:00Z".into()),
            end_time: Some("2026-11-26T00:00:00Z".into()),
        },
        drift_scores: serde_json::json!([{"method": "kl_divergence", "source": "embeddings", "score": 0.31}]),
        approved_by: "alice".into(),
        reason: Some("new camera firmware".into()),
        event_uid: Some("4f1c2a7e-uid".into()),
        size_bytes: 4242,
    }
}

fn settings(url: &str) -> WebhookSettings {
    WebhookSettings {
        url: url.to_string(),
        token: Some("s3cr3t-token".into()),
        hmac_key: Some("hmac-key".into()),
        idempotency_key: "4f1c2a7e-uid".into(),
        timeout: Duration::from_secs(5),
        policy: RetryPolicy {
            retries: 3,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
        },
    }
}

fn timeline(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| {
            format!(
                "#{} at {:.3}s {} wait {}",
                a.number,
                a.at.as_secs_f64(),
                a.detail.split(':').next().unwrap_or(""),
                a.wait
                    .map(|w| format!("{:.3}s", w.as_secs_f64()))
                    .unwrap_or_else(|| "-".into())
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn two_failures_then_success_delivers_on_the_third_attempt_with_backoff() {
    let receiver = Receiver::start(vec![
        Reply::Status(503),
        Reply::Status(502),
        Reply::Ok(serde_json::json!({"job_id": "retrain-77"})),
    ])
    .await;
    let delivery = webhook::deliver(&settings(&receiver.url), &body()).await.unwrap();
    eprintln!("timeline (fail 2, then 200): {}", timeline(&delivery.attempts));
    assert_eq!(delivery.attempts.len(), 3);
    assert_eq!(delivery.job_id.as_deref(), Some("retrain-77"));
    // Exponential backoff with ±50 % jitter: the n-th wait lies in [base·2^(n-1)/2, base·2^(n-1)·3/2].
    let waits: Vec<Duration> = delivery.attempts.iter().filter_map(|a| a.wait).collect();
    assert_eq!(waits.len(), 2);
    assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(150));
    assert!(waits[1] >= Duration::from_millis(100) && waits[1] <= Duration::from_millis(300));
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received[1].at - received[0].at >= waits[0]);
    assert!(received[2].at - received[1].at >= waits[1]);
}

#[tokio::test]
async fn every_request_carries_the_idempotency_key_token_and_a_verifiable_signature() {
    let receiver = Receiver::start(vec![
        Reply::Status(500),
        Reply::Ok(serde_json::json!({"retraining_job_id": "rj-1"})),
    ])
    .await;
    let delivery = webhook::deliver(&settings(&receiver.url), &body()).await.unwrap();
    assert_eq!(delivery.job_id.as_deref(), Some("rj-1"));
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(header("idempotency-key"), "4f1c2a7e-uid");
        assert_eq!(header("authorization"), "Bearer s3cr3t-token");
        assert_eq!(header("content-type"), "application/json");
        // The receiver verifies the HMAC over the exact bytes it got, independently of our signer.
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key").unwrap();
        mac.update(&request.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(header("x-driftwatch-signature"), expected);
        let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        for field in [
            "event_id",
            "monitor",
            "s3_uri",
            "sha256",
            "sample_size",
            "reference_window",
            "comparison_window",
            "drift_scores",
            "approved_by",
            "reason",
        ] {
            assert!(json.get(field).is_some(), "body lacks {field}: {json}");
        }
        assert_eq!(json["comparison_window"]["start_time"], "2026-11-25T00:00:00Z");
    }
    // Retries send the identical body.
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn a_server_that_always_fails_gets_one_attempt_and_three_retries() {
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let err = webhook::deliver(&settings(&receiver.url), &body())
        .await
        .unwrap_err();
    match &err {
        WebhookError::Exhausted { attempts, last } => {
            eprintln!("timeline (always 500): {}", timeline(attempts));
            assert_eq!(attempts.len(), 4);
            assert!(last.contains("HTTP 500"), "{last}");
            assert!(attempts.last().unwrap().wait.is_none());
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn a_client_error_fails_at_once_without_retrying() {
    let receiver = Receiver::start(vec![Reply::Status(400), Reply::Ok(serde_json::json!({}))]).await;
    let err = webhook::deliver(&settings(&receiver.url), &body())
        .await
        .unwrap_err();
    match &err {
        WebhookError::Rejected { status, attempts, .. } => {
            assert_eq!(*status, 400);
            assert_eq!(attempts.len(), 1);
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_the_attempt_is_retried() {
    let receiver = Receiver::start(vec![
        Reply::Slow(Duration::from_secs(3)),
        Reply::Ok(serde_json::json!({"job_id": "after-timeout"})),
    ])
    .await;
    let mut settings = settings(&receiver.url);
    settings.timeout = Duration::from_millis(300);
    let delivery = webhook::deliver(&settings, &body()).await.unwrap();
    eprintln!("timeline (slow, then 200): {}", timeline(&delivery.attempts));
    assert_eq!(delivery.attempts.len(), 2);
    assert!(delivery.attempts[0].status.is_none());
    assert!(
        delivery.attempts[0].detail.starts_with("timed out"),
        "{:?}",
        delivery.attempts[0]
    );
    assert_eq!(delivery.job_id.as_deref(), Some("after-timeout"));
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let receiver = Receiver::start(vec![
        Reply::TooMany(1),
        Reply::Ok(serde_json::json!({"job_id": "j"})),
    ])
    .await;
    let delivery = webhook::deliver(&settings(&receiver.url), &body()).await.unwrap();
    eprintln!(
        "timeline (429 Retry-After: 1, then 200): {}",
        timeline(&delivery.attempts)
    );
    assert_eq!(delivery.attempts.len(), 2);
    assert_eq!(delivery.attempts[0].status, Some(429));
    assert_eq!(delivery.attempts[0].wait, Some(Duration::from_secs(1)));
    let received = receiver.received();
    assert!(received[1].at - received[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_then_reported() {
    // A port nobody listens on: bind, note the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = settings(&format!("http://127.0.0.1:{port}/hook"));
    settings.policy.retries = 1;
    let err = webhook::deliver(&settings, &body()).await.unwrap_err();
    match &err {
        WebhookError::Exhausted { attempts, last } => {
            assert_eq!(attempts.len(), 2);
            assert!(last.starts_with("connection failed"), "{last}");
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_huge_response_body_is_read_only_up_to_the_cap_and_the_delivery_counts() {
    let receiver = Receiver::start(vec![Reply::Huge]).await;
    let mut settings = settings(&receiver.url);
    settings.policy.retries = 0;
    let delivery = webhook::deliver(&settings, &body()).await.unwrap();
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.job_id, None);
    // The client stopped reading at the cap: the server produced no more than socket buffers hold,
    // far from the 64 MiB it would send to a reader that takes everything.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced = receiver.body_bytes_produced();
    assert!(produced < 32 << 20, "{produced} bytes of the body were produced");
}

#[tokio::test]
async fn an_overlong_job_id_is_left_out_and_the_delivery_counts() {
    let receiver = Receiver::start(vec![Reply::Ok(serde_json::json!({"job_id": "j".repeat(10_000)}))]).await;
    let delivery = webhook::deliver(&settings(&receiver.url), &body()).await.unwrap();
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.job_id, None);
}

#[tokio::test]
async fn a_webhook_url_with_a_token_appears_in_no_error_text_beyond_its_origin() {
    // A closed port: connection refused, as on the cluster where the token leaked.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks/driftwatch?token=SECRET-IN-URL");
    let mut settings = settings(&url);
    settings.policy.retries = 1;
    let err = webhook::deliver(&settings, &body()).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    let WebhookError::Exhausted { attempts, .. } = err else {
        panic!("expected Exhausted, got {err:?}");
    };
    assert!(
        attempts.iter().all(|a| !a.detail.contains("SECRET")),
        "{attempts:?}"
    );
    for bad in [
        "ftp://hooks.example/x?token=SECRET-IN-URL",
        "not a url ?token=SECRET-IN-URL",
    ] {
        let err = webhook::deliver(
            &WebhookSettings {
                url: bad.into(),
                ..settings.clone()
            },
            &body(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WebhookError::BadUrl(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
