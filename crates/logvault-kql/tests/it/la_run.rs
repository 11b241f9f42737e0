//! The real queries run over the sample exports, checked against an independent computation.

use datafusion::prelude::{DataFrame, SessionContext};
use logvault_kql::udf::value::{Val, read_column};
use logvault_kql::{KustoType, PlanOptions, plan_in_session};
use serde_json::Value;

use crate::la_data::{SOURCES, sample_session};
use crate::la_queries::query_text;
use crate::la_twins::TWINS;

const INDEX: &str = include_str!("../data/la_queries/index.json");

/// The latest `TimeGenerated` of a table, in ticks (the pinned `now()` of its queries).
async fn latest(ctx: &SessionContext, table: &str) -> i64 {
    let df = ctx
        .sql(&format!("SELECT max(\"TimeGenerated\") FROM \"{table}\""))
        .await
        .unwrap();
    let b = df.collect().await.unwrap();
    match read_column(b[0].column(0), KustoType::DateTime).unwrap()[0] {
        Val::DateTime(t) => t,
        _ => 0,
    }
}

async fn rows(ctx: &SessionContext, kql: &str, now: i64) -> Result<Vec<Vec<Val>>, String> {
    let plan = plan_in_session(
        ctx,
        kql,
        &PlanOptions {
            now_ticks: now,
            time_range: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let batches = DataFrame::new(ctx.state(), plan.plan)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<Vec<Val>> = plan
            .schema
            .iter()
            .enumerate()
            .map(|(i, c)| read_column(b.column(i), c.ty).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(out)
}

/// The rows of `sql`, read with the Kusto types of the KQL result.
async fn sql_rows(
    ctx: &SessionContext,
    sql: &str,
    types: &[KustoType],
) -> Result<Vec<Vec<Val>>, String> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for b in &batches {
        if b.num_columns() != types.len() {
            return Err(format!(
                "the twin has {} columns, the KQL result {}",
                b.num_columns(),
                types.len()
            ));
        }
        let cols: Vec<Vec<Val>> = types
            .iter()
            .enumerate()
            .map(|(i, t)| read_column(b.column(i), *t).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c[r].clone()).collect());
        }
    }
    Ok(out)
}

/// A value for comparison (a missing string is the empty string in Kusto).
fn key(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::Real(x) => format!("{x:.9}"),
        other => other.to_text(),
    }
}

fn pick(rows: &[Vec<Val>], cols: &[usize]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            if cols.is_empty() {
                r.iter().map(key).collect()
            } else {
                cols.iter().map(|&i| key(&r[i])).collect()
            }
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn real_queries_agree_with_their_sql_twins() {
    let ctx = sample_session();
    let index: Value = serde_json::from_str(INDEX).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut nonempty = 0;
    let mut ran = 0;
    for e in index.as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        let table = e["table"].as_str().unwrap();
        if !SOURCES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        let now = latest(&ctx, table).await + 600_000_000;
        let kql = match rows_typed(&ctx, &query_text(e), now).await {
            Ok(k) => k,
            Err(err) => {
                failures.push(format!("{id}: {err}"));
                continue;
            }
        };
        ran += 1;
        let Some(twin) = TWINS.iter().find(|t| t.id == id) else {
            continue;
        };
        let now_sql = format!(
            "arrow_cast('{}', 'Timestamp(Nanosecond, Some(\"UTC\"))')",
            logvault_kql::literal::format_datetime(now)
        );
        let sql = twin.sql.replace("{now}", &now_sql);
        let types: Vec<KustoType> = if twin.columns.is_empty() {
            kql.0.clone()
        } else {
            twin.columns.iter().map(|&i| kql.0[i]).collect()
        };
        let all: Vec<usize> = (0..types.len()).collect();
        match sql_rows(&ctx, &sql, &types).await {
            Ok(expected) => {
                checked += 1;
                if !kql.1.is_empty() {
                    nonempty += 1;
                }
                if pick(&kql.1, twin.columns) != pick(&expected, &all) {
                    failures.push(format!(
                        "{id}: KQL gives {} rows, its SQL twin {} (first: {:?} / {:?})",
                        kql.1.len(),
                        expected.len(),
                        kql.1.first().map(|r| r.iter().map(key).collect::<Vec<_>>()),
                        expected
                            .first()
                            .map(|r| r.iter().map(key).collect::<Vec<_>>())
                    ));
                } else if let Some(c) = twin.ordered_by {
                    let kc = twin.columns.get(c).copied().unwrap_or(c);
                    let a: Vec<String> = kql.1.iter().map(|r| key(&r[kc])).collect();
                    let b: Vec<String> = expected.iter().map(|r| key(&r[c])).collect();
                    if a != b {
                        failures.push(format!("{id}: the rows are not in the twin's order"));
                    }
                }
            }
            Err(err) => failures.push(format!("{id}: the SQL twin fails: {err}")),
        }
    }
    println!(
        "real queries over the sample exports: {ran} run, {checked} checked against their SQL twin ({nonempty} with rows)"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 45 && nonempty >= 20,
        "too few checks: {checked} ({nonempty} with rows)"
    );
}

async fn rows_typed(
    ctx: &SessionContext,
    kql: &str,
    now: i64,
) -> Result<(Vec<KustoType>, Vec<Vec<Val>>), String> {
    let plan = plan_in_session(
        ctx,
        kql,
        &PlanOptions {
            now_ticks: now,
            time_range: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let types = plan.schema.iter().map(|c| c.ty).collect();
    Ok((types, rows(ctx, kql, now).await?))
}
