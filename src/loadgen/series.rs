//! Realistic series for load generation: label sets shaped like the fixtures
//! (Triton `nv_inference_*`, FastAPI `http_*`, node_exporter `node_*`), about
//! ten labels each, deterministic for a given index.

/// Whether a series behaves as a counter (grows) or a gauge (moves around).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic.
    Counter,
    /// Any value.
    Gauge,
}

/// One generated series: sorted label pairs and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSeries {
    /// Label pairs sorted by name, unique, non-empty.
    pub labels: Vec<(String, String)>,
    /// How its values evolve.
    pub kind: Kind,
}

const TRITON: &[(&str, Kind)] = &[
    ("nv_inference_request_success", Kind::Counter),
    ("nv_inference_request_failure", Kind::Counter),
    ("nv_inference_count", Kind::Counter),
    ("nv_inference_exec_count", Kind::Counter),
    ("nv_inference_request_duration_us", Kind::Counter),
    ("nv_inference_queue_duration_us", Kind::Counter),
    ("nv_inference_compute_input_duration_us", Kind::Counter),
    ("nv_inference_compute_infer_duration_us", Kind::Counter),
    ("nv_inference_compute_output_duration_us", Kind::Counter),
    ("nv_inference_pending_request_count", Kind::Gauge),
];
const MODELS: &[&str] = &[
    "resnet50",
    "bert_base",
    "yolov8",
    "whisper_small",
    "llama3_8b",
    "t5_large",
    "clip_vit",
    "sdxl_unet",
    "ensemble_ocr",
    "mistral_7b",
];
const FASTAPI_HANDLERS: &[&str] =
    &["/api/v1/predict", "/api/v1/models", "/healthz", "/metrics", "/api/v1/users/{id}", "/api/v1/orders"];
const LE: &[&str] = &["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"];
const NODE: &[(&str, Kind)] = &[
    ("node_cpu_seconds_total", Kind::Counter),
    ("node_memory_MemAvailable_bytes", Kind::Gauge),
    ("node_network_receive_bytes_total", Kind::Counter),
    ("node_network_transmit_bytes_total", Kind::Counter),
    ("node_filesystem_avail_bytes", Kind::Gauge),
    ("node_load1", Kind::Gauge),
    ("node_disk_io_time_seconds_total", Kind::Counter),
    ("DCGM_FI_DEV_GPU_UTIL", Kind::Gauge),
];
const MODES: &[&str] = &["user", "system", "idle", "iowait"];
const REGIONS: &[&str] = &["ap-northeast-2", "us-east-1", "eu-west-1"];

fn build(pairs: Vec<(&str, String)>, kind: Kind) -> GenSeries {
    let mut labels: Vec<(String, String)> = pairs.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
    labels.sort();
    GenSeries { labels, kind }
}

/// The `i`-th series. Distinct indexes give distinct label sets: the last
/// mixed-radix digit of `i` always lands in a per-pod/instance label.
pub fn series(i: usize) -> GenSeries {
    let family = i % 3;
    let j = i / 3;
    let region = REGIONS[j % REGIONS.len()].to_string();
    let cluster = format!("edge-{}", j % 7);
    match family {
        0 => {
            // A Triton pod exports every metric for every model.
            let (name, kind) = TRITON[j % TRITON.len()];
            let k = j / TRITON.len();
            let model = MODELS[k % MODELS.len()];
            let pod = k / MODELS.len();
            build(
                vec![
                    ("__name__", name.to_string()),
                    ("cluster", cluster),
                    ("instance", format!("10.{}.{}.{}:8002", pod / 65536 % 256, pod / 256 % 256, pod % 256)),
                    ("job", "triton".to_string()),
                    ("model", model.to_string()),
                    ("namespace", "inference".to_string()),
                    ("pod", format!("triton-{pod:06x}-x7k2p")),
                    ("region", region),
                    ("version", "1".to_string()),
                    ("gpu_uuid", format!("GPU-{:08x}-4c1e-9d2a-{:012x}", pod % 4, pod)),
                ],
                kind,
            )
        }
        1 => {
            // FastAPI: a duration histogram bucket series per handler and le.
            let handler = FASTAPI_HANDLERS[j % FASTAPI_HANDLERS.len()];
            let k = j / FASTAPI_HANDLERS.len();
            let le = LE[k % LE.len()];
            let pod = k / LE.len();
            build(
                vec![
                    ("__name__", "http_request_duration_seconds_bucket".to_string()),
                    ("cluster", cluster),
                    ("handler", handler.to_string()),
                    ("instance", format!("10.64.{}.{}:8000", pod / 256 % 256, pod % 256)),
                    ("job", "fastapi".to_string()),
                    ("le", le.to_string()),
                    ("method", if handler.contains("predict") { "POST" } else { "GET" }.to_string()),
                    ("namespace", "api".to_string()),
                    ("pod", format!("fastapi-{pod:06x}-q9m4z")),
                    ("region", region),
                ],
                Kind::Counter,
            )
        }
        _ => {
            let (name, kind) = NODE[j % NODE.len()];
            let k = j / NODE.len();
            let cpu = k % 8;
            let node = k / 8;
            build(
                vec![
                    ("__name__", name.to_string()),
                    ("cluster", cluster),
                    ("cpu", cpu.to_string()),
                    ("instance", format!("10.128.{}.{}:9100", node / 256 % 256, node % 256)),
                    ("job", "node".to_string()),
                    ("mode", MODES[node % MODES.len()].to_string()),
                    ("node", format!("gpu-node-{node:05}")),
                    ("region", region),
                    ("device", if name.contains("network") { "eth0" } else { "nvme0n1" }.to_string()),
                ],
                kind,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_sorted_and_about_ten_labels() {
        let mut seen = HashSet::new();
        for i in 0..30_000 {
            let s = series(i);
            assert!(s.labels.windows(2).all(|w| w[0].0 < w[1].0), "{s:?}");
            assert!((9..=10).contains(&s.labels.len()));
            assert!(seen.insert(s.labels), "duplicate at {i}");
        }
    }
}
