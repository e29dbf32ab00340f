//! Cancellation: a flag the signal handler sets and the engine reads between steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared "stop now" flag: once set, no subject is admitted and no further step starts;
/// steps in flight finish.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the run to stop; returns whether it had been asked before.
    pub fn cancel(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for the scheduler.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}
