//! The BIDS-App conventions a lab relies on: the `IMAGE BIDS_DIR OUTPUT_DIR participant` form,
//! errors that say what to do, completions and a man page, and the container recipes and
//! Boutiques descriptor checked against the CLI so they cannot drift.

mod common;

use common::*;
use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_bids_apps_form_is_run_and_a_misplaced_level_says_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_data();
    let (code, stdout, stderr) = outcome(neuro_batch().args([
        data.to_str().unwrap(),
        tmp.path().join("out").to_str().unwrap(),
        "participant",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("sub-01"), "{stdout}");
    for argv in [
        ["run", "participant", "data", "out"],
        ["run", "data", "participant", "out"],
    ] {
        let (code, _, stderr) = outcome(neuro_batch().args(argv));
        assert_eq!(code, 64, "{stderr}");
        assert!(
            stderr.contains("neuro-batch run BIDS_DIR OUTPUT_DIR participant"),
            "{stderr}"
        );
    }
}

#[test]
fn errors_about_the_dataset_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let loose = tmp.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::copy(
        sample_data().join("sub-01/anat/sub-01_T1w.nii.gz"),
        loose.join("scan1.nii.gz"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let (code, _, stderr) = run(&loose, &out, &[]);
    assert_eq!(code, 66, "{stderr}");
    assert!(
        stderr.contains("a BIDS dataset starts with one") && stderr.contains("BIDSVersion"),
        "{stderr}"
    );
    bids_root(&loose);
    let (code, _, stderr) = run(&loose, &out, &[]);
    assert_eq!(code, 18, "{stderr}");
    assert!(
        stderr.contains("sub-<label>/[ses-<label>/]anat/") && stderr.contains("scan1.nii.gz"),
        "names where BIDS expects images and what it saw: {stderr}"
    );
    let (code, _, stderr) = run(&sample_data(), &out, &["--participant-label", "99"]);
    assert_eq!(code, 18, "{stderr}");
    assert!(stderr.contains("subjects are 01, 02, itk"), "{stderr}");
}

#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, stderr) = outcome(neuro_batch().args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(script.contains("participant-label"), "{shell}");
    }
    let (_, bash, _) = outcome(neuro_batch().args(["completions", "bash"]));
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &bash])
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n accepts the completion script");
    let (code, man, _) = outcome(neuro_batch().arg("man"));
    assert_eq!(code, 0);
    assert!(
        man.contains(".TH neuro-batch 1") && man.contains("run"),
        "{man}"
    );
}

/// The argv of the Dockerfile's `ENTRYPOINT ["..."]` (exec form).
fn entrypoint(dockerfile: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ENTRYPOINT"))
        .expect("an ENTRYPOINT");
    serde_json::from_str(line.trim()).expect("ENTRYPOINT in exec (JSON) form")
}

#[test]
fn the_container_recipes_run_the_cli_as_a_bids_app() {
    let dockerfile = std::fs::read_to_string(repo("container/Dockerfile")).unwrap();
    let argv = entrypoint(&dockerfile);
    assert_eq!(argv, ["neuro-batch"]);
    assert!(dockerfile.contains("USER 1000"), "not root");
    // `docker run IMAGE /data /out participant ...` runs ENTRYPOINT + those words.
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, stderr) = outcome(neuro_batch().args([
        sample_data().to_str().unwrap(),
        tmp.path().join("out").to_str().unwrap(),
        "participant",
        "--participant-label",
        "01",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{stderr}");

    let def = std::fs::read_to_string(repo("container/neuro-batch.def")).unwrap();
    let sections: Vec<&str> = def
        .lines()
        .filter(|l| l.starts_with('%'))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    for s in ["%files", "%post", "%runscript", "%help"] {
        assert!(sections.contains(&s), "{s} in the Apptainer definition");
    }
    assert!(
        def.lines()
            .filter(|l| l.starts_with("Bootstrap: docker"))
            .count()
            == 2
    );
    assert!(def.contains("exec /usr/local/bin/neuro-batch \"$@\""));

    if let Some(hadolint) = require_tool("hadolint", "HADOLINT") {
        let output = std::process::Command::new(hadolint)
            .arg(repo("container/Dockerfile"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "hadolint: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn the_boutiques_descriptor_matches_the_cli() {
    use clap::CommandFactory;
    let path = repo("boutiques/neuro-batch.json");
    let descriptor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cli = neuro_batch::cli::Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let flags: Vec<String> = run
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let template = descriptor["command-line"].as_str().unwrap();
    for input in descriptor["inputs"].as_array().unwrap() {
        let key = input["value-key"].as_str().unwrap();
        assert!(template.contains(key), "{key} in the command line");
        if let Some(flag) = input["command-line-flag"].as_str() {
            assert!(flags.iter().any(|f| f == flag), "{flag} is a flag of run");
        }
    }
    assert_eq!(
        descriptor["tool-version"],
        env!("CARGO_PKG_VERSION"),
        "the descriptor's version follows the crate's"
    );

    let Some(bosh) = require_tool("bosh", "BOSH") else {
        return;
    };
    let validated = std::process::Command::new(&bosh)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "bosh validate: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let invocation = tmp.path().join("invocation.json");
    let data = sample_data();
    let out = tmp.path().join("out");
    std::fs::write(
        &invocation,
        serde_json::json!({
            "bids_dir": data,
            "output_dir": out,
            "analysis_level": "participant",
            "participant_label": ["01", "02"],
            "threads": 2,
            "overwrite": true,
        })
        .to_string(),
    )
    .unwrap();
    let simulated = std::process::Command::new(&bosh)
        .args(["exec", "simulate"])
        .arg(&path)
        .arg("-i")
        .arg(&invocation)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&simulated.stdout).into_owned();
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("Generated Command"))
        .nth(1)
        .unwrap_or_else(|| panic!("a generated command in {text}"));
    let words = shlex::split(line).unwrap();
    assert_eq!(words[0], "neuro-batch");
    // The simulated command line is one the CLI runs.
    let (code, _, stderr) = outcome(neuro_batch().args(&words[1..]).arg("--dry-run"));
    assert_eq!(code, 0, "{line}: {stderr}");
}

#[test]
fn slurm_tasks_can_run_the_container_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("my out");
    let (code, script, stderr) = outcome(neuro_batch().args([
        "slurm",
        sample_data().to_str().unwrap(),
        out.to_str().unwrap(),
        "participant",
        "--threads",
        "2",
        "--launcher",
        "apptainer run --cleanenv -B /data neuro-batch.sif",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let exec = script
        .lines()
        .find_map(|l| l.strip_prefix("exec "))
        .expect("the task line");
    let words = shlex::split(exec).expect("shell words");
    assert_eq!(
        words[..5],
        ["apptainer", "run", "--cleanenv", "-B", "/data"],
        "{exec}"
    );
    assert_eq!(words[5], "neuro-batch.sif");
    assert_eq!(words[6], "run");
    assert!(
        words.iter().any(|w| w == out.to_str().unwrap()),
        "the output path with its space is one word: {exec}"
    );
    assert!(script.contains(&format!("#SBATCH --output='{}", out.display())));
}
