//! A fault-injecting [`ObjectStore`] wrapper: the storage faults a cloud store or a disk gives,
//! at chosen points or at random, for tests of what the layers above do with them.
//!
//! Faults are rules: an operation kind, an optional part of the path the call must name, and
//! what goes wrong ([`Fault`]), either for the next `n` matching calls ([`FaultyStore::fail_next`])
//! or for each matching call with a probability from a seeded generator
//! ([`FaultyStore::fail_randomly`]), so a failing run repeats. [`FaultyStore::clear`] ends every
//! fault (the outage is over); [`FaultyStore::injected`] counts what was injected.
//! [`FaultyStore::hold_puts`] makes puts hang until [`FaultyStore::release`] (a store that stops
//! answering), for tests of what goes on meanwhile.
//!
//! An injected error is `object_store::Error::Generic` with store `faulty` and a message that
//! names the operation and path, as a real store's error would.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// The operations a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `put_opts` and `put_multipart_opts`.
    Put,
    /// `get_opts` (also heads) and `get_ranges`.
    Get,
    /// `list` and `list_with_delimiter`.
    List,
    /// `delete_stream`.
    Delete,
    /// `copy_opts`.
    Copy,
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails; nothing happens in the store.
    Error,
    /// The call happens in the store, then the reply is lost: the caller sees an error (a
    /// timeout after a put or delete landed). For reads and lists, as `Error`.
    LostReply,
    /// A read returns its first half, then the connection drops (`get_opts`: the stream ends
    /// with an error; `get_ranges`: the last range comes back cut short, as a reader that does
    /// not check lengths would take it). For other operations, as `Error`.
    TornRead,
    /// The call succeeds after this delay.
    Latency(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    op: Op,
    path_contains: Option<String>,
    fault: Fault,
    /// Matching calls still to fault (`None`: each one, with `probability`).
    remaining: Option<u64>,
    /// Out of 1,000, for random rules.
    per_mille: u32,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    rng: u64,
    /// Faults injected, by operation.
    injected: std::collections::BTreeMap<Op, u64>,
}

/// The rules and counts, shared with the streams a call returns.
#[derive(Debug)]
struct Faults {
    state: Mutex<State>,
    calls: AtomicU64,
    /// Puts whose path contains this wait for `released` (see [`FaultyStore::hold_puts`]).
    held: Mutex<Option<String>>,
    released: tokio::sync::Notify,
    /// Puts waiting now.
    waiting: AtomicU64,
}

