//! What a Job's Pod looks like from the inside, logged when a check or packaging Job starts in Kubernetes:
//! whether a Kubernetes token is mounted and whether the root filesystem is writable. driftwatch's Jobs
//! need neither, so an operator (and the end-to-end tests) can confirm least privilege from the Job's log.
//! Does file I/O.

use std::io::ErrorKind;
use std::path::Path;

/// Where the kubelet mounts a ServiceAccount token when `automountServiceAccountToken` is not false.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const WRITE_PROBE: &str = "/.driftwatch-write-probe";
const EROFS: i32 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootFilesystem {
    ReadOnly,
    /// Not read-only, but this user may not write there (e.g. root-owned `/` and a non-root user).
    NotWritable,
    Writable,
}

impl RootFilesystem {
    pub fn as_str(self) -> &'static str {
        match self {
            RootFilesystem::ReadOnly => "read-only",
            RootFilesystem::NotWritable => "not-writable",
            RootFilesystem::Writable => "writable",
        }
    }

    /// Classifies the outcome of creating a file in `/`.
    pub fn from_probe(result: &std::io::Result<()>) -> RootFilesystem {
        match result {
            Ok(()) => RootFilesystem::Writable,
            Err(e) if e.raw_os_error() == Some(EROFS) || e.kind() == ErrorKind::ReadOnlyFilesystem => {
                RootFilesystem::ReadOnly
            }
            Err(_) => RootFilesystem::NotWritable,
        }
    }
}

/// Probes and logs the Pod's environment when running in Kubernetes (`KUBERNETES_SERVICE_HOST` is set).
pub fn log_when_in_kubernetes(job: &str) {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return;
    }
    let token_mounted = Path::new(SERVICE_ACCOUNT_TOKEN).exists();
    let probe = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(WRITE_PROBE)
        .map(|_| {
            let _ = std::fs::remove_file(WRITE_PROBE);
        });
    let root = RootFilesystem::from_probe(&probe);
    tracing::info!(
        job,
        service_account_token = if token_mounted { "mounted" } else { "absent" },
        root_filesystem = root.as_str(),
        uid = current_uid(),
        "pod environment"
    );
    if token_mounted {
        tracing::warn!(
            job,
            "a Kubernetes token is mounted in this Pod; driftwatch Jobs need none"
        );
    }
}

fn current_uid() -> String {
    // /proc/self/status: "Uid:\treal\teffective\t…"
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("Uid:")
                        .map(|r| r.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_filesystem_is_told_apart_from_a_permission_error() {
        let erofs = Err(std::io::Error::from_raw_os_error(EROFS));
        assert_eq!(RootFilesystem::from_probe(&erofs), RootFilesystem::ReadOnly);
        let denied = Err(std::io::Error::from(ErrorKind::PermissionDenied));
        assert_eq!(RootFilesystem::from_probe(&denied), RootFilesystem::NotWritable);
        assert_eq!(RootFilesystem::from_probe(&Ok(())), RootFilesystem::Writable);
    }
}
