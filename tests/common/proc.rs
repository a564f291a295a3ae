//! What a running server process holds, read from /proc: resident memory
//! (now and its peak), threads and open descriptors. Linux only, as the
//! appliance is.
#![allow(dead_code)]

fn status_field(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory now, in MiB.
pub fn rss_mib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:") / 1024
}

/// The highest resident memory so far, in MiB.
pub fn peak_rss_mib(pid: u32) -> u64 {
    status_field(pid, "VmHWM:") / 1024
}

pub fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}