/// An [`ObjectStore`] that injects faults into the calls it passes to the store it wraps.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    /// Wraps `inner`, with no fault yet.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            faults: Arc::new(Faults {
                state: Mutex::new(State {
                    rng: 0x9e37_79b9_7f4a_7c15,
                    ..State::default()
                }),
                calls: AtomicU64::new(0),
                held: Mutex::new(None),
                released: tokio::sync::Notify::new(),
                waiting: AtomicU64::new(0),
            }),
        })
    }

    /// Puts (`put_opts`, `put_multipart_opts`) whose path contains `path_contains` (any path if
    /// empty) wait, without an answer, until [`FaultyStore::release`].
    pub fn hold_puts(&self, path_contains: &str) {
        *self
            .faults
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(path_contains.to_owned());
    }

    /// Lets the puts held by [`FaultyStore::hold_puts`] go on, and holds no more.
    pub fn release(&self) {
        *self
            .faults
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.faults.released.notify_waiters();
    }

    /// Puts waiting now because of [`FaultyStore::hold_puts`].
    pub fn held_puts(&self) -> u64 {
        self.faults.waiting.load(Ordering::Acquire)
    }

    /// Waits while puts of `path` are held.
    async fn wait_if_held(&self, path: &str) {
        let faults = &self.faults;
        loop {
            let released = faults.released.notified();
            tokio::pin!(released);
            // Registered before the check, so that a release between the two is not missed.
            released.as_mut().enable();
            let held = faults
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_deref()
                .is_some_and(|p| path.contains(p));
            if !held {
                return;
            }
            faults.waiting.fetch_add(1, Ordering::AcqRel);
            released.await;
            faults.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.faults.lock()
    }

    /// The next `n` calls of `op` whose path contains `path_contains` (any path if empty) get
    /// `fault`.
    pub fn fail_next(&self, op: Op, path_contains: &str, fault: Fault, n: u64) {
        self.lock().rules.push(Rule {
            op,
            path_contains: (!path_contains.is_empty()).then(|| path_contains.to_owned()),
            fault,
            remaining: Some(n),
            per_mille: 1000,
        });
    }

    /// Each call of `op` whose path contains `path_contains` gets `fault` with a probability
    /// of `per_mille`/1000, drawn from a generator seeded with `seed`.
    pub fn fail_randomly(
        &self,
        op: Op,
        path_contains: &str,
        fault: Fault,
        per_mille: u32,
        seed: u64,
    ) {
        let mut state = self.lock();
        state.rng = seed | 1;
        state.rules.push(Rule {
            op,
            path_contains: (!path_contains.is_empty()).then(|| path_contains.to_owned()),
            fault,
            remaining: None,
            per_mille: per_mille.min(1000),
        });
    }

    /// Ends every fault.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Faults injected so far, by operation.
    pub fn injected(&self) -> std::collections::BTreeMap<Op, u64> {
        self.lock().injected.clone()
    }

    /// Faults injected so far, in all.
    pub fn injected_total(&self) -> u64 {
        self.lock().injected.values().sum()
    }

    /// Calls that reached this wrapper.
    pub fn calls(&self) -> u64 {
        self.faults.calls.load(Ordering::Relaxed)
    }

    fn fault(&self, op: Op, path: &str) -> Option<Fault> {
        self.faults.fault(op, path)
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault for a call of `op` on `path`, if one applies (the first matching rule).
    fn fault(&self, op: Op, path: &str) -> Option<Fault> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let state = &mut *state;
        let mut hit = None;
        for (i, rule) in state.rules.iter_mut().enumerate() {
            if rule.op != op
                || rule
                    .path_contains
                    .as_deref()
                    .is_some_and(|p| !path.contains(p))
            {
                continue;
            }
            match &mut rule.remaining {
                Some(0) => continue,
                Some(n) => {
                    *n -= 1;
                    hit = Some((i, rule.fault));
                }
                None => {
                    // xorshift64
                    state.rng ^= state.rng << 13;
                    state.rng ^= state.rng >> 7;
                    state.rng ^= state.rng << 17;
                    if state.rng % 1000 < u64::from(rule.per_mille) {
                        hit = Some((i, rule.fault));
                    }
                }
            }
            if hit.is_some() {
                break;
            }
        }
        state.rules.retain(|r| r.remaining != Some(0));
        let (_, fault) = hit?;
        *state.injected.entry(op).or_default() += 1;
        Some(fault)
    }
}

