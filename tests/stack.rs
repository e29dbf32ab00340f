//! The observability stack (docker-compose.yml and deploy/), validated offline: every file
//! parses, the compose file passes the Compose Specification schema, promtool accepts the
//! Prometheus config, the dashboard queries only span names, attributes and metric names the
//! telemetry (or Tempo's metrics-generator) emits, and every port and endpoint lines up with
//! the code's defaults.

mod common;

use neuro_batch::telemetry::names;
use neuro_batch::telemetry::otlp::{LOCAL_STACK_GRPC, LOCAL_STACK_HTTP};
use neuro_batch::telemetry::pushgateway;
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
        "deploy/prometheus.yaml",
        "deploy/grafana/provisioning/datasources/datasources.yaml",
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
    let prometheus = published(&compose, "prometheus");
    let pushgateway = published(&compose, "pushgateway");
    for (bind, _, _) in collector
        .iter()
        .chain(&tempo)
        .chain(&grafana)
        .chain(&prometheus)
        .chain(&pushgateway)
    {
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
    let ds = yaml("deploy/grafana/provisioning/datasources/datasources.yaml");
    let source = datasource(&ds, "tempo");
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

/// The provisioned datasource of `kind` (`tempo`, `prometheus`).
fn datasource<'a>(provisioning: &'a Yaml, kind: &str) -> &'a Yaml {
    provisioning["datasources"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|d| d["type"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("a {kind} datasource"))
}

