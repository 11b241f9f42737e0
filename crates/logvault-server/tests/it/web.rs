//! The web page's endpoints over HTTPS, without a browser: the page and its assets, the
//! one-time sign-in link, the session cookie and its CSRF header, `GET /status` through a
//! revocation and back, and the workspace endpoints (schema, saved searches, ingestion).

use logvault_server::Role;
use serde_json::{Value, json};

use crate::common::{
    CLUSTER, KEY, OTHER_WS, Options, Served, VAULT, WS, eventually, records, serve,
};

/// A client that does not follow redirects (to see the sign-in's `Set-Cookie`).
fn no_redirects(s: &Served) -> reqwest::Client {
    let pem = std::fs::read(s.server().cert().unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(s: &Served, path: &str, token: &str) -> (u16, Value) {
    let r = s
        .client
        .get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_link_works_once_and_the_cookie_needs_the_csrf_header() {
    let s = serve(Options::default()).await;
    let page = s.client.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<label for=\"query\">Query</label>")
    );
    for asset in [
        "/web/app.js",
        "/web/chart.js",
        "/web/editor.js",
        "/web/app.css",
    ] {
        let r = s
            .client
            .get(format!("{}{asset}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
    }

    let client = no_redirects(&s);
    let link = s.server().sign_in_url().unwrap();
    let wrong = client
        .get(format!("{}/signin?code=0123", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let first = client.get(&link).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 303);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["logvault_session=", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(part), "{part} not in {cookie}");
    }
    let second = client.get(&link).send().await.unwrap();
    assert_eq!(second.status().as_u16(), 401, "the link signed in twice");
    assert_eq!(s.server().sign_in_url(), None);
    let session = cookie.split(';').next().unwrap().to_owned();

    // Without the cookie: refused.
    let none = client
        .get(format!("{}/web/api/session", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let body = json!({ "query": "print x = 1" });
    let url = format!("{}/v1/workspaces/{WS}/query", s.url);
    let anonymous = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    // The cookie alone: refused (a page of another site could make the browser send it).
    let no_csrf = client
        .post(&url)
        .header("cookie", &session)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status().as_u16(), 403);
    let wrong_csrf = client
        .post(&url)
        .header("cookie", &session)
        .header("x-logvault-csrf", "guess")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_csrf.status().as_u16(), 403);
    // The page reads the CSRF value from its session, then queries.
    let me: Value = client
        .get(format!("{}/web/api/session", s.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["principal"], "web sign-in");
    let csrf = me["csrf"].as_str().unwrap().to_owned();
    let ok = client
        .post(&url)
        .header("cookie", &session)
        .header("x-logvault-csrf", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let answer: Value = ok.json().await.unwrap();
    assert_eq!(answer["tables"][0]["rows"], json!([[1]]));

    // Signing out revokes the session's token: the cookie, kept, is refused.
    let out = client
        .post(format!("{}/signout", s.url))
        .header("cookie", &session)
        .header("x-logvault-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let after = client
        .post(&url)
        .header("cookie", &session)
        .header("x-logvault-csrf", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 401);

    // A pasted token signs in too (with the CSRF header), a bad one does not.
    let reader = s.token(&[Role::Reader], Some(WS));
    let pasted = client
        .post(format!("{}/signin", s.url))
        .header("x-logvault-csrf", "signin")
        .json(&json!({ "token": reader }))
        .send()
        .await
        .unwrap();
    assert_eq!(pasted.status().as_u16(), 204);
    assert!(
        pasted.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains(&reader)
    );
    let bad = client
        .post(format!("{}/signin", s.url))
        .header("x-logvault-csrf", "signin")
        .json(&json!({ "token": "a.b.c" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let cross_site = client
        .post(format!("{}/signin", s.url))
        .json(&json!({ "token": reader }))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_key_of_each_workspace_through_a_revocation() {
    let s = serve(Options::default()).await;
    let principal = s.link_to_customer_key(WS).await;
    let owner = s.owner();
    assert_eq!(get_json(&s, "/status", "").await.0, 401);
    let publisher = s.token(&[Role::Publisher], None);
    assert_eq!(get_json(&s, "/status", &publisher).await.0, 403);

    let (status, body) = get_json(&s, "/status", &owner).await;
    assert_eq!(status, 200, "{body}");
    let ws = |body: &Value, name: &str| {
        body["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {body}"))
    };
    let linked = ws(&body, WS);
    assert_eq!(linked["keyState"], "active", "{linked}");
    assert_eq!(linked["protection"]["kind"], "customerKey");
    assert_eq!(linked["protection"]["cluster"], CLUSTER);
    assert_eq!(linked["protection"]["vault"], VAULT);
    assert_eq!(linked["protection"]["key"], KEY);
    assert!(linked["protection"]["version"].is_string(), "{linked}");
    assert_eq!(ws(&body, OTHER_WS)["protection"]["kind"], "serviceKey");
    assert_eq!(body["revoked"], json!([]));
    let cluster = &body["clusters"][0];
    assert_eq!(cluster["name"], CLUSTER);
    assert_eq!(cluster["identity"]["type"], "SystemAssigned", "{cluster}");
    assert_eq!(cluster["keyVaultProperties"]["keyName"], KEY);

    // A token for one workspace sees that workspace only.
    let reader = s.token(&[Role::Reader], Some(OTHER_WS));
    let (status, mine) = get_json(&s, "/status", &reader).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["workspaces"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["workspaces"][0]["name"], OTHER_WS);
    assert_eq!(
        get_json(&s, &format!("/status?workspace={WS}"), &reader)
            .await
            .0,
        403
    );

    // Revoked: the status says so, names the workspace, and counts the rows dropped.
    s.engine.vault().delete_policy(VAULT, &principal).unwrap();
    s.pass_check_interval();
    eventually("the status shows the revocation", || async {
        get_json(&s, "/status", &owner).await.1["revoked"] == json!([WS])
    })
    .await;
    let rule = s.rule("rule-web", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let refused = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(3, "x"))
        .await;
    assert_eq!(refused.status().as_u16(), 403);
    let (_, body) = get_json(&s, "/status", &owner).await;
    let revoked = ws(&body, WS);
    assert_eq!(revoked["keyState"], "revoked");
    assert!(revoked["since"].is_string(), "{revoked}");
    assert_eq!(revoked["droppedRows"], 3, "{revoked}");
    assert_eq!(body["clusters"][0]["keyState"], "revoked");

    // Restored.
    s.engine
        .vault()
        .set_policy(
            VAULT,
            &principal,
            &["get".into(), "wrapKey".into(), "unwrapKey".into()],
        )
        .unwrap();
    s.pass_check_interval();
    eventually("the status shows the restore", || async {
        let body = get_json(&s, "/status", &owner).await.1;
        body["revoked"] == json!([]) && ws(&body, WS)["keyState"] == "active"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_saved_searches_and_ingestion_of_a_workspace() {
    let s = serve(Options::default()).await;
    let rule = s.rule("rule-web", WS, "AppEvents", None);
    let publisher = s.token(&[Role::Publisher], Some(WS));
    let n = 12;
    let r = s
        .upload(&rule, "Custom-AppEvents", &publisher, &records(n, "s"))
        .await;
    assert_eq!(r.status().as_u16(), 204);
    eventually("the rows stored", || async {
        s.count(WS, "AppEvents").await == n as i64
    })
    .await;
    let owner = s.owner();
    let reader = s.token(&[Role::Reader], Some(WS));

    let (_, list) = get_json(&s, "/web/api/workspaces", &reader).await;
    assert_eq!(list["workspaces"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["workspaces"][0]["name"], WS);
    let (_, all) = get_json(&s, "/web/api/workspaces", &owner).await;
    assert_eq!(all["workspaces"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(
        get_json(
            &s,
            &format!("/web/api/workspaces/{OTHER_WS}/schema"),
            &reader
        )
        .await
        .0,
        403
    );
    assert_eq!(
        get_json(&s, "/web/api/workspaces/nope/schema", &owner)
            .await
            .0,
        404
    );

    let (status, schema) = get_json(&s, &format!("/web/api/workspaces/{WS}/schema"), &reader).await;
    assert_eq!(status, 200, "{schema}");
    let table = &schema["tables"][0];
    assert_eq!(table["name"], "AppEvents");
    let columns: Vec<(&str, &str)> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    for want in [
        ("TimeGenerated", "datetime"),
        ("Level", "string"),
        ("Latency", "long"),
    ] {
        assert!(columns.contains(&want), "{want:?} not in {columns:?}");
    }
    let functions: Vec<&str> = schema["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in ["ago", "bin", "count", "dcount", "strcat"] {
        assert!(functions.contains(&f), "{f}");
    }

    // Saving needs Owner or Contributor; the saved function shows in the schema.
    let search = json!({
        "displayName": "Errors",
        "category": "Checks",
        "query": "AppEvents | where Level == 'error'",
        "functionAlias": "AppErrors",
    });
    let path = format!("{}/web/api/workspaces/{WS}/savedSearches/errors", s.url);
    let refused = s
        .client
        .put(&path)
        .bearer_auth(&reader)
        .json(&search)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let saved = s
        .client
        .put(&path)
        .bearer_auth(&owner)
        .json(&search)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status().as_u16(), 200);
    let (_, list) = get_json(
        &s,
        &format!("/web/api/workspaces/{WS}/savedSearches"),
        &reader,
    )
    .await;
    assert_eq!(list["savedSearches"][0]["id"], "errors", "{list}");
    assert_eq!(list["savedSearches"][0]["functionAlias"], "AppErrors");
    let (_, schema) = get_json(&s, &format!("/web/api/workspaces/{WS}/schema"), &reader).await;
    assert_eq!(schema["storedFunctions"], json!(["AppErrors"]));
    let errors = s.rows(WS, "AppErrors | count").await;
    assert_eq!(errors, vec![vec![json!(n / 4)]]);
    let bad = s
        .client
        .put(&path)
        .bearer_auth(&owner)
        .json(
            &json!({ "displayName": "x", "query": "AppEvents | where (", "functionAlias": "Bad" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // Ingestion per hour: every stored row is in one of the hours.
    let (status, ingestion) = get_json(
        &s,
        &format!("/web/api/workspaces/{WS}/ingestion?hours=6"),
        &reader,
    )
    .await;
    assert_eq!(status, 200, "{ingestion}");
    let hours = ingestion["tables"][0]["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 6);
    let rows: u64 = hours.iter().map(|h| h["rows"].as_u64().unwrap()).sum();
    let bytes: u64 = hours.iter().map(|h| h["bytes"].as_u64().unwrap()).sum();
    assert_eq!(rows, n as u64);
    assert!(bytes > 0);
}
