//! The host's own logs and traces: text or JSON lines on stderr
//! (`--log-format`), filtered by `TRIGGERHOST_LOG`, and, when
//! `[tracing] otlp_endpoint` is set, spans exported over OTLP/HTTP.
//!
//! Each delivery and each poll runs in a span (`delivery`, `poll`) carrying
//! the trigger, plugin, version and the ids of the events it stored.

pub mod otlp;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it is in.
    Json,
}

/// Installs the process-wide subscriber: the format on stderr, filtered by
/// `TRIGGERHOST_LOG`, and the OTLP layer with its own filter (the host's
/// spans, whatever the log level), idle until [`otlp::start`] gives it an
/// endpoint.
pub fn init(format: LogFormat) {
    let filter = || EnvFilter::try_from_env("TRIGGERHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(otlp::layer().with_filter(otlp::filter()));
    let result = match format {
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter())).try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
}
