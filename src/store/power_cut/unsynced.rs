//! The writes a file has had since its last sync, as the kernel's page cache
//! holds them: reads see them, a sync pushes them to the real file, and a
//! power cut (here: the process dying) loses exactly them. Kept in 4 KiB
//! blocks over the real file; `cut` remembers the lowest size the file was
//! truncated to, since real bytes past it are gone for readers already.

use std::collections::BTreeMap;

use rusqlite::ffi::{SQLITE_IOERR_SHORT_READ, SQLITE_OK};

const BLOCK: u64 = 4096;

/// The real file under the buffer (the unix VFS's file in the server; a
/// `Vec` in the unit tests). Each call answers an SQLite result code.
pub(super) trait Backing {
    fn read(&self, buf: &mut [u8], offset: u64) -> i32;
    fn write(&self, buf: &[u8], offset: u64) -> i32;
    fn truncate(&self, size: u64) -> i32;
    fn size(&self) -> Result<u64, i32>;
}

pub(super) struct Unsynced {
    blocks: BTreeMap<u64, Box<[u8]>>,
    cut: Option<u64>,
    size: u64,
}

impl Unsynced {
    /// Starts buffering over a real file of this size.
    pub(super) fn over(size: u64) -> Self {
        Self {
            blocks: BTreeMap::new(),
            cut: None,
            size,
        }
    }

    /// The size every reader sees.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Reads as the process sees the file: real bytes below the cut, then the
    /// buffered blocks over them; past the end, zeros and a short read.
    pub(super) fn read(&self, real: &dyn Backing, out: &mut [u8], offset: u64) -> i32 {
        out.fill(0);
        let avail = self.size.saturating_sub(offset).min(out.len() as u64);
        let end = offset + avail;
        let real_end = self.cut.map_or(end, |c| c.min(end));
        if real_end > offset {
            let rc = real.read(&mut out[..(real_end - offset) as usize], offset);
            if rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ {
                return rc;
            }
        }
        if avail > 0 {
            for (&b, data) in self.blocks.range(offset / BLOCK..=(end - 1) / BLOCK) {
                let (s, e) = ((b * BLOCK).max(offset), ((b + 1) * BLOCK).min(end));
                out[(s - offset) as usize..(e - offset) as usize]
                    .copy_from_slice(&data[(s - b * BLOCK) as usize..(e - b * BLOCK) as usize]);
            }
        }
        if avail < out.len() as u64 {
            SQLITE_IOERR_SHORT_READ
        } else {
            SQLITE_OK
        }
    }

    pub(super) fn write(&mut self, real: &dyn Backing, data: &[u8], offset: u64) -> i32 {
        let end = offset + data.len() as u64;
        let mut b = offset / BLOCK;
        while b * BLOCK < end {
            if !self.blocks.contains_key(&b) {
                let mut block = vec![0u8; BLOCK as usize].into_boxed_slice();
                let rc = self.read(real, &mut block, b * BLOCK);
                if rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ {
                    return rc;
                }
                self.blocks.insert(b, block);
            }
            if let Some(block) = self.blocks.get_mut(&b) {
                let (s, e) = ((b * BLOCK).max(offset), ((b + 1) * BLOCK).min(end));
                block[(s - b * BLOCK) as usize..(e - b * BLOCK) as usize]
                    .copy_from_slice(&data[(s - offset) as usize..(e - offset) as usize]);
            }
            b += 1;
        }
        self.size = self.size.max(end);
        SQLITE_OK
    }

    /// Bytes past `size` are gone at once; a later extension reads zeros.
    pub(super) fn truncate(&mut self, size: u64) {
        drop(self.blocks.split_off(&size.div_ceil(BLOCK)));
        if let Some(block) = self.blocks.get_mut(&(size / BLOCK)) {
            block[(size % BLOCK) as usize..].fill(0);
        }
        self.cut = Some(self.cut.map_or(size, |c| c.min(size)));
        self.size = size;
    }

