//! Scale-out on a real SLURM cluster (started by .ci/slurm-up in CI), and the Kubernetes
//! Indexed Job example validated offline.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (trace id, span id, parent span id, name, links) of every span in a JSON-lines file.
type SpanRow = (String, String, String, String, Vec<(String, String)>);

fn spans_in(file: &Path) -> Vec<SpanRow> {
    trace_file_spans(file)
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            let links = s["links"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    (
                        l["traceId"].as_str().unwrap().to_string(),
                        l["spanId"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                text("traceId"),
                text("spanId"),
                text("parentSpanId"),
                text("name"),
                links,
            )
        })
        .collect()
}

/// Whether a SLURM cluster answers; missing is a loud skip locally and a failure in CI.
fn slurm_available() -> bool {
    if require_tool("sbatch", "SBATCH").is_none() {
        return false;
    }
    let up = Command::new("sinfo")
        .arg("-h")
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "no SLURM controller answers under CI=true (.ci/run starts one with .ci/slurm-up)"
            );
        }
        eprintln!(
            "\n==== SKIPPED: sbatch is installed but no SLURM controller answers (run .ci/slurm-up as root) ====\n"
        );
    }
    up
}

#[test]
fn array_job_processes_every_subject_once_under_one_batch_trace() {
    if !slurm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    let out = tmp.path().join("out");
    synth(
        &bids,
        &[
            "--subjects",
            "4",
            "--shape",
            "32,36,32",
            "--voxel-size",
            "4,4,4",
        ],
    );
    let good = std::fs::read(bids.join("sub-01/anat/sub-01_T1w.nii.gz")).unwrap();
    std::fs::create_dir_all(bids.join("sub-bad/anat")).unwrap();
    std::fs::write(
        bids.join("sub-bad/anat/sub-bad_T1w.nii.gz"),
        &good[..good.len() / 3],
    )
    .unwrap();

    let output = neuro_batch()
        .arg("slurm")
        .arg(&bids)
        .arg(&out)
        .args([
            "participant",
            "--tasks",
            "3",
            "--threads",
            "1",
            "--submit",
            "--wait",
        ])
        .env_remove("TRACEPARENT")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one input failed, so the merged exit is 1: {stderr}"
    );

    // The merged summary.
    let logs = out.join("logs");
    let summary_path: PathBuf = files_under(&logs)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("neuro-batch-slurm-")
                && p.extension().is_some_and(|e| e == "json")
        })
        .expect("merged summary");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["expected_shards"], 3);
    assert_eq!(summary["missing_shards"], serde_json::json!([]));
    assert_eq!(summary["reports"].as_array().unwrap().len(), 3);
    assert_eq!(
        (
            summary["subjects"].as_u64(),
            summary["ok"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(5), Some(4), Some(1))
    );
    assert!(
        summary["failures"][0]
            .as_str()
            .unwrap()
            .contains("sub-bad_T1w.nii.gz")
    );
    assert!(stderr.contains("3 shards reported of 3"), "{stderr}");

    // Every subject's outputs exist exactly once.
    let preproc: Vec<PathBuf> = files_under(&out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("_desc-preproc_T1w.nii.gz"))
        .collect();
    let subjects: BTreeSet<String> = preproc
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split('_')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(preproc.len(), 4);
    assert_eq!(
        subjects,
        ["sub-01", "sub-02", "sub-03", "sub-04"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    // One batch span; every subject root links to it and stays a root.
    let mut batch = Vec::new();
    let mut roots: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for file in files_under(&logs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
    {
        for (trace, span, parent, name, links) in spans_in(&file) {
            match name.as_str() {
                "batch" => batch.push((trace, span)),
                "process_subject" => {
                    assert!(parent.is_empty(), "subject spans are roots");
                    roots.insert(trace, links);
                }
                _ => {}
            }
        }
    }
    assert_eq!(batch.len(), 1, "one batch span");
    assert_eq!(roots.len(), 5, "one trace per subject across the shards");
    for links in roots.values() {
        assert_eq!(
            links, &batch,
            "every subject trace links to the batch context"
        );
    }
}

#[test]
fn kubernetes_indexed_job_example_is_valid() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kubernetes/indexed-job.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Its shard count matches the Job's completions.
    let completions = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions: "))
        .unwrap();
    assert!(
        text.contains(&format!("- --shard-count\n            - \"{completions}\"")),
        "--shard-count equals completions"
    );
    let Some(validator) = require_tool("kubernetes-validate", "KUBERNETES_VALIDATE") else {
        return;
    };
    let output = Command::new(validator).arg(&manifest).output().unwrap();
    assert!(
        output.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
