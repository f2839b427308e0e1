//! What an attempt cost, for its completion marker: CPU time and peak memory of the worker and
//! the programs it ran (`getrusage` of the process and of its waited-for children).

use std::sync::OnceLock;

/// CPU time and peak resident set size so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) user_ms: u64,
    pub(crate) system_ms: u64,
    pub(crate) peak_rss_bytes: u64,
}

fn rusage(who: libc::c_int) -> Option<libc::rusage> {
    // SAFETY: an all-zero rusage is a valid value, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    (unsafe { libc::getrusage(who, &mut usage) } == 0).then_some(usage)
}

fn ms(t: libc::timeval) -> u64 {
    (t.tv_sec.max(0) as u64) * 1000 + (t.tv_usec.max(0) as u64) / 1000
}

/// The worker's usage plus that of every child it waited for (exec programs). Peak RSS is the
/// larger of the worker's and its largest child's: the kernel keeps no sum.
pub(crate) fn now() -> Usage {
    let own = rusage(libc::RUSAGE_SELF);
    let children = rusage(libc::RUSAGE_CHILDREN);
    let mut usage = Usage::default();
    for u in [own, children].into_iter().flatten() {
        usage.user_ms += ms(u.ru_utime);
        usage.system_ms += ms(u.ru_stime);
        // Linux reports ru_maxrss in KiB.
        usage.peak_rss_bytes = usage.peak_rss_bytes.max(u.ru_maxrss.max(0) as u64 * 1024);
    }
    usage
}

impl Usage {
    /// The usage since `base` (CPU as a difference; the peak is the process's, it has no delta).
    pub(crate) fn since(self, base: Usage) -> Usage {
        Usage {
            user_ms: self.user_ms.saturating_sub(base.user_ms),
            system_ms: self.system_ms.saturating_sub(base.system_ms),
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }
}

static STARTED: OnceLock<u64> = OnceLock::new();

/// When this worker process started (the first call; `run` makes it early).
pub(crate) fn process_started_ms() -> u64 {
    *STARTED.get_or_init(batchfan::contract::now_ms)
}
