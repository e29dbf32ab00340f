//! Whether two runs did the same work: the same subjects, inputs, threads and settings.
//!
//! A comparison of runs that differ in any of these says more about the difference than
//! about the code; each difference is one warning in `compare`'s report (the verdicts stand).
//! The keys are the ones `neuro-batch run` records (`src/telemetry/names.rs`); traces without
//! them (other tools, older runs) skip the check they would feed.

use std::collections::{BTreeMap, BTreeSet};

use crate::table::{SpanTable, TableError};

/// Root attribute: subject label.
const SUBJECT: &str = "bids.subject";
/// Root attribute: worker threads of the run.
const THREADS: &str = "run.threads";
/// Root attribute: digest of stages, parameters and gzip level.
const SETTINGS: &str = "run.settings_digest";
/// `process_file` attribute: input file name.
const FILE_NAME: &str = "file.name";
/// `process_file` attribute: SHA-256 of the input's first 64 KiB.
const FILE_HEAD: &str = "file.head_sha256";
/// The span that carries the file attributes.
const PROCESS_FILE: &str = "process_file";

/// One warning per way the two runs differ.
pub fn differences(baseline: &SpanTable, candidate: &SpanTable) -> Result<Vec<String>, TableError> {
    let (b_roots, c_roots) = (baseline.roots()?, candidate.roots()?);
    let mut out = Vec::new();
    let (b_subjects, c_subjects) = (distinct(&b_roots, SUBJECT)?, distinct(&c_roots, SUBJECT)?);
    if b_roots.len() != c_roots.len() || b_subjects != c_subjects {
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).count();
        out.push(format!(
            "the runs traced different subjects: baseline {} traces ({} subjects), candidate {} \
             ({}); {} only in the baseline, {} only in the candidate",
            b_roots.len(),
            b_subjects.len(),
            c_roots.len(),
            c_subjects.len(),
            only(&b_subjects, &c_subjects),
            only(&c_subjects, &b_subjects),
        ));
    }
    let (b_threads, c_threads) = (distinct(&b_roots, THREADS)?, distinct(&c_roots, THREADS)?);
    if known(&b_threads, &c_threads) && b_threads != c_threads {
        out.push(format!(
            "the runs used different thread counts: baseline {}, candidate {}",
            list(&b_threads),
            list(&c_threads)
        ));
    }
    let (b_set, c_set) = (distinct(&b_roots, SETTINGS)?, distinct(&c_roots, SETTINGS)?);
    if known(&b_set, &c_set) && b_set != c_set {
        out.push(
            "the runs used different settings (stages, their parameters or the gzip level): \
             a change may come from the settings, not the code"
                .to_owned(),
        );
    }
    let (b_files, c_files) = (inputs(baseline)?, inputs(candidate)?);
    if !b_files.is_empty() && !c_files.is_empty() {
        let common: Vec<&String> = b_files
            .keys()
            .filter(|k| c_files.contains_key(*k))
            .collect();
        let changed = common
            .iter()
            .filter(|k| b_files[**k] != c_files[**k])
            .count();
        let unmatched = b_files.len() + c_files.len() - 2 * common.len();
        if changed > 0 || unmatched > 0 {
            out.push(format!(
                "the runs read different inputs: {changed} of {} files by the same name differ \
                 in content, {unmatched} are in one run only",
                common.len()
            ));
        }
    }
    Ok(out)
}

/// Both sides recorded the key.
fn known(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    !a.is_empty() && !b.is_empty()
}

fn list(values: &BTreeSet<String>) -> String {
    values.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn distinct(rows: &SpanTable, key: &str) -> Result<BTreeSet<String>, TableError> {
    if !rows.has_column(key) {
        return Ok(BTreeSet::new());
    }
    Ok(rows.strings(key)?.into_iter().flatten().collect())
}

/// Input file name → head digest, from the `process_file` spans.
fn inputs(table: &SpanTable) -> Result<BTreeMap<String, String>, TableError> {
    let files = table.of_name(PROCESS_FILE)?;
    if !files.has_column(FILE_NAME) || !files.has_column(FILE_HEAD) {
        return Ok(BTreeMap::new());
    }
    let names = files.strings(FILE_NAME)?;
    let heads = files.strings(FILE_HEAD)?;
    Ok(names
        .into_iter()
        .zip(heads)
        .filter_map(|(n, h)| Some((n?, h?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{AttrValue, Span, Status};

    fn span(trace: &str, id: &str, parent: Option<&str>, name: &str) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_owned),
            name: name.into(),
            service: "neuro-batch".into(),
            start_ns: 0,
            end_ns: 1_000_000,
            status: Status::Ok,
            error_message: None,
            attributes: BTreeMap::new(),
        }
    }

    fn run(subjects: &[&str], threads: i64, head: &str) -> SpanTable {
        let mut spans = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            let trace = format!("{i:032x}");
            let mut root = span(&trace, "a", None, "process_subject");
            root.attributes
                .insert(SUBJECT.into(), AttrValue::Str((*s).into()));
            root.attributes
                .insert(THREADS.into(), AttrValue::Int(threads));
            let mut file = span(&trace, "b", Some("a"), PROCESS_FILE);
            let name = format!("sub-{s}_T1w.nii.gz");
            file.attributes
                .insert(FILE_NAME.into(), AttrValue::Str(name));
            file.attributes
                .insert(FILE_HEAD.into(), AttrValue::Str(head.into()));
            spans.extend([root, file]);
        }
        SpanTable::build(spans).unwrap()
    }

    #[test]
    fn the_same_work_raises_nothing() {
        let a = run(&["01", "02"], 1, "ab");
        assert!(differences(&a, &a.clone()).unwrap().is_empty());
    }

    #[test]
    fn each_difference_is_one_warning() {
        let base = run(&["01", "02", "03"], 1, "ab");
        let cand = run(&["01", "02"], 2, "cd");
        let w = differences(&base, &cand).unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("baseline 3 traces") && w[0].contains("1 only in the baseline"));
        assert!(w[1].contains("baseline 1, candidate 2"));
        assert!(w[2].contains("2 of 2 files") && w[2].contains("1 are in one run only"));
    }
}
