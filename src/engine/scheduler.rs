//! Admission of subjects to a rayon pool under a memory budget.
//!
//! The calling thread is the dispatcher: it admits subjects in order while fewer than
//! `max_parallel` run and their estimated bytes fit the budget (a subject larger than the
//! whole budget runs alone), and collects results over a channel as they finish. After
//! cancellation it admits nothing more and waits for the subjects in flight. A panic in one
//! item is caught and reported as that item's outcome, so it can neither hang the dispatcher
//! nor end the batch.
//!
//! Admitted items are not queued in the pool as jobs: each of the pool's threads runs one
//! loop that takes them from a channel. Rayon lets a thread that waits in a `join` run any
//! job queued in its pool, so a queued subject would be run by a thread waiting inside
//! another subject's parallel loop, delaying that subject by a whole other one and timing
//! both in its span. Between items, a thread helps the items in flight with their parallel
//! loops (`rayon::yield_now`), so a budget that admits fewer items than threads still keeps
//! every thread busy.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Outcome of scheduling one item.
#[derive(Debug)]
pub enum Scheduled<R> {
    /// It ran and produced this.
    Done(R),
    /// It panicked, with this message.
    Panicked(String),
    /// Cancellation came before it was admitted.
    NotStarted,
}

/// Items finished between two returns of free heap memory to the system.
const TRIM_EVERY: usize = 32;

/// How long a thread with neither an admitted item nor parallel work to help with sleeps
/// before it looks for parallel work again (an admitted item wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(1);

/// An admitted item: its index, the item and the cost it holds against the budget.
type Admitted<'a, T> = (usize, &'a T, u64);

/// A finished item: its index, the cost it held and its outcome.
type Finished<R> = (usize, u64, Scheduled<R>);

