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

/// Counters shared by every worker thread of one instance.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteLatency>>,
    counters: Mutex<BTreeMap<String, u64>>,
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

    /// Adds to a named counter, e.g. `cohorts_mail_sent_total`.
    pub fn increment(&self, name: &str, by: u64) {
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry(name.to_string()).or_default() += by;
        }
    }

    /// Prometheus text exposition format; `gauges` are sampled by the caller.
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
        if let Ok(counters) = self.counters.lock() {
            for (name, value) in counters.iter() {
                let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
            }
        }
        for (name, value) in gauges {
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}
