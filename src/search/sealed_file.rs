//! One sealed index file on disk, in fixed-size chunks, each sealed on its
//! own with the file's name, the chunk's index, the chunk count and the
//! file's length in the associated data: a chunk moved to another place or
//! file, a file cut short or grown, does not open. Chunks are decrypted when
//! tantivy reads them, through a cache bounded per index, so an open index
//! holds in memory what tantivy keeps (term dictionaries, fast fields) plus
//! that cache, not its whole size.
//!
//! ```text
//! [magic "AXS1"][chunk size: u32 BE][plain length: u64 BE][sealed chunk]...
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::HasLen;
use tantivy::directory::{FileHandle, OwnedBytes};

use crate::crypto::{Sealer, Slot};

const MAGIC: &[u8; 4] = b"AXS1";
const HEADER_LEN: usize = 16;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// What sealing adds to a chunk (header, nonce, tag: `crypto::seal`).
const OVERHEAD: usize = 5 + 24 + 16;
/// Decrypted chunks kept per index. The chunks a query mix touches at
/// 1,000,000 audit entries came to ~15-26 MiB: with 8 MiB every query
/// decrypted again what the last one evicted (search p95 17.7 ms), with 16
/// or 32 MiB p95 was 3.6 ms (docs/benchmarks.md). A workspace's two indexes
/// (audit and records) then hold at most 64 MiB, and only what was read.
pub const CACHE_BYTES: usize = 32 << 20;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn chunks(len: usize) -> usize {
    len.div_ceil(CHUNK)
}

fn aad_column(name: &str, i: usize, n: usize, len: usize) -> String {
    format!("{name}#{i}/{n}/{len}")
}

/// Writes `data` as a sealed chunked file to `out`.
pub fn write(
    out: &mut impl Write,
    sealer: &Sealer,
    purpose: &str,
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let n = chunks(data.len());
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&(CHUNK as u32).to_be_bytes());
    header[8..].copy_from_slice(&(data.len() as u64).to_be_bytes());
    out.write_all(&header)?;
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        let col = aad_column(name, i, n, data.len());
        let sealed = sealer
            .seal(Slot::new("search_index", purpose, &col), chunk)
            .map_err(|e| io::Error::other(e.to_string()))?;
        out.write_all(&sealed)?;
    }
    Ok(())
}

/// Decrypted chunks of one index's files, oldest dropped first.
#[derive(Default)]
pub struct ChunkCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    chunks: HashMap<(u64, usize), Arc<Vec<u8>>>,
    order: VecDeque<(u64, usize)>,
    bytes: usize,
}

impl ChunkCache {
    /// Bytes of decrypted chunks held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|c| c.bytes).unwrap_or(0)
    }

    fn get(&self, key: (u64, usize)) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().ok()?.chunks.get(&key).cloned()
    }

    fn put(&self, key: (u64, usize), chunk: Arc<Vec<u8>>) {
        let Ok(mut c) = self.inner.lock() else {
            return;
        };
        c.bytes += chunk.len();
        match c.chunks.insert(key, chunk) {
            // Two readers decrypted the same chunk at once: one copy counts.
            Some(was) => c.bytes -= was.len(),
            None => c.order.push_back(key),
        }
        while c.bytes > CACHE_BYTES {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(gone) = c.chunks.remove(&old) {
                c.bytes -= gone.len();
            }
        }
    }
}

