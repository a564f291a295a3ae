//! Sealing of attached files, as a stream: XChaCha20-Poly1305 in the STREAM
//! construction (`aead::stream`, big-endian 32-bit counter plus last-chunk
//! flag) under a fresh random key per file. The file key itself is sealed
//! by the workspace's sealer (`store::files`), so it dies with the
//! workspace key. On disk:
//!
//! ```text
//! ["aurafil1": 8 bytes][nonce prefix: 19 bytes]
//! [chunk 0: 65,536 bytes sealed + 16-byte tag] ... [last chunk: 0..=65,536 bytes + tag]
//! ```
//!
//! Every chunk's associated data is the 27-byte header followed by
//! `aura/v1/file|<workspace>|<record>|<field>|<file>`, so a file copied to
//! another record, field or workspace does not open. Each chunk is
//! authenticated before any of its bytes is handed out, and the last-chunk
//! flag makes a truncated file fail rather than end early.

use std::io::{self, Read, Write};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use rand::RngCore;

use super::keys::KeyBytes;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 8] = b"aurafil1";
const NONCE: usize = 19;
/// Bytes before the first chunk.
pub const HEADER: usize = MAGIC.len() + NONCE;

/// Where a file belongs; every chunk's associated data binds it.
#[derive(Clone, Copy, Debug)]
pub struct FileBinding<'a> {
    pub workspace: &'a str,
    pub record: &'a str,
    pub field: &'a str,
    pub file: &'a str,
}

impl FileBinding<'_> {
    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = header.to_vec();
        aad.extend_from_slice(b"aura/v1/file");
        for p in [self.workspace, self.record, self.field, self.file] {
            aad.push(b'|');
            aad.extend_from_slice(p.as_bytes());
        }
        aad
    }
}

/// The size on disk of a sealed file of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    // A full last chunk stays the last (an empty file has one empty chunk).
    let chunks = plain.div_ceil(CHUNK as u64).max(1);
    HEADER as u64 + plain + chunks * TAG as u64
}

/// The error every failed chunk gives: the file was changed, cut or moved.
pub fn integrity_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "sealed file failed its integrity check",
    )
}

/// Is `e` the integrity error (rather than a disk or network failure)?
pub fn is_integrity_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
}

/// Seals what is written into `out`, one chunk at a time; `finish` seals
/// the last chunk. Dropped without `finish`, the output is not a valid
/// sealed file (its last chunk is missing).
pub struct SealingWriter<W: Write> {
    enc: Option<EncryptorBE32<XChaCha20Poly1305>>,
    out: W,
    buf: Vec<u8>,
    aad: Vec<u8>,
}

impl<W: Write> SealingWriter<W> {
    /// Writes the header now.
    pub fn new(key: &KeyBytes, binding: FileBinding<'_>, mut out: W) -> io::Result<Self> {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&nonce);
        out.write_all(&header)?;
        let aead = XChaCha20Poly1305::new(key.expose().into());
        Ok(Self {
            enc: Some(EncryptorBE32::from_aead(aead, (&nonce).into())),
            out,
            buf: Vec::with_capacity(CHUNK + TAG),
            aad: binding.aad(&header),
        })
    }

