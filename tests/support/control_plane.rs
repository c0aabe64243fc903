//! A real Kubernetes control plane for integration tests: etcd + kube-apiserver at the versions pinned in
//! hack/control-plane, started once per test binary on free loopback ports in a temp dir, with the CRDs
//! from crds/ installed and Established. Does process and network I/O.
//!
//! The processes are children of a dedicated keeper thread that lives as long as the test binary and are
//! started with `PR_SET_PDEATHSIG = SIGKILL`, so they die with the test process however it ends (success,
//! panic, Ctrl-C or SIGKILL): no orphans.
//!
//! There is no controller-manager, scheduler or kubelet: namespaces never finish deleting, owner references
//! do not cascade, Jobs create no Pods (tests create them), and the ServiceAccount admission plugin is off
//! (no token controller creates `default` service accounts).
#![allow(dead_code)]

// Both servers use it, and a test binary may include both.
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
pub mod ports;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Bearer token of the test admin (group system:masters).
pub const ADMIN_TOKEN: &str = "driftwatch-test-admin-token";

pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    started_in: Duration,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();
static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

impl ControlPlane {
    /// The control plane of this test binary, started on first use.
    pub fn shared() -> &'static ControlPlane {
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("control-plane-keeper".into())
                .spawn(move || keeper(tx))
                .expect("spawn control-plane keeper thread");
            match rx.recv() {
                Ok(Ok(cp)) => cp,
                Ok(Err(err)) => panic!("control plane failed to start: {err}"),
                Err(_) => panic!("control plane keeper thread died during start-up"),
            }
        })
    }

    /// An admin client (a new one per call: a client belongs to the tokio runtime that uses it).
    pub async fn client(&self) -> Client {
        self.client_with(|_| {}).await
    }

    /// A client that impersonates `user` (with `groups`), to test RBAC and admission as that user.
    pub async fn impersonate(&self, user: &str, groups: &[&str]) -> Client {
        let user = user.to_string();
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.client_with(move |config| {
            config.auth_info.impersonate = Some(user);
            config.auth_info.impersonate_groups = Some(groups);
        })
        .await
    }

    /// An admin client that reaches the API server at `url` instead (e.g. through a proxy on loopback).
    pub async fn client_at(&self, url: &str) -> Client {
        let url: http::Uri = url.parse().expect("API server URL");
        self.client_with(move |config| config.cluster_url = url).await
    }

    /// A client that authenticates with a bearer token (e.g. a ServiceAccount token).
    pub async fn client_with_token(&self, token: &str) -> Client {
        let token = token.to_string();
        self.client_with(move |config| config.auth_info.token = Some(token.into()))
            .await
    }

    async fn client_with(&self, adjust: impl FnOnce(&mut Config)) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read test kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("load test kubeconfig");
        adjust(&mut config);
        Client::try_from(config).expect("build client")
    }

    /// A fresh namespace named `<prefix>-<n>-<pid>`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{n}-{}", std::process::id());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client().await)
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        name
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server_url(&self) -> &str {
        &self.server
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long start-up took (binaries ready → CRDs Established).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }
}

fn keeper(tx: std::sync::mpsc::Sender<Result<ControlPlane, String>>) {
    let mut children = Vec::new();
    let mut result = start(&mut children);
    // A process that lost its port to another listener is started again on new ports.
    for _ in 0..2 {
        match &result {
            Err(err) if ports::lost_a_port(err) => {
                eprintln!("control plane lost a port, starting it again: {err}");
                stop(&mut children);
                result = start(&mut children);
            }
            _ => break,
        }
    }
    let ok = result.is_ok();
    let _ = tx.send(result);
    if !ok {
        stop(&mut children);
        return;
    }
    // Park forever: the children die with this thread, i.e. with the test process.
    loop {
        std::thread::park();
    }
}

