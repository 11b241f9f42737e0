//! Where the planner finds tables: [`TableResolver`], and [`TableMap`], a fixed set of them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::TableSource;

/// Where the planner finds tables.
pub trait TableResolver {
    /// The table called `name` (names are case-sensitive), if there is one.
    fn table(&self, name: &str) -> Option<Arc<dyn TableSource>>;
    /// Every table's name (for wildcards in `union` and for suggestions).
    fn table_names(&self) -> Vec<String>;
    /// Table `name` of another workspace, for `workspace("other").name`: only the workspaces
    /// the caller made available (a query names them; see [`crate::referenced_workspaces`]).
    fn workspace_table(&self, workspace: &str, name: &str) -> Option<Arc<dyn TableSource>> {
        let _ = (workspace, name);
        None
    }
}

/// A [`TableResolver`] over a fixed set of tables.
#[derive(Default, Clone)]
pub struct TableMap {
    tables: HashMap<String, Arc<dyn TableSource>>,
    /// Other workspaces' tables, by workspace.
    workspaces: HashMap<String, HashMap<String, Arc<dyn TableSource>>>,
}

impl std::fmt::Debug for TableMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableMap")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TableMap {
    /// No tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) table `name`.
    pub fn insert(&mut self, name: impl Into<String>, source: Arc<dyn TableSource>) {
        self.tables.insert(name.into(), source);
    }

    /// Adds (or replaces) table `name` of another workspace, `workspace("workspace").name`.
    pub fn insert_in(
        &mut self,
        workspace: impl Into<String>,
        name: impl Into<String>,
        source: Arc<dyn TableSource>,
    ) {
        self.workspaces
            .entry(workspace.into())
            .or_default()
            .insert(name.into(), source);
    }
}

impl TableResolver for TableMap {
    fn table(&self, name: &str) -> Option<Arc<dyn TableSource>> {
        self.tables.get(name).cloned()
    }

    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.keys().cloned().collect();
        names.sort();
        names
    }

    fn workspace_table(&self, workspace: &str, name: &str) -> Option<Arc<dyn TableSource>> {
        self.workspaces.get(workspace)?.get(name).cloned()
    }
}
