//! CPU time per step, across the threads that worked for it (`step.cpu_ms`).
//!
//! A step runs on one rayon worker and hands its parallel loops to the others. Its CPU time is
//! its own thread's CPU plus a share of what the *helping* workers spent while it ran: workers
//! that were not running a step of their own at its start nor at its end, read through their
//! per-thread CPU clocks and split evenly among the steps in flight. Other processes on the
//! machine do not move it (unlike wall time), which is what makes it a metric a CI gate on a
//! shared runner can hold.
//!
//! Exact with `--threads 1` (no helpers). With more threads, the work a busy worker steals from
//! another step while it waits counts for its own step, and rayon's brief spinning for work
//! counts as help; both are small against a volume's stages.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// No clock registered for a worker (yet).
const NO_CLOCK: i64 = i64::MIN;

/// The CPU clocks of a rayon pool's workers and which of them are running a step.
#[derive(Debug)]
pub struct PoolCpu {
    workers: Box<[Worker]>,
    in_flight: AtomicUsize,
}

#[derive(Debug)]
struct Worker {
    clock: AtomicI64,
    in_step: AtomicBool,
}

/// A step's CPU time, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCpu {
    /// The step's own thread.
    pub thread_ms: f64,
    /// Own thread plus its share of the helping workers.
    pub step_ms: f64,
}

/// Started by [`PoolCpu::begin`] on the step's thread; [`StepClock::finish`] reads it.
#[derive(Debug)]
pub struct StepClock<'a> {
    pool: &'a PoolCpu,
    own: Option<usize>,
    thread_start: f64,
    /// Per worker: its CPU at the start, `None` when it was busy with a step (or is this one).
    helpers: Vec<Option<f64>>,
    in_flight: usize,
}

impl PoolCpu {
    /// Accounting for a pool of `threads` workers; each registers itself with
    /// [`PoolCpu::register`] from the pool's start handler.
    pub fn new(threads: usize) -> Self {
        PoolCpu {
            workers: (0..threads)
                .map(|_| Worker {
                    clock: AtomicI64::new(NO_CLOCK),
                    in_step: AtomicBool::new(false),
                })
                .collect(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Record the calling thread's CPU clock as worker `index`'s (rayon's `start_handler`).
    pub fn register(&self, index: usize) {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is the calling thread; the call writes one clockid_t.
        let ok = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } == 0;
        if let (true, Some(w)) = (ok, self.workers.get(index)) {
            w.clock.store(i64::from(clock), Ordering::Release);
        }
    }

    /// Forget worker `index`'s clock (rayon's `exit_handler`): it dies with its thread.
    pub fn unregister(&self, index: usize) {
        if let Some(w) = self.workers.get(index) {
            w.clock.store(NO_CLOCK, Ordering::Release);
        }
    }

    /// Start timing a step on the calling thread.
    pub fn begin(&self) -> StepClock<'_> {
        let own = rayon::current_thread_index().filter(|&i| i < self.workers.len());
        if let Some(i) = own {
            self.workers[i].in_step.store(true, Ordering::Release);
        }
        let in_flight = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let helpers = self
            .workers
            .iter()
            .enumerate()
            // A worker that has not registered yet is just starting: its clock is near 0.
            .map(|(i, w)| {
                (Some(i) != own && !w.in_step.load(Ordering::Acquire))
                    .then(|| w.cpu_ms().unwrap_or(0.0))
            })
            .collect();
        StepClock {
            pool: self,
            own,
            thread_start: super::usage::thread_cpu_ms(),
            helpers,
            in_flight,
        }
    }
}

impl Worker {
    fn cpu_ms(&self) -> Option<f64> {
        let clock = self.clock.load(Ordering::Acquire);
        if clock == NO_CLOCK {
            return None;
        }
        super::usage::clock_ms(clock as libc::clockid_t)
    }
}

impl StepClock<'_> {
    /// The step's CPU time so far; ends the step's accounting.
    pub fn finish(self) -> StepCpu {
        let thread_ms = super::usage::thread_cpu_ms() - self.thread_start;
        let pool = self.pool;
        let in_flight = self.in_flight.max(pool.in_flight.load(Ordering::Acquire));
        let helped: f64 = pool
            .workers
            .iter()
            .zip(&self.helpers)
            .filter_map(|(w, start)| {
                let start = (*start)?;
                if w.in_step.load(Ordering::Acquire) {
                    return None;
                }
                Some((w.cpu_ms()? - start).max(0.0))
            })
            .sum();
        pool.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(i) = self.own {
            pool.workers[i].in_step.store(false, Ordering::Release);
        }
        StepCpu {
            thread_ms,
            step_ms: thread_ms + helped / in_flight.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::Arc;

    fn spin(n: u64) -> u64 {
        (0..n).fold(0u64, |x, i| x.wrapping_mul(31).wrapping_add(i))
    }

    fn pool(threads: usize) -> (rayon::ThreadPool, Arc<PoolCpu>) {
        let cpu = Arc::new(PoolCpu::new(threads));
        let (start, exit) = (Arc::clone(&cpu), Arc::clone(&cpu));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(move |i| start.register(i))
            .exit_handler(move |i| exit.unregister(i))
            .build()
            .unwrap();
        (pool, cpu)
    }

    #[test]
    fn one_thread_counts_its_own_cpu_only() {
        let (pool, cpu) = pool(1);
        let reading = pool.install(|| {
            let clock = cpu.begin();
            std::hint::black_box(spin(20_000_000));
            clock.finish()
        });
        assert!(reading.thread_ms > 0.0);
        assert_eq!(reading.step_ms, reading.thread_ms);
    }

    #[test]
    fn helpers_work_is_counted_for_the_step_that_handed_it_out() {
        let (pool, cpu) = pool(2);
        let work_us = AtomicUsize::new(0);
        let reading = pool.install(|| {
            let clock = cpu.begin();
            // Independent chunks, each timing its own CPU on whichever thread runs it: the
            // sum is the work done, however the two workers shared it.
            (0..64u64).into_par_iter().for_each(|i| {
                let t0 = crate::telemetry::usage::thread_cpu_ms();
                std::hint::black_box(spin(1_000_000 + i));
                let us = (crate::telemetry::usage::thread_cpu_ms() - t0) * 1e3;
                work_us.fetch_add(us as usize, Ordering::Relaxed);
            });
            clock.finish()
        });
        let work_ms = work_us.load(Ordering::Relaxed) as f64 / 1e3;
        assert!(
            reading.step_ms >= 0.95 * work_ms,
            "the helper's CPU was not counted: {reading:?}, work {work_ms} ms"
        );
        // Coordination and rayon's spinning for work come on top, but not much.
        assert!(
            reading.step_ms <= 1.25 * work_ms + 10.0,
            "{reading:?}, work {work_ms} ms"
        );
    }
}
