//! The reference pages in docs/reference/ say what the code does, and nothing in the repository points
//! outside it. No cluster: reads the generated CRDs, the metric registry, the routers' source, the Job
//! commands' flags and the result types, and compares them with the markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use clap::Args;
use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn report(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// --- markdown --------------------------------------------------------------------------------------------

/// A table row of a markdown page, with the headings it sits under.
#[derive(Debug)]
struct Row {
    h2: String,
    h3: String,
    cells: Vec<String>,
}

/// The table rows of a page (header and separator rows excluded), outside code blocks.
fn rows(markdown: &str) -> Vec<Row> {
    let (mut h2, mut h3) = (String::new(), String::new());
    let mut in_code = false;
    let mut out = Vec::new();
    let mut previous_was_row = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(title) = line.strip_prefix("## ") {
            (h2, h3) = (title.to_string(), String::new());
        } else if let Some(title) = line.strip_prefix("### ") {
            h3 = title.to_string();
        }
        let is_row = line.starts_with('|');
        if is_row && previous_was_row && !line.starts_with("| ---") {
            let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
            let cells = inner.split('|').map(|c| c.trim().to_string()).collect();
            out.push(Row {
                h2: h2.clone(),
                h3: h3.clone(),
                cells,
            });
        }
        // The first row of a table is its header.
        previous_was_row = is_row;
    }
    out
}

/// The text inside the first pair of backticks of a cell.
fn code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// Every text inside backticks in a cell.
fn codes(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

// --- resources ---------------------------------------------------------------------------------------------

/// Embedded Kubernetes types: documented as a whole, not field by field.
const KUBERNETES_TYPES: &[&str] = &[
    "spec.jobTemplate.resources",
    "spec.jobTemplate.packageResources",
    "spec.jobTemplate.tolerations",
    "spec.jobTemplate.affinity",
    "status.conditions",
];

/// Places where a shared type is used: its fields are documented once, as `<Type>.<field>`.
const SHARED_TYPES: &[(&str, &str)] = &[
    ("spec.source.qdrant.apiKeySecretRef", "SecretKeyRef"),
    ("spec.retraining.webhook.urlSecretRef", "SecretKeyRef"),
    ("spec.retraining.webhook.tokenSecretRef", "SecretKeyRef"),
    ("spec.retraining.webhook.hmacSecretRef", "SecretKeyRef"),
    ("spec.source.qdrant.filter", "PayloadFilter"),
    ("spec.windows.reference.filter", "PayloadFilter"),
    ("PayloadFilter.must[]", "FieldCondition"),
    ("PayloadFilter.mustNot[]", "FieldCondition"),
    ("status.lastResult.scores[]", "DetectorScore"),
    ("status.history[].scores[]", "DetectorScore"),
    ("spec.scores[]", "DetectorScore"),
    ("status.lastResult.windows.reference", "TimeWindow"),
    ("status.lastResult.windows.comparison", "TimeWindow"),
    ("spec.referenceWindow", "TimeWindow"),
    ("spec.comparisonWindow", "TimeWindow"),
    ("status.lastResult.samples", "SampleCounts"),
    ("spec.samples", "SampleCounts"),
    ("status.explanation", "Explanation"),
    ("Explanation.slices[].examples[]", "ExamplePoint"),
    ("Explanation.regions[].examples[]", "ExamplePoint"),
];

/// DriftEvent status fields that copy a DriftMonitor's spec: documented once, under the monitor.
const COPIES: &[(&str, &str)] = &[
    ("status.retrainingTarget.retraining", "spec.retraining"),
    ("status.retrainingTarget.source", "spec.source.qdrant"),
    ("status.retrainingTarget.sampling", "spec.sampling"),
];

/// `status.retrainingTarget.retraining.s3.bucket` → `spec.retraining.s3.bucket` (below a copy's own row).
fn copy_of(path: &str) -> Option<String> {
    COPIES.iter().find_map(|(copy, original)| {
        path.strip_prefix(copy)
            .and_then(|rest| rest.strip_prefix('.'))
            .map(|rest| format!("{original}.{rest}"))
    })
}

fn is_shared(path: &str) -> bool {
    SHARED_TYPES
        .iter()
        .any(|(_, ty)| path.strip_prefix(ty).is_some_and(|rest| rest.starts_with('.')))
}

/// `spec.source.qdrant.filter.must[].key` → `FieldCondition.key`.
fn documented_as(path: &str) -> String {
    let mut path = path.to_string();
    loop {
        let rewritten = SHARED_TYPES.iter().find_map(|(prefix, ty)| {
            path.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|rest| format!("{ty}.{rest}"))
        });
        match rewritten {
            Some(next) => path = next,
            None => return path,
        }
    }
}

