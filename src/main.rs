//! The `driftwatch` command: controller, Job modes (check, package), local drift computation, CRD output.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftwatch::telemetry::{self, LogFormat};
use k8s_openapi::api::core::v1::ResourceRequirements;

#[derive(Parser)]
#[command(
    name = "driftwatch",
    version,
    about = "Drift detection for embeddings in Qdrant, as a Kubernetes operator"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "DRIFTWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: schedule drift checks, record results, raise DriftEvents, export metrics.
    Controller(Box<ControllerArgs>),
    /// Print the CustomResourceDefinitions (YAML) of DriftMonitor and DriftEvent.
    Crd {
        /// Write one file per CRD into this folder (e.g. crds/) instead of printing.
        #[arg(long)]
        output_dir: Option<std::path::PathBuf>,
    },
    /// Run the drift detectors on local .npy files, or on the bundled example data without arguments.
    Compute(driftwatch::compute::ComputeArgs),
    /// Retrain-packaging Job: sample the comparison window, archive it to S3, call the retraining webhook.
    Package(Box<driftwatch::job::package::cli::PackageArgs>),
    /// Run one drift check: read both windows from Qdrant, run the detectors, report the result.
    Check(Box<driftwatch::job::check::CheckArgs>),
    /// Upsert embeddings (+ timestamps, confidence scores) from .npy/.jsonl into a Qdrant collection.
    QdrantLoad(Box<driftwatch::job::load::LoadArgs>),
}

#[derive(clap::Args)]
struct ControllerArgs {
    /// Image of the check and packaging Jobs (the operator's own image).
    #[arg(long, env = "DRIFTWATCH_JOB_IMAGE")]
    job_image: String,
    /// Default container resources of check Jobs, as JSON (`{"requests": {...}, "limits": {...}}`); a
    /// monitor's `spec.jobTemplate.resources` wins. Default: requests cpu 250m, memory 512Mi; limit memory
    /// 2Gi.
    #[arg(long, env = "DRIFTWATCH_CHECK_JOB_RESOURCES", value_parser = parse_resources)]
    check_job_resources: Option<ResourceRequirements>,
    /// Default container resources of packaging Jobs, as JSON; a monitor's
    /// `spec.jobTemplate.packageResources` (else `resources`) wins. Default: requests cpu 100m, memory
    /// 256Mi; limit memory 1Gi.
    #[arg(long, env = "DRIFTWATCH_PACKAGE_JOB_RESOURCES", value_parser = parse_resources)]
    package_job_resources: Option<ResourceRequirements>,
    /// Namespace to watch; repeat for several. Default: all namespaces.
    #[arg(long = "namespace", env = "DRIFTWATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "DRIFTWATCH_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: std::net::SocketAddr,
    /// Serve HTTP over TLS with this PEM certificate chain (e.g. tls.crt of a mounted kubernetes.io/tls
    /// Secret); re-read when the file changes. Needs --tls-key-file.
    #[arg(long, env = "DRIFTWATCH_TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert-file (e.g. tls.key of the same Secret).
    #[arg(long, env = "DRIFTWATCH_TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<std::path::PathBuf>,
    /// Seconds a client may take to send a request's headers (and to start the next request on a kept-alive
    /// connection, or to finish the TLS handshake).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    http_header_read_timeout_seconds: u64,
    /// Seconds a connection may stay without a byte in either direction before it is closed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    http_idle_timeout_seconds: u64,
    /// Most HTTP connections open at once; further clients wait.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    http_max_connections: u64,
    /// Prefix of every metric name.
    #[arg(long, env = "DRIFTWATCH_METRICS_PREFIX", default_value = driftwatch::metrics::DEFAULT_PREFIX)]
    metrics_prefix: String,
    /// Elect a leader with a Lease so only one replica acts.
    #[arg(long, env = "DRIFTWATCH_LEADER_ELECT")]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "driftwatch-controller")]
    lease_name: String,
    /// Namespace of the leader Lease (the controller's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a follower waits, after it last saw the Lease change, before it takes over.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds the leader keeps acting without a successful renewal (shorter than the lease duration).
    #[arg(long, default_value_t = 10)]
    lease_renew_deadline_seconds: u64,
    /// Seconds between renewals (and between follower attempts); shorter than the renew deadline.
    #[arg(long, default_value_t = 2)]
    lease_retry_seconds: u64,
    /// This instance's identity for the lease and Events. Default: the Pod name or host name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Most reconciles running at once per kind.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Serve the REST API and the dashboard WITHOUT authentication: anybody who reaches the port can read
    /// and decide on every event. For local development only.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Write decisions made through the REST API as the caller (impersonation; the chart's
    /// rbac.impersonation=true grants the right). Default: the controller writes them itself after the
    /// caller's TokenReview and SubjectAccessReview, with approvedBy set to the caller.
    #[arg(long)]
    impersonate_callers: bool,
    /// Grafana panel URL to embed in the dashboard instead of its own history charts
    /// (`var-namespace` and `var-monitor` are appended).
    #[arg(long, env = "DRIFTWATCH_GRAFANA_URL", value_parser = parse_grafana_url)]
    grafana_url: Option<String>,
    /// An origin (e.g. `https://frames.example.com`) whose images the dashboard shows as thumbnails of
    /// example points whose display fields link there; repeat the flag, or separate with commas in the env.
    /// The page's content security policy lets exactly these origins' images in.
    #[arg(long = "dashboard-image-origin", env = "DRIFTWATCH_DASHBOARD_IMAGE_ORIGINS", value_delimiter = ',', value_parser = parse_image_origin)]
    dashboard_image_origins: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Controller(args) => match run_controller(args, cli.log_format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "controller failed");
                ExitCode::FAILURE
            }
        },
        Command::Crd { output_dir } => match driftwatch::crd::emit(output_dir.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Compute(args) => match driftwatch::compute::run(&args) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error ({}): {err}", err.kind());
                ExitCode::from(2)
            }
        },
        Command::Check(args) => {
            driftwatch::job::pod_env::log_when_in_kubernetes("check");
            driftwatch::job::check::main(&args)
        }
        Command::Package(args) => {
            driftwatch::job::pod_env::log_when_in_kubernetes("package");
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: starting the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let report = runtime.block_on(driftwatch::job::package::cli::execute(&args));
            driftwatch::job::package::cli::report(&args, &report)
        }
        Command::QdrantLoad(args) => match driftwatch::job::load::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Accepts a Grafana panel URL the dashboard can embed (absolute http(s), no credentials).
