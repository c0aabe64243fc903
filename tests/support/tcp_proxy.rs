//! A loopback TCP proxy that can be cut like a network partition: after `cut()` no byte passes in either
//! direction, connections stay open (nothing is refused or reset) and new ones are accepted but never
//! answered — what a client sees when the path to its server silently drops packets. Does network I/O.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

pub struct TcpProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Forwards `127.0.0.1:<free port>` to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    if *cut_rx.borrow() {
                        hold_forever(inbound, None).await;
                        return;
                    }
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let cut_now = tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => false,
                        cut = async { cut_rx.wait_for(|c| *c).await.is_ok() } => cut,
                    };
                    if cut_now {
                        hold_forever(inbound, Some(outbound)).await;
                    }
                });
            }
        });
        Self { addr, cut, task }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on nothing passes, in either direction, on old or new connections.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps both ends open without reading or writing (until the test process ends).
async fn hold_forever(inbound: TcpStream, outbound: Option<TcpStream>) {
    std::future::pending::<()>().await;
    drop((inbound, outbound));
}
