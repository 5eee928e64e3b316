//! The per-call log: the `log` import and the guest's stdout/stderr all write
//! into one bounded buffer.
//!
//! Past the cap, output is dropped and counted, never an error: a wasmtime
//! `MemoryOutputPipe` traps a guest that writes past its capacity, which would
//! turn a chatty connector into a failed delivery.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Recovered problems.
    Warn,
    /// Failures.
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

#[derive(Debug, Default)]
struct Buffer {
    /// Bytes of guest output kept at most.
    capacity: usize,
    text: Vec<u8>,
    dropped_bytes: usize,
    /// Bytes of host notes, which have their own room.
    host_bytes: usize,
}

/// Room for the host's own notes (capability denials) beside the guest's
/// output, so a guest that fills its log cannot hide them.
const HOST_NOTE_ROOM: usize = 4 << 10;

/// A bounded log shared by the `log` import and stdout/stderr of one call.
#[derive(Debug, Clone)]
pub struct CallLog {
    buffer: Arc<Mutex<Buffer>>,
}

/// What a call logged, after it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOutput {
    /// The text kept, at most the cap (invalid UTF-8 replaced).
    pub text: String,
    /// Bytes dropped past the cap.
    pub dropped_bytes: usize,
}

impl CallLog {
    /// A log that keeps at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        CallLog { buffer: Arc::new(Mutex::new(Buffer { capacity, ..Buffer::default() })) }
    }

    /// Empties the log for the next call of a reused instance, whose WASI
    /// stdout and stderr still write here: the output of earlier calls was
    /// copied out when they ended.
    pub fn reset(&self, capacity: usize) {
        *self.lock() = Buffer { capacity, ..Buffer::default() };
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means another writer panicked mid-append; the
        // bytes are still a valid, bounded log.
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends raw bytes, keeping what fits.
    pub fn append(&self, bytes: &[u8]) {
        let mut buffer = self.lock();
        let room = (buffer.capacity + buffer.host_bytes).saturating_sub(buffer.text.len());
        let kept = bytes.len().min(room);
        buffer.text.extend_from_slice(&bytes[..kept]);
        buffer.dropped_bytes += bytes.len() - kept;
    }

    /// Appends one line from the `log` import.
    pub fn write(&self, level: Level, message: &str) {
        let mut buffer = self.lock();
        let line_len = level.label().len() + 1 + message.len() + 1;
        if buffer.text.len() + line_len > buffer.capacity + buffer.host_bytes {
            buffer.dropped_bytes += line_len;
            return;
        }
        buffer.text.extend_from_slice(level.label().as_bytes());
        buffer.text.push(b' ');
        buffer.text.extend_from_slice(message.as_bytes());
        buffer.text.push(b'\n');
    }

    /// Appends a note from the host about the call (a denied capability),
    /// in its own room past the guest's cap.
    pub fn host_note(&self, message: &str) {
        let mut buffer = self.lock();
        let line = format!("HOST {}\n", crate::contract::cut(message, 512));
        if buffer.host_bytes + line.len() > HOST_NOTE_ROOM {
            return;
        }
        buffer.host_bytes += line.len();
        buffer.text.extend_from_slice(line.as_bytes());
    }

    /// What was logged so far.
    pub fn output(&self) -> LogOutput {
        let buffer = self.lock();
        LogOutput { text: String::from_utf8_lossy(&buffer.text).into_owned(), dropped_bytes: buffer.dropped_bytes }
    }
}

impl IsTerminal for CallLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CallLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CallLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a full chunk: what does not fit is dropped in `write`.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CallLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CallLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_dropped_and_counted() {
        let log = CallLog::new(16);
        log.write(Level::Info, "hello");
        log.append(b"0123456789abcdef");
        log.write(Level::Error, "too late");
        let out = log.output();
        // "INFO hello\n" is 11 bytes, so 5 of the 16 digits fit.
        assert_eq!(out.text, "INFO hello\n01234");
        assert_eq!(out.dropped_bytes, 11 + "ERROR too late\n".len());
    }
}