/// One field of a CRD schema.
#[derive(Debug)]
struct SchemaField {
    path: String,
    default: Option<String>,
    enums: Vec<String>,
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn walk(node: &Value, path: &str, fields: &mut Vec<SchemaField>, messages: &mut Vec<String>) {
    for rule in node["x-kubernetes-validations"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        if let Some(message) = rule["message"].as_str() {
            messages.push(message.to_string());
        }
    }
    if KUBERNETES_TYPES.contains(&path) {
        return;
    }
    if let Some(properties) = node["properties"].as_mapping() {
        for (name, child) in properties {
            let name = name.as_str().unwrap_or_default();
            let child_path = format!("{path}.{name}");
            fields.push(SchemaField {
                path: child_path.clone(),
                default: scalar(&child["default"]),
                enums: child["enum"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(scalar)
                    .collect(),
            });
            walk(child, &child_path, fields, messages);
        }
    }
    if node["items"].is_mapping() {
        walk(&node["items"], &format!("{path}[]"), fields, messages);
    }
}

struct Crd {
    kind: String,
    document: Value,
    fields: Vec<SchemaField>,
    messages: Vec<String>,
}

fn crds() -> Vec<Crd> {
    [
        "crds/driftmonitors.driftwatch.dev.yaml",
        "crds/driftevents.driftwatch.dev.yaml",
    ]
    .iter()
    .map(|file| {
        let document: Value = serde_yaml::from_str(&read(file)).unwrap();
        let schema = &document["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let (mut fields, mut messages) = (Vec::new(), Vec::new());
        // Rules on the whole object (they may compare spec with status).
        for rule in schema["x-kubernetes-validations"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            if let Some(message) = rule["message"].as_str() {
                messages.push(message.to_string());
            }
        }
        for top in ["spec", "status"] {
            fields.push(SchemaField {
                path: top.to_string(),
                default: None,
                enums: Vec::new(),
            });
            walk(&schema["properties"][top], top, &mut fields, &mut messages);
        }
        // The kind's own `spec`/`status` objects are introduced by their headings, not by rows.
        fields.retain(|f| f.path.contains('.'));
        Crd {
            kind: document["spec"]["names"]["kind"].as_str().unwrap().to_string(),
            document,
            fields,
            messages,
        }
    })
    .collect()
}

/// The field rows of resources.md: documented path → the whole row, per section (kind or shared types).
fn field_rows(page: &[Row], section: &str) -> BTreeMap<String, String> {
    page.iter()
        .filter(|r| r.h2 == section)
        .filter_map(|r| {
            let path = code(r.cells.first()?)?;
            let is_field = path.starts_with("spec.") || path.starts_with("status.") || is_shared(path);
            is_field.then(|| (path.to_string(), r.cells.join(" | ")))
        })
        .collect()
}

#[test]
fn every_crd_field_default_enum_and_printer_column_is_in_the_resource_reference() {
    let page = rows(&read("docs/reference/resources.md"));
    let shared_rows = field_rows(&page, "Shared types");
    let monitor_rows = field_rows(&page, "DriftMonitor");
    let mut shared_in_schema = BTreeSet::new();
    let mut problems = Vec::new();
    for crd in crds() {
        let rows = field_rows(&page, &crd.kind);
        let mut in_schema = BTreeSet::new();
        for field in &crd.fields {
            if field.path.ends_with("[]") {
                continue; // the list field's own row documents its items
            }
            let copied = copy_of(&field.path);
            let documented = documented_as(copied.as_deref().unwrap_or(&field.path));
            let (table, what) = if is_shared(&documented) {
                shared_in_schema.insert(documented.clone());
                (&shared_rows, "Shared types")
            } else if copied.is_some() {
                (&monitor_rows, "DriftMonitor")
            } else {
                in_schema.insert(documented.clone());
                (&rows, crd.kind.as_str())
            };
            let Some(row) = table.get(&documented) else {
                problems.push(format!("{}: `{documented}` has no row under ## {what}", crd.kind));
                continue;
            };
            if let Some(default) = &field.default
                && !row.contains(&format!("`{default}`"))
            {
                problems.push(format!(
                    "`{documented}`: the row does not give the default `{default}`"
                ));
            }
            for value in &field.enums {
                if !row.contains(&format!("`{value}`")) {
                    problems.push(format!(
                        "`{documented}`: the row does not name the value `{value}`"
                    ));
                }
            }
        }
        for path in rows.keys().filter(|p| !in_schema.contains(*p)) {
            problems.push(format!("{}: `{path}` is documented but not in the CRD", crd.kind));
        }
        let version = &crd.document["spec"]["versions"][0];
        for column in version["additionalPrinterColumns"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let (name, json_path) = (
                column["name"].as_str().unwrap(),
                column["jsonPath"].as_str().unwrap(),
            );
            let found = page.iter().any(|r| {
                r.h2 == crd.kind
                    && r.cells.len() >= 2
                    && r.cells[0] == name
                    && code(&r.cells[1]) == Some(json_path)
            });
            if !found {
                problems.push(format!(
                    "{}: printer column {name} ({json_path}) is not documented",
                    crd.kind
                ));
            }
        }
        let names = &crd.document["spec"]["names"];
        let mut expected: Vec<String> = vec![names["plural"].as_str().unwrap().to_string()];
        for key in ["shortNames", "categories"] {
            expected.extend(names[key].as_sequence().into_iter().flatten().filter_map(scalar));
        }
        let kind_row = page
            .iter()
            .find(|r| r.cells.first().and_then(|c| code(c)) == Some(crd.kind.as_str()));
        match kind_row {
            None => problems.push(format!("{}: no row naming the kind", crd.kind)),
            Some(row) => {
                for name in expected {
                    if !row.cells.iter().any(|c| code(c) == Some(name.as_str())) {
                        problems.push(format!("{}: the kind's row does not name `{name}`", crd.kind));
                    }
                }
            }
        }
    }
    for path in shared_rows.keys().filter(|p| !shared_in_schema.contains(*p)) {
        problems.push(format!(
            "`{path}` is documented under Shared types but used by no CRD field"
        ));
    }
    report("docs/reference/resources.md vs crds/", &problems);
}

#[test]
fn every_validation_message_of_the_crds_is_in_the_resource_reference_and_no_other() {
    let page = rows(&read("docs/reference/resources.md"));
    let documented: BTreeSet<String> = page
        .iter()
        .filter(|r| r.h2 == "Validation" && r.cells.len() == 2)
        .filter_map(|r| code(&r.cells[1]).map(str::to_string))
        .collect();
    let mut in_crds = BTreeSet::new();
    for crd in crds() {
        in_crds.extend(crd.messages);
    }
    let mut problems = Vec::new();
    for message in in_crds.difference(&documented) {
        problems.push(format!("not documented: {message}"));
    }
    for message in documented.difference(&in_crds) {
        problems.push(format!("documented but not in the CRDs: {message}"));
    }
    report("## Validation of docs/reference/resources.md", &problems);
}

// --- metrics -------------------------------------------------------------------------------------------------

fn label_set<'a>(labels: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    labels.into_iter().map(str::to_string).collect()
}

#[test]
fn every_registered_metric_is_in_the_metrics_reference_with_its_type_and_labels_and_no_other() {
    let metrics = driftwatch::metrics::Metrics::new(driftwatch::metrics::DEFAULT_PREFIX).unwrap();
    let documented: BTreeMap<String, (String, BTreeSet<String>)> = rows(&read("docs/reference/metrics.md"))
        .into_iter()
        .filter(|r| r.cells.len() >= 3)
        .filter_map(|r| {
            let name = code(&r.cells[0])?.to_string();
            name.starts_with("video_ai_")
                .then(|| (name, (r.cells[1].clone(), label_set(codes(&r.cells[2])))))
        })
        .collect();
    let mut problems = Vec::new();
    for metric in metrics.catalogue() {
        match documented.get(&metric.name) {
            None => problems.push(format!("{} ({}) is not documented", metric.name, metric.kind)),
            Some((kind, labels)) => {
                if kind != metric.kind {
                    problems.push(format!(
                        "{}: documented as {kind}, registered as {}",
                        metric.name, metric.kind
                    ));
                }
                let registered = label_set(metric.labels.iter().map(String::as_str));
                if labels != &registered {
                    problems.push(format!(
                        "{}: documented labels {labels:?}, registered {registered:?}",
                        metric.name
                    ));
                }
            }
        }
    }
    for name in documented.keys() {
        if !metrics.catalogue().iter().any(|m| &m.name == name) {
            problems.push(format!("{name} is documented but not registered"));
        }
    }
    report("docs/reference/metrics.md vs src/metrics.rs", &problems);
}

#[test]
fn the_metric_list_of_the_operator_checks_matches_the_registry() {
    // hack/ops_metrics.py: `"video_ai_x": ("gauge", ["namespace", "monitor"]),` per metric in TYPES.
    let text = read("hack/ops_metrics.py");
    let types = &text[text.find("TYPES = {").expect("TYPES in hack/ops_metrics.py")..];
    let types = &types[..types.find("\n}").unwrap()];
    let listed: BTreeMap<String, (String, BTreeSet<String>)> = types
        .lines()
        .filter_map(|line| {
            let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
            let (name, kind, labels) = (quoted.first()?, quoted.get(1)?, &quoted[2.min(quoted.len())..]);
            Some((
                name.to_string(),
                (kind.to_string(), label_set(labels.iter().copied())),
            ))
        })
        .collect();
    let metrics = driftwatch::metrics::Metrics::new(driftwatch::metrics::DEFAULT_PREFIX).unwrap();
    let registered: BTreeMap<String, (String, BTreeSet<String>)> = metrics
        .catalogue()
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                (m.kind.to_string(), label_set(m.labels.iter().map(String::as_str))),
            )
        })
        .collect();
    assert_eq!(
        listed, registered,
        "hack/ops_metrics.py TYPES differs from the metric registry"
    );
}

