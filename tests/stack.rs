//! The observability stack (docker-compose.yml and deploy/), validated offline: every file
//! parses, the compose file passes the Compose Specification schema, the dashboard queries
//! only span names and attributes the telemetry emits, and every port and endpoint lines up
//! with the code's defaults.

mod common;

use neuro_batch::telemetry::names;
use neuro_batch::telemetry::otlp::{LOCAL_STACK_GRPC, LOCAL_STACK_HTTP};
use neuro_batch_analysis::DEFAULT_TEMPO_URL;
use std::path::PathBuf;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(rel: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: one YAML document");
    docs.remove(0)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// `host:container` pairs a service publishes, with the `${NEURO_BATCH_BIND:-127.0.0.1}:` prefix.
fn published(compose: &Yaml, service: &str) -> Vec<(String, u16, u16)> {
    compose["services"][service]["ports"]
        .as_vec()
        .unwrap_or_else(|| panic!("{service} publishes ports"))
        .iter()
        .map(|p| {
            let text = p.as_str().expect("ports as strings");
            let mut parts: Vec<&str> = text.rsplitn(3, ':').collect();
            parts.reverse();
            let [bind, host, container] = parts.as_slice() else {
                panic!("bind:host:container in {text}")
            };
            (
                bind.to_string(),
                host.parse().unwrap(),
                container.parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_stack_file_parses() {
    for rel in [
        "docker-compose.yml",
        "deploy/otel-collector.yaml",
        "deploy/tempo.yaml",
        "deploy/grafana/provisioning/datasources/tempo.yaml",
        "deploy/grafana/provisioning/dashboards/neuro-batch.yaml",
    ] {
        assert!(!yaml(rel).is_badvalue(), "{rel}");
    }
    let text =
        std::fs::read_to_string(root().join("deploy/grafana/dashboards/neuro-batch.json")).unwrap();
    let _: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON parses");
}

#[test]
fn compose_file_matches_the_compose_specification() {
    let Some(checker) = common::require_tool("check-jsonschema", "CHECK_JSONSCHEMA") else {
        return;
    };
    let output = std::process::Command::new(checker)
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(root().join("docker-compose.yml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "check-jsonschema: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_perf_regression_workflow_is_a_valid_github_workflow() {
    let Some(checker) = common::require_tool("check-jsonschema", "CHECK_JSONSCHEMA") else {
        return;
    };
    let out = std::process::Command::new(checker)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(root().join(".github/workflows/perf-regression.yml"))
        .output()
        .expect("run check-jsonschema");
    assert!(
        out.status.success(),
        "check-jsonschema: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The commands it runs exist with these options.
    let workflow =
        std::fs::read_to_string(root().join(".github/workflows/perf-regression.yml")).unwrap();
    for needle in [
        "compare --baseline",
        "--candidate",
        "--junit",
        "--save-table",
        "synth",
    ] {
        assert!(workflow.contains(needle), "{needle}");
    }
}

#[test]
fn ports_and_endpoints_line_up_with_the_code() {
    let compose = yaml("docker-compose.yml");
    let collector = published(&compose, "otel-collector");
    let tempo = published(&compose, "tempo");
    let grafana = published(&compose, "grafana");
    for (bind, _, _) in collector.iter().chain(&tempo).chain(&grafana) {
        assert_eq!(
            bind, "${NEURO_BATCH_BIND:-127.0.0.1}",
            "ports bind to loopback by default"
        );
    }
    let host_ports = |v: &[(String, u16, u16)]| v.iter().map(|(_, h, _)| *h).collect::<Vec<_>>();
    assert!(
        host_ports(&collector).contains(&port_of(LOCAL_STACK_HTTP)),
        "OTLP/HTTP default"
    );
    assert!(
        host_ports(&collector).contains(&port_of(LOCAL_STACK_GRPC)),
        "OTLP/gRPC default"
    );
    assert_eq!(
        host_ports(&tempo),
        [port_of(DEFAULT_TEMPO_URL)],
        "analyze's Tempo default"
    );
    assert_eq!(host_ports(&grafana), [3000]);

    // Inside the stack: collector receivers, collector -> Tempo, Grafana -> Tempo.
    let otel = yaml("deploy/otel-collector.yaml");
    let receivers = &otel["receivers"]["otlp"]["protocols"];
    let container =
        |v: &[(String, u16, u16)], host: u16| v.iter().find(|(_, h, _)| *h == host).unwrap().2;
    assert_eq!(
        port_of(receivers["http"]["endpoint"].as_str().unwrap()),
        container(&collector, 4318)
    );
    assert_eq!(
        port_of(receivers["grpc"]["endpoint"].as_str().unwrap()),
        container(&collector, 4317)
    );
    let tempo_cfg = yaml("deploy/tempo.yaml");
    let tempo_grpc = port_of(
        tempo_cfg["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        otel["exporters"]["otlp/tempo"]["endpoint"].as_str(),
        Some(format!("tempo:{tempo_grpc}").as_str())
    );
    let pipeline = &otel["service"]["pipelines"]["traces"];
    assert_eq!(pipeline["exporters"][0].as_str(), Some("otlp/tempo"));
    let http = tempo_cfg["server"]["http_listen_port"].as_i64().unwrap() as u16;
    assert_eq!(container(&tempo, port_of(DEFAULT_TEMPO_URL)), http);
    let ds = yaml("deploy/grafana/provisioning/datasources/tempo.yaml");
    let source = &ds["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("tempo"));
    assert_eq!(
        source["url"].as_str(),
        Some(format!("http://tempo:{http}").as_str())
    );
    let provider = yaml("deploy/grafana/provisioning/dashboards/neuro-batch.yaml");
    let mounted = compose["services"]["grafana"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .any(|v| {
            v.as_str().unwrap().ends_with(&format!(
                ":{}:ro",
                provider["providers"][0]["options"]["path"]
                    .as_str()
                    .unwrap()
            ))
        });
    assert!(mounted, "the dashboards folder Grafana reads is mounted");
    assert!(
        tempo_cfg["target"].as_str() == Some("all") && tempo_cfg["ingester"].is_badvalue(),
        "Tempo 3 single binary, no ingester"
    );
}

#[test]
fn dashboard_queries_name_only_what_the_telemetry_emits() {
    let text =
        std::fs::read_to_string(root().join("deploy/grafana/dashboards/neuro-batch.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["query"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(
        queries.len() >= 5,
        "stage durations, throughput, errors, slow subjects, size buckets"
    );
    let (mut span_names, mut attributes) = (Vec::new(), Vec::new());
    for q in &queries {
        assert!(
            q.contains(&format!(
                "resource.service.name=\"{}\"",
                names::SERVICE_NAME
            )),
            "{q}"
        );
        for (i, _) in q.match_indices("name=") {
            if q[..i].ends_with('.') {
                continue; // resource.service.name
            }
            let rest = q[i + 5..].trim_start_matches('~');
            let quoted = rest.trim_start_matches('"');
            let value = &quoted[..quoted.find('"').unwrap()];
            span_names.extend(value.split('|').map(str::to_string));
        }
        for (i, _) in q.match_indices("span.") {
            let key: String = q[i + 5..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            attributes.push(key);
        }
    }
    assert!(!span_names.is_empty() && !attributes.is_empty());
    for name in &span_names {
        assert!(
            names::ALL_SPANS.contains(&name.as_str()),
            "dashboard queries span '{name}', which neuro-batch never emits"
        );
    }
    for key in &attributes {
        assert!(
            names::ALL_ATTRIBUTES.contains(&key.as_str()),
            "dashboard queries attribute '{key}', which neuro-batch never sets"
        );
    }
    assert!(
        attributes.iter().any(|a| a == names::FILE_SIZE_BUCKET),
        "duration by file.size_bucket"
    );
    assert!(
        queries.iter().any(|q| q.contains("status=error")),
        "error rate"
    );
}
