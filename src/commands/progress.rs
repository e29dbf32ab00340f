//! How a run shows it is moving: a progress bar on a terminal, a heartbeat line in logs.

use crate::cli::Format;

/// How often a run without a terminal says how far it is.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `work`; without a terminal (where the progress bar is hidden) logs `done/total` files
/// every [`HEARTBEAT`] meanwhile, so SLURM and CI logs show progress.
pub(super) fn with_heartbeat<T>(progress: &indicatif::ProgressBar, work: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        return work();
    }
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while stopped
                .recv_timeout(HEARTBEAT)
                .is_err_and(|e| e.is_timeout())
            {
                tracing::info!(
                    done = progress.position(),
                    total = progress.length().unwrap_or(0),
                    "progress"
                );
            }
        });
        let out = work();
        drop(stop);
        out
    })
}

/// A bar counting files (hidden with `--format json`, and by indicatif without a terminal).
pub(super) fn progress_bar(len: u64, format: Format) -> indicatif::ProgressBar {
    if format == Format::Json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} files  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
