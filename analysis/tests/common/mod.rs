pub mod fake_tempo;
pub mod replay;

/// A load that reports no progress.
pub struct NoProgress;

impl neuro_batch_analysis::source::Progress for NoProgress {
    fn start(&self, _: usize) {}
    fn tick(&self) {}
    fn finish(&self) {}
}