    /// Pushes everything to the real file (the caller then syncs it).
    pub(super) fn flush(&self, real: &dyn Backing) -> i32 {
        if let Some(cut) = self.cut {
            let rc = real.truncate(cut);
            if rc != SQLITE_OK {
                return rc;
            }
        }
        for (&b, data) in &self.blocks {
            let start = b * BLOCK;
            let n = BLOCK.min(self.size.saturating_sub(start)) as usize;
            let rc = real.write(&data[..n], start);
            if rc != SQLITE_OK {
                return rc;
            }
        }
        match real.size() {
            Ok(s) if s < self.size => real.truncate(self.size),
            Ok(_) => SQLITE_OK,
            Err(rc) => rc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Mem(RefCell<Vec<u8>>);

    impl Backing for Mem {
        fn read(&self, buf: &mut [u8], offset: u64) -> i32 {
            let v = self.0.borrow();
            let s = (offset as usize).min(v.len());
            let n = buf.len().min(v.len() - s);
            buf[..n].copy_from_slice(&v[s..s + n]);
            buf[n..].fill(0);
            if n < buf.len() {
                SQLITE_IOERR_SHORT_READ
            } else {
                SQLITE_OK
            }
        }
        fn write(&self, buf: &[u8], offset: u64) -> i32 {
            let mut v = self.0.borrow_mut();
            let end = offset as usize + buf.len();
            if v.len() < end {
                v.resize(end, 0);
            }
            v[offset as usize..end].copy_from_slice(buf);
            SQLITE_OK
        }
        fn truncate(&self, size: u64) -> i32 {
            self.0.borrow_mut().resize(size as usize, 0);
            SQLITE_OK
        }
        fn size(&self) -> Result<u64, i32> {
            Ok(self.0.borrow().len() as u64)
        }
    }

    fn view(u: &Unsynced, real: &Mem) -> Vec<u8> {
        let mut out = vec![0; u.size() as usize];
        assert_eq!(u.read(real, &mut out, 0), SQLITE_OK);
        out
    }

    #[test]
    fn reads_see_unsynced_writes_and_the_real_file_does_not() {
        let real = Mem(RefCell::new(vec![1; 5000]));
        let mut u = Unsynced::over(5000);
        assert_eq!(u.write(&real, &[2; 100], 4050), SQLITE_OK);
        assert_eq!(u.write(&real, &[3; 10], 9000), SQLITE_OK);
        let mut expect = vec![1; 5000];
        expect[4050..4150].fill(2);
        expect.resize(9010, 0);
        expect[9000..].fill(3);
        assert_eq!(view(&u, &real), expect);
        assert_eq!(*real.0.borrow(), vec![1; 5000], "nothing reached the disk");
        let mut past = [9; 8];
        assert_eq!(u.read(&real, &mut past, 9005), SQLITE_IOERR_SHORT_READ);
        assert_eq!(past, [3, 3, 3, 3, 3, 0, 0, 0]);
        assert_eq!(u.flush(&real), SQLITE_OK);
        assert_eq!(*real.0.borrow(), expect, "a sync pushes exactly the view");
    }

    #[test]
    fn truncate_then_extend_reads_zeros_and_flushes_the_same() {
        let real = Mem(RefCell::new(vec![1; 10000]));
        let mut u = Unsynced::over(10000);
        assert_eq!(u.write(&real, &[2; 10], 8190), SQLITE_OK);
        u.truncate(4100);
        assert_eq!(u.write(&real, &[3; 4], 9000), SQLITE_OK);
        let mut expect = vec![1; 4100];
        expect.resize(9004, 0);
        expect[9000..].fill(3);
        assert_eq!(view(&u, &real), expect);
        assert_eq!(real.0.borrow().len(), 10000);
        assert_eq!(u.flush(&real), SQLITE_OK);
        assert_eq!(*real.0.borrow(), expect);
    }

    #[test]
    fn truncate_to_zero_empties_the_view() {
        let real = Mem(RefCell::new(vec![1; 300]));
        let mut u = Unsynced::over(300);
        u.truncate(0);
        assert_eq!(u.size(), 0);
        assert_eq!(u.write(&real, &[5; 3], 1), SQLITE_OK);
        assert_eq!(view(&u, &real), vec![0, 5, 5, 5]);
        assert_eq!(u.flush(&real), SQLITE_OK);
        assert_eq!(*real.0.borrow(), vec![0, 5, 5, 5]);
    }
}
