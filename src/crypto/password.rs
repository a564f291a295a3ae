//! Password hashing with argon2id. Hashing is CPU- and memory-heavy, so it runs
//! on threads of its own behind a semaphore, at a lower CPU priority than
//! the threads that answer requests: a storm of logins queues here, and
//! where it competes for a core with other requests they go first, instead
//! of every request waiting behind a verification's time slice.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// OWASP's minimum for argon2id; the config may only make it stronger.
pub const MIN_M_KIB: u32 = 19_456;
pub const MIN_T: u32 = 2;
pub const MIN_P: u32 = 1;
pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Checks without priority pass this gate first; it holds one permit
    /// fewer than there are workers, so a flood of them always leaves a
    /// worker to the rest.
    low_gate: Arc<Semaphore>,
    /// Checks waiting for a worker, and the most that may wait; beyond it a
    /// check is shed (429 with Retry-After) instead of queueing without end.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    shed: Arc<AtomicU64>,
    /// Verified against when the email is unknown, so both paths cost the
    /// same. Made by the first hashing worker free after the start, not
    /// before it (a whole hash of start-up time, and of every CLI command);
    /// a check that needs it first waits for it on its worker.
    dummy_hash: Arc<OnceLock<Option<String>>>,
    pool: Pool,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, one per worker, each at `NICE`. They end when the
/// last clone of the hasher goes.
#[derive(Clone)]
struct Pool {
    jobs: crossbeam_channel::Sender<Job>,
}

/// The hashing threads' nice value (0 is every other thread's). On a
/// contended core the scheduler gives a request's thread about ten times
/// the CPU of a hashing thread and lets it in first when it wakes, so reads
/// keep their latency during a sign-in storm; on an idle core a
/// verification takes as long as ever.
const NICE: i32 = 10;

impl Pool {
    fn start(workers: usize) -> Result<Self> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("aura-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    while let Ok(job) = rx.recv() {
                        // A panic ends the job (its caller sees the pool
                        // closed), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| Error::internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let closed = || Error::Unavailable("password hashing pool closed");
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())
    }
}

/// Lowers the calling thread's CPU priority (on Linux the nice value is a
/// thread's own). Raising it back would need privileges, hence threads of
/// their own rather than the shared blocking pool.
fn lower_priority() {
    // SAFETY: setpriority only reads its integer arguments; who = 0 is the
    // calling thread.
    let r = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, NICE) };
    if r != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "password hashing runs at normal priority"
        );
    }
}

/// The calling thread's nice value, for the tests.
#[cfg(test)]
fn current_nice() -> i32 {
    // SAFETY: as above; getpriority only reads its integer arguments.
    unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) }
}

impl PasswordHasher {
    pub fn new(m_kib: u32, t: u32, p: u32, workers: usize) -> Result<Self> {
        if m_kib < MIN_M_KIB || t < MIN_T || p < MIN_P {
            return Err(Error::Config(format!(
                "argon2 parameters must be at least m={MIN_M_KIB} KiB, t={MIN_T}, p={MIN_P}"
            )));
        }
        let params = Params::new(m_kib, t, p, None)
            .map_err(|e| Error::Config(format!("argon2 parameters: {e}")))?;
        let pool = Pool::start(workers.max(1))?;
        let dummy_hash = Arc::new(OnceLock::new());
        let (dummy, p) = (Arc::clone(&dummy_hash), params.clone());
        let _ = pool.jobs.send(Box::new(move || {
            dummy_of(&dummy, &p);
        }));
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            low_gate: Arc::new(Semaphore::new(workers.saturating_sub(1).max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: usize::MAX,
            shed: Arc::new(AtomicU64::new(0)),
            dummy_hash,
            pool,
        })
    }

    /// Bounds the checks that may wait for a worker (`limits.password_queue`).
    pub fn with_queue(mut self, max_waiting: usize) -> Self {
        self.max_waiting = max_waiting.max(1);
        self
    }

