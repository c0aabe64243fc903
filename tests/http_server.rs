//! The controller's HTTP server on loopback, as clients meet it: TLS from a mounted certificate (and the
//! renewed one after the files change, as cert-manager and the kubelet do it), a client that never finishes
//! its headers and a kept-alive connection left idle are disconnected, and connections beyond the limit
//! wait until one closes. Certificates come from `openssl`.

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use driftwatch::{
    http::{
        self, AppState, ServeOptions,
        tls::{TlsFiles, acceptor},
    },
    metrics::Metrics,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};
use tokio_rustls::TlsConnector;

/// Starts the health/metrics router with `options`; the server stops when the sender is dropped.
async fn start(options: ServeOptions) -> (SocketAddr, oneshot::Sender<()>) {
    let router = http::router(AppState {
        metrics: Arc::new(Metrics::new("video_ai").expect("metrics")),
        ready: Arc::new(AtomicBool::new(true)),
    });
    let (listener, addr) = http::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http::serve(listener, router, options, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A self-signed certificate for localhost/127.0.0.1 written to `dir/<name>.crt` and `dir/<name>.key`.
fn certificate(dir: &Path, name: &str) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&files.key)
        .arg("-out")
        .arg(&files.cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    files
}

fn trusting(cert: &Path) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).expect("read cert") {
        roots.add(der.expect("PEM")).expect("trust anchor");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// `GET path` on an open stream with `Connection: close`; the whole response.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    String::from_utf8_lossy(&raw).to_string()
}

async fn tls_get(addr: SocketAddr, trust: &Path, path: &str) -> Result<String, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = trusting(trust)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await?;
    Ok(get(&mut tls, path).await)
}

/// Reads until the peer closes (`Some(bytes read)`), or `None` when it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<usize> {
    let mut total = 0;
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.ok().map(|()| total)
}

#[tokio::test]
async fn the_server_speaks_tls_with_the_mounted_certificate_and_serves_a_renewed_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = certificate(dir.path(), "first");
    let mounted = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::copy(&first.cert, &mounted.cert).expect("mount cert");
    std::fs::copy(&first.key, &mounted.key).expect("mount key");
    let (addr, _stop) = start(ServeOptions {
        tls: Some(acceptor(mounted.clone()).expect("TLS from the mounted files")),
        ..ServeOptions::default()
    })
    .await;

    let answer = tls_get(addr, &first.cert, "/healthz").await.expect("TLS request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    let answer = get(&mut plain, "/healthz").await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // The Secret is renewed: the kubelet swaps the files; the next handshake presents the new certificate.
    let second = certificate(dir.path(), "second");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(&second.cert, dir.path().join("tls.crt.new")).expect("new cert");
    std::fs::copy(&second.key, dir.path().join("tls.key.new")).expect("new key");
    std::fs::rename(dir.path().join("tls.key.new"), &mounted.key).expect("swap key");
    std::fs::rename(dir.path().join("tls.crt.new"), &mounted.cert).expect("swap cert");
    let answer = tls_get(addr, &second.cert, "/healthz")
        .await
        .expect("the renewed certificate is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        tls_get(addr, &first.cert, "/healthz").await.is_err(),
        "the old certificate is no longer presented"
    );
}

#[test]
fn a_key_that_does_not_fit_the_certificate_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = certificate(dir.path(), "a");
    let b = certificate(dir.path(), "b");
    let Err(err) = acceptor(TlsFiles {
        cert: a.cert,
        key: b.key,
    }) else {
        panic!("a mismatched key was accepted");
    };
    assert!(err.to_string().contains("does not fit"), "{err}");
    let Err(err) = acceptor(TlsFiles {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("missing.key"),
    }) else {
        panic!("missing files were accepted");
    };
    assert!(err.to_string().contains("missing.crt"), "{err}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let (addr, _stop) = start(ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .await
        .expect("write");
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)).await.is_some(),
        "the connection is still open 10 s after a 1 s header timeout"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let (addr, _stop) = start(ServeOptions {
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    })
    .await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let n = client.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then nothing: closed after the idle timeout, long before the header timeout.
    assert!(
        closed_within(&mut client, Duration::from_secs(10))
            .await
            .is_some(),
        "an idle connection is still open 10 s after a 1 s idle timeout"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let (addr, _stop) = start(ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    })
    .await;
    let first = TcpStream::connect(addr).await.expect("connect");
    // Let the server take the first connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = TcpStream::connect(addr).await.expect("connect (kernel backlog)");
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let waited = tokio::time::timeout(Duration::from_millis(700), second.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "the second connection was served while the first held the only slot"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
        .await
        .expect("served once the first closed")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