// --- HTTP ----------------------------------------------------------------------------------------------------

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// The argument list of the call whose opening parenthesis is at `open`.
fn call_args(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &text[open + 1..]
}

/// The first string literal of a piece of code.
fn first_literal(code: &str) -> Option<&str> {
    let start = code.find('"')? + 1;
    Some(&code[start..start + code[start..].find('"')?])
}

/// `METHOD /path` of every `.route("/path", get(…).post(…))` in `code`.
fn routes_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(".route(") {
        let args = call_args(code, at + ".route".len());
        let Some(path) = first_literal(args) else { continue };
        let handlers = &args[args.find(',').unwrap_or(0)..];
        for method in METHODS {
            let call = format!("{method}(");
            let called = handlers.match_indices(&call).any(|(i, _)| {
                i.checked_sub(1)
                    .and_then(|p| handlers.as_bytes().get(p))
                    .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
            });
            if called {
                out.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// Where `let <name> = Router::new()` starts in `text`, and the name.
fn router_binding(text: &str) -> Option<(usize, String)> {
    text.match_indices("let ").find_map(|(at, _)| {
        let rest = &text[at + 4..];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
        let value = rest[len..].trim_start().strip_prefix('=')?.trim_start();
        value
            .starts_with("Router::new()")
            .then(|| (at, rest[..len].to_string()))
    })
}

/// The routes of the controller's routers, read from their source: the routes of each
/// `let <name> = Router::new()…;` under the prefix it is `.nest`ed at (none when merged), and the rest.
fn router_routes() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for file in ["src/http/mod.rs", "src/http/api/mod.rs"] {
        let mut text = read(file);
        let mut bindings = Vec::new();
        while let Some((start, name)) = router_binding(&text) {
            let end = start + text[start..].find(';').expect("a statement ends with ;");
            bindings.push((name, routes_in(&text[start..end])));
            text.replace_range(start..=end, "");
        }
        all.extend(routes_in(&text));
        for (name, routes) in bindings {
            let prefix = text
                .match_indices(".nest(")
                .map(|(at, _)| call_args(&text, at + ".nest".len()))
                .find(|args| args.split(',').nth(1).map(str::trim) == Some(name.as_str()))
                .and_then(first_literal)
                .unwrap_or("");
            all.extend(routes.iter().map(|route| {
                let (method, path) = route.split_once(' ').unwrap();
                format!("{method} {prefix}{path}")
            }));
        }
    }
    all
}

fn documented_routes() -> BTreeSet<String> {
    read("docs/reference/http.md")
        .lines()
        .filter(|l| l.starts_with("### "))
        .flat_map(|l| codes(l).into_iter().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| {
            METHODS
                .iter()
                .any(|m| c.starts_with(&format!("{} /", m.to_uppercase())))
        })
        .collect()
}

#[test]
fn the_routes_read_from_the_router_source_include_the_known_ones() {
    // Guards the source reading itself: a parser that found nothing would make the next test vacuous.
    let routes = router_routes();
    for known in [
        "GET /metrics",
        "GET /drift-events",
        "GET /api/v1/drift-events",
        "POST /api/v1/alertmanager",
    ] {
        assert!(routes.contains(known), "{known} not found in {routes:?}");
    }
}

#[test]
fn every_route_of_the_routers_has_a_section_in_the_http_reference_and_no_other() {
    let (routes, documented) = (router_routes(), documented_routes());
    let mut problems = Vec::new();
    for route in routes.difference(&documented) {
        problems.push(format!("{route} is served but has no `### `{route}`` section"));
    }
    for route in documented.difference(&routes) {
        problems.push(format!("{route} is documented but not served"));
    }
    report("docs/reference/http.md vs the routers", &problems);
}

#[test]
fn openapi_json_describes_exactly_the_json_routes_of_the_routers() {
    // Routes that answer text, HTML, assets or the description itself.
    let not_json = [
        "GET /metrics",
        "GET /healthz",
        "GET /readyz",
        "GET /",
        "GET /assets/{file}",
        "GET /openapi.json",
    ];
    let doc: serde_json::Value = serde_json::from_str(driftwatch::http::api::openapi::OPENAPI_JSON).unwrap();
    let described: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<String> = router_routes()
        .into_iter()
        .filter(|r| !not_json.contains(&r.as_str()))
        .collect();
    assert_eq!(described, served, "src/http/api/openapi.json vs the routers");
}

// --- Jobs ----------------------------------------------------------------------------------------------------

fn check_flags(command: clap::Command, heading: &str) -> Vec<String> {
    let page = rows(&read("docs/reference/jobs.md"));
    let documented: BTreeMap<String, String> = page
        .iter()
        .filter(|r| r.h3 == heading)
        .filter_map(|r| {
            Some((
                code(r.cells.first()?)?.to_string(),
                r.cells.get(1).cloned().unwrap_or_default(),
            ))
        })
        .collect();
    let mut problems = Vec::new();
    let mut flags = BTreeSet::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let flag = format!("--{long}");
        flags.insert(flag.clone());
        let env = arg.get_env().map(|e| e.to_string_lossy().to_string());
        match documented.get(&flag) {
            None => problems.push(format!("{heading}: {flag} is not documented")),
            Some(cell) => {
                let listed = code(cell).map(str::to_string);
                if listed != env {
                    problems.push(format!(
                        "{heading}: {flag} documents env {listed:?}, the flag reads {env:?}"
                    ));
                }
            }
        }
    }
    for flag in documented.keys().filter(|f| !flags.contains(*f)) {
        problems.push(format!("{heading}: {flag} is documented but not a flag"));
    }
    problems
}

#[test]
fn every_flag_and_env_var_of_the_job_commands_is_in_the_job_reference_and_no_other() {
    let mut problems = check_flags(
        driftwatch::job::check::CheckArgs::augment_args(clap::Command::new("check")),
        "`driftwatch check` flags",
    );
    problems.extend(check_flags(
        driftwatch::job::package::cli::PackageArgs::augment_args(clap::Command::new("package")),
        "`driftwatch package` flags",
    ));
    report("docs/reference/jobs.md vs the Job commands", &problems);
}

/// The JSON examples of a page, by the type named in the `<!-- example: Type -->` line before each.
fn examples(page: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(ty) = line
            .strip_prefix("<!-- example: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.get(i + 1),
            Some(&"```json"),
            "example {ty} must be followed by a ```json block"
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        out.push((ty.to_string(), body.join("\n")));
    }
    out
}

/// Reads `text` as `T` and writes it back: the same JSON means every field name and value is one `T` has.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> Result<(), String> {
    let original: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let typed: T = serde_json::from_value(original.clone()).map_err(|e| e.to_string())?;
    let written = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if written == original {
        Ok(())
    } else {
        Err(format!("reads back as {written}"))
    }
}

