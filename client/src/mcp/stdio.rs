//! The shim's two byte streams (stdin and stdout, or any pair in tests): a bounded line reader that checks each line (`jsonrpc.rs`) and answers bad ones itself, the one writer every outgoing line goes through, and the rmcp [`Transport`] that joins them to rmcp.
//!
//! ```text
//! input ──LineReader──check_line──┬── Forward ──(1 message)──> rmcp ──send──┐
//!                                 └── Answer ─────────────────────────────┴──(64 lines)──> writer ──> output
//! ```
//!
//! - A line is read up to `limit` bytes; past it the line is discarded as it streams (its bytes
//!   are never kept) and answered `-32700`. Memory is bounded: one line, one parsed message
//!   waiting for rmcp, 64 lines waiting for the writer; the reader stops reading while rmcp or
//!   the output is slow.
//! - The writer is the only code that writes to the output and writes whole lines, so rmcp's
//!   answers and the shim's own error lines never interleave; it flushes whenever nothing else
//!   waits.
//! - The end of the input ends the reader, which ends rmcp's session as before; the writer ends
//!   once everything queued is written.

use std::io;
use std::time::Duration;

use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::Transport,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::jsonrpc::{self, Verdict};

/// Bytes asked of the input per read (a pipe gives at most 64 KiB at a time on Linux).
const READ_CHUNK: usize = 64 << 10;
/// Parsed messages that may wait for rmcp: one, so the reader parses the next line only once
/// rmcp took the previous one.
const MESSAGES_QUEUED: usize = 1;
/// Outgoing lines that may wait for the writer.
const LINES_QUEUED: usize = 64;
/// How long the end of a session waits for the writer to write what is queued.
const WRITER_DRAIN: Duration = Duration::from_secs(5);

/// One step of [`LineReader::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole line, without its newline (the last line may lack one).
    Line(Vec<u8>),
    /// A line longer than the limit: its bytes so far are dropped and the rest is skipped as it
    /// arrives.
    TooLong,
    /// The input ended.
    End,
}

/// Reads newline-delimited lines of at most `limit` bytes, never holding more than `limit`
/// bytes of one line.
pub struct LineReader<R> {
    input: BufReader<R>,
    line: Vec<u8>,
    limit: usize,
    /// Skipping the rest of a line found too long, up to its newline.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(input: R, limit: usize) -> Self {
        LineReader {
            input: BufReader::with_capacity(READ_CHUNK, input),
            line: Vec::new(),
            limit,
            discarding: false,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub async fn next(&mut self) -> io::Result<Next> {
        loop {
            let available = self.input.fill_buf().await?;
            if available.is_empty() {
                self.discarding = false;
                return Ok(match std::mem::take(&mut self.line) {
                    line if line.is_empty() => Next::End,
                    line => Next::Line(line),
                });
            }
            let newline = memchr::memchr(b'\n', available);
            let content = newline.unwrap_or(available.len());
            let take = newline.map_or(content, |at| at + 1);
            if self.discarding {
                self.discarding = newline.is_none();
                self.input.consume(take);
                continue;
            }
            if self.line.len() + content > self.limit {
                // Freed, not just cleared: the rest of this line is never stored.
                self.line = Vec::new();
                self.discarding = newline.is_none();
                self.input.consume(take);
                return Ok(Next::TooLong);
            }
            self.line.extend_from_slice(&available[..content]);
            self.input.consume(take);
            if newline.is_some() {
                return Ok(Next::Line(std::mem::take(&mut self.line)));
            }
        }
    }
}

/// The rmcp side of the pumps: messages the reader let through, and the writer's queue.
pub struct ShimTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    outgoing: Option<mpsc::Sender<Vec<u8>>>,
}

impl Transport<RoleServer> for ShimTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), io::Error>> + Send + 'static {
        let line = serde_json::to_vec(&item).map(|mut line| {
            line.push(b'\n');
            line
        });
        let outgoing = self.outgoing.clone();
        async move {
            let line = line.map_err(io::Error::other)?;
            let outgoing = outgoing
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "transport closed"))?;
            outgoing
                .send(line)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the output is closed"))
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), io::Error>> + Send {
        self.outgoing = None;
        std::future::ready(Ok(()))
    }
}

/// The reader and writer tasks of one session.
pub struct Pumps {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Pumps {
    /// Starts reading `input` (lines of at most `limit` bytes) and writing `output`; returns the
    /// transport to hand to rmcp.
    pub fn start<R, W>(input: R, output: W, limit: usize) -> (ShimTransport, Pumps)
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (messages, incoming) = mpsc::channel(MESSAGES_QUEUED);
        let (outgoing, lines) = mpsc::channel(LINES_QUEUED);
        let reader = tokio::spawn(read_input(
            LineReader::new(input, limit),
            messages,
            outgoing.clone(),
        ));
        let writer = tokio::spawn(write_output(output, lines));
        let transport = ShimTransport {
            incoming,
            outgoing: Some(outgoing),
        };
        (transport, Pumps { reader, writer })
    }

