//! Connection limits (issue 27, finding 1): every accepted connection takes a
//! slot, total and per address network, under a cap kept below the process's
//! descriptor limit; a connection must deliver each request head within
//! `limits.header_read_timeout_secs`; the accept loop backs off when the
//! system runs out of descriptors instead of spinning. When every slot is
//! taken, the connection that has spent longest sending an unfinished head
//! (a slowloris) is closed to make room, so a flood of slow heads from many
//! addresses cannot lock everyone else out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{Config, LimitsConfig};

mod stream;
pub use stream::Guarded;

/// Descriptors kept free of connections: logs, control.db (3 files), the
/// listeners, outbound calls and spool files, plus 5 per open workspace (writer: file, WAL, shm; a reader: file, WAL).
const FIXED_RESERVE: u64 = 128;
/// Only a head older than this is closed to make room for a new connection
/// (a real client sends its head in a round trip or two).
const EVICT_AFTER: Duration = Duration::from_millis(100);

/// One connection's shared state, seen by the limiter (to close it) and by
/// its stream.
pub struct ConnShared {
    id: u64,
    net: ipnet::IpNet,
    /// When its current unfinished request head started; `None` between
    /// requests and while a body or response is under way.
    head_since: Mutex<Option<Instant>>,
    kill: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Also told, for a connection still in its TLS handshake (no stream
    /// polls `kill` yet).
    killed: tokio::sync::Notify,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    per_net: HashMap<ipnet::IpNet, usize>,
    conns: HashMap<u64, Arc<ConnShared>>,
    /// Connections told to close that have not gone yet.
    dying: usize,
}

/// Counts and caps connections; one per running appliance.
pub struct ConnLimiter {
    pub max_total: usize,
    pub max_per_ip: usize,
    pub head_timeout: Duration,
    limits: LimitsConfig,
    /// `tls.trusted_proxies`: every client behind one arrives from its
    /// address, so the per-address cap does not apply to it (the total does).
    trusted: Vec<ipnet::IpNet>,
    table: Mutex<Table>,
    pub refused_total: AtomicU64,
    pub refused_per_ip: AtomicU64,
    pub evicted: AtomicU64,
    pub head_timeouts: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// Raises the soft descriptor limit to the hard one where allowed (under the
/// systemd unit, `LimitNOFILE=` sets both and setrlimit is filtered), and
/// returns the soft limit in force.
pub fn descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => u64::MAX,
    }
}

impl ConnLimiter {
    pub fn from_config(cfg: &Config) -> Self {
        let l = &cfg.file.limits;
        let nofile = descriptor_limit();
        let reserve = FIXED_RESERVE + 5 * cfg.file.storage.tenant_pool_size as u64;
        let by_fd = usize::try_from(nofile.saturating_sub(reserve).max(32)).unwrap_or(usize::MAX);
        let max_total = l.max_connections.min(by_fd);
        if max_total < l.max_connections {
            tracing::warn!(
                nofile,
                max_connections = max_total,
                configured = l.max_connections,
                "the descriptor limit lowers the connection cap; raise LimitNOFILE="
            );
        }
        let mut limiter = Self::new(l, max_total);
        limiter.trusted = cfg.trusted_proxies.clone();
        limiter
    }