#[test]
fn every_json_example_of_the_reference_is_what_the_code_reads_and_writes() {
    use driftwatch::http::api::{alertmanager::ReceiveResponse, events::EventList, retrain::RetrainResponse};
    use driftwatch::job::package::webhook::WebhookBody;
    use driftwatch::job::result::{CheckReport, PackageReport, parse_check_report, parse_package_report};
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for page in ["docs/reference/jobs.md", "docs/reference/http.md"] {
        for (ty, json) in examples(&read(page)) {
            let result = match ty.as_str() {
                "CheckReport" => parse_check_report(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|_| round_trip::<CheckReport>(&json)),
                "PackageReport" => parse_package_report(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|_| round_trip::<PackageReport>(&json)),
                "WebhookBody" => round_trip::<WebhookBody>(&json),
                "EventList" => round_trip::<EventList>(&json),
                "RetrainResponse" => round_trip::<RetrainResponse>(&json),
                "ReceiveResponse" => round_trip::<ReceiveResponse>(&json),
                other => Err(format!("no type {other} is known to this test")),
            };
            if let Err(e) = result {
                problems.push(format!("{page}, example {ty}: {e}"));
            }
            seen.insert(ty);
        }
    }
    assert!(
        seen.contains("CheckReport") && seen.contains("PackageReport"),
        "examples found: {seen:?}"
    );
    report("JSON examples", &problems);
}

