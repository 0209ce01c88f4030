//! Log output: JSON lines when standard error is not a terminal, readable text when it is.
//!
//! Installed once per process by the binary; the library itself only emits `tracing` events,
//! so tests can run several servers in one process.
//!
//! Lines are formatted on the thread that logs and appended to one shared buffer, which a
//! thread of its own writes out: at most about a millisecond after the first line waiting, or
//! at once when 64 KiB are waiting. Written synchronously, the access log's line (a `write` to
//! standard error per request, under the lock every worker thread takes) was a sixth of the
//! server's CPU time on `/livez`; through `tracing-appender`'s non-blocking writer (a copy and a
//! channel message per line, the writer woken for most of them) `/livez` still ran at 0.58 of a
//! bare handler, and at 0.7 with this buffer. Nothing is dropped: while 8 MiB are waiting,
//! loggers wait for the writer. The guard [`init`] returns writes out the rest at exit.
//!
//! Every line logged while a request is served carries its id (`request_id`), from a task-local
//! value the request observer sets ([`with_request_id`]) rather than from a span per request:
//! creating, entering and leaving a span for every request, with its fields formatted up front,
//! cost about as much as the access log's line itself.

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FmtSpan, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, LogSettings};

/// The access log's own path to the writer, when the log is JSON: its line is formatted here
/// by hand, a fraction of what a `tracing` event with six fields costs (each field formatted to
/// a string and collected into a map before the line is written). Process-wide like the
/// `tracing` subscriber it stands beside; without it (tests, text logs) the line goes through
/// `tracing` as any other.
static ACCESS: std::sync::OnceLock<BufferedWriter> = std::sync::OnceLock::new();

/// Where the access log's lines come from, as `tracing` would name it.
const ACCESS_TARGET: &str = "integration_host::web::middleware";

/// One answered request, as the access log records it.
#[derive(Debug)]
pub struct Access<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    /// The path without the query (which may carry credentials).
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    /// The matched route pattern.
    pub route: &'a str,
}

/// Logs one answered request: at INFO, or ERROR for a 5xx answer.
pub fn access(a: &Access<'_>) {
    let error = a.status >= 500;
    let enabled = if error {
        tracing::enabled!(target: ACCESS_TARGET, tracing::Level::ERROR)
    } else {
        tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO)
    };
    if !enabled {
        return;
    }
    match ACCESS.get() {
        Some(writer) => LINE.with_borrow_mut(|line| {
            line.clear();
            write_access_json(line, a, error);
            writer.0.append(line.as_bytes());
        }),
        None if error => {
            tracing::error!(target: ACCESS_TARGET, request_id = %a.request_id, method = %a.method, path = %a.path, status = a.status, latency_ms = a.latency_ms, route = %a.route, "request answered")
        }
        None => {
            tracing::info!(target: ACCESS_TARGET, request_id = %a.request_id, method = %a.method, path = %a.path, status = a.status, latency_ms = a.latency_ms, route = %a.route, "request answered")
        }
    }
}

thread_local! {
    /// The second last written and its text (`2026-12-02T15:36:15`): a timestamp costs the
    /// microseconds only, in the same second.
    static SECOND: std::cell::RefCell<(i64, String)> = const {
        std::cell::RefCell::new((i64::MIN, String::new()))
    };
    /// The line being written, kept for the next one.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Appends the current time as RFC 3339 with microseconds, in UTC.
fn write_now(out: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs {
            *second = secs;
            *text = chrono::DateTime::from_timestamp(secs, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
        out.push_str(text);
    });
    push_padded(out, now.subsec_micros(), 6, '.');
    out.push('Z');
}

/// Appends `.` (or `sep`) and `n` zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u32, width: usize, sep: char) {
    use std::fmt::Write as _;
    out.push(sep);
    let _ = write!(out, "{n:0width$}");
}

