//! The table every route is registered from: each method of each path with who may call it.
//! The router is built from this table and nothing else, so [`routes`] lists every route the
//! server serves; a test walks that list and checks each route's refusals (missing, expired,
//! revoked and wrong-role tokens) against what it declares here.
//!
//! The declaration does not authorize anything by itself: each handler checks the token
//! (`http::auth`) where it knows the workspace at stake. The test keeps the two in step.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};

use crate::http::Shared;
use crate::roles::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed; why the route may be open.
    Public(&'static str),
    /// Any valid token (bearer, basic or the web session's cookie): 401 without one. No role
    /// is needed; why (what it answers is limited to what the token's roles allow).
    AnyToken(&'static str),
    /// The web page's session cookie only (a bearer token is not looked at): 401 without a
    /// valid one; why no role is needed.
    SessionCookie(&'static str),
    /// A valid token whose roles allow the permission: 401 without a valid token, 403 when no
    /// role allows it (or the token is for another workspace).
    Needs(Permission),
    /// A batch: a valid token for the whole request (401), the permission checked for each
    /// request of the batch (each refused one answers 403 inside the batch's 200).
    NeedsEach(Permission),
}

/// One method of one path the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE` (a `GET` route answers `HEAD` too).
    pub method: &'static str,
    /// The path pattern, parameters in braces (`/v1/workspaces/{workspace}/query`).
    pub path: String,
    /// Who may call it.
    pub access: Access,
}

/// Every route the server serves, with who may call it (the table its router is built from).
pub fn routes() -> Vec<Route> {
    crate::http::table().list()
}

/// A router under construction and the list of what it serves.
pub(crate) struct Routes {
    router: Router<Shared>,
    list: Vec<Route>,
}

macro_rules! method {
    ($name:ident, $filter:ident, $text:literal) => {
        #[doc = concat!("Serves `", $text, " path` with `handler`.")]
        pub(crate) fn $name<H, T>(self, path: &str, access: Access, handler: H) -> Self
        where
            H: Handler<T, Shared>,
            T: 'static,
        {
            self.on($text, MethodFilter::$filter, path, access, handler)
        }
    };
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    method!(get, GET, "GET");
    method!(post, POST, "POST");
    method!(put, PUT, "PUT");
    method!(patch, PATCH, "PATCH");
    method!(delete, DELETE, "DELETE");

    fn on<H, T>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, Shared>,
        T: 'static,
    {
        // axum merges the methods of one path registered one by one.
        self.router = self.router.route(path, on(filter, handler));
        self.list.push(Route {
            method,
            path: path.to_owned(),
            access,
        });
        self
    }

    /// Adds the routes of `other`.
    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.list.extend(other.list);
        self
    }

    /// The router.
    pub(crate) fn router(self) -> Router<Shared> {
        self.router
    }

    /// The list.
    pub(crate) fn list(self) -> Vec<Route> {
        self.list
    }
}
