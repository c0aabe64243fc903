//! A real S3-compatible server for tests: moto's server (installed by hack/test-deps.sh), started on a
//! free loopback port per test binary and killed with the test process (PR_SET_PDEATHSIG). Process and
//! network I/O.
#![allow(dead_code)]

// Both servers use it, and a test binary may include both.
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
mod ports;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    endpoint: String,
    _child: Mutex<Child>,
}

static SHARED: OnceLock<S3Server> = OnceLock::new();

impl S3Server {
    /// The server of this test binary, started on first use on loopback.
    pub fn shared() -> &'static S3Server {
        Self::shared_at("127.0.0.1")
    }

    /// The server of this test binary, started on first use on `host` (e.g. the test cluster's node
    /// address, so Pods reach it). A test binary uses one host.
    pub fn shared_at(host: &str) -> &'static S3Server {
        let host = host.to_string();
        SHARED.get_or_init(|| {
            // The child dies with the thread that started it (PDEATHSIG), so a thread that lives as long
            // as the test binary starts it.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("s3-server-keeper".into())
                .spawn(move || {
                    let _ = tx.send(start(&host));
                    loop {
                        std::thread::park();
                    }
                })
                .expect("spawn s3-server keeper thread");
            match rx.recv() {
                Ok(Ok(server)) => server,
                Ok(Err(e)) => panic!("S3 test server: {e}"),
                Err(_) => panic!("S3 test server keeper died"),
            }
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for the server (new per call: clients belong to the runtime that uses them).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let credentials = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .credentials_provider(credentials)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a bucket (ignores "already exists").
    pub async fn create_bucket(&self, name: &str) {
        let _ = self.client().create_bucket().bucket(name).send().await;
    }

    /// The bytes of object `key` in `bucket` (panics, naming it, when it cannot be read).
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let object = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"));
        object
            .body
            .collect()
            .await
            .expect("object body")
            .into_bytes()
            .to_vec()
    }

    /// Env for a `driftwatch package` child process talking to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("DRIFTWATCH_S3_ENDPOINT", self.endpoint.clone()),
        ]
    }
}

fn moto_server() -> Result<String, String> {
    if let Ok(path) = std::env::var("DRIFTWATCH_MOTO_SERVER") {
        return Ok(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/test-deps.sh");
    let out = Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{script} failed"));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .ok_or_else(|| format!("{script} printed nothing"))
}

/// Starts moto on a free port of `host`; a start that lost its port to another listener is tried
/// again on a new one (three times at most).
fn start(host: &str) -> Result<S3Server, String> {
    let binary = moto_server()?;
    let mut last_error = String::new();
    for _ in 0..3 {
        match start_on(&binary, host, ports::unused_port_on(host)?)? {
            Ok(server) => return Ok(server),
            Err(exited) => last_error = exited,
        }
    }
    Err(last_error)
}

/// The server, or (inner `Err`) the reason it exited before listening.
fn start_on(binary: &str, host: &str, port: u16) -> Result<Result<S3Server, String>, String> {
    let mut command = Command::new(binary);
    command
        .args(["-H", host, "-p", &port.to_string()])
        .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl in the forked child before exec, async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| format!("start {binary}: {e}"))?;
    let endpoint = format!("http://{host}:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect((host, port)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(Err(format!(
                "moto_server exited before listening on {port} ({status})"
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("moto_server did not listen on {port} within 60s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Ok(S3Server {
        endpoint,
        _child: Mutex::new(child),
    }))
}