fn parse_grafana_url(text: &str) -> Result<String, String> {
    driftwatch::http::api::dashboard::web_origin(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// Accepts an image origin (or any http(s) URL on it) and keeps its origin, as browsers compare it.
fn parse_image_origin(text: &str) -> Result<String, String> {
    driftwatch::http::api::dashboard::web_origin(text.trim()).map_err(|e| e.to_string())
}

/// Parses container resources given as JSON.
fn parse_resources(text: &str) -> Result<ResourceRequirements, String> {
    serde_json::from_str(text).map_err(|e| format!("not container resources as JSON ({e})"))
}

fn identity(args: &ControllerArgs) -> String {
    args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "driftwatch".to_string());
        format!("{host}-{}", std::process::id())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

fn run_controller(args: Box<ControllerArgs>, log_format: LogFormat) -> anyhow::Result<()> {
    use std::{sync::Arc, time::Duration};

    use driftwatch::controller::{self, Config, JobSettings, LeaderElection, SystemClock};

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let kube_config = kube::Config::infer().await?;
        let client = kube::Client::try_from(kube_config.clone())?;
        let metrics = Arc::new(driftwatch::metrics::Metrics::new(&args.metrics_prefix)?);
        let identity = identity(&args);
        let leader_election = args.leader_elect.then(|| LeaderElection {
            lease_duration: Duration::from_secs(args.lease_duration_seconds),
            renew_deadline: Duration::from_secs(args.lease_renew_deadline_seconds),
            retry_period: Duration::from_secs(args.lease_retry_seconds),
            ..LeaderElection::new(&args.lease_name, &args.lease_namespace, &identity)
        });
        let config = Config {
            namespaces: args.namespaces.clone(),
            jobs: {
                let mut jobs = JobSettings::new(&args.job_image);
                if let Some(resources) = &args.check_job_resources {
                    jobs.check_resources = resources.clone();
                }
                if let Some(resources) = &args.package_job_resources {
                    jobs.package_resources = resources.clone();
                }
                jobs.log_format = log_format;
                jobs
            },
            metrics,
            clock: Arc::new(SystemClock),
            http_addr: Some(args.http_addr),
            http: driftwatch::http::ServeOptions {
                tls: match (&args.tls_cert_file, &args.tls_key_file) {
                    (Some(cert), Some(key)) => Some(driftwatch::http::tls::acceptor(
                        driftwatch::http::tls::TlsFiles {
                            cert: cert.clone(),
                            key: key.clone(),
                        },
                    )?),
                    _ => None,
                },
                header_read_timeout: Duration::from_secs(args.http_header_read_timeout_seconds),
                idle_timeout: Duration::from_secs(args.http_idle_timeout_seconds),
                max_connections: usize::try_from(args.http_max_connections).unwrap_or(usize::MAX),
            },
            leader_election,
            instance: Some(identity),
            concurrency: args.concurrency,
            api: Some(driftwatch::http::api::ApiConfig {
                auth: if args.insecure_no_auth {
                    driftwatch::http::api::AuthMode::InsecureNoAuth
                } else {
                    driftwatch::http::api::AuthMode::Enabled
                },
                client_config: args.impersonate_callers.then_some(kube_config),
                settings: driftwatch::http::api::ApiSettings {
                    grafana_url: args.grafana_url.clone(),
                    image_origins: args.dashboard_image_origins.clone(),
                },
            }),
        };
        controller::run(client, config, shutdown_signal()).await?;
        Ok(())
    })
}