// --- the repository -----------------------------------------------------------------------------------------

/// The tracked files (`git ls-files`), or every file outside `.git` and `target` without git.
fn tracked_files() -> Vec<PathBuf> {
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(output) = listed {
        return output
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).to_string()))
            .filter(|p| root().join(p).is_file())
            .collect();
    }
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == ".git" || name == "target" {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, out);
            } else if let Ok(relative) = path.strip_prefix(base) {
                out.push(relative.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root(), &mut out);
    out
}

/// `path` joined to `dir` and normalized; `None` when it climbs above the repository root.
fn resolve(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = dir
        .components()
        .filter_map(|c| c.as_os_str().to_str().map(str::to_string))
        .collect();
    for component in Path::new(path).components() {
        match component {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().to_string()),
            _ => {}
        }
    }
    Some(parts.iter().collect())
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._/-".contains(c)
}

/// Path-like words of a text: maximal runs of path characters.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_path_char(c)).filter(|w| !w.is_empty())
}

/// What in `text` (the content of `file`) points outside the repository or at a file it does not have.
fn outside_pointers(file: &Path, text: &str, exists: &dyn Fn(&Path) -> bool) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for word in words(text) {
        let word = word.trim_end_matches(['.', '/']);
        if word.contains("../") && !word.starts_with('/') && resolve(dir, word).is_none() {
            problems.push(format!(
                "{}: `{word}` leads outside the repository",
                file.display()
            ));
        }
        if word.ends_with(".md") && !word.starts_with('/') {
            // Relative to the file's folder or to any folder above it (`operations.md` in docs/reference/
            // names docs/operations.md; `docs/approval.md` anywhere names the one at the root).
            let found = dir
                .ancestors()
                .any(|base| resolve(base, word).is_some_and(|p| exists(&p)));
            if !found {
                problems.push(format!(
                    "{}: `{word}` names a page the repository does not have",
                    file.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn a_pointer_outside_the_repository_or_to_a_missing_page_is_found() {
    let exists = |p: &Path| p == Path::new("docs/operations.md") || p == Path::new("README.md");
    let file = Path::new("docs/reference/guide.md");
    let fine = "see [ops](../operations.md), operations.md, docs/operations.md and ../../README.md";
    assert_eq!(outside_pointers(file, fine, &exists), Vec::<String>::new());
    let found = outside_pointers(
        file,
        "The contract is in `../../../elsewhere/DESIGN.md`; style: STYLE.md.",
        &exists,
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("leads outside"), "{found:?}");
}

#[test]
fn no_tracked_file_points_outside_the_repository_or_at_a_page_it_does_not_have() {
    let files = tracked_files();
    let known: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let exists = |p: &Path| known.contains(p) || root().join(p).is_dir();
    let mut problems = Vec::new();
    // This file names missing pages and outside paths on purpose, to show the check finds them.
    for file in files.iter().filter(|f| !f.ends_with("tests/docs_reference.rs")) {
        let Ok(text) = std::fs::read_to_string(root().join(file)) else {
            continue; // binary
        };
        problems.extend(outside_pointers(file, &text, &exists));
    }
    report("pointers outside the repository", &problems);
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let base = slug(line.trim_start_matches('#'));
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

#[test]
fn every_relative_link_of_the_markdown_pages_resolves_to_a_file_and_heading() {
    let files = tracked_files();
    let mut problems = Vec::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "md")) {
        let text = read(file.to_str().unwrap());
        let dir = file.parent().unwrap_or(Path::new(""));
        for (at, _) in text.match_indices("](") {
            let target = &text[at + 2..];
            let Some(target) = target.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                Some(file.clone())
            } else {
                resolve(dir, path)
            };
            let Some(resolved) = resolved.filter(|p| root().join(p).exists()) else {
                problems.push(format!("{}: link to `{target}`: no such file", file.display()));
                continue;
            };
            if !anchor.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(root().join(&resolved)).unwrap_or_default());
                if !headings.contains(anchor) {
                    problems.push(format!("{}: link to `{target}`: no such heading", file.display()));
                }
            }
        }
    }
    report("markdown links", &problems);
}
