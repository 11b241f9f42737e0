//! Search jobs (R-J1) and Customer Lockbox (R-I1), each rule both ways.

use chrono::{Duration, TimeZone, Utc};
use logvault::SearchJobSpec;
use logvault::control::{LockboxStatus, SearchJobStatus, WorkspaceSpec};

use crate::common::{CLUSTER, Home, WS, home};

fn spec(name: &str, query: &str) -> SearchJobSpec {
    SearchJobSpec {
        name: name.into(),
        table: "AppLogs".into(),
        query: query.into(),
        start: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
        end: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 6, 0).unwrap()),
    }
}

#[tokio::test]
async fn a_search_job_writes_its_result_table_which_is_then_queried() {
    let h = home().await;
    h.workspace(WS);
    // Minutes 0..9; the job's range is minutes 0..5 (end exclusive at 6).
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 10)).await;
    let job = h
        .engine
        .create_search_job(WS, spec("evens", "AppLogs | where Seq % 2 == 0"))
        .await
        .unwrap();
    assert_eq!(job.status, SearchJobStatus::Queued);
    assert_eq!(job.result_table, "evens_SRCH");
    let done = h.engine.run_search_job(WS, "evens").await.unwrap();
    assert_eq!(done.status, SearchJobStatus::Succeeded, "{:?}", done.error);
    assert_eq!(done.percent_complete, 100);
    assert_eq!(done.rows_written, 3, "Seq 0, 2 and 4");
    let seqs = h
        .column(
            &h.engine,
            WS,
            "SELECT CAST(\"Seq\" AS VARCHAR) AS s FROM evens_SRCH ORDER BY s",
        )
        .await
        .unwrap();
    assert_eq!(seqs, ["0", "2", "4"]);
    // The record is kept and listed; running it again or a second job of the name: refused.
    assert_eq!(h.engine.search_jobs(WS).await.unwrap().len(), 1);
    assert_eq!(
        h.engine
            .run_search_job(WS, "evens")
            .await
            .unwrap_err()
            .code(),
        Some(409)
    );
    assert_eq!(
        h.engine
            .create_search_job(WS, spec("evens", "AppLogs"))
            .await
            .unwrap_err()
            .code(),
        Some(409)
    );
}

#[tokio::test]
async fn a_cancelled_search_job_writes_nothing_and_a_failing_one_says_why() {
    let h = home().await;
    h.workspace(WS);
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 10)).await;
    h.engine
        .create_search_job(WS, spec("stopme", "AppLogs"))
        .await
        .unwrap();
    let cancelled = h.engine.cancel_search_job(WS, "stopme").await.unwrap();
    assert_eq!(cancelled.status, SearchJobStatus::Cancelled);
    assert_eq!(
        h.engine
            .run_search_job(WS, "stopme")
            .await
            .unwrap_err()
            .code(),
        Some(409)
    );
    assert!(h.count(&h.engine, WS, "stopme_SRCH").await.is_err());
    // A query that drops TimeGenerated cannot make a table: the job fails and says why.
    h.engine
        .create_search_job(WS, spec("notime", "AppLogs | project Seq"))
        .await
        .unwrap();
    let failed = h.engine.run_search_job(WS, "notime").await.unwrap();
    assert_eq!(failed.status, SearchJobStatus::Failed);
    assert!(failed.error.unwrap().contains("TimeGenerated"));
}

