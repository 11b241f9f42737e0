//! KQL (Kusto Query Language) for logvault.
//!
//! The text is tokenized ([`lexer`]), parsed into a syntax tree ([`ast`], [`parser`]) and
//! planned onto a DataFusion [`datafusion::logical_expr::LogicalPlan`] with Kusto's type system
//! ([`types`]), so that KQL gets the optimizer, pushdown, pruning, decryption and key gate of
//! SQL. The result carries the Kusto type of every column.
//!
//! This crate never reads data itself, prints, or knows about workspaces: it is given a way to
//! look up tables.

pub mod ast;
pub mod error;
pub mod format;
mod functions;
pub mod lexer;
pub mod literal;
pub mod parser;
pub mod plan;
mod references;
pub mod session;
pub mod types;
pub mod udf;

pub use error::KqlError;
pub use parser::parse;
pub use plan::{
    FunctionResolver, KqlPlan, PlanOptions, StoredFunction, TableMap, TableResolver,
    check_stored_function, plan_query, plan_query_with_functions,
};
pub use references::referenced_workspaces;
pub use session::{execute, plan_in_session, plan_in_session_with_functions, session_tables};
pub use types::{KustoColumn, KustoSchema, KustoType};

/// Every built-in function's name (scalar and aggregation), sorted: for editors' completion.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = functions::scalar_names()
        .chain(functions::aggregate::NAMES.iter().copied())
        .chain(plan::window_function_names())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
