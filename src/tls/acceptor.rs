//! A poem `Acceptor` that terminates TLS with rustls. Handshakes run in their
//! own tasks (with a deadline) so a slow client cannot stall the accept loop;
//! TLS-ALPN-01 validation handshakes are answered with the challenge
//! certificate and closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rustls::ServerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::web::conn::{ConnLimiter, Guarded};

const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

type Conn = Guarded<TlsStream<TcpStream>>;

/// Connections take their slot in the limiter when accepted, before the
/// handshake, so handshakes in flight count against the caps too.
pub struct TlsAcceptor {
    local: SocketAddr,
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
}

impl TlsAcceptor {
    pub fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        challenge: Option<Arc<ServerConfig>>,
        limiter: Arc<ConnLimiter>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(128);
        tokio::spawn(async move {
            loop {
                let (tcp, peer, slot) = crate::web::conn::accept_limited(&listener, &limiter).await;
                let tx = tx.clone();
                let config = Arc::clone(&config);
                let challenge = challenge.clone();
                tokio::spawn(async move {
                    let handshake = async {
                        let start =
                            LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                                .await?;
                        let is_challenge =
                            rustls_acme::is_tls_alpn_challenge(&start.client_hello());
                        match (is_challenge, challenge) {
                            (true, Some(ch)) => {
                                let mut tls = start.into_stream(ch).await?;
                                tls.shutdown().await?;
                                Ok::<_, std::io::Error>(None)
                            }
                            _ => Ok(Some(start.into_stream(config).await?)),
                        }
                    };
                    // A handshake still going when every slot is taken may
                    // be closed to make room, like a slow request head.
                    let done = tokio::select! {
                        r = tokio::time::timeout(HANDSHAKE_DEADLINE, handshake) => r,
                        () = slot.evicted() => {
                            tracing::debug!("TLS handshake closed to make room");
                            return;
                        }
                    };
                    match done {
                        Ok(Ok(Some(tls))) => {
                            let _ = tx.send((Guarded::new(tls, slot), peer)).await;
                        }
                        Ok(Ok(None)) => tracing::info!("answered a TLS-ALPN-01 validation"),
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, rx })
    }
}

impl Acceptor for TlsAcceptor {
    type Io = Conn;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![LocalAddr(self.local.into())]
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        match self.rx.recv().await {
            Some((io, peer)) => Ok((
                io,
                LocalAddr(self.local.into()),
                RemoteAddr(peer.into()),
                Scheme::HTTPS,
            )),
            None => Err(std::io::Error::other("TLS accept loop ended")),
        }
    }
}