#[tokio::test]
async fn search_jobs_are_refused_under_a_customer_key_and_allowed_before_it() {
    let h = home().await;
    h.workspace(WS);
    h.ingest(WS, "AppLogs", &Home::lines("a", 0, 10)).await;
    h.cluster_with_key(false, None).await;
    // Not yet linked: allowed.
    h.engine
        .create_search_job(WS, spec("before", "AppLogs"))
        .await
        .unwrap();
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    let err = h
        .engine
        .create_search_job(WS, spec("after", "AppLogs"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(400), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("Search jobs aren't supported in the Customer-managed key scenario"),
        "{text}"
    );
    assert!(text.contains(CLUSTER), "{text}");
}

#[tokio::test]
async fn lockbox_pending_rejected_approved_and_expired() {
    let h = home().await;
    h.workspace(WS);
    h.cluster_with_key(false, None).await;
    h.engine.control().link_workspace(WS, CLUSTER).unwrap();
    let control = h.engine.control();
    let q = "AppLogs | take 10";

    // Pending: refused.
    let r = control
        .create_lockbox_request(WS, "op-ann", "ticket 42", Some(2))
        .unwrap();
    assert_eq!(r.status, LockboxStatus::Pending);
    let err = control
        .authorize_operator_query(WS, "op-ann", q)
        .unwrap_err();
    assert_eq!(err.code(), 403, "{err}");

    // Rejected: refused, and cannot be approved later.
    let rejected = control
        .create_lockbox_request(WS, "op-bob", "ticket 43", None)
        .unwrap();
    control.decide_lockbox_request(&rejected.id, false).unwrap();
    assert_eq!(
        control
            .authorize_operator_query(WS, "op-bob", q)
            .unwrap_err()
            .code(),
        403
    );
    assert_eq!(
        control
            .decide_lockbox_request(&rejected.id, true)
            .unwrap_err()
            .code(),
        409
    );

    // Approved: allowed for that operator only, until its duration ends.
    let approved = control.decide_lockbox_request(&r.id, true).unwrap();
    assert_eq!(approved.status, LockboxStatus::Approved);
    control.authorize_operator_query(WS, "op-ann", q).unwrap();
    assert_eq!(
        control
            .authorize_operator_query(WS, "op-eve", q)
            .unwrap_err()
            .code(),
        403
    );
    h.clock.advance(Duration::hours(2) + Duration::seconds(1));
    assert_eq!(
        control
            .authorize_operator_query(WS, "op-ann", q)
            .unwrap_err()
            .code(),
        403
    );
    assert_eq!(
        control.get_lockbox_request(&r.id).unwrap().status,
        LockboxStatus::Expired
    );

    // Unanswered for four days: expired, and can no longer be approved.
    let late = control
        .create_lockbox_request(WS, "op-cid", "ticket 44", None)
        .unwrap();
    h.clock.advance(Duration::days(3));
    assert_eq!(
        control.get_lockbox_request(&late.id).unwrap().status,
        LockboxStatus::Pending
    );
    h.clock.advance(Duration::days(1));
    assert_eq!(
        control.get_lockbox_request(&late.id).unwrap().status,
        LockboxStatus::Expired
    );
    assert_eq!(
        control
            .decide_lockbox_request(&late.id, true)
            .unwrap_err()
            .code(),
        409
    );

    // Every step and every operator query is in the customer's audit log, in order.
    let audit = control.lockbox_audit(Some(WS)).unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.operator.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("op-ann", "RequestCreated"),
            ("op-ann", "QueryRefused"),
            ("op-bob", "RequestCreated"),
            ("op-bob", "Rejected"),
            ("op-bob", "QueryRefused"),
            ("op-ann", "Approved"),
            ("op-ann", "Query"),
            ("op-eve", "QueryRefused"),
            ("op-ann", "AccessEnded"),
            ("op-ann", "QueryRefused"),
            ("op-cid", "RequestCreated"),
            ("op-cid", "Expired"),
        ]
    );
    let query_entry = audit.iter().find(|e| e.action == "Query").unwrap();
    assert_eq!(query_entry.detail.as_deref(), Some(q));
    assert_eq!(query_entry.request_id.as_deref(), Some(r.id.as_str()));
}

#[tokio::test]
async fn lockbox_is_refused_in_china_and_off_dedicated_clusters() {
    let h = home().await;
    h.engine
        .control()
        .create_workspace(WorkspaceSpec {
            region: Some("chinaeast2".into()),
            ..WorkspaceSpec::new("ws-china")
        })
        .unwrap();
    let err = h
        .engine
        .control()
        .create_lockbox_request("ws-china", "op-ann", "ticket", None)
        .unwrap_err();
    assert_eq!(err.code(), 400, "{err}");
    assert!(
        err.to_string()
            .contains("not available in region chinaeast2"),
        "{err}"
    );
    // Elsewhere, a workspace on no cluster has no Lockbox either (and no operator access).
    h.workspace(WS);
    let err = h
        .engine
        .control()
        .create_lockbox_request(WS, "op-ann", "ticket", None)
        .unwrap_err();
    assert_eq!(err.code(), 400, "{err}");
    assert!(err.to_string().contains("dedicated cluster"), "{err}");
    assert_eq!(
        h.engine
            .control()
            .authorize_operator_query(WS, "op-ann", "x")
            .unwrap_err()
            .code(),
        403
    );
}
