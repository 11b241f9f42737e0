//! Search jobs (R-J1): an asynchronous search over a table and time range that writes what it
//! finds into a new table `<name>_SRCH` of the workspace. The range is searched in slices,
//! oldest first; after each slice the job's record (a sealed document under the service key)
//! has its progress, and a cancellation asked for by another process stops it. Refused on a
//! workspace under a customer key, as the seed says.

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use logvault_control::{SearchJob, SearchJobStatus, check_search_job_names};

use crate::artifacts::{DocKind, refused};
use crate::{Engine, EngineError};

/// How many slices a job's time range is searched in (its progress steps).
const SLICES: i32 = 10;
/// The range searched when none is given: the last 30 days.
const DEFAULT_RANGE_DAYS: i64 = 30;

/// A request for a search job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchJobSpec {
    /// The job's name; the result table is `<name>_SRCH`.
    pub name: String,
    /// The table searched.
    pub table: String,
    /// The KQL query over the table (`T | where ...`); its result must keep `TimeGenerated`.
    pub query: String,
    /// Start of the range (default: 30 days before now).
    pub start: Option<DateTime<Utc>>,
    /// End of the range (default: now).
    pub end: Option<DateTime<Utc>>,
}

fn kql_time(t: DateTime<Utc>) -> String {
    format!("datetime({})", t.format("%Y-%m-%dT%H:%M:%S%.9fZ"))
}

impl Engine {
    /// Creates a search job (status `Queued`); [`Engine::run_search_job`] runs it.
    ///
    /// # Errors
    /// 400 on a workspace under a customer key (R-J1), for bad names or an empty range; 409 if
    /// the job or its result table exists; 404 for an unknown workspace or table.
    pub async fn create_search_job(
        &self,
        workspace: &str,
        spec: SearchJobSpec,
    ) -> Result<SearchJob, EngineError> {
        self.control().check_search_job_allowed(workspace)?;
        let result_table = check_search_job_names(&spec.name, &spec.table)?;
        let now = self.now();
        let end = spec.end.unwrap_or(now);
        let start = spec
            .start
            .unwrap_or(end - Duration::days(DEFAULT_RANGE_DAYS));
        if start >= end {
            return Err(refused(
                400,
                format!(
                    "search job {}: start {start} is not before end {end}",
                    spec.name
                ),
            ));
        }
        let tables = self.store().catalog().tables(workspace).await?;
        if !tables.contains(&spec.table) {
            return Err(refused(
                404,
                format!("table {} not found in workspace {workspace}", spec.table),
            ));
        }
        if tables.contains(&result_table) {
            return Err(refused(
                409,
                format!("table {result_table} already exists in workspace {workspace}"),
            ));
        }
        let docs = self.docs(workspace, DocKind::SearchJobs).await?;
        if docs.get::<SearchJob>(&spec.name).await?.is_some() {
            return Err(refused(
                409,
                format!(
                    "search job {} already exists in workspace {workspace}",
                    spec.name
                ),
            ));
        }
        let job = SearchJob {
            name: spec.name,
            workspace: workspace.to_owned(),
            table: spec.table,
            query: spec.query,
            start,
            end,
            result_table,
            status: SearchJobStatus::Queued,
            cancel_requested: false,
            rows_written: 0,
            percent_complete: 0,
            error: None,
            created: now,
            finished: None,
        };
        docs.put(&job.name, &job).await?;
        Ok(job)
    }

    /// A search job.
    ///
    /// # Errors
    /// 404 if there is none.
    pub async fn search_job(&self, workspace: &str, name: &str) -> Result<SearchJob, EngineError> {
        logvault_control::check_artifact_name("search job", name)?;
        self.docs(workspace, DocKind::SearchJobs)
            .await?
            .get(name)
            .await?
            .ok_or_else(|| {
                refused(
                    404,
                    format!("search job {name} not found in workspace {workspace}"),
                )
            })
    }

    /// Every search job of a workspace.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn search_jobs(&self, workspace: &str) -> Result<Vec<SearchJob>, EngineError> {
        self.docs(workspace, DocKind::SearchJobs).await?.all().await
    }

    /// Asks a job to stop: a queued job is cancelled at once, a running one after its current
    /// slice (its result table keeps what it found).
    ///
    /// # Errors
    /// 404; 409 for a job that has already stopped.
    pub async fn cancel_search_job(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<SearchJob, EngineError> {
        let mut job = self.search_job(workspace, name).await?;
        if job.status.is_final() {
            return Err(refused(
                409,
                format!("search job {name} has already stopped ({:?})", job.status),
            ));
        }
        job.cancel_requested = true;
        if job.status == SearchJobStatus::Queued {
            job.status = SearchJobStatus::Cancelled;
            job.finished = Some(self.now());
        }
        self.docs(workspace, DocKind::SearchJobs)
            .await?
            .put(name, &job)
            .await?;
        Ok(job)
    }

    /// Runs a queued job to its end (or its cancellation), writing what it finds into its
    /// result table, and returns its final record. The server runs this on a task; the CLI in
    /// the foreground.
    ///
    /// # Errors
    /// 404; 409 for a job that is not queued; storage errors saving its record (a failing
    /// query makes the job `Failed`, not an error).
    pub async fn run_search_job(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<SearchJob, EngineError> {
        let docs = self.docs(workspace, DocKind::SearchJobs).await?;
        let mut job = self.search_job(workspace, name).await?;
        if job.status != SearchJobStatus::Queued {
            return Err(refused(
                409,
                format!("search job {name} is {:?}, not Queued", job.status),
            ));
        }
        job.status = SearchJobStatus::InProgress;
        docs.put(name, &job).await?;
        let step = (job.end - job.start) / SLICES;
        for i in 0..SLICES {
            // Another process may have asked for cancellation.
            if let Some(current) = docs.get::<SearchJob>(name).await?
                && current.cancel_requested
            {
                job.cancel_requested = true;
                job.status = SearchJobStatus::Cancelled;
                break;
            }
            let from = job.start + step * i;
            let to = if i == SLICES - 1 {
                job.end
            } else {
                job.start + step * (i + 1)
            };
            match self.search_slice(&job, from, to).await {
                Ok(rows) => job.rows_written += rows,
                Err(e) => {
                    job.status = SearchJobStatus::Failed;
                    job.error = Some(e.to_string());
                    break;
                }
            }
            job.percent_complete = u8::try_from((i + 1) * 100 / SLICES).unwrap_or(100);
            docs.put(name, &job).await?;
        }
        if job.status == SearchJobStatus::InProgress {
            job.status = SearchJobStatus::Succeeded;
        }
        job.finished = Some(self.now());
        docs.put(name, &job).await?;
        Ok(job)
    }

    async fn search_slice(
        &self,
        job: &SearchJob,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64, EngineError> {
        let t = &job.table;
        let kql = format!(
            "let {t} = {t} | where TimeGenerated >= {} and TimeGenerated < {};\n{}",
            kql_time(from),
            kql_time(to),
            job.query
        );
        let result = self.query_kql(&job.workspace, &kql).await?;
        let batches: Vec<_> = result
            .stream
            .try_collect()
            .await
            .map_err(|e| EngineError::Query(e.into()))?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows > 0 {
            self.ingest_batches(&job.workspace, &job.result_table, &batches)
                .await?;
        }
        Ok(rows)
    }
}
