//! The request timeout on every request body: the body must have arrived within
//! `Limits::request_timeout` of the request's headers, whichever handler or extractor reads it
//! (the ingestion and query handlers, and the management and Key Vault handlers whose bodies
//! axum's extractors read before the handler runs). A body that is late fails its reader with
//! [`BodyTimeout`]; the request frame then answers 408 and closes the connection, so a client
//! that sends a body a byte at a time holds a connection and a request slot for that long at
//! most.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use futures::StreamExt;

/// A request body that did not arrive within the request timeout.
#[derive(Debug)]
pub(crate) struct BodyTimeout {
    pub(crate) after: Duration,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {}s",
            self.after.as_secs()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `e` (or an error it wraps) is a [`BodyTimeout`].
pub(crate) fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<BodyTimeout>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `body`, failing with [`BodyTimeout`] once `after` has passed (from now) before it ended;
/// `fired` is set when it does. A body known to be empty is returned as it is.
pub(crate) fn limit(body: Body, after: Duration, fired: Arc<AtomicBool>) -> Body {
    if body.size_hint().exact() == Some(0) {
        return body;
    }
    let mut inner = body.into_data_stream();
    let mut sleep = Box::pin(tokio::time::sleep(after));
    let mut done = false;
    Body::from_stream(futures::stream::poll_fn(move |cx| {
        if done {
            return Poll::Ready(None);
        }
        // The deadline first: a body that keeps coming, however slowly, still ends there.
        if sleep.as_mut().poll(cx).is_ready() {
            done = true;
            fired.store(true, Ordering::Release);
            let e: Box<dyn std::error::Error + Send + Sync> = Box::new(BodyTimeout { after });
            return Poll::Ready(Some(Err(e)));
        }
        match inner.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item.map_err(Into::into))),
            Poll::Pending => Poll::Pending,
        }
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_late_body_fails_with_the_timeout_and_a_prompt_one_arrives_whole() {
        let fired = Arc::new(AtomicBool::new(false));
        let whole = limit(Body::from("abc"), Duration::from_millis(200), fired.clone());
        assert_eq!(whole.collect().await.unwrap().to_bytes(), "abc");
        assert!(!fired.load(Ordering::Acquire));

        // A body that never ends.
        let slow =
            Body::from_stream(futures::stream::pending::<Result<bytes::Bytes, BodyTimeout>>());
        let e = limit(slow, Duration::from_millis(50), fired.clone())
            .collect()
            .await
            .unwrap_err();
        assert!(is_timeout(&e), "{e}");
        assert!(fired.load(Ordering::Acquire));
    }
}
