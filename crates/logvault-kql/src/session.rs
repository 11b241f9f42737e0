//! KQL over a DataFusion [`SessionContext`]: its registered tables are the tables a query can
//! name, and the plan runs in its session (optimizer, pushdown, the session's functions).

use std::sync::Arc;

use datafusion::datasource::provider_as_source;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::error::KqlError;
use crate::plan::{KqlPlan, PlanOptions, TableMap, plan_query};
use crate::types::KustoSchema;

/// The tables of the session's default catalog and schema.
///
/// # Errors
/// When a table's provider cannot be opened.
pub async fn session_tables(ctx: &SessionContext) -> Result<TableMap, KqlError> {
    let mut map = TableMap::new();
    let state = ctx.state();
    let options = state.config().options();
    let (catalog, schema) = (
        options.catalog.default_catalog.clone(),
        options.catalog.default_schema.clone(),
    );
    let Some(catalog) = ctx.catalog(&catalog) else {
        return Ok(map);
    };
    // The default schema holds the workspace's tables; every other schema (but DataFusion's
    // own) holds another workspace's, named after it, for `workspace("name").Table`.
    for schema_name in catalog.schema_names() {
        if schema_name == "information_schema" {
            continue;
        }
        let Some(provider) = catalog.schema(&schema_name) else {
            continue;
        };
        for name in provider.table_names() {
            if let Some(table) = provider.table(&name).await? {
                let source = provider_as_source(Arc::clone(&table));
                if schema_name == schema {
                    map.insert(name, source);
                } else {
                    map.insert_in(schema_name.clone(), name, source);
                }
            }
        }
    }
    Ok(map)
}

/// Plans `text` over the session's tables.
///
/// # Errors
/// Syntax and semantic errors with line, column and a caret.
pub async fn plan_in_session(
    ctx: &SessionContext,
    text: &str,
    options: &PlanOptions,
) -> Result<KqlPlan, KqlError> {
    let tables = session_tables(ctx).await?;
    plan_query(text, &tables, options)
}

/// Plans `text` over the session's tables with a workspace's stored functions in scope.
///
/// # Errors
/// As [`plan_in_session`].
pub async fn plan_in_session_with_functions(
    ctx: &SessionContext,
    text: &str,
    functions: &dyn crate::plan::FunctionResolver,
    options: &PlanOptions,
) -> Result<KqlPlan, KqlError> {
    let tables = session_tables(ctx).await?;
    crate::plan::plan_query_with_functions(text, &tables, functions, options)
}

/// Runs `text` in the session: the result's Kusto schema and its record batches as a stream.
///
/// # Errors
/// Planning errors, and DataFusion's errors when optimizing or starting execution.
pub async fn execute(
    ctx: &SessionContext,
    text: &str,
    options: &PlanOptions,
) -> Result<(KustoSchema, SendableRecordBatchStream), KqlError> {
    let plan = plan_in_session(ctx, text, options).await?;
    let df = DataFrame::new(ctx.state(), plan.plan);
    Ok((plan.schema, df.execute_stream().await?))
}
