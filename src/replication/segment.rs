//! What goes into the replica: a segment is the set of database pages that
//! changed between two consistent reads of one database (the same pages the
//! WAL frames of those commits carry), with the page count after them and
//! the instant of the read; a snapshot is a segment holding every page.
//! Each is zstd-compressed, then age-encrypted to `backup.recipients`, so the
//! storage operator sees sizes and timing, never content, and the appliance
//! alone (without the operator's identity) cannot read its own replica.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"AURAREP1";
const HEADER: usize = 8 + 4 + 4 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub page_size: u32,
    /// The database's size in pages after this segment.
    pub page_count: u32,
    /// The instant of the read: every transaction committed before it is in.
    pub at_ms: i64,
    /// (page number from 1, page bytes), ascending.
    pub pages: Vec<(u32, Vec<u8>)>,
}

impl Segment {
    pub fn encode(&self) -> Vec<u8> {
        let ps = self.page_size as usize;
        let mut out = Vec::with_capacity(HEADER + self.pages.len() * (4 + ps));
        self.header_into(&mut out);
        for (no, bytes) in &self.pages {
            out.extend_from_slice(&no.to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    fn header_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.page_size.to_le_bytes());
        out.extend_from_slice(&self.page_count.to_le_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.pages.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
    }

    pub fn decode(b: &[u8]) -> Result<Segment> {
        let bad = || Error::Usage("a replica segment is malformed".into());
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err(bad());
        }
        let u32_at = |i: usize| -> Result<u32> {
            Ok(u32::from_le_bytes(
                b.get(i..i + 4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(bad)?,
            ))
        };
        let page_size = u32_at(8)?;
        let page_count = u32_at(12)?;
        let at_ms = i64::from_le_bytes(b[16..24].try_into().map_err(|_| bad())?);
        let n = u32_at(24)? as usize;
        let ps = page_size as usize;
        if !(512..=65536).contains(&ps) || !ps.is_power_of_two() {
            return Err(bad());
        }
        if b.len() != HEADER + n * (4 + ps) {
            return Err(bad());
        }
        let mut pages = Vec::with_capacity(n);
        let mut i = HEADER;
        for _ in 0..n {
            let no = u32_at(i)?;
            if no == 0 || no > page_count {
                return Err(bad());
            }
            pages.push((no, b[i + 4..i + 4 + ps].to_vec()));
            i += 4 + ps;
        }
        Ok(Segment {
            page_size,
            page_count,
            at_ms,
            pages,
        })
    }

    /// Writes the pages into `file` and sets its length to the page count.
    pub fn apply(&self, file: &mut std::fs::File) -> Result<()> {
        let ps = u64::from(self.page_size);
        for (no, bytes) in &self.pages {
            file.seek(SeekFrom::Start((u64::from(*no) - 1) * ps))?;
            file.write_all(bytes)?;
        }
        file.set_len(u64::from(self.page_count) * ps)?;
        Ok(())
    }
}

/// zstd's level for segments and snapshots: its first "fast" level. On
/// the pages a busy workspace's passes ship (sealed values in B-tree pages,
/// zero-filled free space), measured with `zstd -b` on segments from
/// `scripts/bench --only repl`: 1,119 MB/s at a ratio of 2.00, against
/// 512 MB/s (2.01) at level 1 and 275 MB/s (2.05) at level 3, which the
/// passes used before and which took most of their CPU
/// (docs/benchmarks.md, "Replication's CPU").
const LEVEL: i32 = -1;

/// The encoding is compressed in frames of about this many bytes, each
/// from one contiguous buffer (zstd's one-shot path, not its streaming
/// copy), the buffers reused from frame to frame: a pass's memory stays
/// this size, not the segment's, and a 400 MB snapshot needs no 400 MB
/// buffer. `open` reads the frames back to back (zstd's decoder continues
/// across frames).
const FRAME: usize = 1 << 20;

/// zstd, then age to the recipients.
pub fn seal(seg: &Segment, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::internal(format!("age: {e}")))?;
    let ps = seg.page_size as usize;
    // Sealed pages compress about twofold.
    let mut out = Vec::with_capacity(HEADER + seg.pages.len() * (4 + ps) / 2 + 256);
    let mut w = enc.wrap_output(&mut out)?;
    let mut z = zstd::bulk::Compressor::new(LEVEL)?;
    let mut raw = Vec::with_capacity(FRAME + 4 + ps);
    let mut packed = Vec::with_capacity(zstd::zstd_safe::compress_bound(FRAME + 4 + ps));
    let mut frame = |raw: &mut Vec<u8>, w: &mut dyn Write| -> Result<()> {
        packed.clear();
        z.compress_to_buffer(&raw[..], &mut packed)?;
        w.write_all(&packed)?;
        raw.clear();
        Ok(())
    };
    seg.header_into(&mut raw);
    for (no, bytes) in &seg.pages {
        raw.extend_from_slice(&no.to_le_bytes());
        raw.extend_from_slice(bytes);
        if raw.len() >= FRAME {
            frame(&mut raw, &mut w)?;
        }
    }
    if !raw.is_empty() {
        frame(&mut raw, &mut w)?;
    }
    w.finish()?;
    Ok(out)
}

/// The reverse of `seal`, with the operator's identity.
pub fn open(sealed: &[u8], identity: &age::x25519::Identity) -> Result<Segment> {
    let dec = age::Decryptor::new_buffered(sealed)
        .map_err(|e| Error::Usage(format!("a replica object is not an age file: {e}")))?;
    let mut r = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|_| {
            Error::Usage(
                "this identity cannot open the replica (not one of `backup.recipients`)".into(),
            )
        })?;
    let mut packed = Vec::new();
    r.read_to_end(&mut packed)?;
    Segment::decode(&zstd::decode_all(&packed[..])?)
}

/// Marks a rebuilt file as a rollback-journal database (header bytes 18-19),
/// so it opens read-only without a WAL beside it; Aura switches it back to
/// WAL when it opens it.
pub fn mark_rollback(file: &mut std::fs::File) -> Result<()> {
    file.seek(SeekFrom::Start(18))?;
    file.write_all(&[1, 1])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_round_trips_and_a_cut_one_is_refused() {
        let seg = Segment {
            page_size: 512,
            page_count: 3,
            at_ms: 42,
            pages: vec![(1, vec![7; 512]), (3, vec![9; 512])],
        };
        let id = age::x25519::Identity::generate();
        let sealed = seal(&seg, &[id.to_public()]).unwrap();
        assert_eq!(open(&sealed, &id).unwrap(), seg);
        let enc = seg.encode();
        assert!(Segment::decode(&enc[..enc.len() - 1]).is_err());
        let other = age::x25519::Identity::generate();
        assert!(open(&sealed, &other).is_err());
    }

    #[test]
    fn a_segment_larger_than_one_frame_round_trips() {
        // 700 pages of 4 KiB: three zstd frames.
        let pages: Vec<(u32, Vec<u8>)> = (1..=700u32)
            .map(|no| {
                let mut p = vec![0u8; 4096];
                p[..4].copy_from_slice(&no.to_le_bytes());
                p[100..100 + (no as usize % 2000)].fill(no as u8);
                (no, p)
            })
            .collect();
        let seg = Segment {
            page_size: 4096,
            page_count: 800,
            at_ms: 7,
            pages,
        };
        assert!(seg.encode().len() > 2 * FRAME);
        let id = age::x25519::Identity::generate();
        let sealed = seal(&seg, &[id.to_public()]).unwrap();
        assert_eq!(open(&sealed, &id).unwrap(), seg);
    }
}