/// Run `work` on every item on `pool`, admitting items by their `cost` under `budget`.
/// Results come back in item order.
pub fn schedule<T, R>(
    pool: &rayon::ThreadPool,
    items: &[T],
    cost: impl Fn(&T) -> u64,
    budget: u64,
    max_parallel: usize,
    cancel: &AtomicBool,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Scheduled<R>>
where
    T: Sync,
    R: Send,
{
    let count = items.len();
    let mut results: Vec<Scheduled<R>> = (0..count).map(|_| Scheduled::NotStarted).collect();
    let (done_tx, done_rx) = unbounded::<Finished<R>>();
    let (admit_tx, admit_rx) = unbounded::<Admitted<'_, T>>();
    let work = &work;
    pool.in_place_scope(|scope| {
        scope.spawn_broadcast(move |_, _| serve(&admit_rx, &done_tx, work));
        let mut pending = items.iter().enumerate().peekable();
        let (mut in_flight, mut used, mut completed) = (0usize, 0u64, 0usize);
        loop {
            while !cancel.load(Ordering::SeqCst) {
                let Some((_, next)) = pending.peek() else {
                    break;
                };
                let need = cost(next).min(budget);
                if in_flight >= max_parallel.max(1) || (in_flight > 0 && used + need > budget) {
                    break;
                }
                let (index, item) = pending.next().expect("peeked");
                used += need;
                in_flight += 1;
                admit_tx
                    .send((index, item, need))
                    .expect("the pool's threads serve until the dispatcher is done");
            }
            if in_flight == 0 {
                break;
            }
            let (index, need, outcome) =
                done_rx.recv().expect("a thread serves each admitted item");
            used -= need;
            in_flight -= 1;
            results[index] = outcome;
            completed += 1;
            if completed % TRIM_EVERY == 0 {
                crate::malloc::release_free_memory();
            }
        }
        // Nothing more will be admitted: the threads' loops end.
        drop(admit_tx);
    });
    results
}

/// One pool thread's loop: run admitted items until the dispatcher is done, helping the
/// items in flight with their parallel work in between.
fn serve<T, R>(
    admitted: &Receiver<Admitted<'_, T>>,
    finished: &Sender<Finished<R>>,
    work: &(impl Fn(&T) -> R + Sync),
) {
    loop {
        if admitted.is_empty() && rayon::yield_now() == Some(rayon::Yield::Executed) {
            continue;
        }
        // Returns at once when an item is waiting.
        let (index, item, need) = match admitted.recv_timeout(IDLE_POLL) {
            Ok(next) => next,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| work(item))) {
            Ok(result) => Scheduled::Done(result),
            Err(payload) => Scheduled::Panicked(panic_message(payload.as_ref())),
        };
        // The dispatcher waits for every admitted item, so it is still listening.
        let _ = finished.send((index, need, outcome));
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn never_exceeds_the_budget_and_keeps_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let live = AtomicU64::new(0);
        let peak = Mutex::new(0u64);
        let costs = vec![30u64, 50, 20, 60, 10, 40, 30, 30];
        let out = schedule(
            &pool,
            &costs,
            |c| *c,
            100,
            4,
            &AtomicBool::new(false),
            |&c| {
                let now = live.fetch_add(c, Ordering::SeqCst) + c;
                {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(now);
                }
                std::thread::yield_now();
                live.fetch_sub(c, Ordering::SeqCst);
                c * 2
            },
        );
        assert!(*peak.lock().unwrap() <= 100);
        let doubled: Vec<u64> = out
            .into_iter()
            .map(|r| match r {
                Scheduled::Done(v) => v,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(doubled, costs.iter().map(|c| c * 2).collect::<Vec<_>>());
    }

    /// Rayon lets a thread that waits in a `join` run any queued job; if admitted subjects
    /// were queued in the pool, a thread waiting inside one subject's parallel loop would run
    /// a whole other subject there, and the first subject's span would time both.
    #[test]
    fn an_item_never_runs_inside_another() {
        use rayon::prelude::*;
        thread_local!(static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let deepest = AtomicU64::new(0);
        let items: Vec<u64> = (0..400).collect();
        let out = schedule(
            &pool,
            &items,
            |_| 1,
            100,
            2,
            &AtomicBool::new(false),
            |&item| {
                let depth = DEPTH.with(|d| {
                    d.set(d.get() + 1);
                    d.get()
                });
                deepest.fetch_max(depth as u64, Ordering::SeqCst);
                // Uneven parallel work, so that one half of a join often waits for the other.
                let sum: u64 = (0..64u64)
                    .into_par_iter()
                    .map(|i| (0..(i * item % 7) * 2000).fold(i, |a, b| a ^ b.wrapping_mul(31)))
                    .sum();
                DEPTH.with(|d| d.set(d.get() - 1));
                sum
            },
        );
        assert!(out.iter().all(|r| matches!(r, Scheduled::Done(_))));
        assert_eq!(
            deepest.load(Ordering::SeqCst),
            1,
            "an item ran inside another"
        );
    }

    #[test]
    fn oversized_item_runs_alone_and_cancel_stops_admission() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let out = schedule(
            &pool,
            &[500u64, 1],
            |c| *c,
            100,
            2,
            &AtomicBool::new(false),
            |&c| c,
        );
        assert!(matches!(out[0], Scheduled::Done(500)));
        let out = schedule(
            &pool,
            &[1u64, 2, 3],
            |c| *c,
            100,
            2,
            &AtomicBool::new(false),
            |&c| {
                assert!(c != 2, "item two breaks");
                c
            },
        );
        assert!(matches!(out[0], Scheduled::Done(1)) && matches!(out[2], Scheduled::Done(3)));
        assert!(matches!(&out[1], Scheduled::Panicked(m) if m.contains("item two breaks")));
        let cancel = AtomicBool::new(true);
        let out = schedule(&pool, &[1u64, 2], |c| *c, 100, 2, &cancel, |&c| c);
        assert!(out.iter().all(|r| matches!(r, Scheduled::NotStarted)));
    }
}
