//! Resource readings for spans: thread CPU time, peak resident memory.

/// CPU time of the calling thread, milliseconds.
pub fn thread_cpu_ms() -> f64 {
    clock_ms(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0.0)
}

/// Peak resident set size of the process so far, MB (Linux reports KiB).
pub fn peak_rss_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as f64 * 1024.0 / 1e6
}

/// The reading of `clock` in milliseconds; `None` when the clock is gone (a thread that ended).
pub(super) fn clock_ms(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec into the pointer it is given.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_move_forward() {
        let t0 = thread_cpu_ms();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ms() > t0);
        assert!(peak_rss_mb() > 1.0);
    }
}
