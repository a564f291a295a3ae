//! A small disk for fault tests: a tmpfs of a few MiB that a test fills to
//! the last byte. Mounting needs CAP_SYS_ADMIN: as root (CI, a developer's
//! VM) it mounts directly; otherwise the test re-runs itself inside a new user
//! and mount namespace (`unshare -rm`), where the mount is allowed and every
//! process it starts sees the same tmpfs. `TEST_FAULTS_FORCE_NAMESPACE=1`
//! takes that path even as root.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Env;

const IN_NAMESPACE: &str = "TEST_FAULTS_IN_NAMESPACE";

/// A tmpfs of `mib` MiB mounted at a path, unmounted on drop.
pub struct SmallDisk {
    path: PathBuf,
}

pub enum Mounted {
    Here(SmallDisk),
    /// The test ran (and passed) in a child namespace; nothing to do here.
    RanInNamespace,
}

impl SmallDisk {
    fn try_mount(path: &Path, mib: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700")])
            .arg("tmpfs")
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(SmallDisk {
                path: path.to_owned(),
            })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Mounts here, or re-runs `test` inside `unshare -rm` when mounting
    /// needs a privilege this process lacks.
    pub fn mount_or_rerun(path: &Path, mib: u64, test: &str) -> Mounted {
        // TEST_FAULTS_FORCE_NAMESPACE=1 tries the unprivileged path as root.
        let forced = std::env::var_os("TEST_FAULTS_FORCE_NAMESPACE").is_some()
            && std::env::var_os(IN_NAMESPACE).is_none();
        let why = match SmallDisk::try_mount(path, mib) {
            Ok(d) if !forced => return Mounted::Here(d),
            Ok(d) => {
                drop(d);
                "forced by TEST_FAULTS_FORCE_NAMESPACE".to_owned()
            }
            Err(why) => why,
        };
        assert!(
            std::env::var_os(IN_NAMESPACE).is_none(),
            "mount failed even inside a user+mount namespace: {why}"
        );
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "--"])
            .arg(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(IN_NAMESPACE, "1")
            .status();
        match status {
            Ok(s) => {
                assert!(
                    s.success(),
                    "{test} failed inside its mount namespace ({s})"
                );
                Mounted::RanInNamespace
            }
            Err(e) => panic!(
                "SKIP impossible: `mount -t tmpfs` failed ({why}) and `unshare -rm` could not run ({e}); \
                 this test needs root or unprivileged user namespaces (util-linux `unshare`)"
            ),
        }
    }

    /// Writes a filler file until the disk refuses another byte; returns its
    /// path (delete it to free the space).
    pub fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0x5a_u8; chunk];
            loop {
                match f.write(&buf) {
                    Ok(n) if n == buf.len() => {}
                    Ok(_) => break,
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                        break;
                    }
                }
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// An Env whose data dir lives on a fresh `mib` MiB tmpfs.
pub fn env_on_small_disk(mib: u64, test: &str) -> Option<(Env, SmallDisk)> {
    let env = Env::new();
    let data = env.data_dir();
    let staged = env.root().join("data-staged");
    std::fs::rename(&data, &staged).unwrap();
    let disk = match SmallDisk::mount_or_rerun(&data, mib, test) {
        Mounted::Here(d) => d,
        Mounted::RanInNamespace => return None,
    };
    super::copy_dir(&staged, &data);
    std::fs::remove_dir_all(&staged).unwrap();
    Some((env, disk))
}