fn stop(children: &mut Vec<Child>) {
    for mut child in children.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binaries_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("DRIFTWATCH_CONTROL_PLANE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let out = Command::new(repo_root().join("hack/build-control-plane.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run hack/build-control-plane.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("hack/build-control-plane.sh failed: {}", out.status));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Starts `command` so that the kernel kills it when the spawning (keeper) thread exits.
fn spawn_bound(command: &mut Command, log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| format!("spawn {:?}: {e}", command.get_program()))
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("run {:?}: {e}", command.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn start(children: &mut Vec<Child>) -> Result<ControlPlane, String> {
    let bin = binaries_dir()?;
    let t0 = Instant::now();
    let dir = std::env::temp_dir().join(format!("driftwatch-cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("certs")).map_err(|e| e.to_string())?;

    // ServiceAccount token signing key (the apiserver requires an issuer and keys).
    let sa_key = dir.join("sa.key");
    let sa_pub = dir.join("sa.pub");
    run(Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&sa_key)
        .arg("2048"))?;
    run(Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&sa_key)
        .arg("-out")
        .arg(&sa_pub))?;
    let tokens = dir.join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{ADMIN_TOKEN},driftwatch-test-admin,admin-uid,\"system:masters\"\n"),
    )
    .map_err(|e| e.to_string())?;

    let etcd_client = ports::unused_loopback_port()?;
    let etcd_peer = ports::unused_loopback_port()?;
    let etcd_url = format!("http://127.0.0.1:{etcd_client}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let etcd = spawn_bound(
        Command::new(bin.join("etcd"))
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args([
                "--unsafe-no-fsync",
                "--log-level",
                "error",
                "--quota-backend-bytes",
                "4294967296",
            ]),
        &dir.join("etcd.log"),
    )?;
    children.push(etcd);

    let port = ports::unused_loopback_port()?;
    let server = format!("https://127.0.0.1:{port}");
    let apiserver = spawn_bound(
        Command::new(bin.join("kube-apiserver"))
            .args(["--etcd-servers", &etcd_url])
            .args(["--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1"])
            .args(["--secure-port", &port.to_string()])
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .arg(format!("--token-auth-file={}", tokens.display()))
            .args(["--authorization-mode", "RBAC"])
            .args(["--service-cluster-ip-range", "10.96.0.0/16"])
            .args([
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
            ])
            .arg(format!("--service-account-key-file={}", sa_pub.display()))
            .arg(format!("--service-account-signing-key-file={}", sa_key.display()))
            .args(["--api-audiences", "https://kubernetes.default.svc.cluster.local"])
            .args(["--disable-admission-plugins", "ServiceAccount"])
            .args([
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ]),
        &dir.join("kube-apiserver.log"),
    )?;
    children.push(apiserver);

    let kubeconfig = dir.join("kubeconfig");
    let mut file = std::fs::File::create(&kubeconfig).map_err(|e| e.to_string())?;
    write!(
        file,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\n\
         current-context: test\n"
    )
    .map_err(|e| e.to_string())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let cp = ControlPlane {
        dir: dir.clone(),
        kubeconfig,
        server,
        started_in: Duration::ZERO,
    };
    runtime.block_on(async {
        wait_ready(&cp, children).await?;
        install_crds(&cp).await
    })?;
    let started_in = t0.elapsed();
    eprintln!(
        "control plane ready at {} in {:.1}s ({})",
        cp.server,
        started_in.as_secs_f64(),
        dir.display()
    );
    Ok(ControlPlane { started_in, ..cp })
}

async fn wait_ready(cp: &ControlPlane, children: &mut [Child]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_error = String::new();
    while Instant::now() < deadline {
        for child in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = |log: &str| {
                    let text = std::fs::read_to_string(cp.dir.join(log)).unwrap_or_default();
                    text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
                };
                return Err(format!(
                    "a control-plane process exited early ({status}); apiserver log tail:\n{}\netcd log tail:\n{}",
                    tail("kube-apiserver.log"),
                    tail("etcd.log")
                ));
            }
        }
        let client = cp.client().await;
        match client
            .request_text(http::Request::get("/readyz").body(Vec::new()).unwrap())
            .await
        {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => last_error = body,
            Err(err) => last_error = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("kube-apiserver not ready after 120s: {last_error}"))
}

async fn install_crds(cp: &ControlPlane) -> Result<(), String> {
    let client = cp.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let dir = repo_root().join("crds");
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        names.push(crd.metadata.name.clone().unwrap_or_default());
        crds.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| format!("install {}: {e}", entry.path().display()))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in names {
        loop {
            let crd = crds.get(&name).await.map_err(|e| e.to_string())?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRD {name} not Established after 60s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Discovery of the new kinds lags Established a little; wait until the group is served.
    loop {
        let client = cp.client().await;
        let served = client.list_api_group_resources("driftwatch.dev/v1alpha1").await;
        if served.map(|r| r.resources.len() >= 2).unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("driftwatch.dev/v1alpha1 not served after 60s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
