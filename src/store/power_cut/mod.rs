//! Test-only power cuts (debug builds, `AURA_TEST_POWER_CUT_VFS=1`): an SQLite
//! VFS over the default unix one that keeps every write to a database, WAL or
//! journal file since that file's last xSync in this process's memory
//! (`unsynced`). Reads see those writes; xSync pushes them to the real file,
//! then syncs it. So `kill -9` of the server is a power cut: exactly the
//! unsynced writes vanish, as the kernel's page cache would, and a write
//! acknowledged without an fsync is lost. `kill -9` alone keeps the page cache,
//! which is why `tests/durability.rs` needs this to tell `synchronous=FULL`
//! from `NORMAL`. Locks and the `-shm` wal-index pass straight through (the
//! wal-index is rebuilt from the WAL after a crash anyway). Release builds do
//! not contain this module, so the variable does nothing there.
//!
//! Written on `rusqlite::ffi` because the VFS crates (`sqlite-vfs`,
//! `sqlite-plugin`) build a VFS from scratch, so locking and shared memory
//! would have to be written again; delegating to unix keeps them SQLite's own.

#[cfg(test)]
mod tests;
mod unsynced;

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{null, null_mut};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;
use unsynced::{Backing, Unsynced};

/// The environment variable that turns the layer on (debug builds only).
pub const ENV: &str = "AURA_TEST_POWER_CUT_VFS";

/// One file's unsynced writes, shared by every handle on its path (the
/// writer's and the readers' connections), as one inode's page cache is.
#[derive(Default)]
struct Shared(Mutex<Option<Unsynced>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Unsynced>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Kept until the file is deleted: closing a file keeps its page cache.
static FILES: LazyLock<Mutex<HashMap<String, Arc<Shared>>>> = LazyLock::new(Default::default);
/// The unix VFS (a pointer as usize: raw pointers are not `Sync`).
static UNIX: OnceLock<usize> = OnceLock::new();

fn files() -> MutexGuard<'static, HashMap<String, Arc<Shared>>> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get()
        .map_or(null_mut(), |p| *p as *mut ffi::sqlite3_vfs)
}

/// The name the layer registers under.
const NAME: &CStr = c"aura-power-cut";

/// Registers the layer as the default VFS when `AURA_TEST_POWER_CUT_VFS=1`;
/// call before any connection opens.
pub fn install_if_requested() -> Result<bool, String> {
    if std::env::var_os(ENV).is_none_or(|v| v != "1") {
        return Ok(false);
    }
    register(true).map(|()| true)
}

/// Registers the layer once per process (as the default, or by name only).
fn register(make_default: bool) -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: the default VFS lives for the whole process; the copy is
            // leaked so it does too, and its name is a static string.
            unsafe {
                let inner = ffi::sqlite3_vfs_find(null());
                if inner.is_null() || UNIX.set(inner as usize).is_err() {
                    return Err("no default SQLite VFS".into());
                }
                let mut vfs = *inner;
                vfs.szOsFile = (std::mem::size_of::<ShimFile>() as c_int) + (*inner).szOsFile;
                vfs.zName = NAME.as_ptr();
                vfs.pNext = null_mut();
                vfs.xOpen = Some(x_open);
                vfs.xDelete = Some(x_delete);
                vfs.xAccess = Some(x_access);
                let rc =
                    ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), c_int::from(make_default));
                if rc != ffi::SQLITE_OK {
                    return Err(format!("sqlite3_vfs_register failed: {rc}"));
                }
            }
            Ok(())
        })
        .clone()
}

/// Our file: SQLite allocates `szOsFile` bytes, this header first and the unix
/// file right after it.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    /// From `Arc::into_raw`; null for files passed straight through.
    shared: *const Shared,
    inner: *mut ffi::sqlite3_file,
}

