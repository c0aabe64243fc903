//! `driftwatch controller` where no cluster can be found: its logs as `kubectl logs` sees them (stderr on a
//! pipe, not a terminal) — text without ANSI colour codes, and JSON lines when `DRIFTWATCH_LOG_FORMAT=json`
//! (what the controller sets on its Jobs when it logs JSON itself) — and flags it refuses before starting.

use std::process::{Command, Stdio};

/// Runs `driftwatch controller` where no cluster can be found (it logs why and exits) and returns stderr.
fn controller_stderr(format: Option<&str>) -> String {
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    cmd.args([
        "controller",
        "--job-image",
        "driftwatch:test",
        "--http-addr",
        "127.0.0.1:0",
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", home.path())
    .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some(format) = format {
        cmd.env("DRIFTWATCH_LOG_FORMAT", format);
    }
    let out = cmd.output().expect("run driftwatch");
    assert!(
        !out.status.success(),
        "without a cluster the controller exits with an error"
    );
    String::from_utf8(out.stderr).expect("UTF-8 logs")
}

#[test]
fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    let logs = controller_stderr(None);
    assert!(logs.contains("controller failed"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "escape sequences in logs on a pipe: {logs:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_without_escape_sequences() {
    let logs = controller_stderr(Some("json"));
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no logs");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(value.get("level").is_some(), "{line}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }
}

#[test]
fn an_image_origin_the_dashboard_cannot_use_is_refused_with_its_reason() {
    for (origin, reason) in [
        ("javascript:alert(1)", "must be http:// or https://"),
        (
            "https://user:pw@frames.example.com",
            "must not carry a user name or password",
        ),
        ("frames.example.com", "not a URL"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["controller", "--job-image", "driftwatch:test"])
            .arg(format!("--dashboard-image-origin={origin}"))
            .stdin(Stdio::null())
            .output()
            .expect("run driftwatch");
        assert_eq!(out.status.code(), Some(2), "a usage error for {origin}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--dashboard-image-origin") && stderr.contains(reason),
            "{origin}: {stderr}"
        );
    }
}