/// The error a fault gives.
fn injected(op: Op, path: &str, fault: Fault) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected fault ({fault:?}) in {op:?} of {path}").into(),
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.wait_if_held(location.as_ref()).await;
        match self.fault(Op::Put, location.as_ref()) {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.put_opts(location, payload, opts).await
            }
            Some(f @ Fault::LostReply) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(injected(Op::Put, location.as_ref(), f))
            }
            Some(f) => Err(injected(Op::Put, location.as_ref(), f)),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.wait_if_held(location.as_ref()).await;
        match self.fault(Op::Put, location.as_ref()) {
            None => self.inner.put_multipart_opts(location, opts).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.put_multipart_opts(location, opts).await
            }
            Some(f) => Err(injected(Op::Put, location.as_ref(), f)),
        }
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        match self.fault(Op::Get, location.as_ref()) {
            None => self.inner.get_opts(location, options).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.get_opts(location, options).await
            }
            Some(f @ Fault::TornRead) if !options.head => {
                let got = self.inner.get_opts(location, options).await?;
                let GetResult {
                    payload,
                    meta,
                    range,
                    attributes,
                } = got;
                let bytes = GetResult {
                    payload,
                    meta: meta.clone(),
                    range: range.clone(),
                    attributes: attributes.clone(),
                }
                .bytes()
                .await?;
                let half = bytes.slice(..bytes.len() / 2);
                let err = injected(Op::Get, location.as_ref(), f);
                let stream = futures::stream::iter([Ok(half), Err(err)]).boxed();
                Ok(GetResult {
                    payload: GetResultPayload::Stream(stream),
                    meta,
                    range,
                    attributes,
                })
            }
            Some(f) => Err(injected(Op::Get, location.as_ref(), f)),
        }
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        match self.fault(Op::Get, location.as_ref()) {
            None => self.inner.get_ranges(location, ranges).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.get_ranges(location, ranges).await
            }
            Some(Fault::TornRead) => {
                let mut got = self.inner.get_ranges(location, ranges).await?;
                if let Some(last) = got.last_mut() {
                    *last = last.slice(..last.len() / 2);
                }
                Ok(got)
            }
            Some(f) => Err(injected(Op::Get, location.as_ref(), f)),
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Faults are decided per path as the stream is read; a lost reply deletes, then fails.
        let inner = Arc::clone(&self.inner);
        let faults = Arc::clone(&self.faults);
        locations
            .then(move |loc| {
                let inner = Arc::clone(&inner);
                let faults = Arc::clone(&faults);
                async move {
                    let loc = loc?;
                    match faults.fault(Op::Delete, loc.as_ref()) {
                        None => one_delete(&inner, loc).await,
                        Some(Fault::Latency(d)) => {
                            tokio::time::sleep(d).await;
                            one_delete(&inner, loc).await
                        }
                        Some(f @ Fault::LostReply) => {
                            one_delete(&inner, loc.clone()).await?;
                            Err(injected(Op::Delete, loc.as_ref(), f))
                        }
                        Some(f) => Err(injected(Op::Delete, loc.as_ref(), f)),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.map_or_else(String::new, |p| p.as_ref().to_owned());
        match self.fault(Op::List, &path) {
            None | Some(Fault::Latency(_)) => self.inner.list(prefix),
            Some(f) => {
                futures::stream::once(async move { Err(injected(Op::List, &path, f)) }).boxed()
            }
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let path = prefix.map_or_else(String::new, |p| p.as_ref().to_owned());
        match self.fault(Op::List, &path) {
            None => self.inner.list_with_delimiter(prefix).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.list_with_delimiter(prefix).await
            }
            Some(f) => Err(injected(Op::List, &path, f)),
        }
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        match self.fault(Op::Copy, to.as_ref()) {
            None => self.inner.copy_opts(from, to, options).await,
            Some(Fault::Latency(d)) => {
                tokio::time::sleep(d).await;
                self.inner.copy_opts(from, to, options).await
            }
            Some(f @ Fault::LostReply) => {
                self.inner.copy_opts(from, to, options).await?;
                Err(injected(Op::Copy, to.as_ref(), f))
            }
            Some(f) => Err(injected(Op::Copy, to.as_ref(), f)),
        }
    }
}

/// Deletes one object through `inner`'s delete stream.
async fn one_delete(inner: &Arc<dyn ObjectStore>, loc: Path) -> object_store::Result<Path> {
    let mut out = inner.delete_stream(futures::stream::once(async move { Ok(loc) }).boxed());
    match out.next().await {
        Some(r) => r,
        None => Err(object_store::Error::Generic {
            store: "faulty",
            source: "the wrapped store's delete stream ended without an answer".into(),
        }),
    }
}
