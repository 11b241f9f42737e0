//! The account router: one [`ObjectStore`] over the object views of every open storage account,
//! addressed as `<account>/<path in the account's object view>`.
//!
//! DataFusion resolves one object store per URL; registering the router (at
//! [`crate::STORAGE_URL`]) lets one query read segments of several accounts (service-key and
//! customer-key data together), each through its own account's layers, and lets the encryption
//! factory tell from a file's path which account and segment it is.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::layout::join;

const STORE: &str = "AccountRouter";

/// Routes `<account>/...` paths to each account's object view.
#[derive(Debug, Default)]
pub struct AccountRouter {
    accounts: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl AccountRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an account's object view.
    pub fn insert(&self, account: &str, objects: Arc<dyn ObjectStore>) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.to_owned(), objects);
    }

    /// Removes an account.
    pub fn remove(&self, account: &str) {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(account);
    }

    fn all(&self) -> Vec<(String, Arc<dyn ObjectStore>)> {
        let mut all: Vec<_> = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The account's store and the path inside it.
    fn route(&self, path: &Path) -> object_store::Result<(String, Arc<dyn ObjectStore>, Path)> {
        let mut parts = path.parts();
        let first = parts.next().ok_or_else(|| object_store::Error::NotFound {
            path: path.to_string(),
            source: "a routed path starts with a storage account id".into(),
        })?;
        let account = first.as_ref().to_owned();
        let store = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&account)
            .cloned()
            .ok_or_else(|| object_store::Error::NotFound {
                path: path.to_string(),
                source: format!("storage account {account} is not open").into(),
            })?;
        let rest = Path::from_iter(parts);
        Ok((account, store, rest))
    }
}

fn under(account: &str, meta: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        location: join(&Path::from(account), &meta.location),
        ..meta
    }
}

/// The error of a read that came back shorter (or longer) than asked.
fn short_read(location: &Path, what: String) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: format!("storage answered a read of {location} wrongly: {what}").into(),
    }
}

impl fmt::Display for AccountRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(STORE)
    }
}

#[async_trait]
impl ObjectStore for AccountRouter {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let (_, store, rest) = self.route(location)?;
        store.put_opts(&rest, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let (_, store, rest) = self.route(location)?;
        store.put_multipart_opts(&rest, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let (_, store, rest) = self.route(location)?;
        let mut got = store.get_opts(&rest, options).await?;
        // Not every wrapper maps the location back (PrefixStore reports the full path).
        got.meta.location = location.clone();
        Ok(got)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let (_, store, rest) = self.route(location)?;
        let got = store.get_ranges(&rest, ranges).await?;
        // A store (or a wrapper) that answers a range with fewer bytes than asked must fail the
        // read here: parquet-rs 59 asserts the lengths and panics (`push_buffers.rs`).
        if got.len() != ranges.len() {
            return Err(short_read(
                location,
                format!("{} ranges asked, {} returned", ranges.len(), got.len()),
            ));
        }
        for (range, bytes) in ranges.iter().zip(&got) {
            let want = range.end.saturating_sub(range.start);
            if bytes.len() as u64 != want {
                return Err(short_read(
                    location,
                    format!(
                        "{} bytes returned for bytes {}..{}",
                        bytes.len(),
                        range.start,
                        range.end
                    ),
                ));
            }
        }
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let routes: Vec<_> = self.all();
        locations
            .then(move |location| {
                let routes = routes.clone();
                async move {
                    let location = location?;
                    let account = location
                        .parts()
                        .next()
                        .map(|p| p.as_ref().to_owned())
                        .unwrap_or_default();
                    let store = routes
                        .iter()
                        .find(|(a, _)| *a == account)
                        .map(|(_, s)| s.clone())
                        .ok_or_else(|| object_store::Error::NotFound {
                            path: location.to_string(),
                            source: format!("storage account {account} is not open").into(),
                        })?;
                    let rest = Path::from_iter(location.parts().skip(1));
                    let mut deleted = store.delete_stream(stream::once(async { Ok(rest) }).boxed());
                    match deleted.next().await {
                        Some(Err(e)) => Err(e),
                        _ => Ok(location),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let targets: Vec<(String, Arc<dyn ObjectStore>, Option<Path>)> = match prefix {
            None => self.all().into_iter().map(|(a, s)| (a, s, None)).collect(),
            Some(p) if p.as_ref().is_empty() => {
                self.all().into_iter().map(|(a, s)| (a, s, None)).collect()
            }
            Some(p) => match self.route(p) {
                Ok((a, s, rest)) => {
                    let rest = (!rest.as_ref().is_empty()).then_some(rest);
                    vec![(a, s, rest)]
                }
                // Listing an account that is not open lists nothing.
                Err(_) => Vec::new(),
            },
        };
        stream::iter(targets)
            .flat_map(|(account, store, rest)| {
                store
                    .list(rest.as_ref())
                    .map(move |m| m.map(|m| under(&account, m)))
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        match prefix.filter(|p| !p.as_ref().is_empty()) {
            None => Ok(ListResult {
                common_prefixes: self.all().into_iter().map(|(a, _)| Path::from(a)).collect(),
                objects: Vec::new(),
            }),
            Some(p) => {
                let (account, store, rest) = self.route(p)?;
                let rest = (!rest.as_ref().is_empty()).then_some(rest);
                let listed = store.list_with_delimiter(rest.as_ref()).await?;
                let base = Path::from(account.as_str());
                Ok(ListResult {
                    common_prefixes: listed
                        .common_prefixes
                        .iter()
                        .map(|c| join(&base, c))
                        .collect(),
                    objects: listed
                        .objects
                        .into_iter()
                        .map(|m| under(&account, m))
                        .collect(),
                })
            }
        }
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let (a, store, from_rest) = self.route(from)?;
        let (b, _, to_rest) = self.route(to)?;
        if a != b {
            return Err(object_store::Error::NotSupported {
                source: format!("copying between storage accounts {a} and {b}").into(),
            });
        }
        store.copy_opts(&from_rest, &to_rest, options).await
    }
}
