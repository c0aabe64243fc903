//! Pure rendering for `kubectl drift`: tables, ages, sparklines and event details. No I/O.

use std::fmt::Write as _;

use crate::api::v1alpha1::{DriftEvent, DriftMonitor, ExamplePoint, Explanation, Phase};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line sparkline of `values` scaled between their min and max (a gap `·` for missing values).
pub fn sparkline(values: &[Option<f64>]) -> String {
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => {
                if hi - lo <= f64::EPSILON {
                    BARS[3]
                } else {
                    let level = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                    BARS[level.min(7)]
                }
            }
            _ => '·',
        })
        .collect()
}

/// kubectl-style age: `45s`, `12m`, `5h`, `3d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn pad_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<width$}", width = widths[c])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("   ").trim_end());
    }
    out
}

fn phase(event: &DriftEvent) -> Phase {
    event.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// Where approving the event hands off to: `s3://bucket/prefix`, `none` (nothing to trigger) or `-` (not
/// recorded yet).
fn target_summary(event: &DriftEvent) -> String {
    match event.status.as_ref().and_then(|s| s.retraining_target.as_ref()) {
        Some(_) if event.nothing_to_trigger().is_some() => "none".to_string(),
        Some(target) => target.summary.clone(),
        None => "-".to_string(),
    }
}

/// The `list` table; `now` in Unix seconds.
pub fn events_table(events: &[DriftEvent], all_namespaces: bool, now: i64) -> String {
    let mut rows = vec![];
    let mut header = vec![];
    if all_namespaces {
        header.push("NAMESPACE".to_string());
    }
    header.extend(["EVENT", "MONITOR", "SCORE", "PHASE", "DECISION", "TARGET", "AGE"].map(String::from));
    rows.push(header);
    for event in events {
        let mut row = vec![];
        if all_namespaces {
            row.push(event.metadata.namespace.clone().unwrap_or_default());
        }
        row.push(event.metadata.name.clone().unwrap_or_default());
        row.push(event.spec.monitor_ref.name.clone());
        row.push(format!("{:.4}", event.spec.drift_score));
        row.push(phase(event).as_str().to_string());
        row.push(
            event
                .spec
                .approval
                .as_ref()
                .map(|a| format!("{} by {}", a.decision.as_str(), a.approved_by))
                .unwrap_or_else(|| "-".into()),
        );
        row.push(target_summary(event));
        let created = event
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(now);
        row.push(age(now - created));
        rows.push(row);
    }
    pad_table(&rows)
}

/// The `get` details.
pub fn event_details(event: &DriftEvent) -> String {
    let mut out = String::new();
    let spec = &event.spec;
    let _ = writeln!(
        out,
        "Event:       {}/{}",
        event.metadata.namespace.as_deref().unwrap_or(""),
        event.metadata.name.as_deref().unwrap_or("")
    );
    let _ = writeln!(out, "Monitor:     {}", spec.monitor_ref.name);
    let _ = writeln!(out, "Detected:    {}", spec.detected_at.0);
    let _ = writeln!(out, "Score:       {:.4}", spec.drift_score);
    let _ = writeln!(out, "Phase:       {}", phase(event).as_str());
    let window = |w: &crate::api::v1alpha1::TimeWindow| {
        format!(
            "{} → {}",
            w.start
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| "?".into()),
            w.end
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| "?".into())
        )
    };
    let _ = writeln!(out, "Reference:   {}", window(&spec.reference_window));
    let _ = writeln!(out, "Comparison:  {}", window(&spec.comparison_window));
    if let Some(samples) = &spec.samples {
        let _ = writeln!(
            out,
            "Samples:     reference {}, comparison {}",
            samples.reference, samples.comparison
        );
    }
    match &spec.approval {
        Some(a) => {
            let _ = writeln!(
                out,
                "Decision:    {} by {}{}",
                a.decision.as_str(),
                a.approved_by,
                a.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            );
        }
        None if event.nothing_to_trigger().is_some() => {
            let _ = writeln!(
                out,
                "Decision:    none yet; only Ignore applies (kubectl drift ignore EVENT --reason …)"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Decision:    none yet (kubectl drift approve|ignore EVENT --reason …)"
            );
        }
    }
    match (
        event.nothing_to_trigger(),
        event.status.as_ref().and_then(|s| s.retraining_target.as_ref()),
    ) {
        (Some(why), _) => {
            let _ = writeln!(out, "Target:      nothing to trigger: {why}");
        }
        (None, Some(target)) => {
            let webhook = target
                .retraining
                .as_ref()
                .map(|r| {
                    format!(
                        "; webhook URL from Secret {}/{}",
                        r.webhook.url_secret_ref.name, r.webhook.url_secret_ref.key
                    )
                })
                .unwrap_or_default();
            let frozen = target
                .approved_at
                .as_ref()
                .map(|t| format!(" (as approved at {})", t.0))
                .unwrap_or_default();
            let _ = writeln!(out, "Target:      {}{webhook}{frozen}", target.summary);
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "Scores:");
    let mut rows = vec![
        ["METHOD", "SOURCE", "SCORE", "THRESHOLD", "P-VALUE", "DRIFTED"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &spec.scores {
        rows.push(vec![
            s.method.as_str().to_string(),
            s.source.as_str().to_string(),
            format!("{:.4}", s.score),
            s.threshold
                .map(|t| format!("{t:.4}"))
                .unwrap_or_else(|| "-".into()),
            s.p_value.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into()),
            if s.drifted { "yes" } else { "no" }.to_string(),
        ]);
    }
    for line in pad_table(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(e) = event.status.as_ref().and_then(|s| s.explanation.as_ref()) {
        out.push_str(&explanation(e));
    }
    if let Some(r) = event.status.as_ref().and_then(|s| s.retraining.as_ref()) {
        let _ = writeln!(out, "Retraining:");
        for (k, v) in [
            ("job", r.job_name.clone()),
            ("s3Uri", r.s3_uri.clone()),
            ("sha256", r.sha256.clone()),
            ("retrainingJobId", r.retraining_job_id.clone()),
            ("attempts", r.attempts.map(|a| a.to_string())),
            ("lastError", r.last_error.clone()),
        ] {
            if let Some(v) = v {
                let _ = writeln!(out, "  {k}: {v}");
            }
        }
    }
    let transitions = event
        .status
        .as_ref()
        .map(|s| s.transitions.as_slice())
        .unwrap_or_default();
    if !transitions.is_empty() {
        let _ = writeln!(out, "History:");
        for t in transitions {
            let _ = writeln!(
                out,
                "  {}  {}{}{}",
                t.time.0,
                t.phase.as_str(),
                t.actor
                    .as_deref()
                    .map(|a| format!("  by {a}"))
                    .unwrap_or_default(),
                t.message.as_deref().map(|m| format!("  {m}")).unwrap_or_default()
            );
        }
    }
    out
}

/// What changed and where: the slices and regions tables and their example points.
pub fn explanation(e: &Explanation) -> String {
    let mut out = String::new();
    let percent = |x: f64| format!("{:.1}%", 100.0 * x);
    let p = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
    let example_lines = |out: &mut String, what: &str, examples: &[ExamplePoint]| {
        for x in examples {
            let fields: Vec<String> = x.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let fields = if fields.is_empty() {
                String::new()
            } else {
                format!("  {}", fields.join("  "))
            };
            let _ = writeln!(out, "  {what}: point {}{fields}", x.id);
        }
    };
    if !e.slices.is_empty() {
        let tested = e
            .slices_tested
            .map(|t| format!(" ({t} tested)"))
            .unwrap_or_default();
        let _ = writeln!(out, "Slices{tested}:");
        let mut rows = vec![
            [
                "FIELD",
                "VALUE",
                "STATUS",
                "REFERENCE",
                "COMPARISON",
                "P-VALUE",
                "ADJUSTED",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for s in &e.slices {
            rows.push(vec![
                s.field.clone(),
                s.value.clone(),
                s.status.clone(),
                format!("{} ({})", s.counts[0], percent(s.shares[0])),
                format!("{} ({})", s.counts[1], percent(s.shares[1])),
                p(s.p_value),
                p(s.adjusted_p_value),
            ]);
        }
        for line in pad_table(&rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !e.regions.is_empty() {
        let _ = writeln!(out, "Regions:");
        let mut rows = vec![
            ["REGION", "KIND", "REFERENCE", "COMPARISON"]
                .map(String::from)
                .to_vec(),
        ];
        for r in &e.regions {
            rows.push(vec![
                r.region.to_string(),
                r.kind.clone(),
                format!("{} ({})", r.counts[0], percent(r.shares[0])),
                format!("{} ({})", r.counts[1], percent(r.shares[1])),
            ]);
        }
        for line in pad_table(&rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let has_examples =
        e.slices.iter().any(|s| !s.examples.is_empty()) || e.regions.iter().any(|r| !r.examples.is_empty());
    if has_examples {
        let _ = writeln!(out, "Examples (comparison points least like the reference):");
        for s in &e.slices {
            example_lines(&mut out, &format!("{}={}", s.field, s.value), &s.examples);
        }
        for r in &e.regions {
            example_lines(
                &mut out,
                &format!("region {} ({})", r.region, r.kind),
                &r.examples,
            );
        }
    }
    if e.truncated {
        let _ = writeln!(
            out,
            "  (cut to fit: some slices, regions, examples or display fields left out)"
        );
    }
    out
}

/// The `history` view: one sparkline per detector over `status.history`, plus the latest values.
pub fn monitor_history(monitor: &DriftMonitor, limit: usize) -> String {
    let history = monitor
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    let start = history.len().saturating_sub(limit);
    let recent = &history[start..];
    let mut out = String::new();
    let name = monitor.metadata.name.as_deref().unwrap_or("");
    if recent.is_empty() {
        let _ = writeln!(out, "{name}: no checks recorded yet");
        return out;
    }
    let _ = writeln!(
        out,
        "{name}: {} checks, {} → {}",
        recent.len(),
        recent[0].time.0,
        recent[recent.len() - 1].time.0
    );
    let mut detectors: Vec<(String, String)> = Vec::new();
    for entry in recent {
        for s in &entry.scores {
            let key = (s.method.as_str().to_string(), s.source.as_str().to_string());
            if !detectors.contains(&key) {
                detectors.push(key);
            }
        }
    }
    let mut rows = vec![
        ["DETECTOR", "LAST", "THRESHOLD", "TREND"]
            .map(String::from)
            .to_vec(),
    ];
    for (method, source) in &detectors {
        let values: Vec<Option<f64>> = recent
            .iter()
            .map(|e| {
                e.scores
                    .iter()
                    .find(|s| s.method.as_str() == method && s.source.as_str() == source)
                    .map(|s| s.score)
            })
            .collect();
        let last = recent.iter().rev().find_map(|e| {
            e.scores
                .iter()
                .find(|s| s.method.as_str() == method && s.source.as_str() == source)
        });
        rows.push(vec![
            format!("{method}/{source}"),
            last.map(|s| format!("{:.4}{}", s.score, if s.drifted { " !" } else { "" }))
                .unwrap_or_else(|| "-".into()),
            last.and_then(|s| s.threshold)
                .map(|t| format!("{t:.4}"))
                .unwrap_or_else(|| "-".into()),
            sparkline(&values),
        ]);
    }
    out.push_str(&pad_table(&rows));
    let failed = recent.iter().filter(|e| e.error.is_some()).count();
    let drifted = recent.iter().filter(|e| e.drift_detected == Some(true)).count();
    let _ = writeln!(
        out,
        "drift detected in {drifted} of {} checks; {failed} failed",
        recent.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_the_lowest_to_the_highest_bar() {
        assert_eq!(sparkline(&[Some(0.0), Some(0.5), Some(1.0)]), "▁▅█");
        assert_eq!(sparkline(&[Some(2.0), None, Some(2.0)]), "▄·▄");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(5 * 86_400), "5d");
        assert_eq!(age(-3), "0s");
    }

    fn event(name: &str, score: f64) -> DriftEvent {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "driftwatch.dev/v1alpha1", "kind": "DriftEvent",
            "metadata": {"name": name, "namespace": "ml", "creationTimestamp": "2026-11-26T00:00:00Z"},
            "spec": {
                "monitorRef": {"name": "frames"}, "detectedAt": "2026-11-26T00:00:00Z", "driftScore": score,
                "scores": [{"method": "kl_divergence", "source": "embeddings", "score": score, "threshold": 0.1, "drifted": true}],
                "referenceWindow": {}, "comparisonWindow": {},
                "approval": {"decision": "Approve", "approvedBy": "alice"}
            },
            "status": {"phase": "Actioned"}
        }))
        .unwrap()
    }

    #[test]
    fn the_list_table_has_aligned_columns_and_the_decision() {
        let now = "2026-11-26T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        let table = events_table(
            &[event("frames-1", 0.31), event("frames-long-name", 0.2)],
            true,
            now,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE   EVENT"), "{table}");
        assert!(
            lines[1].contains("0.3100")
                && lines[1].contains("Actioned")
                && lines[1].contains("Approve by alice")
        );
        assert!(lines[1].ends_with("3h"));
        assert_eq!(lines[1].find("frames   "), lines[2].find("frames   "));
    }

    #[test]
    fn details_show_the_slices_regions_and_examples_of_the_explanation() {
        let mut e = event("frames-1", 0.31);
        e.status.as_mut().unwrap().explanation = Some(
            serde_json::from_value(serde_json::json!({
                "slices": [{"field": "camera_id", "value": "cam-7", "status": "drifted", "counts": [310, 290],
                            "shares": [0.0155, 0.058], "pValue": 0.0005, "adjustedPValue": 0.004,
                            "examples": [{"id": "123", "fields": {"frame_url": "https://f.example/123.jpg"}}]}],
                "slicesTested": 8,
                "regions": [{"region": 2, "kind": "new", "counts": [0, 250], "shares": [0.0, 0.05],
                             "examples": [{"id": "456"}]}]
            }))
            .unwrap(),
        );
        let text = event_details(&e);
        assert!(text.contains("Slices (8 tested):"), "{text}");
        let slice = text.lines().find(|l| l.contains("cam-7")).unwrap();
        for part in [
            "camera_id",
            "drifted",
            "310 (1.6%)",
            "290 (5.8%)",
            "0.0005",
            "0.0040",
        ] {
            assert!(slice.contains(part), "{slice}");
        }
        let region = text.lines().find(|l| l.trim_start().starts_with("2 ")).unwrap();
        assert!(
            region.contains("new") && region.contains("250 (5.0%)"),
            "{region}"
        );
        assert!(
            text.contains("camera_id=cam-7: point 123  frame_url=https://f.example/123.jpg"),
            "{text}"
        );
        assert!(text.contains("region 2 (new): point 456"), "{text}");
        assert!(!event_details(&event("frames-2", 0.3)).contains("Slices"));
    }

    #[test]
    fn details_show_scores_and_the_decision() {
        let text = event_details(&event("frames-1", 0.31));
        assert!(text.contains("Event:       ml/frames-1"));
        assert!(text.contains("Decision:    Approve by alice"));
        assert!(text.contains("kl_divergence"));
    }

    fn in_review(target: serde_json::Value) -> DriftEvent {
        let mut event = event("frames-2", 0.31);
        event.spec.approval = None;
        event.status = Some(
            serde_json::from_value(serde_json::json!({"phase": "NeedsReview", "retrainingTarget": target}))
                .unwrap(),
        );
        event
    }

    #[test]
    fn an_event_with_nothing_to_trigger_says_so_in_the_list_and_the_details() {
        let event = in_review(serde_json::json!({
            "summary": "None", "reason": "DriftMonitor frames has no spec.retraining: approving would trigger nothing"
        }));
        let table = events_table(std::slice::from_ref(&event), false, 0);
        let header = table.lines().next().unwrap();
        let row = table.lines().nth(1).unwrap();
        assert_eq!(header.find("TARGET"), row.find("none"), "{table}");
        let text = event_details(&event);
        assert!(
            text.contains("Target:      nothing to trigger: DriftMonitor frames has no spec.retraining"),
            "{text}"
        );
        assert!(text.contains("only Ignore applies"), "{text}");
    }

    #[test]
    fn an_event_with_a_target_shows_where_approving_sends_the_data() {
        let event = in_review(serde_json::json!({
            "summary": "s3://batches/drift/",
            "retraining": {"s3": {"bucket": "batches", "prefix": "drift/"},
                "webhook": {"urlSecretRef": {"name": "hook", "key": "url"}}},
            "source": {"url": "http://qdrant:6334", "collection": "frames"}
        }));
        assert!(events_table(std::slice::from_ref(&event), false, 0).contains("s3://batches/drift/"));
        let text = event_details(&event);
        assert!(
            text.contains("Target:      s3://batches/drift/; webhook URL from Secret hook/url"),
            "{text}"
        );
    }
}
