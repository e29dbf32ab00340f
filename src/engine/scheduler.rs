//! Admission of subjects to a rayon pool under a memory budget.
//!
//! The calling thread is the dispatcher: it admits subjects in order while fewer than
//! `max_parallel` run and their estimated bytes fit the budget (a subject larger than the
//! whole budget runs alone), and collects results over a channel as they finish. After
//! cancellation it admits nothing more and waits for the subjects in flight.

use crossbeam_channel::unbounded;
use std::sync::atomic::{AtomicBool, Ordering};

/// Outcome of scheduling one item.
#[derive(Debug)]
pub enum Scheduled<R> {
    /// It ran and produced this.
    Done(R),
    /// Cancellation came before it was admitted.
    NotStarted,
}

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
    let (tx, rx) = unbounded::<(usize, u64, R)>();
    let work = &work;
    pool.in_place_scope(|scope| {
        let mut pending = items.iter().enumerate().peekable();
        let (mut in_flight, mut used) = (0usize, 0u64);
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
                    let result = work(item);
                    let _ = tx.send((index, need, result));
                });
            }
            if in_flight == 0 {
                break;
            }
            let (index, need, result) = rx.recv().expect("a worker holds a sender");
            used -= need;
            in_flight -= 1;
            results[index] = Scheduled::Done(result);
        }
    });
    results
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
                Scheduled::NotStarted => panic!("not started"),
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
        let cancel = AtomicBool::new(true);
        let out = schedule(&pool, &[1u64, 2], |c| *c, 100, 2, &cancel, |&c| c);
        assert!(out.iter().all(|r| matches!(r, Scheduled::NotStarted)));
    }
}