/// The access line as the JSON formatter writes events: timestamp, level, the fields, the
/// message and the target.
fn write_access_json(line: &mut String, a: &Access<'_>, error: bool) {
    use std::fmt::Write as _;
    line.push_str("{\"timestamp\":\"");
    write_now(line);
    line.push_str(if error {
        "\",\"level\":\"ERROR\",\"request_id\":"
    } else {
        "\",\"level\":\"INFO\",\"request_id\":"
    });
    json_string(line, a.request_id);
    line.push_str(",\"method\":");
    json_string(line, a.method);
    line.push_str(",\"path\":");
    json_string(line, a.path);
    // Milliseconds to the microsecond, written as integers (a float's shortest form is costly).
    let micros = (a.latency_ms * 1000.0).round().max(0.0) as u64;
    let _ = write!(
        line,
        ",\"status\":{},\"latency_ms\":{}",
        a.status,
        micros / 1000
    );
    push_padded(line, (micros % 1000) as u32, 3, '.');
    line.push_str(",\"route\":");
    json_string(line, a.route);
    line.push_str(",\"message\":\"request answered\",\"target\":\"");
    line.push_str(ACCESS_TARGET);
    line.push_str("\"}\n");
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

tokio::task_local! {
    /// The id of the request being served by the current task.
    static REQUEST_ID: Arc<str>;
}

/// Runs `future` with `id` as the request id of every line it logs.
pub async fn with_request_id<F: Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// An event format that puts the current request's id first: as the first field of a JSON
/// line, or in brackets before a text line.
struct RequestIdFirst<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for RequestIdFirst<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Ok(id) = REQUEST_ID.try_with(Arc::clone) else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            write!(writer, "[{id}] ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The id is made of [A-Za-z0-9._-] (the observer checks an incoming one): no escaping.
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"request_id\":\"{id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// Lines waiting to be written, shared by every logging thread and the writer thread.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Set by the guard: write what is left and stop.
    closing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer (lines waiting, or closing).
    work: Condvar,
    /// Wakes loggers waiting for room.
    room: Condvar,
}

/// Waiting bytes past which the writer is woken at once.
const WAKE_AT: usize = 64 * 1024;
/// Waiting bytes past which loggers wait for the writer.
const FULL_AT: usize = 8 * 1024 * 1024;
/// How long the writer lets lines gather after the first one, when fewer than [`WAKE_AT`].
const LINGER: Duration = Duration::from_millis(1);

impl Shared {
    fn append(&self, line: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        while p.buf.len() >= FULL_AT && !p.closing {
            p = self.room.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        let was_empty = p.buf.is_empty();
        p.buf.extend_from_slice(line);
        let wake = was_empty || p.buf.len() >= WAKE_AT;
        drop(p);
        if wake {
            self.work.notify_one();
        }
    }

    /// The writer thread: waits for lines, lets them gather briefly, writes them out.
    fn run(&self, out: &mut impl std::io::Write) {
        let mut spare = Vec::new();
        loop {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            while p.buf.is_empty() && !p.closing {
                p = self.work.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if !p.closing && p.buf.len() < WAKE_AT {
                p = self
                    .work
                    .wait_timeout(p, LINGER)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let closing = p.closing;
            std::mem::swap(&mut p.buf, &mut spare);
            drop(p);
            self.room.notify_all();
            // A failed write (standard error closed) loses those lines; logging must not stop
            // the server.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
            if closing {
                let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if p.buf.is_empty() {
                    return;
                }
            }
        }
    }
}

/// Where formatted lines go: the shared buffer.
#[derive(Debug, Clone)]
struct BufferedWriter(Arc<Shared>);

impl std::io::Write for BufferedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedWriter {
    type Writer = BufferedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Keeps the log writer thread; dropping it writes out every line still waiting.
#[must_use = "the log writer stops when this guard is dropped"]
#[derive(Debug)]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closing = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread of the shared buffer, writing to `out`.
fn spawn_writer(
    mut out: impl std::io::Write + Send + 'static,
) -> std::io::Result<(BufferedWriter, LogGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || shared.run(&mut out))?
    };
    Ok((
        BufferedWriter(shared.clone()),
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// Installs the global subscriber writing to standard error, and returns the guard of its writer
/// thread: hold it until the process is done. A second call installs nothing.
pub fn init(settings: &LogSettings) -> LogGuard {
    init_except(settings, &[])
}

/// As [`init`], without the records of the `silenced` targets (a command that shows them its
/// own way).
pub fn init_except(settings: &LogSettings, silenced: &[&str]) -> LogGuard {
    let mut directives = settings.level.as_str().to_owned();
    for target in silenced {
        directives.push_str(&format!(",{target}=off"));
    }
    let filter = EnvFilter::builder()
        .parse(&directives)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let (writer, guard) = spawn_writer(std::io::stderr()).expect("the log writer thread starts");
    if json {
        let _ = ACCESS.set(writer.clone());
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_span_events(FmtSpan::NONE);
    let _ = if json {
        let format = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(RequestIdFirst {
                inner: format,
                json: true,
            })
            .try_init()
    } else {
        let format = tracing_subscriber::fmt::format().compact();
        builder
            .event_format(RequestIdFirst {
                inner: format,
                json: false,
            })
            .try_init()
    };
    guard
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Lines from several threads all arrive whole, a thread's in its order, and the guard
    /// writes out what is still waiting when it is dropped.
    #[test]
    fn every_line_arrives_whole_and_the_guard_writes_out_the_rest() {
        let sink = Sink::default();
        let (writer, guard) = super::spawn_writer(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("thread"), "{line}");
            let t: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("line"));
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }

    /// The access line by hand is JSON that reads back as what was logged, whatever the path.
    #[test]
    fn the_access_line_is_json_with_every_field() {
        let a = super::Access {
            request_id: "abc-1",
            method: "GET",
            path: "/a\"b\\c\u{1}\u{e9}",
            status: 503,
            latency_ms: 1.25,
            route: "/rest/V1/integrations/{id}",
        };
        let mut line = String::new();
        super::write_access_json(&mut line, &a, true);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["request_id"], "abc-1");
        assert_eq!(v["path"], "/a\"b\\c\u{1}\u{e9}");
        assert_eq!(v["status"], 503);
        assert_eq!(v["latency_ms"], 1.25);
        assert_eq!(v["route"], "/rest/V1/integrations/{id}");
        assert_eq!(v["message"], "request answered");
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).is_ok(),
            "{line}"
        );
    }

    /// A lone line is written soon without waiting for more.
    #[test]
    fn a_lone_line_is_written_within_milliseconds() {
        let sink = Sink::default();
        let (mut writer, _guard) = super::spawn_writer(sink.clone()).unwrap();
        writer.write_all(b"alone\n").unwrap();
        let started = std::time::Instant::now();
        while sink.0.lock().unwrap().is_empty() {
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"alone\n");
    }
}