/// Calls a method of the unix file.
macro_rules! real {
    ($inner:expr, $method:ident $(, $arg:expr)*) => {{
        let inner: *mut ffi::sqlite3_file = $inner;
        match (*(*inner).pMethods).$method {
            Some(m) => m(inner $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

/// The unix file as `Unsynced` sees it.
struct Real(*mut ffi::sqlite3_file);

impl Backing for Real {
    fn read(&self, buf: &mut [u8], offset: u64) -> i32 {
        // SAFETY: `self.0` is an open unix file and `buf` is valid for its length.
        unsafe {
            real!(
                self.0,
                xRead,
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                offset as i64
            )
        }
    }
    fn write(&self, buf: &[u8], offset: u64) -> i32 {
        // SAFETY: as in `read`.
        unsafe {
            real!(
                self.0,
                xWrite,
                buf.as_ptr().cast(),
                buf.len() as c_int,
                offset as i64
            )
        }
    }
    fn truncate(&self, size: u64) -> i32 {
        // SAFETY: `self.0` is an open unix file.
        unsafe { real!(self.0, xTruncate, size as i64) }
    }
    fn size(&self) -> Result<u64, i32> {
        let mut size: i64 = 0;
        // SAFETY: as in `truncate`; `size` outlives the call.
        match unsafe { real!(self.0, xFileSize, &mut size) } {
            ffi::SQLITE_OK => Ok(size.max(0) as u64),
            rc => Err(rc),
        }
    }
}

/// The file's shared buffer (None when passed through) and its unix file.
unsafe fn parts<'a>(f: *mut ffi::sqlite3_file) -> (Option<&'a Shared>, *mut ffi::sqlite3_file) {
    let file = unsafe { &*(f as *const ShimFile) };
    (unsafe { file.shared.as_ref() }, file.inner)
}

/// Runs `op` on the file's buffer, starting one over the real file if needed.
fn buffered(shared: &Shared, real: &Real, op: impl FnOnce(&mut Unsynced) -> c_int) -> c_int {
    let mut guard = shared.lock();
    if guard.is_none() {
        match real.size() {
            Ok(size) => *guard = Some(Unsynced::over(size)),
            Err(rc) => return rc,
        }
    }
    guard.as_mut().map_or(ffi::SQLITE_IOERR, op)
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    f: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(open) = (unsafe { unix.as_ref() }).and_then(|v| v.xOpen) else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY: SQLite gave us `szOsFile` bytes: our header, then the unix file.
    unsafe {
        let inner = f.cast::<u8>().add(std::mem::size_of::<ShimFile>()).cast();
        f.cast::<ShimFile>().write(ShimFile {
            base: ffi::sqlite3_file { pMethods: null() },
            shared: null(),
            inner,
        });
        let rc = open(unix, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*inner).pMethods.is_null() {
                real!(inner, xClose);
            }
            return rc;
        }
        let durable =
            ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL;
        if !name.is_null() && flags & durable != 0 {
            let key = CStr::from_ptr(name).to_string_lossy().into_owned();
            let shared = Arc::clone(files().entry(key).or_default());
            (*f.cast::<ShimFile>()).shared = Arc::into_raw(shared);
        }
        (*f).pMethods = &IO_METHODS;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let unix = unix();
    let Some(delete) = (unsafe { unix.as_ref() }).and_then(|v| v.xDelete) else {
        return ffi::SQLITE_ERROR;
    };
    if !name.is_null() {
        // SAFETY: SQLite passes a NUL-terminated path.
        let key = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        files().remove(key.as_ref());
    }
    // SAFETY: forwarding SQLite's own arguments.
    unsafe { delete(unix, name, sync_dir) }
}

/// A file that so far has only unsynced bytes exists (unix says a regular
/// file of size 0 does not).
unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let unix = unix();
    let Some(access) = (unsafe { unix.as_ref() }).and_then(|v| v.xAccess) else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY: forwarding SQLite's own arguments; `out` is valid.
    unsafe {
        let rc = access(unix, name, flags, out);
        if rc == ffi::SQLITE_OK
            && flags == ffi::SQLITE_ACCESS_EXISTS
            && *out == 0
            && !name.is_null()
        {
            let key = CStr::from_ptr(name).to_string_lossy();
            let shared = files().get(key.as_ref()).cloned();
            if shared.is_some_and(|s| s.lock().as_ref().is_some_and(|u| u.size() > 0)) {
                *out = 1;
            }
        }
        rc
    }
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory, but no xFetch, so every read comes through xRead.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `f` was opened by `x_open`; its Arc was made by `Arc::into_raw`.
    unsafe {
        let file = &mut *f.cast::<ShimFile>();
        let rc = real!(file.inner, xClose);
        if !file.shared.is_null() {
            drop(Arc::from_raw(file.shared));
            file.shared = null();
        }
        rc
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    // SAFETY: SQLite passes an open file and a buffer of `amt` bytes.
    let ((shared, inner), out) = unsafe {
        (
            parts(f),
            std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize),
        )
    };
    let (real, off) = (Real(inner), off.max(0) as u64);
    match shared.map(Shared::lock).as_deref() {
        Some(Some(u)) => u.read(&real, out, off),
        _ => real.read(out, off),
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    // SAFETY: as in `x_read`.
    let ((shared, inner), data) = unsafe {
        (
            parts(f),
            std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize),
        )
    };
    let (real, off) = (Real(inner), off.max(0) as u64);
    match shared {
        Some(s) => buffered(s, &real, |u| u.write(&real, data, off)),
        None => real.write(data, off),
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: `f` was opened by `x_open`.
    let (shared, inner) = unsafe { parts(f) };
    let (real, size) = (Real(inner), size.max(0) as u64);
    match shared {
        Some(s) => buffered(s, &real, |u| {
            u.truncate(size);
            ffi::SQLITE_OK
        }),
        None => real.truncate(size),
    }
}

/// Pushes the path's unsynced writes to the real file, then syncs it.
unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: `f` was opened by `x_open`.
    unsafe {
        let (shared, inner) = parts(f);
        if let Some(shared) = shared {
            let mut guard = shared.lock();
            if let Some(u) = guard.as_ref() {
                let rc = u.flush(&Real(inner));
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                *guard = None;
            }
            // Synced under the lock, so no write lands between flush and sync.
            return real!(inner, xSync, flags);
        }
        real!(inner, xSync, flags)
    }
}

unsafe extern "C" fn x_file_size(f: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    // SAFETY: `out` is valid.
    unsafe {
        let (shared, inner) = parts(f);
        if let Some(size) = shared.and_then(|s| s.lock().as_ref().map(Unsynced::size)) {
            *out = size as i64;
            return ffi::SQLITE_OK;
        }
        real!(inner, xFileSize, out)
    }
}

/// A size hint would grow the real file behind the buffer; it is only a hint.
unsafe extern "C" fn x_file_control(
    f: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: forwarding SQLite's own arguments.
    unsafe {
        let (shared, inner) = parts(f);
        if shared.is_some() && op == ffi::SQLITE_FCNTL_SIZE_HINT {
            return ffi::SQLITE_OK;
        }
        real!(inner, xFileControl, op, arg)
    }
}

// Locks, sector size, device characteristics and shared memory are unix's.

unsafe extern "C" fn x_lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xLock, level) }
}

unsafe extern "C" fn x_unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xUnlock, level) }
}

unsafe extern "C" fn x_check_reserved_lock(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xCheckReservedLock, out) }
}

unsafe extern "C" fn x_sector_size(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xSectorSize) }
}

unsafe extern "C" fn x_device_characteristics(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xDeviceCharacteristics) }
}

unsafe extern "C" fn x_shm_map(
    f: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xShmMap, region, size, extend, out) }
}

unsafe extern "C" fn x_shm_lock(
    f: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xShmLock, offset, n, flags) }
}

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    // SAFETY: forwarding.
    unsafe {
        let inner = parts(f).1;
        if let Some(m) = (*(*inner).pMethods).xShmBarrier {
            m(inner);
        }
    }
}

unsafe extern "C" fn x_shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwarding.
    unsafe { real!(parts(f).1, xShmUnmap, delete) }
}
