//! Request bodies within bounds: at most `max_body_bytes` as sent (413 above), arriving within
//! the request timeout (408 after, `http::deadline`), and at most `max_decoded_bytes` once decompressed (gzip or
//! deflate; 413 above, so a small bomb stops there).

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use crate::http::AppState;
use crate::http::errors::{ApiError, Flavor};

fn too_large(what: &str, limit: usize, flavor: Flavor) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        format!("the request body is larger than {limit} bytes {what}"),
    )
    .flavor(flavor)
}

/// 408: the body did not arrive within the request timeout (the connection is closed after it).
pub(crate) fn late(message: String, flavor: Flavor) -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeout", message)
        .with_header(header::CONNECTION, "close")
        .flavor(flavor)
}

/// A request's body: decoded, with the bytes as they were sent.
pub(crate) struct Received {
    /// The body decoded (decompressed when it was sent compressed).
    pub(crate) payload: Bytes,
    /// The body as sent (the same bytes as `payload` when it was not compressed).
    pub(crate) sent: Bytes,
    /// Its `Content-Encoding`, lowercase (empty when none).
    pub(crate) encoding: String,
}

impl Received {
    /// The decoded body, letting go of the bytes as sent (a handler keeps the payload while it
    /// waits for the log; the compressed bytes need not wait with it).
    pub(crate) fn into_payload(self) -> Bytes {
        self.payload
    }
}

/// The request's body, decoded.
pub(crate) async fn read(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    flavor: Flavor,
) -> Result<Bytes, ApiError> {
    Ok(receive(state, headers, body, flavor).await?.into_payload())
}

/// The request's body, decoded, and as sent ([`Received`]).
pub(crate) async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    flavor: Flavor,
) -> Result<Received, ApiError> {
    let limits = &state.limits;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(too_large("as sent", limits.max_body_bytes, flavor));
    }
    let limited = Limited::new(body, limits.max_body_bytes);
    // The request frame bounds the body's arrival (`http::deadline`): 408 when it is late.
    let raw = match limited.collect().await {
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(too_large("as sent", limits.max_body_bytes, flavor));
        }
        Err(e) if super::deadline::is_timeout(e.as_ref()) => {
            return Err(late(e.to_string(), flavor));
        }
        Err(e) => {
            return Err(
                ApiError::bad_request(format!("reading the request body failed: {e}"))
                    .flavor(flavor),
            );
        }
        Ok(collected) => collected.to_bytes(),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let max = limits.max_decoded_bytes;
    let payload = match encoding.as_str() {
        "" | "identity" => raw.clone(),
        "gzip" | "x-gzip" | "deflate" => {
            let gzip = encoding != "deflate";
            let sent = raw.clone();
            let decoded =
                crate::http::decoding(state, "decompressing", move || decode(&sent, gzip, max))
                    .await?;
            match decoded {
                Ok(Some(bytes)) => Bytes::from(bytes),
                Ok(None) => return Err(too_large("once decompressed", max, flavor)),
                Err(e) => {
                    return Err(ApiError::bad_request(format!(
                        "the request body is not valid {encoding}: {e}"
                    ))
                    .flavor(flavor));
                }
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("Content-Encoding {other} is not supported (gzip, deflate or none)"),
            )
            .flavor(flavor));
        }
    };
    Ok(Received {
        payload,
        sent: raw,
        encoding,
    })
}

/// Decompresses at most `max` bytes; `None` if there are more.
fn decode(raw: &[u8], gzip: bool, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(flate2::read::ZlibDecoder::new(raw))
    };
    // A gzip member ends with its decompressed size (modulo 2^32): room for it up front, so
    // the output is not copied each time it outgrows its buffer (a hint only: a body of
    // several members, or one that lies, still decodes, and never past `max`).
    let hint = if gzip { gzip_size_hint(raw) } else { 0 };
    let mut out = Vec::with_capacity(hint.min(max.saturating_add(1)));
    reader.take(max as u64 + 1).read_to_end(&mut out)?;
    if out.len() > max {
        return Ok(None);
    }
    Ok(Some(out))
}

/// The decompressed size a gzip stream's last member declares (its trailer's `ISIZE`).
fn gzip_size_hint(raw: &[u8]) -> usize {
    raw.len()
        .checked_sub(4)
        .and_then(|start| raw.get(start..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, |size| u32::from_le_bytes(size) as usize)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn decompression_stops_at_the_bound() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 4096);
        assert_eq!(decode(&gz, true, 1 << 20).unwrap().unwrap().len(), 1 << 20);
        assert!(decode(&gz, true, (1 << 20) - 1).unwrap().is_none());
        assert!(decode(b"not gzip", true, 100).is_err());
    }

    #[test]
    fn the_gzip_trailer_sizes_the_output_and_a_false_one_changes_nothing() {
        let body = b"{\"a\":1}\n".repeat(1000);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gzip_size_hint(&gz), body.len());
        let out = decode(&gz, true, 1 << 20).unwrap().unwrap();
        assert_eq!(out, body);
        assert_eq!(out.capacity(), body.len(), "sized once, not grown");
        // A trailer claiming 4 GiB: the hint is bounded by `max`, and the checksum fails.
        let mut lying = gz.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&lying, true, 1 << 20).is_err());
        assert_eq!(gzip_size_hint(b"abc"), 0);
    }
}