/// A sealed file opened for reading.
pub struct SealedFile {
    file: std::fs::File,
    /// Distinguishes this file's chunks in the shared cache.
    id: u64,
    name: String,
    purpose: Arc<str>,
    len: usize,
    sealer: Arc<Sealer>,
    cache: Arc<ChunkCache>,
    /// Set when a chunk no longer opens after the file was checked (changed
    /// on disk since): the index is reopened, and so rebuilt, on its next use.
    corrupt: Arc<AtomicBool>,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SealedFile {
    /// Opens `path` and checks every chunk opens (one at a time, nothing
    /// kept): a tampered file is found here, not in a query.
    pub fn open(
        path: &Path,
        name: &str,
        purpose: Arc<str>,
        sealer: Arc<Sealer>,
        cache: Arc<ChunkCache>,
        id: u64,
        corrupt: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact_at(&mut header, 0)?;
        let size = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        if &header[..4] != MAGIC || header[4..8] != (CHUNK as u32).to_be_bytes() {
            return Err(bad("not a sealed index file"));
        }
        let len = usize::try_from(size(&header[8..])).map_err(|_| bad("too long"))?;
        let n = chunks(len);
        let expected = HEADER_LEN + len + n * OVERHEAD;
        if file.metadata()?.len() != expected as u64 {
            return Err(bad("a sealed index file has the wrong length"));
        }
        let f = Self {
            file,
            id,
            name: name.to_owned(),
            purpose,
            len,
            sealer,
            cache,
            corrupt,
        };
        for i in 0..n {
            f.decrypt(i)?;
        }
        Ok(f)
    }

    fn decrypt(&self, i: usize) -> io::Result<Vec<u8>> {
        let n = chunks(self.len);
        let plain = CHUNK.min(self.len - i * CHUNK);
        let mut sealed = vec![0u8; plain + OVERHEAD];
        let at = HEADER_LEN + i * (CHUNK + OVERHEAD);
        self.file.read_exact_at(&mut sealed, at as u64)?;
        let col = aad_column(&self.name, i, n, self.len);
        self.sealer
            .open(Slot::new("search_index", &self.purpose, &col), &sealed)
            .map_err(|_| bad("a search index chunk does not open"))
    }

    fn chunk(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        if let Some(c) = self.cache.get((self.id, i)) {
            return Ok(c);
        }
        let c = Arc::new(self.decrypt(i).inspect_err(|e| {
            tracing::error!(file = %self.name, error = %e, "a search index file changed on disk: the index is rebuilt on its next use");
            self.corrupt.store(true, Ordering::SeqCst);
        })?);
        self.cache.put((self.id, i), Arc::clone(&c));
        Ok(c)
    }
}

impl HasLen for SealedFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for SealedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.end > self.len || range.start > range.end {
            return Err(bad("read past the end of a search index file"));
        }
        let mut out = Vec::with_capacity(range.len());
        let mut at = range.start;
        while at < range.end {
            let i = at / CHUNK;
            let c = self.chunk(i)?;
            let from = at - i * CHUNK;
            let to = (range.end - i * CHUNK).min(c.len());
            out.extend_from_slice(&c[from..to]);
            at = i * CHUNK + to;
        }
        Ok(OwnedBytes::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    #[test]
    fn a_chunk_put_twice_counts_once() {
        let cache = ChunkCache::default();
        cache.put((1, 0), Arc::new(vec![0u8; 100]));
        cache.put((1, 0), Arc::new(vec![0u8; 100]));
        assert_eq!(cache.bytes(), 100);
    }

    #[test]
    fn chunks_open_only_in_their_place() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Arc::new(Sealer::new("ws", &[DataKey::generate(1)]).unwrap());
        let data: Vec<u8> = (0..(CHUNK * 2 + 100)).map(|i| (i % 251) as u8).collect();
        let path = tmp.path().join("f");
        let mut buf = Vec::new();
        write(&mut buf, &s, "audit", "a.idx", &data).unwrap();
        std::fs::write(&path, &buf).unwrap();
        let cache = Arc::new(ChunkCache::default());
        let open = |name: &str| {
            SealedFile::open(
                &path,
                name,
                Arc::from("audit"),
                Arc::clone(&s),
                Arc::clone(&cache),
                1,
                Arc::default(),
            )
        };
        let f = open("a.idx").unwrap();
        let r = CHUNK - 10..CHUNK * 2 + 50;
        assert_eq!(f.read_bytes(r.clone()).unwrap().as_slice(), &data[r]);
        assert!(open("b.idx").is_err(), "another name");
        // Changed on disk after it was checked: the read fails, and says so.
        let corrupt = Arc::new(AtomicBool::new(false));
        let g = SealedFile::open(
            &path,
            "a.idx",
            Arc::from("audit"),
            Arc::clone(&s),
            Arc::clone(&cache),
            2,
            Arc::clone(&corrupt),
        )
        .unwrap();
        let mut flipped = buf.clone();
        flipped[HEADER_LEN + 40] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(g.read_bytes(0..10).is_err());
        assert!(corrupt.load(Ordering::SeqCst));
        // Two chunks swapped, or the file cut short: refused.
        let mut swapped = buf.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK + OVERHEAD);
        let first: Vec<u8> = swapped[a..b].to_vec();
        let second: Vec<u8> = swapped[b..b + CHUNK + OVERHEAD].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + CHUNK + OVERHEAD].copy_from_slice(&first);
        std::fs::write(&path, &swapped).unwrap();
        assert!(open("a.idx").is_err(), "chunks swapped");
        std::fs::write(&path, &buf[..buf.len() - 100 - OVERHEAD]).unwrap();
        assert!(open("a.idx").is_err(), "cut short");
    }
}
