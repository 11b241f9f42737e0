//! One connection's activity: how many of its requests are being answered, and since when it has
//! had none. A connection with no request being answered for the header timeout is closed,
//! whatever its protocol: an HTTP/1.1 client that trickles its headers or idles between
//! requests (hyper's header timeout covers these too), and an HTTP/2 client that opens a
//! connection and sends nothing, or a HEADERS frame a byte at a time (hyper has no timeout for
//! these). A request being answered (its response streaming included) keeps its connection;
//! its body is bounded by the request timeout (`http::deadline`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::ServiceExt;

/// The activity of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
}

/// One request being answered; dropped with its response's body.
struct Answering(Arc<Activity>);

impl Answering {
    /// Nothing: what holds the guard names it (so that it is moved there).
    fn hold(&self) {}
}

impl Drop for Answering {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self
                .0
                .idle_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        }
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    fn begin(self: &Arc<Self>) -> Answering {
        self.open.fetch_add(1, Ordering::AcqRel);
        Answering(self.clone())
    }

    /// Returns once the connection has answered nothing for `after`.
    pub(crate) async fn idle_for(&self, after: Duration) {
        loop {
            let since = *self
                .idle_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.open.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(after).await;
            } else if since.elapsed() >= after {
                return;
            } else {
                tokio::time::sleep_until(since + after).await;
            }
        }
    }
}

/// `router` as the service of one connection whose requests `activity` counts, each until its
/// response's body has been sent (or dropped).
pub(crate) fn counted(
    router: Router,
    activity: Arc<Activity>,
) -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let answering = activity.begin();
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(Body::new)).await?;
            // The guard lives as long as the body (its size and framing are kept).
            Ok(response.map(|body| {
                Body::new(body.map_err(move |e| {
                    answering.hold();
                    e
                }))
            }))
        }
    })
}
