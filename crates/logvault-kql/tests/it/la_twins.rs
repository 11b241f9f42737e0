//! SQL twins of the real KQL queries whose tables have sample data: the independent
//! computation their answers are checked against (DataFusion's SQL planner, not the KQL one).
//!
//! `{now}` is the query's pinned start time as a timestamp literal. Kusto's `has` (whole terms,
//! case-insensitive) is written as a regular expression. A missing string is the empty string
//! in Kusto: `x != 'v'` is `x IS NULL OR x <> 'v'`.

/// A twin: the query id, its SQL, the KQL result's columns it computes (all when empty) and,
/// for a query that orders its rows, the column whose sequence must match.
pub(crate) struct Twin {
    pub(crate) id: &'static str,
    pub(crate) sql: &'static str,
    pub(crate) columns: &'static [usize],
    pub(crate) ordered_by: Option<usize>,
}

const fn t(id: &'static str, sql: &'static str) -> Twin {
    Twin {
        id,
        sql,
        columns: &[],
        ordered_by: None,
    }
}

const fn ordered(id: &'static str, sql: &'static str, col: usize) -> Twin {
    Twin {
        id,
        sql,
        columns: &[],
        ordered_by: Some(col),
    }
}

pub(crate) const TWINS: &[Twin] = &[
    ordered(
        "001",
        "SELECT EventID, count(*) AS EventCount FROM SecurityEvent WHERE EventSourceName = 'Microsoft-Windows-Security-Auditing' GROUP BY EventID ORDER BY EventCount DESC",
        1,
    ),
    t(
        "002",
        "SELECT TargetAccount, Computer, _ResourceId, count(*) AS c3 FROM SecurityEvent WHERE EventID = 4625 GROUP BY TargetAccount, Computer, _ResourceId",
    ),
    ordered(
        "003",
        "SELECT TimeGenerated, Account, Activity, Computer FROM SecurityEvent ORDER BY TimeGenerated DESC",
        0,
    ),
    ordered(
        "004",
        "SELECT TimeGenerated, Account, Activity, Computer FROM SecurityEvent WHERE TargetUserName = 'Administrator' ORDER BY TimeGenerated DESC",
        0,
    ),
    t(
        "005",
        "SELECT Computer, count(*) AS LogonCount FROM SecurityEvent WHERE EventID = 4624 GROUP BY Computer HAVING count(*) > 10",
    ),
    t(
        "006",
        "SELECT Account, count(*) AS c1 FROM SecurityEvent WHERE EventID = 4689 AND (regexp_like(Process, '(?i)(^|[^[:alnum:]])MsMpEng\\.exe($|[^[:alnum:]])') OR regexp_like(ParentProcessName, '(?i)(^|[^[:alnum:]])MsMpEng\\.exe($|[^[:alnum:]])')) GROUP BY Account",
    ),
    t(
        "007",
        "SELECT NewProcessName, count(*) AS c1 FROM SecurityEvent WHERE EventID = 4688 GROUP BY NewProcessName",
    ),
    t(
        "008",
        "SELECT Account, count(*) AS c1 FROM SecurityEvent WHERE EventID = 4624 AND (LogonTypeName = '3 - Network' OR LogonTypeName = '10 - RemoteInteractive') GROUP BY Account",
    ),
    t(
        "009",
        "SELECT Computer, count(*) AS c1 FROM SecurityEvent WHERE EventID = 4624 AND TargetUserName = 'Guest' AND LogonType IN (10, 3) GROUP BY Computer",
    ),
    t(
        "010",
        "SELECT TargetAccount, count(*) AS c1 FROM SecurityEvent WHERE EventID IN (4727, 4731, 4735, 4737, 4754, 4755) GROUP BY TargetAccount",
    ),
    t(
        "011",
        "SELECT DISTINCT TargetAccount FROM SecurityEvent WHERE EventID IN (4720, 4722)",
    ),
    t(
        "012",
        "SELECT Computer, Account, EventID, Activity, min(TimeGenerated) AS c4, max(TimeGenerated) AS c5, count(*) AS c6, min(TimeGenerated) AS c7, Account AS c8, Computer AS c9 FROM SecurityEvent WHERE TimeGenerated >= {now} - INTERVAL '1 day' AND EventID = 1102 AND EventSourceName = 'Microsoft-Windows-Eventlog' GROUP BY Computer, Account, EventID, Activity",
    ),
    t(
        "013",
        "SELECT Activity, Account, TargetSid, TargetDomainName, SourceComputerId, Computer, min(TimeGenerated) AS c6, max(TimeGenerated) AS c7, count(*) AS c8, min(TimeGenerated) AS c9, Account AS c10, TargetDomainName AS c11 FROM SecurityEvent WHERE TimeGenerated >= {now} - INTERVAL '7 days' AND EventID = 4740 GROUP BY Activity, Account, TargetSid, TargetDomainName, SourceComputerId, Computer",
    ),
    t(
        "014",
        "SELECT Reason, min(TimeGenerated) AS c1, max(TimeGenerated) AS c2, count(*) AS c3, min(TimeGenerated) AS c4 FROM (SELECT TimeGenerated, CASE SubStatus WHEN '0xc000006a' THEN 'Incorrect password' WHEN '0xc0000064' THEN 'Account name does not exist' ELSE concat('Unknown reason substatus: ', SubStatus) END AS Reason FROM SecurityEvent WHERE TimeGenerated >= {now} - INTERVAL '1 day' AND AccountType = 'User' AND EventID = 4625) GROUP BY Reason",
    ),
    t(
        "015",
        "SELECT LogonTypeName, min(TimeGenerated) AS c1, max(TimeGenerated) AS c2, count(*) AS c3, min(TimeGenerated) AS c4 FROM SecurityEvent WHERE TimeGenerated >= {now} - INTERVAL '1 day' AND EventID IN (4624, 4625) AND AccountType = 'User' GROUP BY LogonTypeName",
    ),
    t(
        "017",
        "SELECT * FROM Syslog WHERE ProcessName = 'kernel' AND SyslogMessage LIKE '%Killed process%'",
    ),
    ordered(
        "018",
        "SELECT * FROM Syslog ORDER BY TimeGenerated DESC LIMIT 100",
        4,
    ),
    ordered(
        "019",
        "SELECT * FROM Syslog WHERE SeverityLevel = 'err' OR SeverityLevel = 'error' ORDER BY TimeGenerated DESC LIMIT 100",
        4,
    ),
    t(
        "020",
        "SELECT Facility, count(*) AS c1 FROM Syslog GROUP BY Facility",
    ),
    t(
        "021",
        "SELECT ProcessName, count(*) AS c1 FROM Syslog GROUP BY ProcessName",
    ),
    t(
        "022",
        "SELECT DISTINCT Computer FROM Syslog WHERE Facility = 'authpriv' AND regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])to group($|[^[:alnum:]])') AND (regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])add($|[^[:alnum:]])') OR regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])added($|[^[:alnum:]])'))",
    ),
    t(
        "023",
        "SELECT Computer, count(*) AS c1 FROM Syslog WHERE Facility = 'authpriv' AND ((regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])passwd:chauthtok($|[^[:alnum:]])') AND regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])authentication failure($|[^[:alnum:]])')) OR regexp_like(SyslogMessage, '(?i)(^|[^[:alnum:]])password change failed($|[^[:alnum:]])')) GROUP BY Computer",
    ),
    t(
        "025",
        "SELECT UserDisplayName, Identity, UserPrincipalName, AppDisplayName, AppId, ResourceDisplayName FROM SigninLogs",
    ),
    t(
        "026",
        "SELECT ResourceDisplayName, AppDisplayName, count(*) AS c2 FROM SigninLogs WHERE UserPrincipalName = 'osotnoc@contoso.com' GROUP BY ResourceDisplayName, AppDisplayName",
    ),
    t(
        "027",
        "SELECT ResourceDisplayName, count(DISTINCT UserPrincipalName) AS c1 FROM SigninLogs GROUP BY ResourceDisplayName",
    ),
    ordered(
        "028",
        "SELECT ResultDescription, ResultType, count(*) AS c FROM SigninLogs WHERE ResultType IS NULL OR ResultType <> '0' GROUP BY ResultDescription, ResultType ORDER BY c DESC NULLS LAST",
        2,
    ),
    t(
        "029",
        "SELECT UserDisplayName, count(*) AS c1, count(DISTINCT ResourceDisplayName) AS c2, min(ResultDescription) AS c3 FROM SigninLogs WHERE ResultType = '50074' GROUP BY UserDisplayName",
    ),
    t(
        "030",
        "SELECT Location, count(*) FILTER (WHERE ResultType = '0') AS c1, count(*) FILTER (WHERE ResultType IS NULL OR ResultType <> '0') AS c2 FROM SigninLogs GROUP BY Location",
    ),
    t(
        "031",
        "SELECT TimeGenerated, UserDisplayName, Identity, UserPrincipalName, AppDisplayName, CASE WHEN ResultType = '0' THEN 'Success' ELSE 'Fail' END AS c5 FROM SigninLogs WHERE ResourceDisplayName = 'Windows Azure Service Management API'",
    ),
    t(
        "032",
        "SELECT *, AlternateSignInName AS a1, IPAddress AS a2, ClientAppUsed AS a3 FROM SigninLogs WHERE ResultType = '500121' AND regexp_like(Status, '(?i)(^|[^[:alnum:]])MFA Denied; user declined the authentication($|[^[:alnum:]])')",
    ),
    Twin {
        id: "033",
        sql: "SELECT UserPrincipalName, count(DISTINCT Location) AS n, NULL AS c2, min(TimeGenerated) AS c3, max(TimeGenerated) AS c4, min(TimeGenerated) AS c5, UserPrincipalName AS c6 FROM SigninLogs WHERE TimeGenerated > {now} - INTERVAL '1 hour' AND AppDisplayName = 'GitHub.com' AND ResultType = '0' GROUP BY UserPrincipalName HAVING count(DISTINCT Location) > 1",
        columns: &[0, 1, 3, 4, 5, 6],
        ordered_by: None,
    },
    t(
        "034",
        "SELECT AppDisplayName, UserPrincipalName, min(TimeGenerated) AS c2, max(TimeGenerated) AS c3, count(*) AS c4, min(TimeGenerated) AS c5, UserPrincipalName AS c6 FROM SigninLogs WHERE TimeGenerated >= {now} - INTERVAL '14 days' AND ResultType = '50057' AND ResultDescription = 'User account is disabled. The account has been disabled by an administrator.' GROUP BY AppDisplayName, UserPrincipalName",
    ),
    Twin {
        id: "035",
        sql: "SELECT TimeGenerated FROM AzureActivity ORDER BY TimeGenerated DESC LIMIT 50",
        columns: &[35],
        ordered_by: Some(0),
    },
    Twin {
        id: "036",
        sql: "SELECT OperationName, max(TimeGenerated) AS c1 FROM AzureActivity GROUP BY OperationName",
        columns: &[0, 1],
        ordered_by: None,
    },
    t(
        "037",
        "SELECT TimeGenerated, Level, ResourceProvider, ActivityStatus, Caller, Category, Properties, CorrelationId FROM AzureActivity WHERE Level = 'Error' OR Level = 'Warning'",
    ),
    t(
        "038",
        "SELECT Caller, TimeGenerated, _ResourceId FROM AzureActivity WHERE regexp_like(OperationNameValue, '(?i)(^|[^[:alnum:]])Microsoft\\.Resources/deployments/write($|[^[:alnum:]])') AND CategoryValue = 'Administrative' AND ActivityStatusValue = 'Success'",
    ),
    t(
        "039",
        "SELECT Caller, OperationNameValue, ActivityStatusValue, CategoryValue FROM AzureActivity WHERE TimeGenerated > {now} - INTERVAL '2 days' AND Caller LIKE '%@%'",
    ),
    ordered(
        "040",
        "SELECT OperationName, _ResourceId, count(*) AS c FROM AzureActivity GROUP BY OperationName, _ResourceId ORDER BY c DESC NULLS LAST",
        2,
    ),
    t(
        "041",
        "SELECT *, Caller AS a1, CallerIpAddress AS a2 FROM AzureActivity WHERE TimeGenerated >= {now} - INTERVAL '1 day' AND Category = 'Administrative' AND OperationNameValue IN ('Microsoft.SecurityInsights/alertRules/write', 'Microsoft.SecurityInsights/alertRules/delete') AND ActivitySubstatusValue IN ('Created', 'OK')",
    ),
    ordered(
        "042",
        "SELECT TimeGenerated, UserId, Operation, OfficeWorkload, RecordType, _ResourceId FROM OfficeActivity ORDER BY TimeGenerated DESC NULLS LAST",
        0,
    ),
    ordered(
        "043",
        "SELECT UserId, _ResourceId, count(DISTINCT OfficeObjectId) AS c FROM OfficeActivity WHERE OfficeWorkload IN ('OneDrive', 'SharePoint') AND Operation IN ('FileDownloaded', 'FileAccessed') GROUP BY UserId, _ResourceId ORDER BY c DESC NULLS LAST",
        2,
    ),
    t(
        "044",
        "SELECT TimeGenerated, ClientIP, UserId, Operation, CASE WHEN lower(Operation) = 'set-transportrule' THEN OfficeObjectId ELSE 'Unknown' END AS c4, _ResourceId FROM OfficeActivity WHERE OfficeWorkload = 'Exchange' AND lower(Operation) IN ('new-transportrule', 'set-transportrule')",
    ),
    t(
        "045",
        "SELECT * FROM OfficeActivity WHERE lower(RecordType) = 'sharepointfileoperation' AND SourceFileName <> '' AND regexp_like(OfficeObjectId, '(?i)(^|[^[:alnum:]])\\.exe\\.') AND regexp_like(OfficeObjectId, '\\.exe\\.\\w{0,4}$')",
    ),
    Twin {
        id: "046",
        sql: "SELECT UserId, min(TimeGenerated) AS c1, max(TimeGenerated) AS c2, NULL AS c3, min(TimeGenerated) AS c4, UserId AS c5 FROM OfficeActivity WHERE lower(OfficeWorkload) = 'microsoftteams' AND lower(Operation) = 'teamdeleted' GROUP BY UserId HAVING count(DISTINCT TeamName) > 3",
        columns: &[0, 1, 2, 4, 5],
        ordered_by: None,
    },
    t(
        "047",
        "SELECT Operation, OrganizationName, UserType, UserId, MailboxOwnerUPN, Logon_Type, count(*) AS c6, min(TimeGenerated) AS c7, max(TimeGenerated) AS c8, min(TimeGenerated) AS c9, UserId AS c10 FROM OfficeActivity WHERE TimeGenerated >= {now} - INTERVAL '1 day' AND Operation = 'MailboxLogin' AND (Logon_Type IS NULL OR Logon_Type <> 'Owner') GROUP BY Operation, OrganizationName, UserType, UserId, MailboxOwnerUPN, Logon_Type",
    ),
    Twin {
        id: "050",
        sql: "SELECT Computer, max(TimeGenerated) AS c1 FROM Heartbeat GROUP BY Computer",
        columns: &[0, 1],
        ordered_by: None,
    },
    t(
        "051",
        "SELECT ResourceGroup, Resource, ResourceType, {now} - max(TimeGenerated) AS d FROM Heartbeat GROUP BY ResourceGroup, Resource, ResourceType HAVING {now} - max(TimeGenerated) BETWEEN INTERVAL '1 minute' AND INTERVAL '15 minutes'",
    ),
    t(
        "052",
        "SELECT date_bin(INTERVAL '1 hour', TimeGenerated, TIMESTAMP '1970-01-01T00:00:00Z'), count(DISTINCT ComputerIP) AS c1 FROM Heartbeat GROUP BY 1",
    ),
    t(
        "053",
        "SELECT Computer, max(TimeGenerated) AS m FROM Heartbeat GROUP BY Computer HAVING max(TimeGenerated) < {now} - INTERVAL '5 hours'",
    ),
];
