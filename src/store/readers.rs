//! Where database reads run. A read must not run on an async worker (a page
//! that is not in the OS cache would stall every request on that worker), so
//! it runs on a thread of its own. Tokio's blocking pool wakes one of its
//! threads per read, and on a busy core each read then costs two context
//! switches (there and back), which profiles showed as the largest single
//! cost of a record read.
//!
//! Reads therefore go to a few dedicated reader threads sharing one queue.
//! They run under `SCHED_BATCH`, so waking one does not preempt the async
//! worker that queued the read: the worker goes on parsing and routing the
//! other requests that are ready, queueing their reads too, and when it next
//! waits, a reader takes the whole queue in one run. The cost of the switch
//! is shared by every read in the batch.
//!
//! A reader also holds its answers back while more reads are queued (at most
//! 64 answers, or 200 µs, checked between reads) and then hands them over
//! together, so the async worker wakes once for the batch and sends its
//! responses in one burst instead of trading the core with the reader once
//! per read. Long reads (exports, index rebuilds, audit verification) do not
//! come here: they run on tokio's blocking pool. When every reader thread is
//! busy, a read goes to the blocking pool too, so short reads never queue
//! behind long ones.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// A read, run on a reader thread; what it returns hands the result to the
/// waiting request (which wakes that request's task).
type Job = Box<dyn FnOnce() -> Answer + Send>;
type Answer = Box<dyn FnOnce() + Send>;

/// At most this many answers are held back to be delivered together.
const MAX_HELD: usize = 64;
/// An answer is held back at most this long (checked between reads).
const MAX_HOLD: std::time::Duration = std::time::Duration::from_micros(200);

struct Readers {
    queue: crossbeam_channel::Sender<Job>,
    threads: usize,
    /// Jobs started and not yet finished.
    running: AtomicUsize,
}

static READERS: OnceLock<Option<Readers>> = OnceLock::new();

fn readers() -> Option<&'static Readers> {
    READERS.get_or_init(start).as_ref()
}

fn start() -> Option<Readers> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let (queue, jobs) = crossbeam_channel::unbounded::<Job>();
    for i in 0..threads {
        let jobs = jobs.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("aura-read-{i}"))
            .spawn(move || {
                batch_policy();
                let mut held: Vec<Answer> = Vec::with_capacity(MAX_HELD);
                while let Ok(first) = jobs.recv() {
                    let started = std::time::Instant::now();
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        // A panicking read drops its answer channel, which
                        // answers its caller with an error; the thread lives on.
                        if let Ok(answer) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                            held.push(answer);
                        }
                        if held.len() < MAX_HELD && started.elapsed() < MAX_HOLD {
                            next = jobs.try_recv().ok();
                        }
                    }
                    for answer in held.drain(..) {
                        answer();
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start reader threads; reads use the blocking pool");
            return None;
        }
    }
    Some(Readers {
        queue,
        threads,
        running: AtomicUsize::new(0),
    })
}

/// `SCHED_BATCH` for the calling thread: once woken, it does not preempt
/// the thread that is running. The reader threads use it, and so do the async
/// workers (`main.rs`): a worker woken by a reader's answers or by the network
/// then waits for the running thread's turn to end instead of cutting in, so
/// readers and workers each finish their batch. The cost is wake-up latency
/// when other programs keep the core busy: at most one scheduler slice.
pub fn batch_policy() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        // Niceness 0, as for every other thread; only the policy changes.
        thread_priority::ThreadPriority::Os(thread_priority::ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(e) = set {
        tracing::debug!(error = ?e, "reader thread keeps the default scheduling policy");
    }
}

/// Counts a job as running until it ends, panics included.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f` off the async workers and answers with its result.
pub async fn run<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let Some(r) = readers().filter(|r| r.running.load(Ordering::Relaxed) < r.threads) else {
        return tokio::task::spawn_blocking(f).await?;
    };
    let (done, answer) = tokio::sync::oneshot::channel::<Result<T>>();
    let job: Job = Box::new(move || {
        let out = {
            let _running = Running::start(&r.running);
            f()
        };
        Box::new(move || {
            let _ = done.send(out);
        })
    });
    if r.queue.send(job).is_err() {
        return Err(Error::internal("reader threads are gone"));
    }
    answer
        .await
        .map_err(|_| Error::internal("a read failed on its reader thread"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_answer_and_survive_a_panic() {
        assert_eq!(run(|| Ok(41 + 1)).await.unwrap(), 42);
        let failed = run::<(), _>(|| panic!("boom")).await;
        assert!(failed.is_err(), "a panicking read answers with an error");
        // The readers are still there.
        let many: Vec<_> = (0..100usize)
            .map(|i| tokio::spawn(run(move || Ok(i * 2))))
            .collect();
        for (i, r) in many.into_iter().enumerate() {
            assert_eq!(r.await.unwrap().unwrap(), i * 2);
        }
    }

    #[tokio::test]
    async fn long_reads_do_not_hold_up_short_ones() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
        let threads = readers().unwrap().threads;
        let mut long = Vec::new();
        for _ in 0..threads {
            let wait = std::sync::Arc::clone(&wait);
            long.push(tokio::spawn(run(move || {
                let _ = wait.lock().unwrap().recv();
                Ok(())
            })));
        }
        // Wait until every reader is busy, then a short read still answers.
        while readers().unwrap().running.load(Ordering::Relaxed) < threads {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let short = tokio::time::timeout(std::time::Duration::from_secs(5), run(|| Ok(7))).await;
        assert_eq!(short.unwrap().unwrap(), 7);
        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for l in long {
            l.await.unwrap().unwrap();
        }
    }
}