    fn seal_full_chunk(&mut self) -> io::Result<()> {
        let enc = self.enc.as_mut().ok_or_else(integrity_error)?;
        enc.encrypt_next_in_place(self.aad.as_slice(), &mut self.buf)
            .map_err(|_| io::Error::other("sealing a chunk failed"))?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Seals the last chunk and hands back the output (not yet synced).
    pub fn finish(mut self) -> io::Result<W> {
        let enc = self.enc.take().ok_or_else(integrity_error)?;
        enc.encrypt_last_in_place(self.aad.as_slice(), &mut self.buf)
            .map_err(|_| io::Error::other("sealing the last chunk failed"))?;
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more bytes follow it: the last
        // chunk (sealed by `finish`) must carry the last-chunk flag.
        if self.buf.len() == CHUNK {
            self.seal_full_chunk()?;
        }
        let n = (CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens a sealed file chunk by chunk; each chunk is authenticated before
/// it is returned.
pub struct OpeningReader<R: Read> {
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    src: R,
    aad: Vec<u8>,
    /// A byte read ahead to learn whether the chunk before it was the last.
    ahead: Option<u8>,
    /// What `Read` has not handed out yet of the current chunk.
    plain: Vec<u8>,
    at: usize,
}

impl<R: Read> OpeningReader<R> {
    /// Reads and checks the header.
    pub fn new(key: &KeyBytes, binding: FileBinding<'_>, mut src: R) -> io::Result<Self> {
        let mut header = [0u8; HEADER];
        read_full(&mut src, &mut header)?
            .eq(&HEADER)
            .then_some(())
            .ok_or_else(integrity_error)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(integrity_error());
        }
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&header[MAGIC.len()..]);
        let aead = XChaCha20Poly1305::new(key.expose().into());
        Ok(Self {
            dec: Some(DecryptorBE32::from_aead(aead, (&nonce).into())),
            src,
            aad: binding.aad(&header),
            ahead: None,
            plain: Vec::new(),
            at: 0,
        })
    }

    /// The next authenticated chunk of plaintext, or `None` after the last.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.dec.is_none() {
            return Ok(None);
        }
        let mut buf = vec![0u8; CHUNK + TAG];
        let mut got = 0;
        if let Some(b) = self.ahead.take() {
            buf[0] = b;
            got = 1;
        }
        got += read_full(&mut self.src, &mut buf[got..])?;
        buf.truncate(got);
        let mut one = [0u8; 1];
        let last = got < CHUNK + TAG || read_full(&mut self.src, &mut one)? == 0;
        if got < TAG {
            return Err(integrity_error());
        }
        if last {
            let dec = self.dec.take().ok_or_else(integrity_error)?;
            dec.decrypt_last_in_place(self.aad.as_slice(), &mut buf)
                .map_err(|_| integrity_error())?;
        } else {
            self.ahead = Some(one[0]);
            let dec = self.dec.as_mut().ok_or_else(integrity_error)?;
            dec.decrypt_next_in_place(self.aad.as_slice(), &mut buf)
                .map_err(|_| integrity_error())?;
        }
        Ok(Some(buf))
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            match self.next_chunk()? {
                Some(c) => {
                    self.plain = c;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the source ends; the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(file: &str) -> FileBinding<'_> {
        FileBinding {
            workspace: "ws",
            record: "r",
            field: "f",
            file,
        }
    }

    fn seal(key: &KeyBytes, data: &[u8]) -> Vec<u8> {
        let mut w = SealingWriter::new(key, bind("a"), Vec::new()).unwrap();
        // Odd-sized writes, so chunk edges fall inside them.
        for part in data.chunks(7_777) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn open(key: &KeyBytes, file: &str, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        OpeningReader::new(key, bind(file), sealed)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_edge() {
        let key = KeyBytes::random();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&key, &data);
            assert_eq!(sealed.len() as u64, sealed_len(n as u64), "{n}");
            assert_eq!(open(&key, "a", &sealed).unwrap(), data, "{n}");
        }
    }

    #[test]
    fn tampering_truncation_and_moves_fail() {
        let key = KeyBytes::random();
        let data = vec![7u8; 2 * CHUNK + 10];
        let sealed = seal(&key, &data);
        for i in [0, 9, HEADER + 3, HEADER + CHUNK + 20, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open(&key, "a", &t).is_err(), "byte {i}");
        }
        // Cut at a chunk boundary: the last flag is missing.
        let cut = HEADER + 2 * (CHUNK + TAG);
        let e = open(&key, "a", &sealed[..cut]).unwrap_err();
        assert!(is_integrity_error(&e));
        assert!(open(&key, "a", &sealed[..HEADER]).is_err());
        assert!(open(&key, "b", &sealed).is_err(), "other file id");
        assert!(
            open(&KeyBytes::random(), "a", &sealed).is_err(),
            "other key"
        );
    }
}