    /// Once rmcp's session is over (and its transport dropped): stops reading and lets the
    /// writer write what is queued.
    pub async fn finish(self) {
        self.reader.abort();
        let _ = self.reader.await;
        if tokio::time::timeout(WRITER_DRAIN, self.writer)
            .await
            .is_err()
        {
            eprintln!("rlm-mcp: the output took longer than {WRITER_DRAIN:?} to drain; leaving");
        }
    }
}

async fn read_input<R: AsyncRead + Unpin>(
    mut lines: LineReader<R>,
    messages: mpsc::Sender<ClientJsonRpcMessage>,
    answers: mpsc::Sender<Vec<u8>>,
) {
    let limit = lines.limit();
    loop {
        let verdict = match lines.next().await {
            Ok(Next::Line(line)) => jsonrpc::check_line(line),
            Ok(Next::TooLong) => Verdict::Answer(jsonrpc::too_long(limit)),
            Ok(Next::End) => return,
            Err(e) => {
                eprintln!("rlm-mcp: reading stdin: {e}");
                return;
            }
        };
        match verdict {
            Verdict::Forward(message) => {
                if messages.send(*message).await.is_err() {
                    return;
                }
            }
            Verdict::Answer(answer) => {
                eprintln!(
                    "rlm-mcp: answered JSON-RPC error {} (id {}): {}",
                    answer.code,
                    answer.shown_id(),
                    answer.message
                );
                if answers.send(answer.to_line()).await.is_err() {
                    return;
                }
            }
            Verdict::Drop(reason) => eprintln!("rlm-mcp: {reason}"),
            Verdict::Skip => {}
        }
    }
}

async fn write_output<W: AsyncWrite + Unpin>(output: W, mut lines: mpsc::Receiver<Vec<u8>>) {
    let mut output = BufWriter::with_capacity(READ_CHUNK, output);
    while let Some(line) = lines.recv().await {
        let written = match output.write_all(&line).await {
            Ok(()) if lines.is_empty() => output.flush().await,
            other => other,
        };
        if let Err(e) = written {
            eprintln!("rlm-mcp: writing stdout: {e}");
            return;
        }
    }
    let _ = output.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], limit: usize) -> Vec<Next> {
        let mut reader = LineReader::new(input, limit);
        let mut out = Vec::new();
        loop {
            let next = reader.next().await.unwrap();
            let end = next == Next::End;
            out.push(next);
            if end {
                return out;
            }
        }
    }

    /// With nobody taking messages on rmcp's side, the reader stops reading: the client's
    /// writes block once the pipe, the read buffer and the one queued message are full.
    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_rmcp_stops_the_reader() {
        use futures::FutureExt;
        use tokio::io::AsyncWriteExt;

        let (mut client, input) = tokio::io::duplex(4096);
        let (output, _client_reads) = tokio::io::duplex(4096);
        let (mut transport, pumps) = Pumps::start(input, output, 1 << 20);
        let line = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
        let fits = (READ_CHUNK + 4096) / line.len() + 3;
        let mut written = 0;
        while written <= 100 * fits {
            // Let the reader run until it waits (all of this is in memory, on this thread).
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            match client.write_all(line).now_or_never() {
                Some(Ok(())) => written += 1,
                _ => break,
            }
        }
        assert!(
            written <= fits,
            "{written} lines went in; at most {fits} fit"
        );
        // Taking one message lets the reader go on.
        assert!(transport.receive().await.is_some());
        drop(transport);
        pumps.finish().await;
    }

    fn line(s: &str) -> Next {
        Next::Line(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_past_the_limit_are_skipped_whole() {
        let input = format!("abc\n{}\nde\n{}\nlast", "x".repeat(200_000), "y".repeat(11));
        assert_eq!(
            all(input.as_bytes(), 10).await,
            vec![
                line("abc"),
                Next::TooLong,
                line("de"),
                Next::TooLong,
                line("last"),
                Next::End
            ]
        );
        // Exactly the limit fits; the newline does not count.
        assert_eq!(
            all(b"0123456789\n\n", 10).await,
            vec![line("0123456789"), line(""), Next::End]
        );
        // A too-long line cut by the end of the input.
        assert_eq!(
            all("z".repeat(100).as_bytes(), 10).await,
            vec![Next::TooLong, Next::End]
        );
    }
}