    pub fn new(l: &LimitsConfig, max_total: usize) -> Self {
        Self {
            max_total,
            max_per_ip: l.max_connections_per_ip.min(max_total),
            head_timeout: Duration::from_secs(l.header_read_timeout_secs),
            limits: l.clone(),
            trusted: Vec::new(),
            table: Mutex::new(Table::default()),
            refused_total: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            head_timeouts: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// A slot for a connection from `ip`, or `None` (close it at once).
    pub fn admit(&self, ip: IpAddr) -> Option<Arc<ConnShared>> {
        let net = crate::identity::netkey::network(ip, &self.limits);
        let proxy = self.trusted.iter().any(|n| n.contains(&ip));
        let mut t = self.lock();
        if !proxy && t.per_net.get(&net).copied().unwrap_or(0) >= self.max_per_ip {
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if t.conns.len().saturating_sub(t.dying) >= self.max_total && !self.evict_slowest(&mut t) {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        t.next_id += 1;
        let shared = Arc::new(ConnShared {
            id: t.next_id,
            net,
            head_since: Mutex::new(Some(Instant::now())),
            kill: AtomicBool::new(false),
            waker: Mutex::new(None),
            killed: tokio::sync::Notify::new(),
        });
        *t.per_net.entry(net).or_default() += 1;
        t.conns.insert(shared.id, Arc::clone(&shared));
        Some(shared)
    }

    /// Tells the connection with the oldest unfinished head (older than
    /// `EVICT_AFTER`) to close. Runs only when every slot is taken.
    fn evict_slowest(&self, t: &mut Table) -> bool {
        let cutoff = Instant::now().checked_sub(EVICT_AFTER);
        let victim = t
            .conns
            .values()
            .filter(|c| !c.kill.load(Ordering::Relaxed))
            .filter_map(|c| {
                let since = (*c.head_since.lock().unwrap_or_else(|p| p.into_inner()))?;
                cutoff.is_some_and(|cut| since <= cut).then_some((since, c))
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, c)| Arc::clone(c));
        let Some(victim) = victim else {
            return false;
        };
        victim.kill.store(true, Ordering::Relaxed);
        victim.killed.notify_one();
        if let Some(w) = victim
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            w.wake();
        }
        t.dying += 1;
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Connection figures for `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# TYPE aura_connections_open gauge");
        let _ = writeln!(out, "aura_connections_open {}", self.open());
        let _ = writeln!(out, "# TYPE aura_connections_max gauge");
        let _ = writeln!(out, "aura_connections_max {}", self.max_total);
        let _ = writeln!(out, "# TYPE aura_connections_refused_total counter");
        for (reason, n) in [
            ("total", &self.refused_total),
            ("per_ip", &self.refused_per_ip),
            ("evicted_slow_head", &self.evicted),
            ("head_timeout", &self.head_timeouts),
            ("accept_error", &self.accept_errors),
        ] {
            let _ = writeln!(
                out,
                "aura_connections_refused_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }

    fn release(&self, c: &ConnShared) {
        let mut t = self.lock();
        if t.conns.remove(&c.id).is_none() {
            return;
        }
        if c.kill.load(Ordering::Relaxed) {
            t.dying = t.dying.saturating_sub(1);
        }
        if let Some(n) = t.per_net.get_mut(&c.net) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_net.remove(&c.net);
            }
        }
    }
}

/// A connection's place in the limiter, given back when dropped (also when
/// a TLS handshake fails before there is a stream).
pub struct Slot {
    shared: Arc<ConnShared>,
    limiter: Arc<ConnLimiter>,
}

impl Slot {
    /// Resolves when the limiter closes this connection to make room.
    pub async fn evicted(&self) {
        self.shared.killed.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limiter.release(&self.shared);
    }
}

/// Out of descriptors (or buffers): wait before accepting again.
pub fn is_resource_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}

/// Accepts one TCP connection under the limits: refused connections are
/// closed at once; on running out of descriptors the loop sleeps, doubling
/// from 5 ms up to 1 s, so it neither spins nor stops.
pub async fn accept_limited(
    listener: &TcpListener,
    limiter: &Arc<ConnLimiter>,
) -> (TcpStream, SocketAddr, Slot) {
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                if let Some(shared) = limiter.admit(peer.ip()) {
                    let slot = Slot {
                        shared,
                        limiter: Arc::clone(limiter),
                    };
                    return (tcp, peer, slot);
                }
                drop(tcp);
            }
            Err(e) => {
                limiter.accept_errors.fetch_add(1, Ordering::Relaxed);
                if is_resource_error(&e) {
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept: out of descriptors; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                } else {
                    tracing::debug!(error = %e, "accept failed");
                }
            }
        }
    }
}

/// A poem `Acceptor` for plain TCP under the connection limits.
pub struct LimitedTcpAcceptor {
    listener: TcpListener,
    local: SocketAddr,
    limiter: Arc<ConnLimiter>,
}

impl LimitedTcpAcceptor {
    pub fn new(listener: TcpListener, limiter: Arc<ConnLimiter>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        Ok(Self {
            listener,
            local,
            limiter,
        })
    }
}

impl Acceptor for LimitedTcpAcceptor {
    type Io = Guarded<TcpStream>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        vec![LocalAddr(self.local.into())]
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (tcp, peer, slot) = accept_limited(&self.listener, &self.limiter).await;
        let _ = tcp.set_nodelay(true);
        Ok((
            Guarded::new(tcp, slot),
            LocalAddr(self.local.into()),
            RemoteAddr(peer.into()),
            Scheme::HTTP,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_network_and_total_and_releases() {
        let l = LimitsConfig {
            max_connections_per_ip: 2,
            ..Default::default()
        };
        let lim = ConnLimiter::new(&l, 3);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let a2: IpAddr = "2001:db8::2".parse().unwrap();
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        let c1 = lim.admit(a).unwrap();
        let _c2 = lim.admit(a2).unwrap();
        assert!(lim.admit(a).is_none(), "same /64");
        let _c3 = lim.admit(b).unwrap();
        // Full; nothing is old enough to be closed.
        assert!(lim.admit("192.0.2.9".parse().unwrap()).is_none());
        lim.release(&c1);
        assert!(lim.admit(a).is_some());

        let mut behind_proxy = ConnLimiter::new(&l, 10);
        behind_proxy.trusted = vec!["10.0.0.0/8".parse().unwrap()];
        for _ in 0..5 {
            assert!(behind_proxy.admit("10.1.2.3".parse().unwrap()).is_some());
        }
    }

    #[test]
    fn a_full_table_closes_the_oldest_unfinished_head() {
        let lim = ConnLimiter::new(&LimitsConfig::default(), 2);
        let old = lim.admit("192.0.2.1".parse().unwrap()).unwrap();
        *old.head_since.lock().unwrap() = Instant::now().checked_sub(Duration::from_secs(5));
        let busy = lim.admit("192.0.2.2".parse().unwrap()).unwrap();
        *busy.head_since.lock().unwrap() = None;
        assert!(lim.admit("192.0.2.3".parse().unwrap()).is_some());
        assert!(old.kill.load(Ordering::Relaxed));
        assert!(!busy.kill.load(Ordering::Relaxed));
        assert_eq!(lim.evicted.load(Ordering::Relaxed), 1);
    }
}
