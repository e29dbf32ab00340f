//! `run --dry-run`: what would be done, as text or JSON.

use serde_json::json;

use crate::cli::Format;
use crate::engine::RunConfig;
use crate::engine::batch::Batch;
use crate::engine::plan::SubjectJob;

/// Prints the plan of `batch` on stdout.
pub(super) fn print_plan(batch: &Batch, config: &RunConfig, format: Format) {
    let (dataset, discovery, jobs) = (&batch.dataset, &batch.discovery, &batch.jobs);
    let out_root = &config.output_dir;
    match format {
        Format::Json => {
            let plan = json!({
                "bids_dir": dataset.root,
                "output_dir": out_root,
                "stages": config.stages.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "subject_count": jobs.len(),
                "input_count": batch.input_count(),
                "warnings": discovery.warnings,
                "subjects": jobs.iter().map(planned_subject).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("plan serializes")
            );
        }
        Format::Human => {
            println!(
                "{} subjects, {} inputs in {} -> {}",
                jobs.len(),
                batch.input_count(),
                dataset.root.display(),
                out_root.display()
            );
            for job in jobs {
                for f in &job.files {
                    let done = if f.complete { "  (done)" } else { "" };
                    println!("  sub-{}  {}{done}", job.label, f.input.relative.display());
                }
            }
        }
    }
}

/// One subject of the `--dry-run --format json` plan.
fn planned_subject(job: &SubjectJob) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = job
        .files
        .iter()
        .map(|f| {
            json!({
                "path": f.input.path,
                "relative": f.input.relative,
                "session": f.input.session,
                "entities": f.input.name.entities.iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<serde_json::Map<_, _>>(),
                "suffix": f.input.name.suffix,
                "extension": f.input.name.extension,
                "outputs": f.outputs.all(),
                "complete": f.complete,
                "estimated_bytes": f.estimated_bytes,
            })
        })
        .collect();
    json!({
        "subject": job.label,
        "sessions": job.sessions,
        "inputs": inputs,
    })
}
