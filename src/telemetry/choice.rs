//! Which exporters the standard OpenTelemetry variables select.

/// The exporters asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Traces at all (the trace file and OTLP).
    pub traces: bool,
    /// OTLP even without an endpoint (`OTEL_TRACES_EXPORTER=otlp`: the local stack).
    pub otlp_forced: bool,
    /// OTLP metrics (when OTLP is on).
    pub metrics: bool,
}

/// Reads `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` (`otlp`, `none`) and
/// `OTEL_METRICS_EXPORTER` (`otlp`, `none`). An unknown value is an error naming the variable.
pub fn choose(env: impl Fn(&str) -> Option<String>) -> Result<Choice, String> {
    let set = |k: &str| {
        env(k)
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    };
    if set("OTEL_SDK_DISABLED").as_deref() == Some("true") {
        return Ok(Choice {
            traces: false,
            otlp_forced: false,
            metrics: false,
        });
    }
    let exporter = |key: &str| match set(key).as_deref() {
        None => Ok(None),
        Some("otlp") => Ok(Some(true)),
        Some("none") => Ok(Some(false)),
        Some(other) => Err(format!(
            "{key}={other:?} is not supported (use otlp or none)"
        )),
    };
    let traces = exporter("OTEL_TRACES_EXPORTER")?;
    let metrics = exporter("OTEL_METRICS_EXPORTER")?;
    Ok(Choice {
        traces: traces != Some(false),
        otlp_forced: traces == Some(true),
        metrics: metrics != Some(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Choice, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        choose(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn standard_variables_select_the_exporters() {
        let default = with(&[]).unwrap();
        assert!(default.traces && !default.otlp_forced && default.metrics);
        assert!(!with(&[("OTEL_TRACES_EXPORTER", "none")]).unwrap().traces);
        assert!(
            with(&[("OTEL_TRACES_EXPORTER", "otlp")])
                .unwrap()
                .otlp_forced
        );
        assert!(!with(&[("OTEL_METRICS_EXPORTER", "none")]).unwrap().metrics);
        assert!(!with(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().traces);
        let e = with(&[("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert!(e.contains("OTEL_TRACES_EXPORTER"), "{e}");
    }
}
