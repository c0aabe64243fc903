//! The real single-node cluster of the end-to-end tests (hack/cluster.sh: kubelet, containerd, the Job
//! controller, kube-proxy, CoreDNS), the images of this build imported into it (hack/image.sh), and helpers
//! to drive it as users do: `kubectl`, `kubectl drift`, `helm`. Process and network I/O.
//!
//! The cluster is started on first use unless it is already up (hack/test.sh starts it before the tests and
//! stops it after them); when this test process started it, it stops it when the process exits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

pub struct Cluster {
    /// The admin's kubeconfig (group system:masters).
    pub kubeconfig: PathBuf,
    /// hack/cluster.sh's state folder: `<user>.kubeconfig` for the users `alice` and `bob`, logs/.
    pub state_dir: PathBuf,
    /// kubectl and the other cluster binaries.
    pub bin_dir: PathBuf,
    /// The node's address (on its own bridge): the API server, CoreDNS and node-local servers listen here.
    pub node_ip: String,
    /// `driftwatch.local/driftwatch:<tag>`, built from this test build's binaries.
    pub image: String,
    /// The test servers' image (Qdrant test server, webhook receiver).
    pub testbed_image: String,
    pub started_in: Duration,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static NAMESPACES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(command: &mut Command) -> String {
    let out = output(command);
    if !out.status.success() {
        panic!(
            "{:?} failed ({}):\n{}{}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

extern "C" fn stop_cluster_at_exit() {
    let _ = Command::new(repo_root().join("hack/cluster.sh"))
        .arg("down")
        .stdout(Stdio::null())
        .status();
}

impl Cluster {
    /// The cluster, started on first use, with this build's images imported.
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(|| {
            let t0 = Instant::now();
            let script = repo_root().join("hack/cluster.sh");
            let was_up = Command::new(&script)
                .arg("status")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            let kubeconfig = run(Command::new(&script).arg("up").stderr(Stdio::inherit()));
            if !was_up {
                // SAFETY: registers a plain function; the test harness exits through `exit`.
                unsafe { libc::atexit(stop_cluster_at_exit) };
            }
            let kubeconfig = PathBuf::from(kubeconfig.lines().last().expect("a kubeconfig path").trim());
            let state_dir = kubeconfig.parent().expect("state folder").to_path_buf();
            let bin_dir = PathBuf::from(
                std::fs::read_to_string(state_dir.join("bin-dir"))
                    .expect("bin-dir")
                    .trim(),
            );
            let env = run(Command::new(&script).arg("env"));
            let node_ip = std::env::var("DRIFTWATCH_NODE_IP").unwrap_or_else(|_| "10.250.0.1".to_string());
            assert!(env.contains("KUBECONFIG"), "{env}");
            let binaries = Path::new(env!("CARGO_BIN_EXE_driftwatch"))
                .parent()
                .expect("target dir")
                .to_path_buf();
            let image = last_line(&run(Command::new(repo_root().join("hack/image.sh"))
                .arg("driftwatch")
                .arg(&binaries)
                .arg("--load")
                .stderr(Stdio::inherit())));
            let testbed = binaries.join("examples/driftwatch-testbed");
            assert!(
                testbed.exists(),
                "{} is missing: `cargo test` builds it (the driftwatch-testbed example)",
                testbed.display()
            );
            let testbed_image = last_line(&run(Command::new(repo_root().join("hack/image.sh"))
                .arg("testbed")
                .arg(&testbed)
                .arg("--load")
                .stderr(Stdio::inherit())));
            let started_in = t0.elapsed();
            eprintln!(
                "cluster ready in {:.1}s (images {image}, {testbed_image})",
                started_in.as_secs_f64()
            );
            Cluster {
                kubeconfig,
                state_dir,
                bin_dir,
                node_ip,
                image,
                testbed_image,
                started_in,
            }
        })
    }

    /// An admin client (a new one per call: a client belongs to the runtime that uses it).
    pub async fn client(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    /// A client authenticated as `user` (`alice` or `bob`: static tokens of hack/cluster.sh, no rights
    /// until a test binds them).
    pub async fn user_client(&self, user: &str) -> Client {
        client_from(&self.user_kubeconfig(user)).await
    }

    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        self.state_dir.join(format!("{user}.kubeconfig"))
    }

    /// `kubectl` as the admin, with `kubectl-drift` of this build on PATH.
    pub fn kubectl(&self) -> Command {
        self.kubectl_as_config(&self.kubeconfig)
    }

    /// `kubectl` as `user`.
    pub fn kubectl_as(&self, user: &str) -> Command {
        self.kubectl_as_config(&self.user_kubeconfig(user))
    }

    fn kubectl_as_config(&self, kubeconfig: &Path) -> Command {
        let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-drift"))
            .parent()
            .expect("plugin dir")
            .to_path_buf();
        let path = format!(
            "{}:{}:{}",
            self.bin_dir.display(),
            plugin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(self.bin_dir.join("kubectl"));
        command.env("KUBECONFIG", kubeconfig).env("PATH", path);
        command
    }

    /// `helm` (DRIFTWATCH_HELM, or built by hack/ops-deps.sh) against this cluster.
    pub fn helm(&self) -> Command {
        let mut command = Command::new(helm_binary());
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// A fresh namespace `<prefix>-<n>-<pid>`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let n = NAMESPACES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{prefix}-{n}-{}", std::process::id());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.client().await)
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        name
    }

    /// Deletes a namespace (what is in it goes with it; not waited for).
    pub async fn delete_namespace(&self, name: &str) {
        let _ = Api::<Namespace>::all(self.client().await)
            .delete(name, &DeleteParams::background())
            .await;
    }

    /// Deletes the namespace when dropped, also when the test fails, so a cluster that stays up (a
    /// developer's) does not collect the Pods and schedules of failed runs.
    pub fn delete_on_drop(&self, name: &str) -> DeleteOnDrop {
        DeleteOnDrop {
            kubectl: self.kubectl(),
            namespace: name.to_string(),
        }
    }

    /// The tail of a cluster component's log, for failure messages.
    pub fn component_log(&self, component: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("logs").join(format!("{component}.log")))
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

pub struct DeleteOnDrop {
    kubectl: Command,
    namespace: String,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let _ = self
            .kubectl
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub async fn client_from(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load kubeconfig");
    Client::try_from(config).expect("build client")
}

pub fn helm_binary() -> PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Ok(path) = std::env::var("DRIFTWATCH_HELM") {
            return PathBuf::from(path);
        }
        let out = run(Command::new(repo_root().join("hack/ops-deps.sh")).stderr(Stdio::inherit()));
        PathBuf::from(last_line(&out))
    })
    .clone()
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_string()
}

/// Polls `check` every 500 ms until it yields a value, for at most `timeout`; panics with `what` and the
/// last observation otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(observed) => observed,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