#[test]
fn metrics_flow_from_collector_tempo_and_pushgateway_into_prometheus_and_grafana() {
    let compose = yaml("docker-compose.yml");
    let prometheus = published(&compose, "prometheus");
    assert_eq!(prometheus.len(), 1);
    let prom_port = prometheus[0].2;
    let flags: Vec<&str> = compose["services"]["prometheus"]["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for flag in [
        "--web.enable-otlp-receiver",
        "--web.enable-remote-write-receiver",
        "--enable-feature=exemplar-storage",
    ] {
        assert!(flags.contains(&flag), "prometheus runs with {flag}");
    }
    let config_mount = compose["services"]["prometheus"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .find(|v| v.starts_with("./deploy/prometheus.yaml:"))
        .expect("the config is mounted");
    assert!(
        flags.contains(
            &format!("--config.file={}", config_mount.split(':').nth(1).unwrap()).as_str()
        ),
        "prometheus reads the mounted config"
    );
    assert!(
        compose["services"]["prometheus"]["image"]
            .as_str()
            .unwrap()
            .starts_with("prom/prometheus:v3."),
        "Prometheus 3: the OTLP receiver"
    );

    // Collector: the metrics pipeline ends in Prometheus' OTLP receiver, not the debug log.
    let otel = yaml("deploy/otel-collector.yaml");
    let exporters = &otel["service"]["pipelines"]["metrics"]["exporters"];
    assert_eq!(exporters.as_vec().unwrap().len(), 1);
    let exporter = exporters[0].as_str().unwrap();
    assert!(exporter.starts_with("otlphttp"), "{exporter}");
    assert_eq!(
        otel["exporters"][exporter]["endpoint"].as_str(),
        Some(format!("http://prometheus:{prom_port}/api/v1/otlp").as_str())
    );

    // Tempo: span metrics and service graphs, remote-written with exemplars.
    let tempo = yaml("deploy/tempo.yaml");
    let write = &tempo["metrics_generator"]["storage"]["remote_write"][0];
    assert_eq!(
        write["url"].as_str(),
        Some(format!("http://prometheus:{prom_port}/api/v1/write").as_str())
    );
    assert_eq!(write["send_exemplars"].as_bool(), Some(true));
    let processors: Vec<&str> = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(processors.contains(&"span-metrics") && processors.contains(&"service-graphs"));
    assert!(
        !processors.contains(&"local-blocks"),
        "Tempo 3 removed local-blocks"
    );

    // Prometheus scrapes the Pushgateway, keeping the pushed labels.
    let pushgateway = published(&compose, "pushgateway");
    let prom = yaml("deploy/prometheus.yaml");
    let scrape = prom["scrape_configs"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["job_name"].as_str() == Some("pushgateway"))
        .expect("a pushgateway scrape job");
    assert_eq!(scrape["honor_labels"].as_bool(), Some(true));
    assert_eq!(
        scrape["static_configs"][0]["targets"][0].as_str(),
        Some(format!("pushgateway:{}", pushgateway[0].2).as_str())
    );

    // Grafana: a Prometheus datasource whose exemplars open traces in the Tempo datasource.
    let ds = yaml("deploy/grafana/provisioning/datasources/datasources.yaml");
    let (tempo_ds, prom_ds) = (datasource(&ds, "tempo"), datasource(&ds, "prometheus"));
    assert_eq!(
        prom_ds["url"].as_str(),
        Some(format!("http://prometheus:{prom_port}").as_str())
    );
    let link = &prom_ds["jsonData"]["exemplarTraceIdDestinations"][0];
    assert_eq!(
        link["name"].as_str(),
        Some("trace_id"),
        "Tempo's exemplar label"
    );
    assert_eq!(link["datasourceUid"].as_str(), tempo_ds["uid"].as_str());
    assert_eq!(
        tempo_ds["jsonData"]["serviceMap"]["datasourceUid"].as_str(),
        prom_ds["uid"].as_str()
    );
}

#[test]
fn promtool_accepts_the_prometheus_config() {
    let Some(promtool) = common::require_tool("promtool", "PROMTOOL") else {
        return;
    };
    let text = common::stack_prometheus_config(common::prometheus_major_version(&promtool));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yaml");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The values `label` is matched against in `query` (`label="a"`, `label=~"a|b"`).
fn label_values(query: &str, label: &str) -> Vec<String> {
    let mut values = Vec::new();
    for (i, _) in query.match_indices(&format!("{label}=")) {
        let before = query[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_') {
            continue; // a longer name ending in `label` (resource.service.name, span_name)
        }
        let rest = query[i + label.len() + 1..].trim_start_matches('~');
        let quoted = rest.trim_start_matches('"');
        let value = &quoted[..quoted.find('"').unwrap()];
        values.extend(value.split('|').map(str::to_string));
    }
    values
}

#[test]
fn dashboard_queries_name_only_what_the_telemetry_emits() {
    let (queries, _) = common::dashboard_queries();
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
        span_names.extend(label_values(q, "name"));
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

/// Series Tempo's metrics-generator writes (span-metrics and service-graphs processors, with
/// classic histograms), from Tempo's documentation.
const TEMPO_GENERATED: [&str; 10] = [
    "traces_spanmetrics_calls_total",
    "traces_spanmetrics_latency_bucket",
    "traces_spanmetrics_latency_count",
    "traces_spanmetrics_latency_sum",
    "traces_spanmetrics_size_total",
    "traces_service_graph_request_total",
    "traces_service_graph_request_failed_total",
    "traces_service_graph_request_server_seconds_bucket",
    "traces_service_graph_request_client_seconds_bucket",
    "traces_service_graph_unpaired_spans_total",
];

#[test]
fn dashboard_metrics_are_series_that_exist() {
    let (_, queries) = common::dashboard_queries();
    assert!(
        queries.len() >= 5,
        "files by outcome (OTLP and pushed), step p50/p95, span p95, span RED"
    );
    // The metric names neuro-batch's series have in Prometheus: the Pushgateway push writes
    // them from a report, under the names the OTLP receiver gives the instruments (unit-tested
    // in telemetry::names).
    let tmp = tempfile::tempdir().unwrap();
    let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
    common::synth(
        &bids,
        &[
            "--subjects",
            "1",
            "--shape",
            "24,28,24",
            "--voxel-size",
            "8,8,8",
        ],
    );
    let (code, _, stderr) = common::run(&bids, &out, &["--no-trace-file"]);
    assert_eq!(code, 0, "{stderr}");
    let report: neuro_batch::engine::report::RunReport =
        serde_json::from_value(common::latest_report(&out)).unwrap();
    let exposition = pushgateway::exposition(&report);
    let ours: Vec<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| &l[..l.find(['{', ' ']).unwrap()])
        .collect();
    let mut seen = Vec::new();
    for q in &queries {
        let metrics: Vec<&str> = q
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter(|t| t.starts_with("neuro_batch_") || t.starts_with("traces_"))
            .collect();
        assert!(!metrics.is_empty(), "{q} names a metric");
        for metric in metrics {
            assert!(
                ours.contains(&metric) || TEMPO_GENERATED.contains(&metric),
                "the dashboard queries {metric}, which neither neuro-batch nor Tempo writes"
            );
            seen.push(metric.to_string());
            if metric.starts_with("traces_") {
                assert_eq!(
                    label_values(q, "service"),
                    [names::SERVICE_NAME],
                    "span metrics of neuro-batch only: {q}"
                );
            }
        }
        for span in label_values(q, "span_name") {
            assert!(names::ALL_SPANS.contains(&span.as_str()), "{span}");
        }
        for label in ["outcome", "step"] {
            for value in label_values(q, label) {
                assert!(exposition.contains(&format!("{label}=\"{value}\"")), "{q}");
            }
        }
    }
    for needed in [
        format!("{}_bucket", names::PROM_STEP_DURATION),
        names::PROM_FILES.to_string(),
        "traces_spanmetrics_latency_bucket".into(),
        "traces_spanmetrics_calls_total".into(),
    ] {
        assert!(seen.contains(&needed), "a panel on {needed}");
    }
}