    /// Checks shed because the queue was full.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// A worker, or `RateLimited` when the queue is full. Checks without
    /// priority may fill only half the queue and pass the low gate first.
    async fn worker(
        &self,
        priority: bool,
    ) -> Result<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>)> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let cap = if priority {
            self.max_waiting
        } else {
            (self.max_waiting / 2).max(1)
        };
        // Counted in only while below the cap (one atomic step), so a burst
        // of checks without priority never crowds out those with it.
        let joined = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            });
        if joined.is_err() {
            self.shed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(priority, "password queue full; check shed");
            return Err(Error::RateLimited {
                retry_after_secs: 1,
            });
        }
        let waiting = Waiting(&self.waiting);
        let closed = |_| Error::Unavailable("password hashing pool closed");
        let gate = if priority {
            None
        } else {
            Some(
                Arc::clone(&self.low_gate)
                    .acquire_owned()
                    .await
                    .map_err(closed)?,
            )
        };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(closed)?;
        drop(waiting);
        Ok((permit, gate))
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        check_password_policy(&password)?;
        // The worker's place goes with the job: a request that goes away
        // leaves it held until its job has run, so abandoned checks count
        // against the queue like waiting ones.
        let permit = self.worker(true).await?;
        let params = self.params.clone();
        self.pool
            .run(move || {
                let _permit = permit;
                hash_with(&params, &password)
            })
            .await?
    }

    /// `None` as the stored hash means "unknown account": the dummy hash is
    /// verified instead and the result is always false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool> {
        self.verify_as(password, stored, true).await
    }

    /// `verify`, with or without priority for a worker (sign-ins from an
    /// address network that has not signed in before go without).
    pub async fn verify_as(
        &self,
        password: String,
        stored: Option<String>,
        priority: bool,
    ) -> Result<bool> {
        let permit = self.worker(priority).await?;
        let known = stored.is_some();
        let (dummy, params) = (Arc::clone(&self.dummy_hash), self.params.clone());
        let ok = self
            .pool
            .run(move || {
                let _permit = permit;
                match &stored {
                    Some(stored) => verify_with(&password, stored),
                    None => match dummy_of(&dummy, &params) {
                        Some(dummy) => verify_with(&password, dummy),
                        // No dummy (never with checked parameters): a whole
                        // hash instead, so an unknown account still costs one.
                        None => {
                            let _ = hash_with(&params, &password);
                            false
                        }
                    },
                }
            })
            .await?;
        Ok(known && ok)
    }

    /// Synchronous variant for the CLI, which has no reason to queue.
    pub fn hash_blocking(&self, password: &str) -> Result<String> {
        check_password_policy(password)?;
        hash_with(&self.params, password)
    }
}

/// The dummy hash, made on first use (on a hashing worker); `None` if it
/// cannot be made (never with checked parameters).
fn dummy_of<'a>(dummy: &'a OnceLock<Option<String>>, params: &Params) -> Option<&'a str> {
    dummy
        .get_or_init(|| hash_with(params, &crate::crypto::token::random_password()).ok())
        .as_deref()
}

pub fn check_password_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(Error::field(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::field(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2 hash: {e}")))
}

fn verify_with(password: &str, stored: &str) -> bool {
    // Parameters come from the stored PHC string, so old hashes keep verifying
    // after the configured cost is raised.
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(MIN_M_KIB, MIN_T, MIN_P, 1).unwrap();
        let stored = h.hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            h.verify("correct horse battery".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify("wrong password!".into(), Some(stored))
                .await
                .unwrap()
        );
        assert!(!h.verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_sheds_and_low_priority_sheds_first() {
        let h = PasswordHasher::new(MIN_M_KIB, MIN_T, MIN_P, 1)
            .unwrap()
            .with_queue(4);
        let held = h.worker(true).await.unwrap();
        // The one worker is busy: two low-priority checks may wait (half
        // the queue), the third is shed; priority ones may fill the rest.
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let h2 = h.clone();
            waiters.push(tokio::spawn(
                async move { h2.worker(false).await.map(|_| ()) },
            ));
        }
        while h.waiting.load(Ordering::Relaxed) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            h.worker(false).await,
            Err(Error::RateLimited { .. })
        ));
        for _ in 0..2 {
            let h2 = h.clone();
            waiters.push(tokio::spawn(
                async move { h2.worker(true).await.map(|_| ()) },
            ));
        }
        while h.waiting.load(Ordering::Relaxed) < 4 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            h.worker(true).await,
            Err(Error::RateLimited { .. })
        ));
        assert_eq!(h.shed(), 2);
        drop(held);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
    }

    /// Hashing runs on threads below every other thread's priority, so a
    /// sign-in storm gives way to requests on a contended core.
    #[tokio::test]
    async fn hashing_runs_below_request_priority() {
        let h = PasswordHasher::new(MIN_M_KIB, MIN_T, MIN_P, 2).unwrap();
        let ours = current_nice();
        let theirs = h.pool.run(current_nice).await.unwrap();
        assert_eq!(theirs, (ours + NICE).min(19), "hashing thread at {theirs}");
        let name = h
            .pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("aura-argon2-")));
        // A job that panics ends as a closed pool, and the thread lives on.
        assert!(
            h.pool
                .run(|| -> () { panic!("a job that panics") })
                .await
                .is_err()
        );
        assert!(h.verify("anything at all".into(), None).await.is_ok());
    }

    /// A check whose request went away keeps its worker until its job has
    /// run, so abandoned checks cannot pile up behind the queue's bound.
    #[tokio::test]
    async fn an_abandoned_check_keeps_its_worker_until_its_job_ran() {
        let h = PasswordHasher::new(MIN_M_KIB, MIN_T, MIN_P, 1).unwrap();
        let h2 = h.clone();
        let task = tokio::spawn(async move { h2.verify("anything at all".into(), None).await });
        while h.permits.available_permits() == 1 {
            tokio::task::yield_now().await;
        }
        task.abort();
        let _ = task.await;
        assert_eq!(
            h.permits.available_permits(),
            0,
            "the abandoned check gave its worker back before its job ran"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while h.permits.available_permits() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn weak_parameters_and_passwords_are_refused() {
        assert!(PasswordHasher::new(4096, 1, 1, 1).is_err());
        assert!(check_password_policy("short").is_err());
    }
}
