//! Syslog over TCP: RFC 5424 or RFC 3164 messages, octet-counted (RFC 6587, `LEN SP MSG`) or
//! newline-framed, told apart per message by its first byte (a digit starts a count, `<`
//! starts a message). Messages go to the configured workspace's `Syslog` table, parsed as
//! `logvault ingest --format text` parses them (Facility, SeverityLevel, HostName, ...).
//!
//! The listener needs no token (it is on loopback unless configured otherwise), bounds the
//! connections it holds and the size of a message, and hands messages to the workspace's
//! writer in batches: what a read brought, at most every few milliseconds. Syslog has no
//! acknowledgement; under a revoked key messages are dropped and counted (a warning is logged
//! at most once a minute), and the connection stays open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use logvault::ingest::{ErrorPolicy, Format};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::{Protocol, Submitted, parse, submit};
use crate::config::SyslogConfig;
use crate::http::AppState;
use crate::http::errors::Flavor;

/// Messages gathered before they are handed to the writer.
const BATCH_MESSAGES: usize = 4096;

/// Serves syslog on `listener` until `stop` says so.
pub(crate) async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    config: SyslogConfig,
    mut stop: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(state.limits.max_syslog_connections));
    let config = Arc::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a syslog connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many syslog connections; closing this one");
            continue;
        };
        let (state, config, stop) = (state.clone(), config.clone(), stop.clone());
        tasks.spawn(async move {
            connection(&state, &config, socket, stop).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    // Stop: each connection hands over what it has read and ends.
    while tasks.join_next().await.is_some() {}
}

/// Takes the next message out of `buf`, if a whole one is there.
fn next_message(buf: &mut BytesMut, max: usize) -> Result<Option<Vec<u8>>, String> {
    // Skip stray line ends between messages.
    while buf.first().is_some_and(|b| matches!(b, b'\n' | b'\r' | 0)) {
        buf.advance(1);
    }
    let Some(first) = buf.first() else {
        return Ok(None);
    };
    if first.is_ascii_digit() {
        let Some(space) = buf.iter().take(12).position(|b| *b == b' ') else {
            if buf.len() >= 12 {
                return Err("an octet count is longer than 11 digits".into());
            }
            return Ok(None);
        };
        let count: usize = std::str::from_utf8(&buf[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a message starts with digits that are not an octet count")?;
        if count > max {
            return Err(format!(
                "a message of {count} bytes is over the limit of {max}"
            ));
        }
        if buf.len() < space + 1 + count {
            return Ok(None);
        }
        buf.advance(space + 1);
        return Ok(Some(buf.split_to(count).to_vec()));
    }
    match buf.iter().position(|b| *b == b'\n' || *b == 0) {
        Some(end) => {
            let msg = buf.split_to(end).to_vec();
            buf.advance(1);
            Ok(Some(msg))
        }
        None if buf.len() > max => Err(format!("a line of more than {max} bytes")),
        None => Ok(None),
    }
}

async fn connection(
    state: &AppState,
    config: &SyslogConfig,
    mut socket: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let max = state.limits.max_syslog_message;
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut lines: Vec<u8> = Vec::new();
    let mut count = 0usize;
    let mut last_warning: Option<Instant> = None;
    loop {
        let read = tokio::select! {
            r = socket.read_buf(&mut buf) => r,
            _ = stop.changed() => Ok(0),
        };
        let eof = !matches!(read, Ok(n) if n > 0);
        loop {
            match next_message(&mut buf, max) {
                Ok(Some(msg)) => {
                    // One row per message: line ends inside it become spaces.
                    let msg: Vec<u8> = msg
                        .into_iter()
                        .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                        .collect();
                    if msg.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    lines.extend_from_slice(&msg);
                    lines.push(b'\n');
                    count += 1;
                    if count >= BATCH_MESSAGES {
                        hand_over(state, config, &mut lines, &mut count, &mut last_warning).await;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "closing a syslog connection that breaks framing");
                    hand_over(state, config, &mut lines, &mut count, &mut last_warning).await;
                    return;
                }
            }
        }
        hand_over(state, config, &mut lines, &mut count, &mut last_warning).await;
        if eof {
            // A final line without its line end is a message too.
            if !buf.is_empty() && !buf.first().is_some_and(u8::is_ascii_digit) {
                lines.extend_from_slice(&buf);
                lines.push(b'\n');
                count += 1;
                hand_over(state, config, &mut lines, &mut count, &mut last_warning).await;
            }
            return;
        }
    }
}

async fn hand_over(
    state: &AppState,
    config: &SyslogConfig,
    lines: &mut Vec<u8>,
    count: &mut usize,
    last_warning: &mut Option<Instant>,
) {
    if *count == 0 {
        return;
    }
    let payload = bytes::Bytes::from(std::mem::take(lines));
    let messages = std::mem::take(count) as f64;
    state.metrics.add(
        "logvault_syslog_messages_total",
        vec![("workspace", config.workspace.clone())],
        messages,
    );
    let size = payload.len();
    let result = async {
        let parsed = parse(
            state,
            &config.table,
            payload,
            Format::Text,
            ErrorPolicy::Skip,
        )
        .await?;
        let records: Vec<(String, arrow::array::RecordBatch)> = parsed
            .batches
            .into_iter()
            .map(|b| (config.table.clone(), b))
            .collect();
        // Back-pressure: syslog cannot be told to come back, so wait for room instead.
        loop {
            match submit(
                state,
                &config.workspace,
                Protocol::Syslog,
                records.clone(),
                size,
                Flavor::Azure,
                None,
            )
            .await
            {
                Err(e) if e.status.as_u16() == 429 || e.status.as_u16() == 503 => {
                    if state
                        .shutting_down
                        .load(std::sync::atomic::Ordering::Acquire)
                    {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }
    .await;
    match result {
        Ok(Submitted::Accepted) => {}
        Ok(Submitted::Dropped(rows, reason)) => {
            if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last_warning = Some(Instant::now());
                tracing::warn!(rows, %reason, "syslog messages dropped");
            }
        }
        Err(e) => {
            tracing::warn!(workspace = %config.workspace, error = %e.message, "syslog messages not stored")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn octet_counted_and_newline_framing_mix() {
        let mut buf =
            BytesMut::from(&b"<13>Mar  1 00:00:00 host app: one\n11 <13>1 - two\n<13>three"[..]);
        assert_eq!(
            next_message(&mut buf, 100).unwrap().unwrap(),
            b"<13>Mar  1 00:00:00 host app: one"
        );
        assert_eq!(
            next_message(&mut buf, 100).unwrap().unwrap(),
            b"<13>1 - two"
        );
        // The last line has no end yet: wait for more.
        assert_eq!(next_message(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(b"\n");
        assert_eq!(next_message(&mut buf, 100).unwrap().unwrap(), b"<13>three");
        // A count split across reads waits; an oversized one is refused.
        let mut buf = BytesMut::from(&b"20 <13>1 partial"[..]);
        assert_eq!(next_message(&mut buf, 100).unwrap(), None);
        let mut buf = BytesMut::from(&b"5000 x"[..]);
        assert!(next_message(&mut buf, 100).is_err());
    }
}
