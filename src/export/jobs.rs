//! Export jobs on the server: the archive is written in the background into a
//! spool file under `<data_dir>/exports/`, always age-encrypted: to the
//! recipient given at export time, or else to a one-off identity that lives
//! only in memory (so the spool is unreadable on disk and after a restart).
//! The UI and the API poll the progress and download the result, which is
//! decrypted on the fly in the second case. Jobs and their files go after an
//! hour, and at startup.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Summary;
use crate::access::enter::TenantHandle;
use crate::bounds::Pool;
use crate::error::{Error, Result};
use crate::ids::{ExportId, WorkspaceId};
use crate::records::visibility::Reader;
use crate::store::control::Control;

const KEEP_SECONDS: i64 = 3_600;
const CHUNK: usize = 64 * 1024;

#[derive(Clone, Debug, Default)]
pub struct Status {
    /// `running`, `ready` or `failed`.
    pub state: &'static str,
    pub done: u64,
    pub total: u64,
    pub summary: Option<Summary>,
    /// What went wrong, for people (details are in the log).
    pub error: Option<String>,
}

pub struct Job {
    pub id: ExportId,
    pub workspace: WorkspaceId,
    pub created_at: i64,
    /// Encrypted to the caller's own age recipient (served as it is).
    pub to_recipient: bool,
    identity: Option<age::x25519::Identity>,
    path: PathBuf,
    status: Mutex<Status>,
}

impl Job {
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    pub fn file_name(&self) -> String {
        let ext = if self.to_recipient {
            "tar.zst.age"
        } else {
            "tar.zst"
        };
        format!("aura-export-{}-{}.{ext}", self.workspace, self.created_at)
    }

    pub fn content_type(&self) -> &'static str {
        if self.to_recipient {
            "application/octet-stream"
        } else {
            "application/zstd"
        }
    }
}

pub struct ExportJobs {
    dir: PathBuf,
    jobs: Mutex<HashMap<ExportId, Arc<Job>>>,
}

impl ExportJobs {
    pub fn new(data_dir: &std::path::Path) -> Self {
        Self {
            dir: data_dir.join("exports"),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    /// At server start: spool files of an earlier run cannot be read any more
    /// (their identities were in memory), so they go.
    pub fn clear_spool(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ExportId, Arc<Job>>>> {
        self.jobs
            .lock()
            .map_err(|_| Error::internal("export jobs lock poisoned"))
    }

    /// Drops the jobs (and their spool files) older than an hour, except
    /// those still being written. Called before every lookup and on the
    /// server's checkpoint tick, so an expired archive is never served and
    /// its file does not wait for the next request.
    pub fn prune(&self, now: i64) -> Result<()> {
        self.lock()?.retain(|_, j| {
            let keep = now - j.created_at < KEEP_SECONDS || j.status().state == "running";
            if !keep {
                let _ = std::fs::remove_file(&j.path);
            }
            keep
        });
        Ok(())
    }

    /// The workspace's jobs, newest first.
    pub fn list(&self, ws: WorkspaceId, now: i64) -> Result<Vec<Arc<Job>>> {
        self.prune(now)?;
        let mut out: Vec<Arc<Job>> = self
            .lock()?
            .values()
            .filter(|j| j.workspace == ws)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// A job of this workspace, younger than an hour; another workspace's
    /// job, or an expired one, is not found.
    pub fn get(&self, ws: WorkspaceId, id: &ExportId, now: i64) -> Result<Arc<Job>> {
        self.prune(now)?;
        self.lock()?
            .get(id)
            .filter(|j| j.workspace == ws)
            .cloned()
            .ok_or(Error::NotFound("export"))
    }
}

/// What an export job needs beyond the workspace: the control database
/// (the workspace's row, its members, the signing key), the jobs, and the
/// bulk pool it shares with audit verifications.
#[derive(Clone, Copy)]
pub struct Exporter<'a> {
    pub control: &'a Arc<Control>,
    pub jobs: &'a ExportJobs,
    pub bulk: &'a Pool,
}

/// Records the export, signs the chain head, and starts writing the archive
/// of what the caller may read.
pub async fn start(
    ctx: &TenantHandle,
    ex: Exporter<'_>,
    recipient: Option<age::x25519::Recipient>,
) -> Result<Arc<Job>> {
    // Archive exports share the bulk pool with audit verifications: the slot
    // is taken before anything is recorded, and held until the archive is
    // written (finding 4).
    let slot = ex.bulk.slot().await?;
    let jobs = ex.jobs;
    let (db, actor, reader) = (ctx.db.clone(), ctx.actor.clone(), Reader::of(ctx));
    let now = ctx.now();
    jobs.prune(now)?;
    crate::store::create_private_dir(&jobs.dir)?;
    let id = ExportId::generate();
    let (identity, to) = match recipient {
        Some(r) => (None, r),
        None => {
            let i = age::x25519::Identity::generate();
            let r = i.to_public();
            (Some(i), r)
        }
    };
    let job = Arc::new(Job {
        path: jobs.dir.join(format!("{id}.age")),
        id,
        workspace: db.id(),
        created_at: now,
        to_recipient: identity.is_none(),
        identity,
        status: Mutex::new(Status {
            state: "running",
            ..Status::default()
        }),
    });
    let (control, d, m, enc) = (
        Arc::clone(ex.control),
        db.clone(),
        ctx.meta.clone(),
        job.to_recipient,
    );
    let checkpoint =
        tokio::task::spawn_blocking(move || super::begin(&control, now, &d, actor, &m, enc))
            .await??;
    jobs.lock()?.insert(id, Arc::clone(&job));
    let (control, clock, j) = (
        Arc::clone(ex.control),
        Arc::clone(&ctx.clock),
        Arc::clone(&job),
    );
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let result = (|| -> Result<Summary> {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&j.path)?;
            let enc = age::Encryptor::with_recipients(std::iter::once(&to as &dyn age::Recipient))
                .map_err(|e| Error::internal(format!("age: {e}")))?;
            let w = enc.wrap_output(std::io::BufWriter::new(file))?;
            let progress = |done: u64, total: u64| {
                j.set(|s| {
                    s.done = done;
                    s.total = total;
                })
            };
            let (w, summary) = super::write(
                &control,
                clock.unix(),
                &db,
                &checkpoint,
                Some(&reader),
                w,
                &progress,
            )?;
            let mut file = w.finish()?;
            file.flush()?;
            file.get_ref().sync_all()?;
            Ok(summary)
        })();
        match result {
            Ok(summary) => j.set(|s| {
                s.state = "ready";
                s.summary = Some(summary);
            }),
            Err(e) => {
                tracing::error!(error = %e, workspace = %j.workspace, "workspace export failed");
                let _ = std::fs::remove_file(&j.path);
                j.set(|s| {
                    s.state = "failed";
                    s.error = Some("the export failed; the server log has the details".into());
                });
            }
        }
    });
    Ok(job)
}

