//! Logs and Prometheus metrics. `Metrics` is its own application data; the web layer's
//! request middleware and the worker both count into it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COHORTS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests start many apps in one process) is harmless.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteLatency {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The worker's counters. Each is exposed from the start, at zero until counted, so a
/// rate or an alert on it works before the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    MailSent,
    MailFailed,
    MailRetries,
}

impl Counter {
    pub const ALL: [Counter; 3] = [Counter::MailSent, Counter::MailFailed, Counter::MailRetries];

    pub fn name(self) -> &'static str {
        match self {
            Counter::MailSent => "cohorts_mail_sent_total",
            Counter::MailFailed => "cohorts_mail_failed_total",
            Counter::MailRetries => "cohorts_mail_retries_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Counter::MailSent => "Messages the SMTP server accepted.",
            Counter::MailFailed => {
                "Messages given up on after the last attempt (outbox status failed)."
            }
            Counter::MailRetries => "Failed attempts that will be tried again later.",
        }
    }
}

/// Gauge families the caller samples at scrape time: (name, help).
pub const GAUGES: [(&str, &str); 3] = [
    (
        "cohorts_db_pool_connections",
        "Database connections open in the pool.",
    ),
    (
        "cohorts_db_pool_idle",
        "Database connections open and idle in the pool.",
    ),
    ("cohorts_outbox_depth", "Outbox rows by status."),
];

/// Counters shared by every worker thread of one instance.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteLatency>>,
    counters: Mutex<BTreeMap<Counter, u64>>,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let entry = latency.entry(route.to_string()).or_default();
            for (bucket, bound) in entry.buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            entry.count += 1;
            entry.sum += seconds;
        }
    }

    /// Adds to one of the worker's counters.
    pub fn increment(&self, counter: Counter, by: u64) {
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry(counter).or_default() += by;
        }
    }

    /// Prometheus text exposition format (what `promtool check metrics` accepts): HELP
    /// and TYPE once per family, its samples together. `gauges` are sampled by the
    /// caller, as `name` or `name{labels}`, a family's samples next to each other.
    pub fn render(&self, gauges: &[(String, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP cohorts_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE cohorts_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "cohorts_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP cohorts_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE cohorts_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, entry) in latency.iter() {
                let route = escape(route);
                for (count, bound) in entry.buckets.iter().zip(LATENCY_BUCKETS) {
                    let _ = writeln!(
                        out,
                        "cohorts_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    entry.count
                );
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    entry.sum
                );
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    entry.count
                );
            }
        }
        let counters = self
            .counters
            .lock()
            .map(|counters| counters.clone())
            .unwrap_or_default();
        for counter in Counter::ALL {
            let name = counter.name();
            let value = counters.get(&counter).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "# HELP {name} {}\n# TYPE {name} counter\n{name} {value}",
                counter.help()
            );
        }
        let mut family_written: Option<&str> = None;
        for (sample, value) in gauges {
            let family = sample.split('{').next().unwrap_or(sample);
            if family_written != Some(family) {
                let help = GAUGES
                    .iter()
                    .find(|(name, _)| *name == family)
                    .map_or("Sampled at scrape time.", |(_, help)| *help);
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
                family_written = Some(family);
            }
            let _ = writeln!(out, "{sample} {value}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (family, type) of every line that introduces a family, and the families of samples.
    fn families(text: &str) -> (Vec<(String, String)>, Vec<String>, Vec<String>) {
        let mut help = Vec::new();
        let mut types = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["#", "HELP", name, ..] => help.push(name.to_string()),
                ["#", "TYPE", name, kind] => types.push((name.to_string(), kind.to_string())),
                [sample, _value] => {
                    samples.push(sample.split('{').next().unwrap_or("").to_string())
                }
                _ => panic!("unexpected line {line:?}"),
            }
        }
        (types, help, samples)
    }

    #[test]
    fn every_documented_family_has_help_and_type_and_starts_at_zero() {
        let metrics = Metrics::default();
        let text = metrics.render(&[
            ("cohorts_db_pool_connections".into(), 2.0),
            ("cohorts_db_pool_idle".into(), 1.0),
            ("cohorts_outbox_depth{status=\"pending\"}".into(), 0.0),
            ("cohorts_outbox_depth{status=\"sent\"}".into(), 3.0),
        ]);
        let (types, help, samples) = families(&text);
        for (family, kind) in [
            ("cohorts_http_requests_total", "counter"),
            ("cohorts_http_request_duration_seconds", "histogram"),
            ("cohorts_mail_sent_total", "counter"),
            ("cohorts_mail_failed_total", "counter"),
            ("cohorts_mail_retries_total", "counter"),
            ("cohorts_db_pool_connections", "gauge"),
            ("cohorts_db_pool_idle", "gauge"),
            ("cohorts_outbox_depth", "gauge"),
        ] {
            assert_eq!(
                help.iter().filter(|h| *h == family).count(),
                1,
                "HELP {family}: {text}"
            );
            assert!(
                types.contains(&(family.to_string(), kind.to_string())),
                "TYPE {family}: {text}"
            );
        }
        for counter in Counter::ALL {
            assert!(
                text.contains(&format!("\n{} 0\n", counter.name())),
                "{text}"
            );
        }
        for sample in samples {
            assert!(
                types.iter().any(|(family, _)| *family == sample),
                "{sample} has no TYPE"
            );
        }
    }

    #[test]
    fn a_counted_failure_shows_in_its_family() {
        let metrics = Metrics::default();
        metrics.increment(Counter::MailFailed, 2);
        let text = metrics.render(&[]);
        assert!(text.contains("\ncohorts_mail_failed_total 2\n"), "{text}");
        assert!(text.contains("\ncohorts_mail_sent_total 0\n"), "{text}");
    }
}
