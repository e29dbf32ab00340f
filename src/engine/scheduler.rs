//! Admission of subjects to a rayon pool under a memory budget.
//!
//! The calling thread is the dispatcher: it admits subjects in order while fewer than
//! `max_parallel` run and their estimated bytes fit the budget (a subject larger than the
//! whole budget runs alone), and collects results over a channel as they finish. After
//! cancellation it admits nothing more and waits for the subjects in flight. A panic in one
//! item is caught and reported as that item's outcome, so it can neither hang the dispatcher
//! nor end the batch.

use crossbeam_channel::unbounded;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let (tx, rx) = unbounded::<(usize, u64, Scheduled<R>)>();
    let work = &work;
    pool.in_place_scope(|scope| {
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
                let tx = tx.clone();
                scope.spawn(move |_| {
                    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| work(item))) {
                        Ok(result) => Scheduled::Done(result),
                        Err(payload) => Scheduled::Panicked(panic_message(payload.as_ref())),
                    };
                    let _ = tx.send((index, need, outcome));
                });
            }
            if in_flight == 0 {
                break;
            }
            let (index, need, outcome) = rx.recv().expect("the dispatcher holds a sender");
            used -= need;
            in_flight -= 1;
            results[index] = outcome;
            completed += 1;
            if completed % TRIM_EVERY == 0 {
                crate::malloc::release_free_memory();
            }
        }
    });
    results
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