pub type DownloadStream = mpsc::Receiver<std::result::Result<Bytes, std::io::Error>>;

/// Streams a ready archive: as stored when it is encrypted to the caller's
/// recipient, else decrypted with the job's in-memory identity.
pub fn download(job: Arc<Job>) -> Result<DownloadStream> {
    if job.status().state != "ready" {
        return Err(Error::Conflict("the export is not ready yet".into()));
    }
    let file = std::fs::File::open(&job.path).map_err(|_| Error::NotFound("export"))?;
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let reader: Result<Box<dyn Read>> = match &job.identity {
            None => Ok(Box::new(BufReader::new(file))),
            Some(identity) => age::Decryptor::new_buffered(BufReader::new(file))
                .and_then(|d| d.decrypt(std::iter::once(identity as &dyn age::Identity)))
                .map(|r| Box::new(r) as Box<dyn Read>)
                .map_err(|e| Error::internal(format!("export spool: {e}"))),
        };
        let mut reader = match reader {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "export download failed");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                return;
            }
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "export download failed");
                    let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
                    return;
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(jobs: &ExportJobs, ws: WorkspaceId, created_at: i64, state: &'static str) -> Arc<Job> {
        let id = ExportId::generate();
        let job = Arc::new(Job {
            path: jobs.dir.join(format!("{id}.age")),
            id,
            workspace: ws,
            created_at,
            to_recipient: true,
            identity: None,
            status: Mutex::new(Status {
                state,
                ..Status::default()
            }),
        });
        std::fs::write(&job.path, b"age ciphertext").unwrap();
        jobs.jobs.lock().unwrap().insert(id, Arc::clone(&job));
        job
    }

    /// Row ar: an archive is kept for an hour (by the server's clock), then
    /// neither listed nor downloadable, and its spool file is gone; one
    /// still being written is kept.
    #[test]
    fn export_archives_are_kept_for_one_hour() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = ExportJobs::new(dir.path());
        std::fs::create_dir_all(&jobs.dir).unwrap();
        let ws = WorkspaceId::generate();
        let t = 1_000_000;
        let ready = job(&jobs, ws, t, "ready");
        let running = job(&jobs, ws, t, "running");
        let hour = KEEP_SECONDS;
        assert_eq!(hour, 3_600);
        assert!(jobs.get(ws, &ready.id, t + hour - 1).is_ok());
        assert_eq!(jobs.list(ws, t + hour - 1).unwrap().len(), 2);
        assert!(ready.path.exists());
        assert!(matches!(
            jobs.get(ws, &ready.id, t + hour),
            Err(Error::NotFound(_))
        ));
        assert!(!ready.path.exists(), "the spool file goes with the job");
        assert!(jobs.get(ws, &running.id, t + hour).is_ok());
        assert!(running.path.exists());
        let listed = jobs.list(ws, t + 2 * hour).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, running.id);
        // The sweep alone (no request) removes what expired.
        let late = job(&jobs, ws, t, "ready");
        jobs.prune(t + hour).unwrap();
        assert!(!late.path.exists());
    }
}
